// ChatTemplate against jinja2: the published chat templates of
// test/fixtures/chat/*.json rendered for each conversation must equal what
// test/fixtures/chat/render_chat_fixtures.py got from jinja2 as transformers
// runs it, byte for byte (or fail where the template raises).
#include "gai/ChatTemplate.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <ctime>
#include <fstream>
#include <map>

using namespace gai;
using Json = nlohmann::json;

namespace {

const std::string kDir = std::string(GAI_FIXTURES_DIR) + "/chat/";

Json readJson(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return Json::parse(in);
}

std::optional<std::string> token(const Json &config, const char *key) {
  if (!config.contains(key) || config[key].is_null())
    return std::nullopt;
  return config[key].get<std::string>();
}

StatusOr<ChatTemplate> fixture(const std::string &name) {
  Json config = readJson(kDir + name + ".json");
  return ChatTemplate::recognise(config["chat_template"].get<std::string>(),
                                 token(config, "bos_token"),
                                 token(config, "eos_token"), name + ".json");
}

/// What the renderer script's strftime_now answers: its day, as a date.
ChatRenderOptions optionsFor(const Json &expected, bool addGenerationPrompt) {
  std::string day = expected["today"];
  ChatRenderOptions options;
  options.addGenerationPrompt = addGenerationPrompt;
  options.strftimeNow = [day](const std::string &format) {
    std::tm date{};
    date.tm_year = std::stoi(day.substr(0, 4)) - 1900;
    date.tm_mon = std::stoi(day.substr(5, 2)) - 1;
    date.tm_mday = std::stoi(day.substr(8, 2));
    date.tm_hour = 12;
    char text[64];
    return std::string(text,
                       std::strftime(text, sizeof text, format.c_str(), &date));
  };
  return options;
}

TEST(ChatTemplate, RendersAsJinja) {
  Json expected = readJson(kDir + "expected.json");
  const std::map<std::string, std::string> names = {
      {"llama3", "Llama 3"},        {"llama3.1", "Llama 3.1"},
      {"llama3.2", "Llama 3.2"},    {"llama2", "Llama 2"},
      {"mistral-v1", "Mistral v1"}, {"mistral-v3", "Mistral v3"},
      {"qwen2", "ChatML (Qwen2)"},  {"qwen2.5", "ChatML (Qwen2.5)"},
      {"qwen3", "ChatML (Qwen3)"},  {"gemma2", "Gemma 2"},
      {"gemma3", "Gemma 3"},        {"phi3", "Phi-3"},
      {"phi3.5", "Phi-3.5"}};
  ASSERT_EQ(expected["renderings"].size(), names.size());
  for (const auto &[name, renderings] : expected["renderings"].items()) {
    auto chat = fixture(name);
    ASSERT_TRUE(chat) << chat.status().message();
    EXPECT_EQ(chat->name(), names.at(name));
    for (const auto &[conversation, want] : renderings.items()) {
      const Json &c = expected["conversations"][conversation];
      std::vector<ChatMessage> messages;
      for (const Json &m : c["messages"])
        messages.push_back({m["role"], m["content"]});
      auto got = chat->render(messages,
                              optionsFor(expected, c["add_generation_prompt"]));
      if (want.contains("error")) {
        ASSERT_FALSE(got) << name << " " << conversation
                          << " rendered, jinja2 raised";
        EXPECT_NE(got.status().message().find(want["error"].get<std::string>()),
                  std::string::npos)
            << got.status().message();
      } else {
        ASSERT_TRUE(got) << name << " " << conversation << ": "
                         << got.status().message();
        EXPECT_EQ(*got, want["text"].get<std::string>())
            << name << " " << conversation;
      }
    }
  }
}

TEST(ChatTemplate, EndOfTurn) {
  EXPECT_EQ(fixture("llama3.1")->endOfTurn(), "<|eot_id|>");
  EXPECT_EQ(fixture("llama2")->endOfTurn(), "</s>");
  EXPECT_EQ(fixture("mistral-v3")->endOfTurn(), "</s>");
  EXPECT_EQ(fixture("qwen2.5")->endOfTurn(), "<|im_end|>");
  EXPECT_EQ(fixture("gemma3")->endOfTurn(), "<end_of_turn>");
  EXPECT_EQ(fixture("phi3")->endOfTurn(), "<|end|>");
}

std::string templateOf(const std::string &name) {
  return readJson(kDir + name + ".json")["chat_template"];
}

std::string replaced(std::string text, const std::string &from,
                     const std::string &to) {
  size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return text.replace(at, from.size(), to);
}

// What Jinja does not read is not compared: spacing inside tags, quoting,
// escapes, comments, and whitespace the tags strip.
TEST(ChatTemplate, RecognisesTheSameTemplateWrittenOtherwise) {
  std::string gemma = templateOf("gemma2");
  for (const std::string &variant :
       {replaced(gemma, "'System role not supported'",
                 "\"System role not supported\""),
        replaced(gemma, "{% endfor %}", "{%   endfor\n%}{# turns done #}"),
        replaced(gemma, "'<end_of_turn>\n'", "'<end_of_turn>\\n'"),
        replaced(gemma, "{{ bos_token }}", "{{- bos_token -}}\n  \n")}) {
    auto chat = ChatTemplate::recognise(variant, "<bos>", "<eos>", "t");
    ASSERT_TRUE(chat) << chat.status().message();
    EXPECT_EQ(chat->name(), "Gemma 2");
  }
  // A template line's indentation before a tag and the newline after it
  // go (lstrip_blocks, trim_blocks).
  std::string qwen = templateOf("qwen2.5");
  ASSERT_TRUE(ChatTemplate::recognise(
      replaced(qwen, "{%- endif %}\n{%- for", "{%- endif %}\n  {% for"),
      std::nullopt, "<|im_end|>", "t"));
}

// Fine-tunes that keep a family's markers but change what it prints are
// refused, naming the family and the templates gai knows of it.
TEST(ChatTemplate, RefusesNearMisses) {
  std::string llama2 = templateOf("llama2");
  std::string dutch = replaced(
      llama2, "{% set system_message = false %}",
      "{% set system_message = 'Je bent een behulpzame assistent.' %}");
  auto refused = ChatTemplate::recognise(dutch, "<s>", "</s>",
                                         "dutch/tokenizer_config.json");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.status().message(),
            "dutch/tokenizer_config.json: the chat template is not one gai "
            "renders: it has "
            "the markers of Llama 2 but is none of the Llama 2 templates gai "
            "knows (Llama "
            "2): a template that differs from them (a default system prompt, "
            "other headers) "
            "would render other text. gai renders the published templates of " +
                ChatTemplate::knownFormats() + " (docs/runtime.md, \"Chat\")");
  // Text that now reaches the output: a newline no tag strips.
  std::string gemma = templateOf("gemma2");
  EXPECT_FALSE(ChatTemplate::recognise(
      replaced(gemma, "{% endfor %}", "{% endfor %}\n\n"), "<bos>", "<eos>",
      "t"));
  EXPECT_FALSE(ChatTemplate::recognise(replaced(gemma, "| trim", ""), "<bos>",
                                       "<eos>", "t"));
  auto other = ChatTemplate::recognise(
      "{% for m in messages %}{{ m.content }}{% endfor %}", std::nullopt,
      std::nullopt, "t");
  ASSERT_FALSE(other);
  EXPECT_NE(other.status().message().find(
                "t: the chat template is not one gai renders: it is "
                "in no format gai renders"),
            std::string::npos);
  auto broken =
      ChatTemplate::recognise("{% if x %", std::nullopt, std::nullopt, "t");
  ASSERT_FALSE(broken);
  EXPECT_EQ(broken.status().message(), "t: the chat template cannot be read as "
                                       "Jinja (a tag opened with '{%' is not "
                                       "closed)");
}

TEST(ChatTemplate, RefusesWhatItCannotRender) {
  auto chat = fixture("qwen2.5");
  EXPECT_FALSE(chat->render({}));
  auto tool = chat->render({{"tool", "{}"}});
  ASSERT_FALSE(tool);
  EXPECT_EQ(tool.status().message(),
            "chat messages are system, user or assistant; got role 'tool'");
  // Llama 2 concatenates its bos_token: without one, Jinja fails.
  auto llama2 =
      ChatTemplate::recognise(templateOf("llama2"), std::nullopt, "</s>", "t");
  ASSERT_TRUE(llama2);
  auto missing = llama2->render({{"user", "Hi"}});
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.status().message(),
            "the chat template needs bos_token, which tokenizer_config.json "
            "does not give");
}

} // namespace

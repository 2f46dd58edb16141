// The ChatML (Qwen2, Qwen2.5, Qwen3), Gemma (2, 3) and Phi-3 (3, 3.5) chat
// templates, each as its model published it beside the C++ that renders it
// as Jinja does.
#include "ChatParts.h"

namespace gai {
namespace {

using namespace chat;

/// A ChatML turn.
std::string turn(const std::string &role, const std::string &content) {
  return "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
}

// Qwen/Qwen2-0.5B-Instruct
// clang-format off
const char *const kQwen2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
    "{% endif %}";
// clang-format on

StatusOr<std::string> renderQwen2(const std::vector<ChatMessage> &messages,
                                  const ChatTokens &,
                                  const ChatRenderOptions &options) {
  std::string out;
  if (messages[0].role != "system")
    out += turn("system", "You are a helpful assistant.");
  for (const ChatMessage &m : messages)
    out += turn(m.role, m.content);
  if (options.addGenerationPrompt)
    out += "<|im_start|>assistant\n";
  return out;
}

// Qwen/Qwen2.5-0.5B-Instruct
// clang-format off
const char *const kQwen25 = R"tmpl({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}
    {%- else %}
        {{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\n<tool_call>\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
{%- endif %}
)tmpl";
// clang-format on

StatusOr<std::string> renderQwen25(const std::vector<ChatMessage> &messages,
                                   const ChatTokens &,
                                   const ChatRenderOptions &options) {
  std::string out =
      messages[0].role == "system"
          ? turn("system", messages[0].content)
          : turn("system", "You are Qwen, created by Alibaba Cloud. You are a "
                           "helpful assistant.");
  for (size_t i = 0; i < messages.size(); ++i)
    if (!(i == 0 && messages[i].role == "system"))
      out += turn(messages[i].role, messages[i].content);
  if (options.addGenerationPrompt)
    out += "<|im_start|>assistant\n";
  return out;
}

// Qwen/Qwen3-0.6B
// clang-format off
const char *const kQwen3 = R"tmpl({%- if tools %}
    {{- '<|im_start|>system\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\n\n' }}
    {%- endif %}
    {{- "# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>" }}
    {%- for tool in tools %}
        {{- "\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\n' + messages[0].content + '<|im_end|>\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>' + '\n' }}
    {%- elif message.role == "assistant" %}
        {%- set content = message.content %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is defined and message.reasoning_content is not none %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in message.content %}
                {%- set content = message.content.split('</think>')[-1].lstrip('\n') %}
                {%- set reasoning_content = message.content.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\n<think>\n' + reasoning_content.strip('\n') + '\n</think>\n\n' + content.lstrip('\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\n<tool_response>\n' }}
        {{- message.content }}
        {{- '\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\n\n</think>\n\n' }}
    {%- endif %}
{%- endif %})tmpl";
// clang-format on

bool startsWith(const std::string &s, const std::string &prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}
bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// No default system message; an assistant turn before the last user query
/// loses its <think> reasoning, one after it keeps it in a <think> block.
StatusOr<std::string> renderQwen3(const std::vector<ChatMessage> &messages,
                                  const ChatTokens &,
                                  const ChatRenderOptions &options) {
  std::string out;
  if (messages[0].role == "system")
    out += turn("system", messages[0].content);
  size_t lastQuery = messages.size() - 1;
  for (size_t i = messages.size(); i-- > 0;) {
    const ChatMessage &m = messages[i];
    if (m.role == "user" && !(startsWith(m.content, "<tool_response>") &&
                              endsWith(m.content, "</tool_response>"))) {
      lastQuery = i;
      break;
    }
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage &m = messages[i];
    if (m.role == "user" || (m.role == "system" && i != 0)) {
      out += turn(m.role, m.content);
    } else if (m.role == "assistant") {
      std::string content = m.content, reasoning;
      if (m.content.find("</think>") != std::string::npos) {
        content = lstripChars(afterLast(m.content, "</think>"), "\n");
        reasoning = lstripChars(
            afterLast(rstripChars(beforeFirst(m.content, "</think>"), "\n"),
                      "<think>"),
            "\n");
      }
      bool last = i + 1 == messages.size();
      if (i > lastQuery && (last || !reasoning.empty()))
        out += "<|im_start|>assistant\n<think>\n" +
               stripChars(reasoning, "\n") + "\n</think>\n\n" +
               lstripChars(content, "\n");
      else
        out += "<|im_start|>assistant\n" + content;
      out += "<|im_end|>\n";
    }
  }
  if (options.addGenerationPrompt)
    out += "<|im_start|>assistant\n";
  return out;
}

const char *const kGemmaTurns =
    "Conversation roles must alternate user/assistant/user/assistant/...";

/// A Gemma turn: the assistant is the model.
std::string gemmaTurn(const std::string &role, const std::string &content) {
  return "<start_of_turn>" +
         (role == "assistant" ? std::string("model") : role) + "\n" + content +
         "<end_of_turn>\n";
}

// google/gemma-2-2b-it
// clang-format off
const char *const kGemma2 =
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if (message['role'] == 'assistant') %}{% set role = 'model' %}"
    "{% else %}{% set role = message['role'] %}{% endif %}{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}"
    "{% endif %}";
// clang-format on

StatusOr<std::string> renderGemma2(const std::vector<ChatMessage> &messages,
                                   const ChatTokens &tokens,
                                   const ChatRenderOptions &options) {
  if (messages[0].role == "system")
    return raised("System role not supported");
  std::string out = orEmpty(tokens.bos);
  for (size_t i = 0; i < messages.size(); ++i) {
    if ((messages[i].role == "user") != (i % 2 == 0))
      return raised(kGemmaTurns);
    out += gemmaTurn(messages[i].role, strip(messages[i].content));
  }
  if (options.addGenerationPrompt)
    out += "<start_of_turn>model\n";
  return out;
}

// google/gemma-3-1b-it
// clang-format off
const char *const kGemma3 =
    "{{ bos_token }}\n"
    "{%- if messages[0]['role'] == 'system' -%}\n"
    "    {%- if messages[0]['content'] is string -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\n"
    "    {%- else -%}\n"
    "        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}\n"
    "    {%- endif -%}\n"
    "    {%- set loop_messages = messages[1:] -%}\n"
    "{%- else -%}\n"
    "    {%- set first_user_prefix = \"\" -%}\n"
    "    {%- set loop_messages = messages -%}\n"
    "{%- endif -%}\n"
    "{%- for message in loop_messages -%}\n"
    "    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\n"
    "        {{ raise_exception(\"Conversation roles must alternate user/assistant/user/assistant/...\") }}\n"
    "    {%- endif -%}\n"
    "    {%- if (message['role'] == 'assistant') -%}\n"
    "        {%- set role = \"model\" -%}\n"
    "    {%- else -%}\n"
    "        {%- set role = message['role'] -%}\n"
    "    {%- endif -%}\n"
    "    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else \"\") }}\n"
    "    {%- if message['content'] is string -%}\n"
    "        {{ message['content'] | trim }}\n"
    "    {%- elif message['content'] is iterable -%}\n"
    "        {%- for item in message['content'] -%}\n"
    "            {%- if item['type'] == 'image' -%}\n"
    "                {{ '<start_of_image>' }}\n"
    "            {%- elif item['type'] == 'text' -%}\n"
    "                {{ item['text'] | trim }}\n"
    "            {%- endif -%}\n"
    "        {%- endfor -%}\n"
    "    {%- else -%}\n"
    "        {{ raise_exception(\"Invalid content type\") }}\n"
    "    {%- endif -%}\n"
    "    {{ '<end_of_turn>\n' }}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "    {{'<start_of_turn>model\n'}}\n"
    "{%- endif -%}\n";
// clang-format on

/// Gemma has no system turn: a system message starts the first user turn.
StatusOr<std::string> renderGemma3(const std::vector<ChatMessage> &messages,
                                   const ChatTokens &tokens,
                                   const ChatRenderOptions &options) {
  std::string prefix;
  size_t first = 0;
  if (messages[0].role == "system")
    prefix = messages[0].content + "\n\n", first = 1;
  std::string out = orEmpty(tokens.bos);
  for (size_t i = first; i < messages.size(); ++i) {
    size_t k = i - first;
    if ((messages[i].role == "user") != (k % 2 == 0))
      return raised(kGemmaTurns);
    out += gemmaTurn(messages[i].role, (k == 0 ? prefix : std::string()) +
                                           strip(messages[i].content));
  }
  if (options.addGenerationPrompt)
    out += "<start_of_turn>model\n";
  return out;
}

/// Phi-3's turns; `skipEmptySystem`: Phi-3.5 leaves out an empty system
/// message.
std::string renderPhi3Turns(const std::vector<ChatMessage> &messages,
                            const ChatTokens &tokens,
                            const ChatRenderOptions &options,
                            bool skipEmptySystem) {
  std::string out;
  for (const ChatMessage &m : messages)
    if (!(m.role == "system" && skipEmptySystem && m.content.empty()))
      out += "<|" + m.role + "|>\n" + m.content + "<|end|>\n";
  return out + (options.addGenerationPrompt ? "<|assistant|>\n"
                                            : orEmpty(tokens.eos));
}

// microsoft/Phi-3-mini-4k-instruct
// clang-format off
const char *const kPhi3 =
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}"
    "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}"
    "{% else %}{{ eos_token }}{% endif %}";
// clang-format on

StatusOr<std::string> renderPhi3(const std::vector<ChatMessage> &messages,
                                 const ChatTokens &tokens,
                                 const ChatRenderOptions &options) {
  return renderPhi3Turns(messages, tokens, options, false);
}

// microsoft/Phi-3.5-mini-instruct
// clang-format off
const char *const kPhi35 =
    "{% for message in messages %}{% if message['role'] == 'system' and message['content'] %}"
    "{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}"
    "{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}"
    "{% else %}{{ eos_token }}{% endif %}";
// clang-format on

StatusOr<std::string> renderPhi35(const std::vector<ChatMessage> &messages,
                                  const ChatTokens &tokens,
                                  const ChatRenderOptions &options) {
  return renderPhi3Turns(messages, tokens, options, true);
}

} // namespace

void addOtherChatTemplates(std::vector<KnownChatTemplate> &out) {
  out.push_back({"ChatML (Qwen2)", "ChatML", "Qwen/Qwen2-0.5B-Instruct",
                 "<|im_end|>", renderQwen2, kQwen2});
  out.push_back({"ChatML (Qwen2.5)", "ChatML", "Qwen/Qwen2.5-0.5B-Instruct",
                 "<|im_end|>", renderQwen25, kQwen25});
  out.push_back({"ChatML (Qwen3)", "ChatML", "Qwen/Qwen3-0.6B", "<|im_end|>",
                 renderQwen3, kQwen3});
  out.push_back({"Gemma 2", "Gemma", "google/gemma-2-2b-it", "<end_of_turn>",
                 renderGemma2, kGemma2});
  out.push_back({"Gemma 3", "Gemma", "google/gemma-3-1b-it", "<end_of_turn>",
                 renderGemma3, kGemma3});
  out.push_back({"Phi-3", "Phi-3", "microsoft/Phi-3-mini-4k-instruct",
                 "<|end|>", renderPhi3, kPhi3});
  out.push_back({"Phi-3.5", "Phi-3", "microsoft/Phi-3.5-mini-instruct",
                 "<|end|>", renderPhi35, kPhi35});
}

} // namespace gai

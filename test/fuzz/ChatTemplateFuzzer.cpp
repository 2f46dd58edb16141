// Fuzzes chat template recognition (a tokenizer_config.json's Jinja text,
// read as Jinja reads it): any text is one of the known templates or an
// error, and a recognised one renders a conversation or says why not.
// Input: a line with the bos token, a line with the eos token, the template.
#include "gai/ChatTemplate.h"

#include <cstddef>
#include <cstdint>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  std::string input(reinterpret_cast<const char *>(data), size);
  auto line = [&input]() {
    const size_t newline = input.find('\n');
    std::string first = input.substr(0, newline);
    input = newline == std::string::npos ? std::string() : input.substr(newline + 1);
    return first;
  };
  const std::string bos = line(), eos = line();
  auto chat = gai::ChatTemplate::recognise(input, bos, eos, "fuzz/tokenizer_config.json");
  if (!chat.isOk())
    return 0;
  gai::ChatRenderOptions options;
  options.strftimeNow = [](const std::string &) { return std::string("05 Dec 2026"); };
  for (bool prompt : {true, false}) {
    options.addGenerationPrompt = prompt;
    (void)chat->render({{"system", bos}, {"user", eos}, {"assistant", "x"}, {"user", "y"}},
                       options);
    (void)chat->render({{"user", input.substr(0, 64)}}, options);
  }
  (void)chat->name();
  (void)chat->endOfTurn();
  return 0;
}

// The Llama 3 and [INST] chat templates (Llama 3, 3.1, 3.2; Llama 2;
// Mistral's v1 and v3), each as its model published it beside the C++ that
// renders it as Jinja does.
#include "ChatParts.h"

#include <ctime>

namespace gai {
namespace {

using namespace chat;

std::string header(const std::string &role) {
  return "<|start_header_id|>" + role + "<|end_header_id|>\n\n";
}

// meta-llama/Meta-Llama-3-8B-Instruct
// clang-format off
const char *const kLlama3 =
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}"
    "{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}";
// clang-format on

StatusOr<std::string> renderLlama3(const std::vector<ChatMessage> &messages,
                                   const ChatTokens &tokens,
                                   const ChatRenderOptions &options) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (i == 0) {
      auto bos = required(tokens.bos, "bos_token");
      if (!bos)
        return bos.status();
      out += *bos;
    }
    out += header(messages[i].role) + strip(messages[i].content) + "<|eot_id|>";
  }
  if (options.addGenerationPrompt)
    out += header("assistant");
  return out;
}

// meta-llama/Llama-3.1-8B-Instruct
// clang-format off
const char *const kLlama31 = R"tmpl({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = "26 Jul 2024" %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message + builtin tools #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\n\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
                {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {#- This means we're in ipython mode #}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)tmpl";
// clang-format on

// meta-llama/Llama-3.2-1B-Instruct
// clang-format off
const char *const kLlama32 = R"tmpl({{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- if strftime_now is defined %}
        {%- set date_string = strftime_now("%d %b %Y") %}
    {%- else %}
        {%- set date_string = "26 Jul 2024" %}
    {%- endif %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}

{#- This block extracts the system message, so we can slot it into the right place. #}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}

{#- System message #}
{{- "<|start_header_id|>system<|end_header_id|>\n\n" }}
{%- if tools is not none %}
    {{- "Environment: ipython\n" }}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\n" }}
{{- "Today Date: " + date_string + "\n\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}

{#- Custom tools are passed in a user message with some extra guidance #}
{%- if tools_in_user_message and not tools is none %}
    {#- Extract the first user message so we can plug it in here #}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
{%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\n\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\n\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\n\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\n\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}

{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' -}}
        {{- '{"name": "' + tool_call.name + '", ' }}
        {{- '"parameters": ' }}
        {{- tool_call.arguments | tojson }}
        {{- "}" }}
        {{- "<|eot_id|>" }}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\n\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\n\n' }}
{%- endif %}
)tmpl";
// clang-format on

/// Llama 3.1 and 3.2: a system turn always, dated, with the system message
/// (trimmed) if the conversation starts with one.
std::string renderDatedLlama3(const std::vector<ChatMessage> &messages,
                              const ChatTokens &tokens,
                              const ChatRenderOptions &options,
                              const std::string &date) {
  std::string out = orEmpty(tokens.bos), system;
  size_t first = 0;
  if (messages[0].role == "system")
    system = strip(messages[0].content), first = 1;
  out += header("system") + "Cutting Knowledge Date: December 2023\n" +
         "Today Date: " + date + "\n\n" + system + "<|eot_id|>";
  for (size_t i = first; i < messages.size(); ++i)
    out += header(messages[i].role) + strip(messages[i].content) + "<|eot_id|>";
  if (options.addGenerationPrompt)
    out += header("assistant");
  return out;
}

StatusOr<std::string> renderLlama31(const std::vector<ChatMessage> &messages,
                                    const ChatTokens &tokens,
                                    const ChatRenderOptions &options) {
  return renderDatedLlama3(messages, tokens, options, "26 Jul 2024");
}

/// strftime in the C locale (Python's, which transformers' strftime_now
/// uses) at the local time.
std::string localStrftime(const std::string &format) {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char text[128];
  size_t n = std::strftime(text, sizeof text, format.c_str(), &local);
  return std::string(text, n);
}

StatusOr<std::string> renderLlama32(const std::vector<ChatMessage> &messages,
                                    const ChatTokens &tokens,
                                    const ChatRenderOptions &options) {
  const char *format = "%d %b %Y";
  return renderDatedLlama3(messages, tokens, options,
                           options.strftimeNow ? options.strftimeNow(format)
                                               : localStrftime(format));
}

/// A leading system message, which the [INST] templates move into a turn.
std::optional<std::string> systemOf(const std::vector<ChatMessage> &messages) {
  if (messages[0].role == "system")
    return messages[0].content;
  return std::nullopt;
}

/// The [INST] templates' check: after the system message, user first and
/// roles alternating.
bool outOfTurn(const ChatMessage &message, size_t index) {
  return (message.role == "user") != (index % 2 == 0);
}

// meta-llama/Llama-2-7b-chat-hf
// clang-format off
const char *const kLlama2 =
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}"
    "{% endif %}{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
    "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
    "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";
// clang-format on

StatusOr<std::string> renderLlama2(const std::vector<ChatMessage> &messages,
                                   const ChatTokens &tokens,
                                   const ChatRenderOptions &) {
  std::optional<std::string> system = systemOf(messages);
  size_t first = system ? 1 : 0;
  std::string out;
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage &m = messages[i];
    size_t k = i - first;
    if (outOfTurn(m, k))
      return raised("Conversation roles must alternate "
                    "user/assistant/user/assistant/...");
    std::string content =
        k == 0 && system ? "<<SYS>>\n" + *system + "\n<</SYS>>\n\n" + m.content
                         : m.content;
    if (m.role == "user") {
      auto bos = required(tokens.bos, "bos_token");
      if (!bos)
        return bos.status();
      out += *bos + "[INST] " + strip(content) + " [/INST]";
    } else if (m.role == "assistant") {
      auto eos = required(tokens.eos, "eos_token");
      if (!eos)
        return eos.status();
      out += " " + strip(content) + " " + *eos;
    }
  }
  return out;
}

const char *const kMistralRoles =
    "Only user and assistant roles are supported, with the "
    "exception of an initial optional system message!";
const char *const kMistralTurns =
    "After the optional system message, conversation roles "
    "must alternate user/assistant/user/assistant/...";

// mistralai/Mistral-7B-Instruct-v0.1 (Mistral's "v1")
// clang-format off
const char *const kMistralV1 = R"tmpl({%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content'] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}
        {{- raise_exception('After the optional system message, conversation roles must alternate user/assistant/user/assistant/...') }}
    {%- endif %}
    {%- if message['role'] == 'user' %}
        {%- if loop.first and system_message is defined %}
            {{- ' [INST] ' + system_message + '\n\n' + message['content'] + ' [/INST]' }}
        {%- else %}
            {{- ' [INST] ' + message['content'] + ' [/INST]' }}
        {%- endif %}
    {%- elif message['role'] == 'assistant' %}
        {{- ' ' + message['content'] + eos_token}}
    {%- else %}
        {{- raise_exception('Only user and assistant roles are supported, with the exception of an initial optional system message!') }}
    {%- endif %}
{%- endfor %}
)tmpl";
// clang-format on

/// The system message joins the first user turn.
StatusOr<std::string> renderMistralV1(const std::vector<ChatMessage> &messages,
                                      const ChatTokens &tokens,
                                      const ChatRenderOptions &) {
  std::optional<std::string> system = systemOf(messages);
  size_t first = system ? 1 : 0;
  std::string out = orEmpty(tokens.bos);
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage &m = messages[i];
    size_t k = i - first;
    if (outOfTurn(m, k))
      return raised(kMistralTurns);
    if (m.role == "user") {
      out += k == 0 && system
                 ? " [INST] " + *system + "\n\n" + m.content + " [/INST]"
                 : " [INST] " + m.content + " [/INST]";
    } else if (m.role == "assistant") {
      auto eos = required(tokens.eos, "eos_token");
      if (!eos)
        return eos.status();
      out += " " + m.content + *eos;
    } else {
      return raised(kMistralRoles);
    }
  }
  return out;
}

// mistralai/Mistral-7B-Instruct-v0.3 (Mistral's "v3")
// clang-format off
const char *const kMistralV3 = R"tmpl({%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}

{#- This block checks for alternating user/assistant messages, skipping tool calling messages #}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}

{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
            {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\n\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
)tmpl";
// clang-format on

/// The system message joins the last user turn, when the conversation ends
/// with one.
StatusOr<std::string> renderMistralV3(const std::vector<ChatMessage> &messages,
                                      const ChatTokens &tokens,
                                      const ChatRenderOptions &) {
  std::optional<std::string> system = systemOf(messages);
  size_t first = system ? 1 : 0;
  for (size_t i = first; i < messages.size(); ++i)
    if (outOfTurn(messages[i], i - first))
      return raised(kMistralTurns);
  std::string out = orEmpty(tokens.bos);
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage &m = messages[i];
    bool last = i + 1 == messages.size();
    if (m.role == "user") {
      out += last && system
                 ? "[INST] " + *system + "\n\n" + m.content + "[/INST]"
                 : "[INST] " + m.content + "[/INST]";
    } else if (m.role == "assistant") {
      auto eos = required(tokens.eos, "eos_token");
      if (!eos)
        return eos.status();
      out += " " + strip(m.content) + *eos;
    } else {
      return raised(kMistralRoles);
    }
  }
  return out;
}

} // namespace

void addLlamaChatTemplates(std::vector<KnownChatTemplate> &out) {
  out.push_back({"Llama 3", "Llama 3", "meta-llama/Meta-Llama-3-8B-Instruct",
                 "<|eot_id|>", renderLlama3, kLlama3});
  out.push_back({"Llama 3.1", "Llama 3", "meta-llama/Llama-3.1-8B-Instruct",
                 "<|eot_id|>", renderLlama31, kLlama31});
  out.push_back({"Llama 3.2", "Llama 3", "meta-llama/Llama-3.2-1B-Instruct",
                 "<|eot_id|>", renderLlama32, kLlama32});
  out.push_back({"Llama 2", "Llama 2", "meta-llama/Llama-2-7b-chat-hf", nullptr,
                 renderLlama2, kLlama2});
  out.push_back({"Mistral v1", "Mistral", "mistralai/Mistral-7B-Instruct-v0.1",
                 nullptr, renderMistralV1, kMistralV1});
  out.push_back({"Mistral v3", "Mistral", "mistralai/Mistral-7B-Instruct-v0.3",
                 nullptr, renderMistralV3, kMistralV3});
}

} // namespace gai

// gai-run eval: mean loss and perplexity of a model on text.
#ifndef GAI_TOOLS_GAI_RUN_EVAL_H
#define GAI_TOOLS_GAI_RUN_EVAL_H

namespace gai {

/// argv holds the arguments after "eval".
int evalCommand(int argc, char **argv);

} // namespace gai

#endif // GAI_TOOLS_GAI_RUN_EVAL_H

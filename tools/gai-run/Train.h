// gai-run train: trains a `gaic --mode=train` artifact on token data, with
// progress, JSONL metrics, checkpoints, evaluation, samples and a loss plot.
#ifndef GAI_TOOLS_GAI_RUN_TRAIN_H
#define GAI_TOOLS_GAI_RUN_TRAIN_H

namespace gai {
int trainCommand(int argc, char **argv);
} // namespace gai

#endif // GAI_TOOLS_GAI_RUN_TRAIN_H

// gai-run bench: prefill and decode throughput as JSON lines, with the
// fields of the PyTorch peers' benchmark (bench/peers.py).
#ifndef GAI_TOOLS_GAI_RUN_BENCH_H
#define GAI_TOOLS_GAI_RUN_BENCH_H

namespace gai {
int benchCommand(int argc, char **argv);
} // namespace gai

#endif // GAI_TOOLS_GAI_RUN_BENCH_H

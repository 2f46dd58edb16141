// gai-run launch: N local ranks of one command, supervised as one job.
#ifndef GAI_TOOLS_GAI_RUN_LAUNCH_H
#define GAI_TOOLS_GAI_RUN_LAUNCH_H

namespace gai {
int launchCommand(int argc, char **argv);
} // namespace gai

#endif // GAI_TOOLS_GAI_RUN_LAUNCH_H

// gai's version, as every tool's --version prints it and artifacts record it.
#ifndef GAI_VERSION_H
#define GAI_VERSION_H

#include <string>

namespace gai {

/// The project's version (CMake's PROJECT_VERSION), e.g. "0.1.0".
const char *versionString();

/// "gai 0.1.0 (artifact schema 7)": the version and the schema version of
/// the artifacts this build writes and reads.
std::string versionText();

} // namespace gai

#endif // GAI_VERSION_H

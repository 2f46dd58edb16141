// gai's version; GAI_VERSION_STRING comes from CMake for this file alone.
#include "gai/Version.h"
#include "gai/Artifact.h"

namespace gai {

const char *versionString() { return GAI_VERSION_STRING; }

std::string versionText() {
  return std::string("gai ") + GAI_VERSION_STRING + " (artifact schema " +
         std::to_string(kArtifactSchemaVersion) + ")";
}

} // namespace gai

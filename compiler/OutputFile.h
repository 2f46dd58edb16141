// Writes gaic's output so that a failure names the path and never leaves a
// half-written file or writes through a device.
#ifndef GAI_COMPILER_OUTPUTFILE_H
#define GAI_COMPILER_OUTPUTFILE_H

#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/raw_ostream.h"

namespace gai {

/// Writes what `write` prints to `path` ("-": stdout). A file goes to a
/// temporary beside it that is renamed over `path` when complete; `path`
/// must be absent or a regular file (a device, FIFO or directory is
/// refused). The error names the path and the reason.
llvm::Error writeOutputFile(llvm::StringRef path,
                            llvm::function_ref<void(llvm::raw_ostream &)> write);

} // namespace gai

#endif // GAI_COMPILER_OUTPUTFILE_H

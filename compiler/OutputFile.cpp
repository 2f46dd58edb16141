// Output through a temporary file and a rename.
#include "compiler/OutputFile.h"

#include "llvm/ADT/ScopeExit.h"
#include "llvm/ADT/SmallString.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Signals.h"

using namespace llvm;

namespace gai {

static Error failure(StringRef path, const Twine &reason) {
  return createStringError(inconvertibleErrorCode(),
                           ("cannot write " + path + ": " + reason).str());
}

static StringRef kindName(sys::fs::file_type type) {
  switch (type) {
  case sys::fs::file_type::directory_file:
    return "a directory";
  case sys::fs::file_type::character_file:
  case sys::fs::file_type::block_file:
    return "a device";
  case sys::fs::file_type::fifo_file:
    return "a FIFO";
  case sys::fs::file_type::socket_file:
    return "a socket";
  default:
    return "not a regular file";
  }
}

Error writeOutputFile(StringRef path, function_ref<void(raw_ostream &)> write) {
  if (path == "-") {
    write(outs());
    outs().flush();
    if (std::error_code ec = outs().error()) {
      outs().clear_error();
      return failure("stdout", ec.message());
    }
    return Error::success();
  }

  // A symlink is followed: its target is what gets replaced.
  SmallString<256> target(path);
  sys::fs::file_status status;
  if (std::error_code ec = sys::fs::status(path, status, /*Follow=*/true)) {
    if (ec != std::errc::no_such_file_or_directory)
      return failure(path, ec.message());
  } else {
    if (status.type() != sys::fs::file_type::regular_file)
      return failure(path, kindName(status.type()) +
                               Twine("; gaic replaces only regular files"));
    if (std::error_code ec = sys::fs::real_path(path, target))
      return failure(path, ec.message());
  }

  SmallString<256> model(sys::path::parent_path(target));
  if (model.empty())
    model = ".";
  sys::path::append(model, "." + sys::path::filename(target) + ".tmp-%%%%%%");
  int fd;
  SmallString<256> temp;
  if (std::error_code ec = sys::fs::createUniqueFile(model, fd, temp))
    return failure(path, "cannot create a temporary file in " +
                             sys::path::parent_path(model) + ": " + ec.message());
  sys::RemoveFileOnSignal(temp);
  bool renamed = false;
  scope_exit cleanup([&] {
    if (!renamed)
      sys::fs::remove(temp);
    sys::DontRemoveFileOnSignal(temp);
  });
  {
    raw_fd_ostream os(fd, /*shouldClose=*/true);
    write(os);
    os.close();
    if (std::error_code ec = os.error()) {
      os.clear_error(); // else the stream's destructor aborts
      return failure(path, ec.message());
    }
  }
  if (std::error_code ec = sys::fs::rename(temp, target))
    return failure(path, ec.message());
  renamed = true;
  return Error::success();
}

} // namespace gai

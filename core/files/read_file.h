// Reading a whole file that the configuration names: the config and its includes, Lua scripts,
// secret files, the local origin's deployment files.
//
// Only regular files are read. A device such as /dev/zero never ends, and opening a FIFO blocks
// until a writer comes, which would hang a config load (or a worker serving a request). The file
// is opened without blocking and checked with fstat, so a FIFO is refused, not waited on.
//
// Thread-safe; blocking disk reads (callers run at config load, or serve local files knowingly).
#pragma once

#include <cstddef>
#include <string>

namespace subgate::files {

// The largest file read: some files under /proc are regular and report terabytes (kcore).
constexpr size_t kMaxFileBytes = size_t{1} << 30;

// Replaces `text` with the file's bytes. On failure returns false, leaves `text` unspecified and
// sets `error` to "PATH: cannot open: REASON", "PATH: cannot read: REASON" (REASON is
// strerror's text: "No such file or directory", "Permission denied", ...), "PATH: not a
// regular file" or "PATH: larger than 1 GiB". `max_bytes` is the limit; the default is every
// caller's, a smaller one is for tests (the message then names it in bytes). The limit is
// checked against the reported size and again while reading, since a file under /proc reports
// 0 bytes and may hold any number.
bool readRegularFile(const std::string& path, std::string& text, std::string& error,
                     size_t max_bytes = kMaxFileBytes);

}  // namespace subgate::files

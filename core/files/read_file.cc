#include "core/files/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace subgate::files {

bool readRegularFile(const std::string& path, std::string& text, std::string& error,
                     size_t max_bytes) {
  // O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    error = path + ": cannot open: " + std::strerror(errno);
    return false;
  }
  auto refuse = [&](std::string_view why) {
    ::close(fd);
    error = path;
    error += why;
    return false;
  };
  auto too_large = [&] {
    return refuse(max_bytes == kMaxFileBytes
                      ? std::string(": larger than 1 GiB")
                      : ": larger than " + std::to_string(max_bytes) + " bytes");
  };
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return refuse(": not a regular file");
  if (static_cast<uint64_t>(st.st_size) > max_bytes) return too_large();
  text.clear();
  // The size is a hint (a file under /proc may report none), so the reads decide.
  text.reserve(static_cast<size_t>(st.st_size));
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n > 0) {
      if (text.size() + static_cast<size_t>(n) > max_bytes) return too_large();
      text.append(buffer, static_cast<size_t>(n));
    } else if (n == 0) {
      break;
    } else if (errno != EINTR) {
      return refuse(std::string(": cannot read: ") + std::strerror(errno));
    }
  }
  ::close(fd);
  return true;
}

}  // namespace subgate::files

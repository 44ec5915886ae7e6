#include "core/log/log_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>

#include "core/log/log.h"

namespace subgate {
namespace {

int openAppend(const std::string& path) {
  return ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
}

// Every owned LogFile, for reopenLogFiles(). Files are destroyed on whichever thread drops the
// last config, so the set has a lock.
std::mutex g_files_mutex;
std::set<LogFile*> g_files;

}  // namespace

std::shared_ptr<LogFile> LogFile::open(const std::string& path, std::string& err) {
  if (path == "stderr") return std::shared_ptr<LogFile>(new LogFile(path, STDERR_FILENO, false));
  const int fd = openAppend(path);
  if (fd < 0) {
    err = std::strerror(errno);
    return nullptr;
  }
  std::shared_ptr<LogFile> file(new LogFile(path, fd, true));
  std::lock_guard<std::mutex> lock(g_files_mutex);
  g_files.insert(file.get());
  return file;
}

LogFile::~LogFile() {
  if (!owned_) return;
  {
    std::lock_guard<std::mutex> lock(g_files_mutex);
    g_files.erase(this);
  }
  ::close(fd_);
}

bool LogFile::reopen(std::string& err) {
  if (!owned_) return true;
  return reopenOnto(path_, fd_, err);
}

int reopenLogFiles() {
  int failed = 0;
  std::string err;
  if (!reopenErrorLog(err)) {
    ++failed;
    LOG_ERROR("%s", err.c_str());
  }
  std::lock_guard<std::mutex> lock(g_files_mutex);
  for (LogFile* file : g_files) {
    if (!file->reopen(err)) {
      ++failed;
      LOG_ERROR("%s", err.c_str());
    }
  }
  return failed;
}

}  // namespace subgate

// Log files that SIGUSR1 reopens (logrotate's `postrotate kill -USR1` convention): the access
// logs, and through reopenLogFiles() the error log too.
//
// A LogFile is opened when a config loads (main thread), written by any thread with one
// write(2) per line on fd(), and closed when the last config using it goes (any thread).
// reopen() opens the path again and moves the new file onto the same descriptor number with
// dup2(2), which is atomic: a writer holding fd() writes whole lines to either the old file or
// the new one, never to a closed or reused descriptor, and no line is lost.
#pragma once

#include <memory>
#include <string>

namespace subgate {

class LogFile {
 public:
  // Opens `path` for appending ("stderr": the process's stderr, which is never reopened).
  // Null with `err` set to the reason (strerror) on failure.
  static std::shared_ptr<LogFile> open(const std::string& path, std::string& err);
  ~LogFile();
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  // Opens the path again onto fd(); false with `err` set (the old file stays in use then).
  bool reopen(std::string& err);

 private:
  LogFile(std::string path, int fd, bool owned) : path_(std::move(path)), fd_(fd), owned_(owned) {}
  std::string path_;
  int fd_;
  bool owned_;
};

// Reopens the error log and every open LogFile at their paths (main thread, on SIGUSR1).
// Failures are written to the error log; returns how many files failed.
int reopenLogFiles();

}  // namespace subgate

#include "core/lua/script.h"

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include "core/lua/vm_state.h"

namespace subgate::lua {
namespace {

std::atomic<uint64_t> next_script_id{1};

// Reads the whole file into `text`; false with `error` set ("path: reason") when it cannot.
bool readFile(const std::string& path, std::string& text, std::string& error) {
  FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) {
    error = path + ": " + std::strerror(errno);
    return false;
  }
  char buffer[16384];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  // fopen() succeeds on a directory; the read then fails with EISDIR.
  bool failed = std::ferror(file) != 0;
  int saved = errno;
  std::fclose(file);
  if (failed) {
    error = path + ": " + std::strerror(saved);
    return false;
  }
  return true;
}

}  // namespace

const char* hookName(Hook hook) {
  switch (hook) {
    case Hook::kIdentify: return "identify";
    case Hook::kRoute: return "route";
    case Hook::kAccess: return "access";
  }
  return "?";
}

Script::Script(std::string text, std::string name)
    : text_(std::move(text)),
      name_(std::move(name)),
      chunk_name_("@" + name_),
      id_(next_script_id.fetch_add(1, std::memory_order_relaxed)) {}

std::shared_ptr<const Script> Script::load(const std::string& path, std::string& error,
                                           const Limits& limits) {
  std::string text;
  if (!readFile(path, text, error)) return nullptr;
  return fromText(text, path, error, limits);
}

std::shared_ptr<const Script> Script::fromText(std::string_view text, const std::string& name,
                                               std::string& error, const Limits& limits) {
  std::shared_ptr<Script> script(new Script(std::string(text), name));
  try {
    // A throwaway VM: the probe's globals must not leak into any worker's VM.
    VmState vm;
    if (!vm.probe(*script, limits, script->hooks_, error)) return nullptr;
  } catch (const std::exception& e) {
    error = name + ": " + e.what();
    return nullptr;
  }
  return script;
}

}  // namespace subgate::lua

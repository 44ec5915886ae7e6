#include "core/lua/script.h"

#include <atomic>
#include <exception>

#include "core/files/read_file.h"
#include "core/lua/vm_state.h"

namespace subgate::lua {
namespace {

std::atomic<uint64_t> next_script_id{1};

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
  if (!files::readRegularFile(path, text, error)) return nullptr;
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

#include "core/pipeline/module.h"

#include <mutex>

#include "core/pipeline/config_model.h"

namespace subgate {

bool Module::activate(const RuntimeConfig&, std::string&) const { return true; }
void Module::deactivate(const RuntimeConfig&) const {}

const config::Node* Scope::find(std::string_view name) const {
  for (const config::Node* level : levels_) {
    if (!level) continue;
    if (const config::Node* found = level->child(name)) return found;
  }
  return nullptr;
}

std::vector<const config::Node*> Scope::findAll(std::string_view name) const {
  std::vector<const config::Node*> out;
  for (const config::Node* level : levels_) {
    if (!level) continue;
    for (const config::Node& child : level->children) {
      if (child.name == name) out.push_back(&child);
    }
    if (!out.empty()) break;
  }
  return out;
}

bool Module::compileMain(const config::Node&, CompileContext&) const { return true; }
std::shared_ptr<const ModuleConf> Module::compileLocation(const Scope&, CompileContext&) const {
  return nullptr;
}
HookResult Module::access(Request&, const ModuleConf&) const { return HookResult::kContinue; }
HookResult Module::route(Request&, const ModuleConf&) const { return HookResult::kContinue; }

void assignModuleIndexes() {
  // Once: a reload compiles on the main thread while workers read index().
  static std::once_flag once;
  std::call_once(once, [] {
    size_t index = 0;
    for (const Module* module : allModules()) module->index_ = index++;
  });
}
void Module::content(Request&, const ModuleConf&) const {}
void Module::filterReply(Request&, const ModuleConf&, LocalReply&) const {}
std::vector<std::pair<std::string, std::shared_ptr<const ModuleConf>>> Module::routeTargets(
    const Scope&, CompileContext&) const {
  return {};
}
void Module::filterHead(const Request&, const ModuleConf&, ResponseHeadEdit&) const {}
void Module::log(const Request&, const ModuleConf&) const {}

}  // namespace subgate

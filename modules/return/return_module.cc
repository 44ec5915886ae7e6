#include "modules/return/return_module.h"

#include <charconv>

#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"

namespace subgate {
namespace {

struct ReturnConf final : ModuleConf {
  int status = 200;
  std::string body;
  std::string location;  // redirects
};

constexpr DirectiveSpec kDirectives[] = {
    {"return", kServerContext | kLocationContext, 1, 2, false, false, true},
};

bool isRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

}  // namespace

std::span<const DirectiveSpec> ReturnModule::directives() const { return kDirectives; }

std::shared_ptr<const ModuleConf> ReturnModule::compileLocation(const Scope& scope,
                                                                CompileContext& ctx) const {
  const config::Node* node = scope.find("return");
  if (!node) return nullptr;
  auto conf = std::make_shared<ReturnConf>();
  const std::string& code = node->args[0];
  auto [ptr, ec] = std::from_chars(code.data(), code.data() + code.size(), conf->status);
  if (ec != std::errc() || ptr != code.data() + code.size() || conf->status < 100 ||
      conf->status > 999) {
    ctx.fail(*node, "invalid return code \"" + code + "\"");
    return nullptr;
  }
  if (node->args.size() > 1) {
    if (isRedirect(conf->status)) {
      conf->location = node->args[1];
    } else {
      conf->body = node->args[1];
    }
  }
  return conf;
}

void ReturnModule::content(Request& req, const ModuleConf& conf) const {
  const auto& ret = static_cast<const ReturnConf&>(conf);
  LocalReply reply;
  reply.status = ret.status;
  reply.body = ret.body;
  if (!ret.location.empty()) reply.headers.emplace_back("location", ret.location);
  req.respond(std::move(reply));
}

}  // namespace subgate

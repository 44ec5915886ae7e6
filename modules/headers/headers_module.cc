#include "modules/headers/headers_module.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "core/pipeline/config_model.h"
#include "core/pipeline/request.h"

namespace subgate {
namespace {

struct AddedHeader {
  std::string name;
  std::string value;
  bool always = false;
};

struct HeadersConf final : ModuleConf {
  std::vector<AddedHeader> add;
};

constexpr DirectiveSpec kDirectives[] = {
    {"add_header", kMainContext | kServerContext | kLocationContext, 2, 3, false, true},
};

// RFC 9110 §5.1 token characters.
bool isTokenChar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  for (char allowed : std::string_view("!#$%&'*+-.^_`|~"))
    if (c == static_cast<unsigned char>(allowed)) return true;
  return false;
}

// RFC 9110 §5.5: visible characters, spaces and tabs; no CR, LF or NUL (no header injection).
bool isFieldValue(std::string_view value) {
  for (unsigned char c : value)
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  return true;
}

// nginx's add_header statuses: the successful and redirect ones.
bool addsByDefault(int status) {
  switch (status) {
    case 200:
    case 201:
    case 204:
    case 206:
    case 301:
    case 302:
    case 303:
    case 304:
    case 307:
    case 308: return true;
    default: return false;
  }
}

}  // namespace

std::span<const DirectiveSpec> HeadersModule::directives() const { return kDirectives; }

std::shared_ptr<const ModuleConf> HeadersModule::compileLocation(const Scope& scope,
                                                                 CompileContext& ctx) const {
  std::vector<const config::Node*> nodes = scope.findAll("add_header");
  if (nodes.empty()) return nullptr;
  auto conf = std::make_shared<HeadersConf>();
  for (const config::Node* node : nodes) {
    AddedHeader header{node->args[0], node->args[1]};
    if (header.name.empty() || !std::all_of(header.name.begin(), header.name.end(), [](char c) {
          return isTokenChar(static_cast<unsigned char>(c));
        })) {
      ctx.fail(*node, "invalid header name \"" + header.name + "\" in \"add_header\" directive");
      return nullptr;
    }
    if (http1::isHopByHopHeader(header.name)) {
      ctx.fail(*node, "\"add_header\" cannot set \"" + header.name +
                          "\": framing and hop-by-hop headers are subgate's");
      return nullptr;
    }
    if (!isFieldValue(header.value)) {
      ctx.fail(*node, "invalid value for header \"" + header.name +
                          "\" in \"add_header\" directive (control characters)");
      return nullptr;
    }
    if (node->args.size() == 3) {
      if (node->args[2] != "always") {
        ctx.fail(*node, "invalid parameter \"" + node->args[2] +
                            "\" in \"add_header\" directive (only \"always\")");
        return nullptr;
      }
      header.always = true;
    }
    if (!header.value.empty()) conf->add.push_back(std::move(header));
  }
  if (conf->add.empty()) return nullptr;
  return conf;
}

void HeadersModule::filterHead(const Request&, const ModuleConf& conf,
                               ResponseHeadEdit& edit) const {
  const bool by_default = addsByDefault(edit.status());
  for (const AddedHeader& header : static_cast<const HeadersConf&>(conf).add)
    if (header.always || by_default) edit.add(header.name, header.value);
}

}  // namespace subgate

#include "modules/error_header/error_header_module.h"

#include "core/pipeline/request.h"

namespace subgate {

std::shared_ptr<const ModuleConf> ErrorHeaderModule::compileLocation(const Scope&,
                                                                     CompileContext&) const {
  static const auto kConf = std::make_shared<const ModuleConf>();
  return kConf;
}

void ErrorHeaderModule::filterReply(Request&, const ModuleConf&, LocalReply& reply) const {
  if (!reply.error) return;
  const ErrorInfo& info = errorInfo(*reply.error);
  reply.status = info.status;
  reply.headers.emplace_back("x-deno-error", errorHeaderValue(*reply.error, reply.error_message));
  reply.content_type = "text/plain; charset=utf-8";
  reply.body.clear();
  reply.body += std::to_string(info.status);
  reply.body += ' ';
  reply.body += reasonPhrase(info.status);
  reply.body += ": ";
  reply.body += reply.error_message;
  reply.body += " (";
  reply.body += info.code;
  reply.body += ")\n";
}

}  // namespace subgate

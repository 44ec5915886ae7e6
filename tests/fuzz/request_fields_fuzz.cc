// libFuzzer target: the small parsers of what a client or a tenant sends, each with the property
// its callers rely on:
//   - CDN-Loop (core/ingress/cdn_loop.h): the value subgate passes on parses back to at least its
//     hop count, whatever entries come before it, and from one field to the same value;
//   - the Host syntax of x-forwarded-host (core/ingress/host_syntax.h): a valid value has no
//     byte a header or a log line could be split on, no path and no user part (RFC 3986 allows
//     sub-delims such as ',' in a reg-name);
//   - the instance id of instance targeting (core/ingress/instance_id.h): at most 256 bytes;
//   - traceparent and x-request-id (core/pipeline/request_trace.h): a parsed traceparent's
//     child parses, with the same trace id and flags;
//   - an isolate's failure text as a client may read it (core/isolates/client_message.h): short,
//     printable, and without the runtime folder;
//   - x-deno-timeout-ms (modules/timeout/timeout_header.h): a value is accepted only when it is
//     1 to 10 digits, and then it is that decimal number, never 0.
// Input: up to four fields separated by '\n'; every parser sees each field.
#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/ingress/cdn_loop.h"
#include "core/ingress/host_syntax.h"
#include "core/ingress/instance_id.h"
#include "core/isolates/client_message.h"
#include "core/pipeline/request_trace.h"
#include "modules/timeout/timeout_header.h"

namespace {

void checkCdnLoop(const std::vector<std::string_view>& fields) {
  const subgate::CdnLoop loop = subgate::parseCdnLoop(fields);
  const uint32_t hops = loop.hops == UINT32_MAX ? loop.hops : loop.hops + 1;
  const std::string passed_on = subgate::cdnLoopValue(loop, hops);
  const std::string_view again_fields[] = {passed_on};
  const subgate::CdnLoop again = subgate::parseCdnLoop(again_fields);
  // subgate's entry comes last and has no quote, so no entry before it can hide it: the count
  // never drops (a loop limit holds).
  if (again.hops < hops) abort();
  // Entries of several fields, joined: a quote left open in one may pair with one in the next,
  // which moves splits, so the count may rise (the sender's own request is refused sooner). One
  // field's entries come back as they were.
  if (fields.size() == 1 && (again.hops != hops || again.others != loop.others)) abort();
}

void checkHost(std::string_view field) {
  if (!subgate::isValidHostHeader(field)) return;
  for (char c : field)
    if (c == '\r' || c == '\n' || c == '\0' || c == ' ' || c == '/' || c == '@') abort();
}

void checkTrace(std::string_view field) {
  subgate::TraceParent parent;
  if (subgate::parseTraceParent(field, parent)) {
    std::string child;
    subgate::childTraceParent(parent, child);
    subgate::TraceParent next;
    if (!subgate::parseTraceParent(child, next) || next.trace_id != parent.trace_id ||
        next.flags != parent.flags)
      abort();
  }
  if (subgate::isValidRequestId(field) && (field.empty() || field.size() > 128)) abort();
}

void checkTimeout(std::string_view field) {
  const auto timeout = subgate::parseTimeoutHeader(field);
  const bool digits =
      !field.empty() && field.size() <= 10 &&
      std::all_of(field.begin(), field.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (!digits) {
    if (timeout) abort();
    return;
  }
  // strtoull as the reference: ten digits fit in 64 bits.
  const unsigned long long expected = std::strtoull(std::string(field).c_str(), nullptr, 10);
  if (expected == 0 ? timeout.has_value()
                    : !timeout || static_cast<unsigned long long>(timeout->count()) != expected)
    abort();
}

void checkClientMessage(std::string_view detail, std::string_view runtime_dir) {
  const std::string message = subgate::clientMessage(detail, runtime_dir);
  if (message.size() > subgate::kMaxClientMessage) abort();
  for (char c : message)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) abort();
  // A runtime folder is an absolute path made by mkdtemp under a configured folder; a long
  // enough one must not be left in the text.
  const bool path_like = std::all_of(runtime_dir.begin(), runtime_dir.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '-' || c == '_' ||
           c == '.';
  });
  if (path_like && runtime_dir.size() >= 4 && runtime_dir[0] == '/' &&
      message.find(runtime_dir) != std::string::npos)
    abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> fields;
  while (fields.size() < 4) {
    const size_t end = rest.find('\n');
    fields.push_back(rest.substr(0, end));
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  checkCdnLoop(fields);
  for (std::string_view field : fields) {
    checkHost(field);
    checkTrace(field);
    checkTimeout(field);
    if (auto id = subgate::requestInstanceId(field, field);
        id && id->size() > subgate::kMaxInstanceId)
      abort();
  }
  checkClientMessage(fields[0], fields.size() > 1 ? fields[1] : std::string_view());
  return 0;
}

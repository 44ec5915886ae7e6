#include "core/isolates/client_message.h"

#include <algorithm>

namespace subgate {
namespace {

// Length of "iso-N/root" at the start of `text` when a '/' follows, or 0.
size_t isolateCodeFolder(std::string_view text) {
  constexpr std::string_view kIso = "iso-";
  constexpr std::string_view kCode = "/root/";
  if (!text.starts_with(kIso)) return 0;
  size_t digits = kIso.size();
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == kIso.size() || !text.substr(digits).starts_with(kCode)) return 0;
  return digits + kCode.size() - 1;  // the '/' that starts the module's path stays
}

// `detail` with the runtime folder's mentions replaced (see clientMessage).
std::string withoutHostPaths(std::string_view detail, std::string_view runtime_dir) {
  if (runtime_dir.empty()) return std::string(detail);
  constexpr std::string_view kFileScheme = "file://";
  std::string out;
  size_t at = 0;
  for (size_t hit; (hit = detail.find(runtime_dir, at)) != std::string_view::npos;) {
    size_t end = hit + runtime_dir.size();
    const size_t folder =
        end < detail.size() && detail[end] == '/' ? isolateCodeFolder(detail.substr(end + 1)) : 0;
    size_t start = hit;
    // An isolate's root folder gives way to the module's own path, "file://" kept; any other
    // mention of the folder, with its scheme, becomes "<runtime>".
    if (folder == 0 && start >= at + kFileScheme.size() &&
        detail.substr(start - kFileScheme.size(), kFileScheme.size()) == kFileScheme)
      start -= kFileScheme.size();
    out.append(detail.substr(at, start - at));
    if (folder > 0) {
      end += 1 + folder;  // the module's path (its specifier's) follows
    } else {
      out += "<runtime>";
    }
    at = end;
  }
  out.append(detail.substr(at));
  return out;
}

}  // namespace

std::string clientMessage(std::string_view detail, std::string_view runtime_dir) {
  std::string text = withoutHostPaths(detail, runtime_dir);
  std::string out;
  out.reserve(std::min(text.size(), kMaxClientMessage));
  for (char c : text) {
    if (out.size() == kMaxClientMessage) {
      out.replace(kMaxClientMessage - 3, 3, "...");
      break;
    }
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\t' || c == '\r' || c == '\n') {
      out += ' ';
    } else {
      out += byte >= 0x20 && byte < 0x7f ? c : '?';
    }
  }
  return out;
}

}  // namespace subgate

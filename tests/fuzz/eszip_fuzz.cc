// libFuzzer target: ESZIP files, the untrusted bundle an origin may serve (core/bundle/eszip.h).
// Each input must either fail with a reason, or parse into an Eszip that the writer writes and
// the parser reads back unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/bundle/eszip.h"
#include "core/bundle/eszip_writer.h"

namespace {

using namespace subgate::bundle;

bool same(const Eszip& a, const Eszip& b) {
  if (a.modules.size() != b.modules.size() || a.redirects.size() != b.redirects.size() ||
      a.npm_packages.size() != b.npm_packages.size() || a.npm_roots.size() != b.npm_roots.size())
    return false;
  for (size_t i = 0; i < a.modules.size(); ++i) {
    const auto &x = a.modules[i], &y = b.modules[i];
    if (x.specifier != y.specifier || x.kind != y.kind || x.source != y.source ||
        x.source_map != y.source_map)
      return false;
  }
  for (size_t i = 0; i < a.redirects.size(); ++i) {
    if (a.redirects[i].specifier != b.redirects[i].specifier ||
        a.redirects[i].target != b.redirects[i].target)
      return false;
  }
  for (size_t i = 0; i < a.npm_packages.size(); ++i) {
    if (a.npm_packages[i].id != b.npm_packages[i].id ||
        a.npm_packages[i].dependencies != b.npm_packages[i].dependencies)
      return false;
  }
  for (size_t i = 0; i < a.npm_roots.size(); ++i) {
    if (a.npm_roots[i].request != b.npm_roots[i].request ||
        a.npm_roots[i].package != b.npm_roots[i].package)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  EszipLimits limits;
  limits.max_total_bytes = 1 << 20;
  limits.max_entries = 2000;
  limits.allow_npm = true;  // the npm section is untrusted input too
  std::string error;
  auto eszip = parseEszip(bytes, limits, error);
  if (!eszip) {
    if (error.empty()) abort();
    for (char c : error) {
      if (c < 0x20 || c >= 0x7f) abort();  // errors are printable ASCII
    }
    return 0;
  }
  if (eszip->find("") != nullptr) abort();  // empty specifiers are refused
  // Every redirect ends at a module (a few checked: find() is linear per hop).
  for (size_t i = 0; i < eszip->redirects.size() && i < 8; ++i) {
    if (eszip->find(eszip->redirects[i].specifier) == nullptr) abort();
  }
  // Rewritten in the same version and checksum, the file must read back the same.
  EszipWriteOptions options{eszip->version, eszip->checksum};
  const std::string written = writeEszip(*eszip, options);
  if (written.empty()) abort();
  limits.max_total_bytes = SIZE_MAX;
  std::string again_error;
  auto again = parseEszip(written, limits, again_error);
  if (!again || !same(*eszip, *again) || again->version != eszip->version ||
      again->checksum != eszip->checksum)
    abort();
  return 0;
}

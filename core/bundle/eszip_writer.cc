#include "core/bundle/eszip_writer.h"

#include <cstdint>
#include <limits>

#include "core/bundle/eszip_internal.h"

namespace subgate::bundle {
namespace {

using internal::appendU32;

constexpr uint64_t kMaxU32 = std::numeric_limits<uint32_t>::max();

class Writer {
 public:
  explicit Writer(EszipChecksum checksum) : checksum_(checksum) {}

  bool ok() const { return ok_; }

  // Appends the digest of `bytes` (nothing without a checksum).
  void digest(std::string& out, std::string_view bytes) {
    if (checksum_ == EszipChecksum::kNone) return;
    const std::string digest = internal::digestOf(checksum_, bytes);
    if (digest.empty()) ok_ = false;  // OpenSSL failed
    out.append(digest);
  }

  void u32(std::string& out, uint64_t value) {
    if (value > kMaxU32) ok_ = false;
    appendU32(out, static_cast<uint32_t>(value));
  }

  void string(std::string& out, std::string_view text) {
    u32(out, text.size());
    out.append(text);
  }

  // A u32 length, `content`, its digest: the options, header and npm sections.
  void section(std::string& out, std::string_view content) {
    u32(out, content.size());
    out.append(content);
    digest(out, content);
  }

  // Adds `bytes` with its digest to a sources or source maps section and writes its offset and
  // length into the header; an empty piece is (0, 0) and takes no room, as the format wants.
  void piece(std::string& header, std::string& data, std::string_view bytes) {
    if (bytes.empty()) {
      u32(header, 0);
      u32(header, 0);
      return;
    }
    u32(header, data.size());
    u32(header, bytes.size());
    data.append(bytes);
    digest(data, bytes);
  }

 private:
  EszipChecksum checksum_;
  bool ok_ = true;
};

}  // namespace

std::string writeEszip(const Eszip& eszip, const EszipWriteOptions& options) {
  const bool has_options = options.version >= EszipVersion::kV2Dot2;
  const bool has_npm_section = options.version != EszipVersion::kV2;
  const EszipChecksum checksum = has_options ? options.checksum : EszipChecksum::kSha256;
  if (!has_npm_section && eszip.hasNpm()) return "";
  Writer w(checksum);

  std::string out(internal::kMagics[static_cast<size_t>(options.version)]);
  if (has_options) {
    const std::string pairs = {static_cast<char>(internal::kOptionChecksum),
                               static_cast<char>(checksum),
                               static_cast<char>(internal::kOptionChecksumSize),
                               static_cast<char>(internal::digestSize(checksum))};
    w.section(out, pairs);
  }

  std::string header, sources, maps;
  for (const auto& module : eszip.modules) {
    w.string(header, module.specifier);
    header.push_back(static_cast<char>(internal::EntryKind::kModule));
    w.piece(header, sources, module.source);
    w.piece(header, maps, module.source_map);
    header.push_back(static_cast<char>(module.kind));
  }
  for (const auto& redirect : eszip.redirects) {
    w.string(header, redirect.specifier);
    header.push_back(static_cast<char>(internal::EntryKind::kRedirect));
    w.string(header, redirect.target);
  }
  for (const auto& root : eszip.npm_roots) {
    w.string(header, root.request);
    header.push_back(static_cast<char>(internal::EntryKind::kNpmRoot));
    w.u32(header, root.package);
  }
  w.section(out, header);

  if (has_npm_section) {
    std::string npm;
    for (const auto& package : eszip.npm_packages) {
      w.string(npm, package.id);
      w.u32(npm, package.dependencies.size());
      for (const auto& [name, index] : package.dependencies) {
        w.string(npm, name);
        w.u32(npm, index);
      }
    }
    w.section(out, npm);
  }

  // Sources and source maps carry their digests inside the section: the length covers both and
  // no digest of the whole section follows.
  w.u32(out, sources.size());
  out.append(sources);
  w.u32(out, maps.size());
  out.append(maps);
  return w.ok() ? out : std::string();
}

}  // namespace subgate::bundle

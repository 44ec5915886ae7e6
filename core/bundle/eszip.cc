#include "core/bundle/eszip.h"

#include <algorithm>
#include <unordered_map>
#include <unordered_set>

#include "core/bundle/eszip_internal.h"

namespace subgate::bundle {
namespace {

using internal::EntryKind;

// Bytes of the file quoted in an error: printable ASCII only, bounded.
std::string quoted(std::string_view text, size_t max = 80) {
  std::string out = "\"";
  for (char c : text.substr(0, max)) out += (c >= 0x20 && c < 0x7f && c != '"') ? c : '?';
  if (text.size() > max) out += "...";
  return out + "\"";
}

// Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF): the reference
// reader keeps specifiers as Rust Strings, so it refuses what this refuses.
bool isUtf8(std::string_view text) {
  size_t i = 0;
  while (i < text.size()) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t extra;
    uint32_t min, code;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      extra = 1, min = 0x80, code = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2, min = 0x800, code = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3, min = 0x10000, code = c & 0x07;
    } else {
      return false;
    }
    if (text.size() - i <= extra) return false;
    for (size_t k = 1; k <= extra; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xc0) != 0x80) return false;
      code = (code << 6) | (next & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return false;
    i += extra + 1;
  }
  return true;
}

// A cursor over one byte range. Every read checks the bytes left first, so a length field can
// never make it read past the end; `base` is the range's offset in the file, for errors.
class Cursor {
 public:
  Cursor(std::string_view bytes, size_t base) : bytes_(bytes), base_(base) {}

  size_t offset() const { return base_ + pos_; }
  size_t left() const { return bytes_.size() - pos_; }
  bool done() const { return pos_ == bytes_.size(); }

  bool take(size_t n, std::string_view& out, const char* what, std::string& error) {
    if (n > left()) {
      error = std::string("truncated ") + what + " at byte " + std::to_string(offset()) + ": " +
              std::to_string(n) + " bytes needed, " + std::to_string(left()) + " left";
      return false;
    }
    out = bytes_.substr(pos_, n);
    pos_ += n;
    return true;
  }

  bool u8(uint8_t& out, const char* what, std::string& error) {
    std::string_view b;
    if (!take(1, b, what, error)) return false;
    out = static_cast<uint8_t>(b[0]);
    return true;
  }

  bool u32(uint32_t& out, const char* what, std::string& error) {
    std::string_view b;
    if (!take(4, b, what, error)) return false;
    out = 0;
    for (char c : b) out = (out << 8) | static_cast<unsigned char>(c);
    return true;
  }

  // A u32 length and that many bytes of UTF-8.
  bool string(std::string_view& out, size_t max, const char* what, std::string& error) {
    const size_t at = offset();
    uint32_t length;
    if (!u32(length, what, error)) return false;
    if (length > max) {
      error = std::string(what) + " at byte " + std::to_string(at) + " is " +
              std::to_string(length) + " bytes, over the limit of " + std::to_string(max);
      return false;
    }
    if (!take(length, out, what, error)) return false;
    if (!isUtf8(out)) {
      error = std::string(what) + " at byte " + std::to_string(at) + " is not UTF-8";
      return false;
    }
    return true;
  }

 private:
  std::string_view bytes_;
  size_t base_;
  size_t pos_ = 0;
};

struct ModuleEntry {
  size_t module;  // index in Eszip::modules
  uint32_t source_offset, source_length, map_offset, map_length;
};

class Parser {
 public:
  Parser(std::string_view bytes, const EszipLimits& limits, std::string& error)
      : file_(bytes, 0), bytes_(bytes), limits_(limits), error_(error) {}

  std::optional<Eszip> run() {
    if (bytes_.size() > limits_.max_total_bytes)
      return fail("the file is " + std::to_string(bytes_.size()) + " bytes, over the limit of " +
                  std::to_string(limits_.max_total_bytes));
    if (!readMagic() || !readOptions() || !readHeader() || !readNpm() ||
        !readData(false, "sources") || !readData(true, "source maps") || !checkRedirects())
      return std::nullopt;
    if (!file_.done())
      return fail(std::to_string(file_.left()) + " bytes after the source maps section at byte " +
                  std::to_string(file_.offset()) + " (concatenated ESZIPs are not supported)");
    return std::move(eszip_);
  }

 private:
  std::nullopt_t fail(std::string message) {
    error_ = std::move(message);
    return std::nullopt;
  }
  bool failed(std::string message) {
    error_ = std::move(message);
    return false;
  }

  bool readMagic() {
    std::string_view magic;
    if (bytes_.size() < internal::kMagicBytes)
      return failed("not an ESZIP: " + std::to_string(bytes_.size()) + " bytes, no magic");
    file_.take(internal::kMagicBytes, magic, "magic", error_);
    for (size_t v = 0; v < internal::kMagics.size(); ++v) {
      if (magic == internal::kMagics[v]) {
        eszip_.version = static_cast<EszipVersion>(v);
        return true;
      }
    }
    return failed("not an ESZIP v2: the magic is " + quoted(magic));
  }

  // Sets the checksum and digest size. 2 and 2.1 have no options section and always use SHA-256.
  bool readOptions() {
    if (eszip_.version < EszipVersion::kV2Dot2) {
      eszip_.checksum = EszipChecksum::kSha256;
      digest_size_ = internal::kSha256Bytes;
      return true;
    }
    const size_t at = file_.offset();
    uint32_t length;
    std::string_view options;
    if (!file_.u32(length, "options length", error_) ||
        !file_.take(length, options, "options", error_))
      return false;
    if (length % 2 != 0)
      return failed("options at byte " + std::to_string(at) + " are " + std::to_string(length) +
                    " bytes, not (option, value) byte pairs");
    auto checksum = static_cast<uint8_t>(EszipChecksum::kNone);
    int size = -1;  // -1: not given
    for (size_t i = 0; i < options.size(); i += 2) {
      const auto option = static_cast<uint8_t>(options[i]);
      const auto value = static_cast<uint8_t>(options[i + 1]);
      // Later pairs win and unknown options are ignored, as in the reference reader: new
      // options must not break old readers.
      if (option == internal::kOptionChecksum) checksum = value;
      if (option == internal::kOptionChecksumSize) size = value;
    }
    if (checksum > static_cast<uint8_t>(EszipChecksum::kXxHash3))
      return failed("unknown checksum kind " + std::to_string(checksum) + " in the options");
    eszip_.checksum = static_cast<EszipChecksum>(checksum);
    digest_size_ = internal::digestSize(eszip_.checksum);
    if (size >= 0 && static_cast<size_t>(size) != digest_size_)
      return failed("checksum size " + std::to_string(size) + " does not match the " +
                    std::to_string(digest_size_) + "-byte digest of checksum kind " +
                    std::to_string(checksum));
    return readDigest(options, "options");
  }

  // Checks `digest` against the checksum of `content`; `what` says where, for the error.
  bool checkDigest(std::string_view content, std::string_view digest, const std::string& what) {
    if (eszip_.checksum == EszipChecksum::kNone) return true;
    const std::string actual = internal::digestOf(eszip_.checksum, content);
    if (actual.empty()) return failed("SHA-256 failed (OpenSSL)");
    if (digest == actual) return true;
    return failed(std::string("bad ") +
                  (eszip_.checksum == EszipChecksum::kSha256 ? "SHA-256" : "xxHash3") +
                  " checksum of " + what);
  }

  // Reads the digest that follows `content` in the file and checks it.
  bool readDigest(std::string_view content, const std::string& what) {
    const size_t at = file_.offset();
    std::string_view digest;
    if (!file_.take(digest_size_, digest, "digest", error_)) return false;
    return checkDigest(content, digest, what + " (digest at byte " + std::to_string(at) + ")");
  }

  // A u32 length, that many bytes, their digest: the header and npm sections.
  bool readSection(const char* what, Cursor& out) {
    uint32_t length;
    std::string_view content;
    if (!file_.u32(length, what, error_)) return false;
    const size_t start = file_.offset();
    if (!file_.take(length, content, what, error_) || !readDigest(content, what)) return false;
    out = Cursor(content, start);
    return true;
  }

  bool countEntry(size_t at) {
    if (++entries_ <= limits_.max_entries) return true;
    return failed("more than " + std::to_string(limits_.max_entries) +
                  " entries (modules, redirects, npm specifiers and packages) at byte " +
                  std::to_string(at));
  }

  bool readHeader() {
    Cursor header({}, 0);
    if (!readSection("modules header", header)) return false;
    while (!header.done()) {
      const size_t at = header.offset();
      std::string_view specifier;
      uint8_t kind;
      if (!countEntry(at) ||
          !header.string(specifier, limits_.max_specifier_bytes, "specifier", error_) ||
          !header.u8(kind, "entry kind", error_))
        return false;
      if (specifier.empty()) return failed("empty specifier at byte " + std::to_string(at));
      if (kind == static_cast<uint8_t>(EntryKind::kNpmRoot) &&
          eszip_.version != EszipVersion::kV2) {
        if (!readNpmRoot(header, specifier, at)) return false;
        continue;
      }
      const bool redirect = kind == static_cast<uint8_t>(EntryKind::kRedirect);
      const Name name{redirect, redirect ? eszip_.redirects.size() : eszip_.modules.size()};
      if (!names_.emplace(specifier, name).second)
        return failed("duplicate specifier " + quoted(specifier) + " at byte " +
                      std::to_string(at));
      if (kind == static_cast<uint8_t>(EntryKind::kModule)) {
        if (!readModule(header, specifier)) return false;
      } else if (kind == static_cast<uint8_t>(EntryKind::kRedirect)) {
        std::string_view target;
        if (!header.string(target, limits_.max_specifier_bytes, "redirect target", error_))
          return false;
        eszip_.redirects.push_back({std::string(specifier), std::string(target)});
      } else {
        return failed("unknown entry kind " + std::to_string(kind) + " for " + quoted(specifier) +
                      " at byte " + std::to_string(at));
      }
    }
    return true;
  }

  bool readModule(Cursor& header, std::string_view specifier) {
    ModuleEntry entry{eszip_.modules.size(), 0, 0, 0, 0};
    uint8_t kind;
    if (!header.u32(entry.source_offset, "source offset", error_) ||
        !header.u32(entry.source_length, "source length", error_) ||
        !header.u32(entry.map_offset, "source map offset", error_) ||
        !header.u32(entry.map_length, "source map length", error_) ||
        !header.u8(kind, "module kind", error_))
      return false;
    if (kind > static_cast<uint8_t>(EszipModuleKind::kWasm))
      return failed("unknown module kind " + std::to_string(kind) + " of " + quoted(specifier));
    for (uint32_t length : {entry.source_length, entry.map_length}) {
      if (length > limits_.max_module_bytes)
        return failed("module " + quoted(specifier) + " has " + std::to_string(length) +
                      " bytes of source or source map, over the limit of " +
                      std::to_string(limits_.max_module_bytes));
    }
    eszip_.modules.push_back({std::string(specifier), static_cast<EszipModuleKind>(kind), {}, {}});
    entries_info_.push_back(entry);
    return true;
  }

  bool readNpmRoot(Cursor& header, std::string_view request, size_t at) {
    uint32_t package;
    if (!header.u32(package, "npm package index", error_)) return false;
    if (!limits_.allow_npm)
      return failed("npm packages are not supported: npm specifier " + quoted(request) +
                    " at byte " + std::to_string(at));
    if (!npm_names_.insert(request).second)
      return failed("duplicate npm specifier " + quoted(request) + " at byte " +
                    std::to_string(at));
    eszip_.npm_roots.push_back({std::string(request), package});
    return true;
  }

  bool readNpm() {
    if (eszip_.version == EszipVersion::kV2) return true;
    Cursor npm({}, 0);
    if (!readSection("npm snapshot", npm)) return false;
    // @deno/eszip writes an empty snapshot section into every 2.1+ file.
    if (npm.done()) return checkNpmIndices();
    if (!limits_.allow_npm)
      return failed("npm packages are not supported: the file carries an npm snapshot of " +
                    std::to_string(npm.left()) + " bytes");
    while (!npm.done()) {
      const size_t at = npm.offset();
      std::string_view id;
      uint32_t count;
      if (!countEntry(at) ||
          !npm.string(id, limits_.max_specifier_bytes, "npm package id", error_) ||
          !npm.u32(count, "npm dependency count", error_))
        return false;
      // Each dependency takes at least 8 bytes: a count beyond that is a lie, refused before
      // the loop rather than discovered after many small allocations.
      if (count > npm.left() / 8)
        return failed("npm package " + quoted(id) + " claims " + std::to_string(count) +
                      " dependencies in " + std::to_string(npm.left()) + " bytes");
      EszipNpmPackage package{std::string(id), {}};
      for (uint32_t i = 0; i < count; ++i) {
        std::string_view name;
        uint32_t index;
        if (!npm.string(name, limits_.max_specifier_bytes, "npm dependency name", error_) ||
            !npm.u32(index, "npm dependency index", error_))
          return false;
        package.dependencies.emplace_back(std::string(name), index);
      }
      eszip_.npm_packages.push_back(std::move(package));
    }
    return checkNpmIndices();
  }

  bool checkNpmIndices() {
    const size_t count = eszip_.npm_packages.size();
    for (const auto& root : eszip_.npm_roots) {
      if (root.package >= count)
        return failed("npm specifier " + quoted(root.request) + " names package " +
                      std::to_string(root.package) + " of " + std::to_string(count));
    }
    for (const auto& package : eszip_.npm_packages) {
      for (const auto& [name, index] : package.dependencies) {
        if (index >= count)
          return failed("npm package " + quoted(package.id) + " dependency " + quoted(name) +
                        " names package " + std::to_string(index) + " of " + std::to_string(count));
      }
    }
    return true;
  }

  // The sources or source maps section: each module's bytes and digest must follow the
  // previous module's with no gap, overlap or sharing, and fill the section exactly. The
  // reference reader walks the section in that same order and fails on anything else.
  bool readData(bool maps, const char* what) {
    uint32_t length;
    std::string_view data;
    if (!file_.u32(length, what, error_)) return false;
    const size_t start = file_.offset();
    if (!file_.take(length, data, what, error_)) return false;

    std::vector<const ModuleEntry*> order;
    for (const auto& entry : entries_info_) {
      const uint32_t offset = maps ? entry.map_offset : entry.source_offset;
      const uint32_t size = maps ? entry.map_length : entry.source_length;
      if (offset != 0 || size != 0) order.push_back(&entry);
    }
    auto offset_of = [maps](const ModuleEntry* e) {
      return maps ? e->map_offset : e->source_offset;
    };
    std::stable_sort(order.begin(), order.end(), [&](const ModuleEntry* a, const ModuleEntry* b) {
      return offset_of(a) < offset_of(b);
    });

    uint64_t expected = 0;
    for (const ModuleEntry* entry : order) {
      EszipModule& module = eszip_.modules[entry->module];
      const uint64_t offset = offset_of(entry);
      const uint64_t size = maps ? entry->map_length : entry->source_length;
      const std::string where = std::string(maps ? "source map" : "source") + " of " +
                                quoted(module.specifier) + " at offset " + std::to_string(offset);
      if (offset != expected)
        return failed(where +
                      (offset < expected ? " overlaps the previous one"
                                         : " leaves a gap after byte " + std::to_string(expected)) +
                      " in the " + what + " section");
      if (offset + size + digest_size_ > data.size())
        return failed(where + " (" + std::to_string(size) + " bytes and digest) ends past the " +
                      what + " section of " + std::to_string(data.size()) + " bytes");
      const std::string_view content = data.substr(offset, size);
      const std::string_view digest = data.substr(offset + size, digest_size_);
      if (!checkDigest(content, digest,
                       "the " + where + " (section at byte " + std::to_string(start) + ")"))
        return false;
      (maps ? module.source_map : module.source) = std::string(content);
      expected = offset + size + digest_size_;
    }
    if (expected != data.size())
      return failed(std::string("the ") + what + " section has " +
                    std::to_string(data.size() - expected) +
                    " bytes that belong to no module, after byte " + std::to_string(expected));
    return true;
  }

  // Every redirect must end at a module. Each chain is walked once: a redirect already known to
  // end at a module ends the walk early, so the check is linear even for one long chain.
  bool checkRedirects() {
    enum class State : uint8_t { kUnknown, kWalking, kGood };
    std::vector<State> state(eszip_.redirects.size(), State::kUnknown);
    std::vector<size_t> path;
    for (size_t first = 0; first < eszip_.redirects.size(); ++first) {
      path.clear();
      size_t at = first;
      for (;;) {
        if (state[at] == State::kGood) break;
        if (state[at] == State::kWalking)
          return failed("redirect " + quoted(eszip_.redirects[first].specifier) +
                        " is part of a loop through " + quoted(eszip_.redirects[at].specifier));
        state[at] = State::kWalking;
        path.push_back(at);
        const std::string& target = eszip_.redirects[at].target;
        auto found = names_.find(target);
        if (found == names_.end())
          return failed("redirect " + quoted(eszip_.redirects[at].specifier) + " leads to " +
                        quoted(target) + ", which is not in the file");
        if (!found->second.redirect) break;
        at = found->second.index;
      }
      for (size_t walked : path) state[walked] = State::kGood;
    }
    return true;
  }

  Cursor file_;
  std::string_view bytes_;
  const EszipLimits& limits_;
  std::string& error_;
  Eszip eszip_;
  size_t digest_size_ = 0;
  size_t entries_ = 0;
  std::vector<ModuleEntry> entries_info_;
  // Specifiers of modules and redirects (one namespace, as in the reference reader) and of npm
  // roots; the views point into the input bytes, which outlive the parser.
  struct Name {
    bool redirect;
    size_t index;  // in Eszip::redirects or Eszip::modules
  };
  std::unordered_map<std::string_view, Name> names_;
  std::unordered_set<std::string_view> npm_names_;
};

}  // namespace

bool looksLikeEszip(std::string_view bytes) {
  const std::string_view magic = bytes.substr(0, internal::kMagicBytes);
  return std::find(internal::kMagics.begin(), internal::kMagics.end(), magic) !=
         internal::kMagics.end();
}

std::optional<Eszip> parseEszip(std::string_view bytes, const EszipLimits& limits,
                                std::string& error) {
  return Parser(bytes, limits, error).run();
}

const EszipModule* Eszip::find(std::string_view specifier) const {
  // A loop guard as in checkRedirects(): a hand-built Eszip may hold a cycle.
  for (size_t hops = 0; hops <= redirects.size(); ++hops) {
    for (const auto& module : modules) {
      if (module.specifier == specifier) return &module;
    }
    const EszipRedirect* next = nullptr;
    for (const auto& redirect : redirects) {
      if (redirect.specifier == specifier) next = &redirect;
    }
    if (next == nullptr) return nullptr;
    specifier = next->target;
  }
  return nullptr;
}

std::string_view eszipVersionName(EszipVersion version) {
  switch (version) {
    case EszipVersion::kV2: return "2";
    case EszipVersion::kV2Dot1: return "2.1";
    case EszipVersion::kV2Dot2: return "2.2";
    case EszipVersion::kV2Dot3: return "2.3";
  }
  return "?";
}

std::string_view eszipModuleKindName(EszipModuleKind kind) {
  switch (kind) {
    case EszipModuleKind::kJavaScript: return "javascript";
    case EszipModuleKind::kJson: return "json";
    case EszipModuleKind::kJsonc: return "jsonc";
    case EszipModuleKind::kOpaqueData: return "opaque";
    case EszipModuleKind::kWasm: return "wasm";
  }
  return "?";
}

}  // namespace subgate::bundle

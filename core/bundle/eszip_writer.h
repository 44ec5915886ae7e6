// Writes an Eszip (eszip.h) as an ESZIP v2 file: what subgate's built-in origin serves for a
// folder of modules (issue 18). @deno/eszip 0.106 (npm) and parseEszip() read the output.
//
// Contract
// - Pure function on memory: reentrant, any thread, no I/O.
// - Writes the entries in this order: modules (in vector order), redirects, npm root
//   specifiers; sources and source maps back to back in module order, each followed by its
//   digest. Sources are stored as given: TypeScript is not transpiled (@deno/eszip's own
//   builder stores emitted JavaScript; subgate, the consumer, transpiles when it loads).
// - The caller gives a consistent Eszip (unique specifiers, redirects that end at a module);
//   writeEszip() does not check that, parseEszip() does.
// - Returns "" (never a valid ESZIP) when the file cannot be written as asked: a length over
//   4 GiB - 1, or npm data in version 2 (which has no npm section).
#pragma once

#include <string>

#include "core/bundle/eszip.h"

namespace subgate::bundle {

struct EszipWriteOptions {
  // 2.3 is the newest (what @deno/eszip 0.106 writes); 2 and 2.1 always use SHA-256.
  EszipVersion version = EszipVersion::kV2Dot3;
  // For 2.2+: kSha256 (the default, verified by both readers), kNone, or kXxHash3 (which
  // @deno/eszip 0.106 reads without verifying: its wasm build lacks xxHash3).
  EszipChecksum checksum = EszipChecksum::kSha256;
};

std::string writeEszip(const Eszip& eszip, const EszipWriteOptions& options = {});

}  // namespace subgate::bundle

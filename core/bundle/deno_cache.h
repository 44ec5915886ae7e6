// Entries of Deno's global HTTP cache ($DENO_DIR/remote/...), so that subgate can hand an isolate
// a remote module graph (from an ESZIP) that `deno run --cached-only` loads without any network.
//
// How deno 2.9.6 stores a remote module (seen with `deno cache`, checked against
// denoland/deno_cache_dir 0.27):
// - Path: $DENO_DIR/remote/<scheme>/<host>[_PORT<port>]/<hex>, scheme http or https, the port
//   only when it is not the scheme's default, <hex> the lowercase SHA-256 of the URL's path plus
//   "?" and the query when the URL has one (even an empty one); the fragment is not part of it.
//   https://example.invalid/a.ts -> remote/https/example.invalid/sha256("/a.ts").
// - File: the body as received, then "\n// denoCacheMetadata=" and one line of JSON, no newline
//   at the end: {"headers":{<lowercase name>:<value>,...},"url":"<the URL>","time":<unix s>}.
//   There is no separate .metadata.json file any more. The reader splits at the last "\n" of the
//   file, so the JSON must be one line (JSON escapes every newline in it). "time" is optional.
// - The media type comes from the content-type header, or from the path's extension when there
//   is none or it is text/plain (both seen to run a .ts as TypeScript). A type deno does not
//   know wins over the extension: a .ts that Python's http.server sent as
//   text/vnd.trolltech.linguist ran as JavaScript as the root (a SyntaxError on `: string`) and
//   was refused as an "Unknown module" when imported. So give the right content-type.
// - A redirect (301/302/...) is an entry with an empty body whose headers hold "location" (as
//   sent: relative or absolute); the status code is not stored. Deno follows it from the cache,
//   and import.meta.url is the redirect's final URL.
// - With --cached-only a missing entry fails: "Specifier not found in cache". Entries made here
//   (no "time", only content-type or location) run: tests/integration/test_bundle.py.
// - --allow-import: with an explicit list, a static import of a host outside it fails
//   ("Requires import access to "other.invalid:443""); with no --allow-import flag at all, deno
//   2.9.6 ran a remote root whose static imports went to other hosts (other.invalid) too.
// - Besides remote/, deno writes its own caches next to it (dep_analysis_cache_v2,
//   node_analysis_cache_v2, v8_code_cache_v2 SQLite files, gen/ for transpiled output); none of
//   them needs to exist beforehand.
//
// Contract
// - Pure functions on memory, any thread; the caller writes the bytes to
//   $DENO_DIR/<relative_path> (creating folders) before starting deno.
// - Only URLs already in the canonical form that WHATWG URL parsing keeps unchanged are
//   accepted: http or https, a lowercase-able DNS name or IPv4 host (no IPv6, no user info), no
//   dot segments, no characters that parsing would percent-encode. Anything else is refused with
//   an error rather than hashed differently from Deno.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace subgate::bundle {

struct DenoCacheEntry {
  std::string relative_path;  // below $DENO_DIR, e.g. "remote/https/example.invalid/<hex>"
  std::string bytes;          // the file's whole content
};

// The cache file for a 200 response to `url` with this content-type (omitted when empty).
std::optional<DenoCacheEntry> denoCacheEntry(std::string_view url, std::string_view content_type,
                                             std::string_view body, std::string& error);

// The cache file for a redirect from `url` to `location` (as a Location header would say it).
std::optional<DenoCacheEntry> denoCacheRedirect(std::string_view url, std::string_view location,
                                                std::string& error);

}  // namespace subgate::bundle

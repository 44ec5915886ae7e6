// Where a deployment's local module lives inside its isolate (issue 18): a module named
// `file:///src/main.ts` is written to `/src/main.ts` of the isolate's own root folder, so that
// Deno loads it under its own specifier and `import.meta.url` is what the origin named.
//
// The rules for a local specifier (anything else is refused with a reason):
//   - `file:///` followed by an absolute path (no host, query or fragment; the scheme lower-case);
//   - segments not empty, not `.` or `..`, at most 255 bytes each, at most 32 of them, the whole
//     path at most 1024 bytes;
//   - `%XX` escapes are decoded as Deno decodes them; an escape may not make a `/`, a `\`, a NUL
//     or another control byte.
// Pure: no state, any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subgate {

// The path (starting with '/', escapes decoded) of local specifier `specifier`, or nullopt with
// `error` saying why it is refused.
std::optional<std::string> localModulePath(std::string_view specifier, std::string& error);

// True when `path` is `folder` or lies under it ("/usr/lib/x" under "/usr/lib", not "/usr/libx").
bool pathWithin(std::string_view path, std::string_view folder);

// The first of `folders` that `path` lies within, or nullptr.
const std::string* folderHolding(std::string_view path, const std::vector<std::string>& folders);

}  // namespace subgate

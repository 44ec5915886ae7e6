// The value of `x-deno-timeout-ms` (protocol.md §1), parsed on its own so that the fuzz build
// can link it without the request pipeline.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace subgate {

// Parses an x-deno-timeout-ms value: 1*DIGIT, positive, at most 10 digits. Anything else
// (a sign, spaces, a unit, an empty value) is nullopt, which the module answers with 400.
std::optional<std::chrono::milliseconds> parseTimeoutHeader(std::string_view value);

}  // namespace subgate

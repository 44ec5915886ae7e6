// Instance targeting (protocol.md §5): which dedicated isolate a request asks for.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace subgate {

// The longest instance id accepted, in bytes.
constexpr size_t kMaxInstanceId = 256;

// The instance id of a request: the `x-deno-isolate-instance-id` header value, else the
// `deno_isolate_instance_id` query parameter (percent-decoded, '+' as space); empty when neither
// is present. nullopt when present but invalid (empty, over 256 bytes, or bad percent-encoding).
std::optional<std::string> requestInstanceId(std::string_view header, std::string_view query);

}  // namespace subgate

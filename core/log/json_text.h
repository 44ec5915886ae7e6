// Arbitrary bytes (user code's output, request headers) as the text of a JSON string, for the
// log lines and events subgate writes: whatever the input, the result is valid JSON and valid
// UTF-8, which strict readers (jansson, Prometheus's and log shippers' parsers) insist on.
//
// Pure; any thread.
#pragma once

#include <string>
#include <string_view>

namespace subgate {

// Appends `text` as the inside of a JSON string (no quotes): `"` and `\` escaped, control bytes
// and DEL as \n, \r, \t or \u00hh, valid UTF-8 kept (RFC 3629: no overlong forms, surrogates or
// code points past U+10FFFF), and each byte that starts no valid sequence written as U+FFFD.
void appendJsonStringBody(std::string& out, std::string_view text);

}  // namespace subgate

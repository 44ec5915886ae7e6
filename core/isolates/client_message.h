// What a client may read of an isolate's failure. The runtime's messages (the harness's "failed"
// report, a process's last words, a launch error) name the isolate's folder on the host and may
// quote raw bytes of the deployment's code; the client gets a copy that names no host path, is
// printable ASCII and is bounded, while the error log keeps the full detail (issue 17, point 9;
// docs/errors.md).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace subgate {

// At most this many bytes of a message reach a client (then "...").
constexpr size_t kMaxClientMessage = 200;

// `detail` made safe for a client:
//   - "DIR/iso-N/root" (an isolate's root folder under the runtime folder `runtime_dir`, where
//     its modules live at their own paths when the sandbox is off) is dropped, so that
//     "file:///tmp/subgate-x/iso-3/root/src/main.ts:1:7" reads "file:///src/main.ts:1:7", the
//     module's own specifier, as inside the sandbox;
//   - any other mention of `runtime_dir` (with or without "file://") becomes "<runtime>";
//   - a byte outside printable ASCII becomes '?' (tab, CR and LF a space);
//   - the result is cut to kMaxClientMessage bytes, ending in "...".
// Pure: no state, any thread.
std::string clientMessage(std::string_view detail, std::string_view runtime_dir);

}  // namespace subgate

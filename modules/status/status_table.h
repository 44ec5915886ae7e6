// The compact table `subgate status --watch` draws from one JSON snapshot of a `status;`
// location: totals, request rates and a line per deployment (isolates, active requests against
// the deployment's room, queue, identifiers).
//
// Pure: no I/O, no clock (the time shown is the snapshot's), any thread.
#pragma once

#include <jansson.h>

#include <string>
#include <string_view>

namespace subgate {

// The table for `status` (the parsed JSON), headed by `source` (the URL). Values that come from
// tenants (deployment ids) are shown without control characters, so that a tenant cannot move
// the operator's cursor. Rates are those of the last interval of the snapshot's history ("-"
// before it has two samples). Ends with a newline.
std::string renderStatusTable(const json_t* status, std::string_view source);

// `text` made safe and at most `width` columns for a terminal: control characters (C0, DEL, C1)
// become '?', a longer text ends in "...". Columns are counted as UTF-8 code points.
std::string terminalText(std::string_view text, size_t width);

}  // namespace subgate

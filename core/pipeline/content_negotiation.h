// Content negotiation on a request's Accept header (RFC 9110 12.5.1), as far as subgate's own
// answers need it: how much a client asks for one media type by name.
//
// Pure; any thread.
#pragma once

#include <string_view>

namespace subgate {

// The quality (0 to 1) that `accept` (an Accept field value) gives `media_type` in the ranges
// that name it exactly (any case; parameters other than q ignored), the highest if several do;
// 0 when none does or its q is malformed. Wildcard ranges ("*/*", "text/*") are not counted: the
// callers choose between a default answer and one a client must ask for by name.
double acceptQuality(std::string_view accept, std::string_view media_type);

}  // namespace subgate

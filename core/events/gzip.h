// gzip (RFC 1952) through zlib: the body of a POST {rpc_root}events is one gzip member of
// NDJSON. Pure functions, any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace subgate {

// Compresses `data` into one gzip member (zlib's default level). False only when zlib fails
// (out of memory).
bool gzipCompress(std::string_view data, std::string& out);

// Decompresses gzip `data` (one or more members) into `out`, refusing more than `max_bytes` of
// output (a small body may inflate to gigabytes). False with `error` on malformed, truncated or
// oversized input.
bool gzipDecompress(std::string_view data, size_t max_bytes, std::string& out, std::string& error);

}  // namespace subgate

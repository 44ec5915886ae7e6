#include "core/events/gzip.h"

#include <zlib.h>

#include <algorithm>
#include <climits>

namespace subgate {

namespace {

constexpr int kGzipWindow = 15 + 16;  // zlib's window bits, +16: gzip header and trailer
constexpr int kAutoWindow = 15 + 32;  // inflate: zlib or gzip, by the header

}  // namespace

bool gzipCompress(std::string_view data, std::string& out) {
  z_stream z{};
  if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, kGzipWindow, 8, Z_DEFAULT_STRATEGY) !=
      Z_OK)
    return false;
  out.resize(deflateBound(&z, static_cast<uLong>(data.size())) + 32);
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(data.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  return rc == Z_STREAM_END;
}

bool gzipDecompress(std::string_view data, size_t max_bytes, std::string& out, std::string& error) {
  out.clear();
  z_stream z{};
  if (inflateInit2(&z, kAutoWindow) != Z_OK) {
    error = "cannot start zlib";
    return false;
  }
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
  z.avail_in = static_cast<uInt>(std::min<size_t>(data.size(), UINT_MAX));
  char buf[16384];
  bool ok = true;
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    const int rc = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (out.size() > max_bytes) {
      error.assign("the decompressed body is larger than ")
          .append(std::to_string(max_bytes))
          .append(" bytes");
      ok = false;
      break;
    }
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      inflateReset(&z);  // another gzip member follows
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && z.avail_in == 0) {
      error = "the gzip data is truncated";
    } else {
      error = std::string("the gzip data is malformed: ") + (z.msg ? z.msg : "zlib error");
    }
    ok = false;
    break;
  }
  inflateEnd(&z);
  if (!ok) out.clear();
  return ok;
}

}  // namespace subgate

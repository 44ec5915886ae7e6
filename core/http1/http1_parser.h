// Strict, incremental, zero-copy HTTP/1.1 message-head parser and chunked body decoder.
//
// Contract
// - The caller owns one contiguous buffer that holds the message head as it arrives. It calls
//   parse() with the whole buffer received so far (always starting at the first byte of the
//   message); the parser remembers how far it got and never rescans complete lines.
// - On kDone every string_view in the result points into that buffer: the caller must keep
//   those bytes in place and unchanged for as long as it uses the result.
// - The parser never allocates per message once its header vector has grown to its working size
//   (reset() keeps the capacity).
// - Not thread-safe; one parser per connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace subgate::http1 {

struct HeaderField {
  std::string_view name;   // as sent (case preserved); compare with iequals()
  std::string_view value;  // leading/trailing spaces and tabs stripped
};

// How the message body is delimited.
enum class BodyFraming : uint8_t {
  kNone,  // no body (no Content-Length / Transfer-Encoding; or a response that never has one)
  kContentLength,  // exactly content_length bytes follow
  kChunked,        // Transfer-Encoding: chunked (as the final and only coding)
  kUntilClose,     // responses only: the body runs until the peer closes
};

enum class ParseStatus : uint8_t { kIncomplete, kDone, kError };

// Why a message was rejected. The server maps these to statuses (400, 414, 431, 413).
enum class ParseError : uint8_t {
  kNone,
  kBadRequest,  // any syntax or framing violation (bad method, bare CR, obs-fold, NUL, CL+TE, ...)
  kUriTooLong,  // request target longer than Limits::max_uri_bytes            -> 414
  kHeaderTooLarge,  // head longer than Limits::max_head_bytes                      -> 431
  kTooManyHeaders,  // more than Limits::max_headers header fields                 -> 431
  kBodyTooLarge,    // Content-Length above Limits::max_body_bytes                  -> 413
  kBadResponse,     // response mode: malformed status line or headers
};

struct Limits {
  size_t max_head_bytes = 16 * 1024;  // request/status line + all header lines + final CRLF
  size_t max_headers = 100;
  size_t max_uri_bytes = 8 * 1024;
  uint64_t max_body_bytes = UINT64_MAX;  // checked against Content-Length only (chunked: by caller)
};

// Result of parsing one message head.
struct MessageHead {
  // Request line (request mode).
  std::string_view method;
  std::string_view target;  // raw request-target as sent
  std::string_view path;    // target up to '?' (or the whole target)
  std::string_view query;   // after '?', without it; empty if none
  // Status line (response mode).
  int status = 0;
  std::string_view reason;

  int version_minor = 1;  // HTTP/1.<minor>; only 1.0 and 1.1 are accepted
  std::vector<HeaderField> headers;

  BodyFraming framing = BodyFraming::kNone;
  uint64_t content_length = 0;  // valid when framing == kContentLength

  // Derived from Connection and the version: HTTP/1.1 default keep-alive unless "close";
  // HTTP/1.0 only with "keep-alive".
  bool keep_alive = true;
  bool expect_continue = false;  // request carried "Expect: 100-continue"
  bool upgrade = false;          // Connection: upgrade together with an Upgrade header
  bool has_transfer_encoding = false;

  size_t head_bytes = 0;  // bytes of the buffer the head occupies, final CRLF included

  // First value of a header, case-insensitive; empty view if absent.
  std::string_view find(std::string_view name) const;

  // The head's bytes were moved from `from` to `to` (same layout): re-point every view.
  void rebase(const char* from, const char* to);
};

// Parses request heads (server side) or response heads (upstream side).
class HeadParser {
 public:
  enum class Mode : uint8_t { kRequest, kResponse };

  explicit HeadParser(Mode mode, Limits limits = {}) : mode_(mode), limits_(limits) {}

  // Feeds the bytes received so far for the current message, from its first byte.
  // `data` may grow between calls (same prefix, more bytes) and may move in memory.
  // In response mode, `request_method` decides bodiless responses (HEAD) and
  // `status` 1xx/204/304 likewise.
  ParseStatus parse(std::string_view data);

  // Response mode: tells the parser the method of the request this response answers.
  void setRequestMethod(std::string_view method) { head_request_ = method == "HEAD"; }

  const MessageHead& head() const { return head_; }
  ParseError error() const { return error_; }
  // A short, static, human-readable reason for the error ("bare CR in header", ...).
  const char* errorMessage() const { return error_message_; }

  // Ready for the next message; keeps allocated capacity.
  void reset();
  // For a head kept long (a WebSocket tunnel's): frees the parsing scratch and trims the header
  // list to its size. head() stays valid. The next message regrows what it needs.
  void compact();
  // reset(), and gives back all memory (a connection that will parse nothing more for long).
  void releaseMemory();
  // The parsed head's bytes moved in memory (see MessageHead::rebase).
  void rebaseHead(const char* from, const char* to) { head_.rebase(from, to); }

  void setLimits(const Limits& limits) { limits_ = limits; }

 private:
  ParseStatus fail(ParseError error, const char* message);
  ParseStatus parseStartLine(std::string_view line);
  // `clean`: findLineBreak() found no byte in the line that a field value may not hold.
  ParseStatus parseHeaderLine(std::string_view line, bool clean);
  ParseStatus finishHead(std::string_view data);
  ParseError badKind() const;

  Mode mode_;
  Limits limits_;
  MessageHead head_;
  ParseError error_ = ParseError::kNone;
  const char* error_message_ = "";
  size_t scanned_ = 0;     // bytes of complete lines already parsed
  size_t line_start_ = 0;  // offset of the line being parsed
  bool head_request_ = false;
  bool started_ = false;  // start line parsed
  int version_minor_ = 1;
  int status_ = 0;
  // Offset and length of the method and target (request) or the reason (response, [0]).
  std::pair<size_t, size_t> start_[2]{};
  // Name and value of each header as (offset, length) pairs: the buffer may move between calls.
  std::vector<std::pair<size_t, size_t>> offsets_;
};

// Incremental decoder for a chunked body (RFC 9112 §7.1), trailers included.
class ChunkedDecoder {
 public:
  enum class State : uint8_t { kData, kDone, kError };

  struct Step {
    size_t consumed = 0;  // bytes of the input used by this step
    std::string_view
        data;  // chunk payload found in this step (a view into the input), may be empty
    State state = State::kData;
  };

  explicit ChunkedDecoder(uint64_t max_body_bytes = UINT64_MAX, size_t max_trailer_bytes = 8192)
      : max_body_(max_body_bytes), max_trailer_(max_trailer_bytes) {}

  // Decodes as much of `in` as possible up to the next payload run. Call repeatedly with the
  // unconsumed rest until consumed == 0 (need more input) or state != kData.
  // On kDone, the final CRLF (and trailers) have been consumed; trailers() holds the raw
  // trailer lines (each ending in CRLF, without the final empty line), validated.
  Step next(std::string_view in);

  std::string_view trailers() const { return trailers_; }
  const char* errorMessage() const { return error_message_; }
  bool bodyTooLarge() const { return too_large_; }
  uint64_t bodyBytes() const { return total_; }
  void reset();

 private:
  enum class Phase : uint8_t { kSize, kSizeExt, kSizeLf, kData, kDataCr, kDataLf, kTrailer, kDone };
  uint64_t max_body_;
  size_t max_trailer_;
  Phase phase_ = Phase::kSize;
  uint64_t remaining_ = 0;
  uint64_t total_ = 0;
  int size_digits_ = 0;
  size_t extension_bytes_ = 0;
  bool too_large_ = false;
  const char* error_message_ = "";
  std::string trailers_;  // only used when a trailer section is present
  std::string line_;      // partial trailer line across calls
};

// ASCII lowercase of one byte; other bytes unchanged.
inline char asciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// ASCII case-insensitive comparison. Inline: header code calls it for every field it looks at.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (asciiLower(a[i]) != asciiLower(b[i])) return false;
  return true;
}

// True for hop-by-hop header names (RFC 9110 §7.6.1) and the framing headers (content-length,
// transfer-encoding) that whoever forwards a message sets for itself.
bool isHopByHopHeader(std::string_view name);

// True if `value`, a comma-separated list header, contains `token` (case-insensitive).
bool headerHasToken(std::string_view value, std::string_view token);

}  // namespace subgate::http1

#include "core/http1/http1_parser.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace subgate::http1 {
namespace {

// RFC 9110 tchar.
constexpr bool isTchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  switch (c) {
    case '!':
    case '#':
    case '$':
    case '%':
    case '&':
    case '\'':
    case '*':
    case '+':
    case '-':
    case '.':
    case '^':
    case '_':
    case '`':
    case '|':
    case '~': return true;
    default: return false;
  }
}

struct CharTables {
  bool tchar[256];
  bool field_value[256];  // HTAB, VCHAR, SP, obs-text
  bool target[256];       // visible ASCII, no space
  constexpr CharTables() : tchar(), field_value(), target() {
    for (int c = 0; c < 256; ++c) {
      tchar[c] = isTchar(static_cast<unsigned char>(c));
      field_value[c] = c == '\t' || (c >= 0x20 && c != 0x7f);
      target[c] = c > 0x20 && c < 0x7f;
    }
  }
};
constexpr CharTables kChars;

// The offset of the first byte of p[0, n) that may not appear inside a head line: a control
// byte other than HTAB (CR and LF among them) or DEL; n when there is none. Every byte that
// field_value refuses is one of them, so a line found clean here needs no check of its value.
// Why: one pass over the head finds each line's end and validates it, instead of a memchr for
// the LF, one for a stray CR and a table lookup per value byte (16 bytes a step with SSE2).
size_t findLineBreak(const char* p, size_t n) {
  size_t i = 0;
#if defined(__SSE2__)
  const __m128i tab = _mm_set1_epi8(0x09);
  const __m128i del = _mm_set1_epi8(0x7f);
  const __m128i space = _mm_set1_epi8(0x1f);
  for (; i + 16 <= n; i += 16) {
    const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    const __m128i control = _mm_cmpeq_epi8(_mm_min_epu8(x, space), x);  // x <= 0x1f
    const __m128i bad =
        _mm_or_si128(_mm_andnot_si128(_mm_cmpeq_epi8(x, tab), control), _mm_cmpeq_epi8(x, del));
    if (const int mask = _mm_movemask_epi8(bad))
      return i + static_cast<size_t>(__builtin_ctz(mask));
  }
#endif
  for (; i < n; ++i) {
    const unsigned char c = static_cast<unsigned char>(p[i]);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return i;
  }
  return n;
}

std::string_view trimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Parses a Content-Length value, which may be a list of identical values ("5, 5").
bool parseContentLength(std::string_view value, uint64_t& out) {
  bool any = false;
  uint64_t first = 0;
  while (true) {
    size_t comma = value.find(',');
    std::string_view item = trimOws(value.substr(0, comma));
    if (item.empty() || item.size() > 19) return false;
    uint64_t n = 0;
    for (char c : item) {
      if (c < '0' || c > '9') return false;
      n = n * 10 + static_cast<uint64_t>(c - '0');
    }
    if (any && n != first) return false;
    first = n;
    any = true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  out = first;
  return true;
}

}  // namespace

bool headerHasToken(std::string_view value, std::string_view token) {
  while (!value.empty()) {
    size_t comma = value.find(',');
    if (iequals(trimOws(value.substr(0, comma)), token)) return true;
    if (comma == std::string_view::npos) break;
    value.remove_prefix(comma + 1);
  }
  return false;
}

void MessageHead::rebase(const char* from, const char* to) {
  auto move = [&](std::string_view& view) {
    if (!view.empty()) view = std::string_view(to + (view.data() - from), view.size());
  };
  for (std::string_view* view : {&method, &target, &path, &query, &reason}) move(*view);
  for (HeaderField& field : headers) {
    move(field.name);
    move(field.value);
  }
}

std::string_view MessageHead::find(std::string_view name) const {
  for (const HeaderField& field : headers)
    if (iequals(field.name, name)) return field.value;
  return {};
}

void HeadParser::compact() {
  std::vector<std::pair<size_t, size_t>>().swap(offsets_);
  head_.headers.shrink_to_fit();
}

void HeadParser::releaseMemory() {
  reset();
  std::vector<std::pair<size_t, size_t>>().swap(offsets_);
  std::vector<HeaderField>().swap(head_.headers);
}

void HeadParser::reset() {
  head_.headers.clear();
  head_.method = head_.target = head_.path = head_.query = head_.reason = {};
  head_.status = 0;
  head_.version_minor = 1;
  head_.framing = BodyFraming::kNone;
  head_.content_length = 0;
  head_.keep_alive = true;
  head_.expect_continue = head_.upgrade = head_.has_transfer_encoding = false;
  head_.head_bytes = 0;
  error_ = ParseError::kNone;
  error_message_ = "";
  scanned_ = 0;
  started_ = false;
  offsets_.clear();
}

ParseStatus HeadParser::fail(ParseError error, const char* message) {
  error_ = error;
  error_message_ = message;
  return ParseStatus::kError;
}

ParseStatus HeadParser::parse(std::string_view data) {
  if (error_ != ParseError::kNone) return ParseStatus::kError;
  while (scanned_ < data.size()) {
    const char* base = data.data();
    // A line is clean when the first byte that may not appear in one is its CR, followed by LF:
    // its bytes need no other check than the grammar's. Anything else (a bare LF or CR, a
    // control byte, an incomplete line) takes the byte-wise path below, whose checks and error
    // messages are the reference (the differential fuzzer holds both to http-parser).
    const size_t at = scanned_ + findLineBreak(base + scanned_, data.size() - scanned_);
    bool clean = at + 1 < data.size() && base[at] == '\r' && base[at + 1] == '\n';
    size_t end;  // the line's LF
    if (clean) {
      end = at + 1;
    } else {
      const void* nl = std::memchr(base + scanned_, '\n', data.size() - scanned_);
      if (!nl) {
        size_t pending = data.size() - scanned_;
        if (!started_ && mode_ == Mode::kRequest && pending > limits_.max_uri_bytes + 32)
          return fail(ParseError::kUriTooLong, "the request target is too long");
        if (data.size() > limits_.max_head_bytes)
          return fail(ParseError::kHeaderTooLarge, "the request head is too large");
        return ParseStatus::kIncomplete;
      }
      end = static_cast<size_t>(static_cast<const char*>(nl) - base);
    }
    if (end + 1 > limits_.max_head_bytes)
      return fail(ParseError::kHeaderTooLarge, "the request head is too large");
    if (!clean) {
      if (end == scanned_ || base[end - 1] != '\r')
        return fail(badKind(), "a line ends in a bare LF");
      if (std::memchr(base + scanned_, '\r', end - 1 - scanned_))
        return fail(badKind(), "bare CR in the head");
    }
    std::string_view line(base + scanned_, end - 1 - scanned_);
    line_start_ = scanned_;
    scanned_ = end + 1;
    if (!started_) {
      // Tolerate empty lines before a request line (RFC 9112 §2.2), e.g. after a body.
      if (line.empty() && mode_ == Mode::kRequest) continue;
      ParseStatus status = parseStartLine(line);
      if (status != ParseStatus::kIncomplete) return status;
      started_ = true;
      continue;
    }
    if (line.empty()) return finishHead(data);
    ParseStatus status = parseHeaderLine(line, clean);
    if (status != ParseStatus::kIncomplete) return status;
  }
  return ParseStatus::kIncomplete;
}

ParseError HeadParser::badKind() const {
  return mode_ == Mode::kRequest ? ParseError::kBadRequest : ParseError::kBadResponse;
}

// Start-line offsets are kept relative to the buffer start (it may move between calls).
ParseStatus HeadParser::parseStartLine(std::string_view line) {
  const size_t origin = line_start_;
  if (mode_ == Mode::kRequest) {
    size_t i = 0;
    while (i < line.size() && kChars.tchar[static_cast<unsigned char>(line[i])]) ++i;
    if (i == 0 || i >= line.size() || line[i] != ' ')
      return fail(ParseError::kBadRequest, "invalid method");
    size_t target_start = i + 1;
    size_t j = target_start;
    while (j < line.size() && kChars.target[static_cast<unsigned char>(line[j])]) ++j;
    if (j - target_start > limits_.max_uri_bytes)
      return fail(ParseError::kUriTooLong, "the request target is too long");
    if (j == target_start || j >= line.size() || line[j] != ' ')
      return fail(ParseError::kBadRequest, "invalid request target");
    std::string_view version = line.substr(j + 1);
    if (version == "HTTP/1.1") {
      version_minor_ = 1;
    } else if (version == "HTTP/1.0") {
      version_minor_ = 0;
    } else {
      return fail(ParseError::kBadRequest, "unsupported HTTP version");
    }
    start_[0] = {origin, i};
    start_[1] = {origin + target_start, j - target_start};
    return ParseStatus::kIncomplete;
  }
  // Response: HTTP/1.x SP 3DIGIT [SP reason]
  if (line.size() < 12 || !line.starts_with("HTTP/1.") || (line[7] != '0' && line[7] != '1') ||
      line[8] != ' ')
    return fail(ParseError::kBadResponse, "invalid status line");
  version_minor_ = line[7] - '0';
  int status = 0;
  for (int k = 9; k < 12; ++k) {
    if (line[k] < '0' || line[k] > '9')
      return fail(ParseError::kBadResponse, "invalid status code");
    status = status * 10 + (line[k] - '0');
  }
  if (status < 100) return fail(ParseError::kBadResponse, "invalid status code");
  if (line.size() > 12 && line[12] != ' ')
    return fail(ParseError::kBadResponse, "invalid status line");
  for (size_t k = 13; k < line.size(); ++k)
    if (!kChars.field_value[static_cast<unsigned char>(line[k])])
      return fail(ParseError::kBadResponse, "invalid reason phrase");
  status_ = status;
  start_[0] = {origin + std::min<size_t>(13, line.size()), line.size() > 13 ? line.size() - 13 : 0};
  return ParseStatus::kIncomplete;
}

ParseStatus HeadParser::parseHeaderLine(std::string_view line, bool clean) {
  if (line[0] == ' ' || line[0] == '\t') return fail(badKind(), "obsolete line folding");
  size_t i = 0;
  while (i < line.size() && kChars.tchar[static_cast<unsigned char>(line[i])]) ++i;
  if (i == 0 || i >= line.size() || line[i] != ':') return fail(badKind(), "invalid header name");
  size_t v = i + 1;
  size_t v_end = line.size();
  while (v < v_end && (line[v] == ' ' || line[v] == '\t')) ++v;
  while (v_end > v && (line[v_end - 1] == ' ' || line[v_end - 1] == '\t')) --v_end;
  if (!clean) {
    for (size_t k = v; k < v_end; ++k)
      if (!kChars.field_value[static_cast<unsigned char>(line[k])])
        return fail(badKind(), "invalid byte in a header value");
  }
  if (offsets_.size() / 2 >= limits_.max_headers)
    return fail(ParseError::kTooManyHeaders, "too many header fields");
  // One allocation for a typical head rather than a doubling series of small ones.
  if (offsets_.capacity() == 0) offsets_.reserve(32);
  offsets_.emplace_back(line_start_, i);
  offsets_.emplace_back(line_start_ + v, v_end - v);
  return ParseStatus::kIncomplete;
}

ParseStatus HeadParser::finishHead(std::string_view data) {
  const char* base = data.data();
  auto view = [base](std::pair<size_t, size_t> at) {
    return std::string_view(base + at.first, at.second);
  };
  head_.version_minor = version_minor_;
  head_.head_bytes = scanned_;
  head_.headers.clear();
  head_.headers.reserve(offsets_.size() / 2);
  for (size_t k = 0; k < offsets_.size(); k += 2)
    head_.headers.push_back({view(offsets_[k]), view(offsets_[k + 1])});
  if (mode_ == Mode::kRequest) {
    head_.method = view(start_[0]);
    head_.target = view(start_[1]);
    size_t q = head_.target.find('?');
    head_.path = head_.target.substr(0, q);
    head_.query = q == std::string_view::npos ? std::string_view() : head_.target.substr(q + 1);
  } else {
    head_.status = status_;
    head_.reason = view(start_[0]);
  }

  bool has_length = false;
  bool chunked_last = false;
  int te_codings = 0;
  int hosts = 0;
  bool has_upgrade = false;
  bool close = false;
  bool keep_alive_token = false;
  bool upgrade_token = false;
  for (const HeaderField& field : head_.headers) {
    std::string_view name = field.name;
    switch (name.size()) {
      case 4:
        if (iequals(name, "host")) ++hosts;
        break;
      case 6:
        if (iequals(name, "expect") && iequals(field.value, "100-continue"))
          head_.expect_continue = true;
        break;
      case 7:
        if (iequals(name, "upgrade")) has_upgrade = true;
        break;
      case 10:
        if (iequals(name, "connection")) {
          close |= headerHasToken(field.value, "close");
          keep_alive_token |= headerHasToken(field.value, "keep-alive");
          upgrade_token |= headerHasToken(field.value, "upgrade");
        }
        break;
      case 14:
        if (iequals(name, "content-length")) {
          uint64_t length = 0;
          if (!parseContentLength(field.value, length) ||
              (has_length && length != head_.content_length))
            return fail(badKind(), "invalid or conflicting Content-Length");
          has_length = true;
          head_.content_length = length;
        }
        break;
      case 17:
        if (iequals(name, "transfer-encoding")) {
          head_.has_transfer_encoding = true;
          std::string_view value = field.value;
          while (true) {
            size_t comma = value.find(',');
            std::string_view coding = trimOws(value.substr(0, comma));
            if (coding.empty()) return fail(badKind(), "empty transfer coding");
            ++te_codings;
            chunked_last = iequals(coding, "chunked");
            if (comma == std::string_view::npos) break;
            value.remove_prefix(comma + 1);
          }
        }
        break;
      default: break;
    }
  }
  head_.keep_alive = version_minor_ >= 1 ? !close : (keep_alive_token && !close);
  head_.upgrade = upgrade_token && has_upgrade;
  if (version_minor_ == 0) head_.expect_continue = false;

  if (mode_ == Mode::kRequest) {
    if (head_.has_transfer_encoding) {
      if (has_length)
        return fail(ParseError::kBadRequest, "Content-Length together with Transfer-Encoding");
      if (version_minor_ == 0)
        return fail(ParseError::kBadRequest, "Transfer-Encoding in an HTTP/1.0 request");
      if (te_codings != 1 || !chunked_last)
        return fail(ParseError::kBadRequest,
                    "unsupported transfer coding (only chunked is accepted)");
      head_.framing = BodyFraming::kChunked;
    } else if (has_length) {
      if (head_.content_length > limits_.max_body_bytes)
        return fail(ParseError::kBodyTooLarge, "the request body is too large");
      // Content-Length: 0 stays explicit so that it reaches the upstream as sent.
      head_.framing = BodyFraming::kContentLength;
    }
    if (version_minor_ >= 1 && hosts == 0)
      return fail(ParseError::kBadRequest, "missing Host header");
    if (hosts > 1) return fail(ParseError::kBadRequest, "more than one Host header");
    return ParseStatus::kDone;
  }

  // Responses.
  if (head_request_ || (status_ >= 100 && status_ < 200) || status_ == 204 || status_ == 304) {
    head_.framing = BodyFraming::kNone;
  } else if (head_.has_transfer_encoding) {
    if (has_length)
      return fail(ParseError::kBadResponse, "Content-Length together with Transfer-Encoding");
    head_.framing = chunked_last ? BodyFraming::kChunked : BodyFraming::kUntilClose;
    if (!chunked_last) head_.keep_alive = false;
  } else if (has_length) {
    head_.framing = BodyFraming::kContentLength;
  } else {
    head_.framing = BodyFraming::kUntilClose;
    head_.keep_alive = false;
  }
  return ParseStatus::kDone;
}

bool isHopByHopHeader(std::string_view name) {
  switch (name.size()) {
    case 2: return iequals(name, "te");
    case 7: return iequals(name, "trailer") || iequals(name, "upgrade");
    case 10: return iequals(name, "connection") || iequals(name, "keep-alive");
    case 14: return iequals(name, "content-length");
    case 16: return iequals(name, "proxy-connection");
    case 17: return iequals(name, "transfer-encoding");
    default: return false;
  }
}

}  // namespace subgate::http1

#include "core/http1/http1_parser.h"

namespace subgate::http1 {
namespace {

constexpr size_t kMaxExtensionBytes = 4096;

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// A trailer line: field-name ":" field-value, validated like a header.
bool validTrailerLine(std::string_view line) {
  size_t i = 0;
  auto tchar = [](unsigned char c) {
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
  };
  while (i < line.size() && tchar(static_cast<unsigned char>(line[i]))) ++i;
  if (i == 0 || i >= line.size() || line[i] != ':') return false;
  for (size_t k = i + 1; k < line.size(); ++k) {
    unsigned char c = static_cast<unsigned char>(line[k]);
    if (c != '\t' && (c < 0x20 || c == 0x7f)) return false;
  }
  return true;
}

}  // namespace

void ChunkedDecoder::reset() {
  phase_ = Phase::kSize;
  remaining_ = 0;
  total_ = 0;
  size_digits_ = 0;
  extension_bytes_ = 0;
  too_large_ = false;
  error_message_ = "";
  trailers_.clear();
  line_.clear();
}

ChunkedDecoder::Step ChunkedDecoder::next(std::string_view in) {
  Step step;
  size_t i = 0;
  auto error = [&](const char* message) {
    error_message_ = message;
    step.consumed = i;
    step.state = State::kError;
    phase_ = Phase::kDone;
    return step;
  };
  if (error_message_[0] != '\0') return error(error_message_);
  while (i < in.size()) {
    char c = in[i];
    switch (phase_) {
      case Phase::kSize: {
        int v = hexValue(c);
        if (v >= 0) {
          if (++size_digits_ > 16) return error("chunk size too long");
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(v);
          ++i;
        } else if (size_digits_ == 0) {
          return error("invalid chunk size");
        } else if (c == ';') {
          phase_ = Phase::kSizeExt;
          extension_bytes_ = 0;
          ++i;
        } else if (c == '\r') {
          phase_ = Phase::kSizeLf;
          ++i;
        } else {
          return error("invalid chunk size");
        }
        break;
      }
      case Phase::kSizeExt:
        if (c == '\r') {
          phase_ = Phase::kSizeLf;
        } else if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
          return error("invalid chunk extension");
        } else if (++extension_bytes_ > kMaxExtensionBytes) {
          return error("chunk extension too long");
        }
        ++i;
        break;
      case Phase::kSizeLf:
        if (c != '\n') return error("bare CR after a chunk size");
        ++i;
        size_digits_ = 0;
        if (remaining_ == 0) {
          phase_ = Phase::kTrailer;
          line_.clear();
        } else {
          if (remaining_ > max_body_ - total_) {
            too_large_ = true;
            return error("the chunked body is too large");
          }
          total_ += remaining_;
          phase_ = Phase::kData;
        }
        break;
      case Phase::kData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - i));
        step.data = in.substr(i, n);
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) phase_ = Phase::kDataCr;
        step.consumed = i;
        return step;
      }
      case Phase::kDataCr:
        if (c != '\r') return error("chunk data longer than its size");
        phase_ = Phase::kDataLf;
        ++i;
        break;
      case Phase::kDataLf:
        if (c != '\n') return error("bare CR after chunk data");
        phase_ = Phase::kSize;
        ++i;
        break;
      case Phase::kTrailer: {
        ++i;
        if (c != '\n') {
          if (c == '\0') return error("NUL in a trailer");
          line_ += c;
          if (trailers_.size() + line_.size() > max_trailer_) return error("trailers too large");
          break;
        }
        if (line_.empty() || line_.back() != '\r') return error("a trailer line ends in a bare LF");
        line_.pop_back();
        if (line_.find('\r') != std::string::npos) return error("bare CR in a trailer");
        if (line_.empty()) {
          phase_ = Phase::kDone;
          step.consumed = i;
          step.state = State::kDone;
          return step;
        }
        if (line_[0] == ' ' || line_[0] == '\t') return error("obsolete line folding in a trailer");
        if (!validTrailerLine(line_)) return error("invalid trailer line");
        trailers_ += line_;
        trailers_ += "\r\n";
        line_.clear();
        break;
      }
      case Phase::kDone:
        step.consumed = i;
        step.state = State::kDone;
        return step;
    }
  }
  step.consumed = i;
  if (phase_ == Phase::kDone) step.state = State::kDone;
  return step;
}

}  // namespace subgate::http1

// libFuzzer target for the HTTP/1.1 head parser and the chunked decoder: any input is parsed
// whole and split at a point chosen from the input; both must agree, and every view returned
// must lie inside the buffer.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/http1/http1_parser.h"

namespace {

using subgate::http1::ChunkedDecoder;
using subgate::http1::HeadParser;
using subgate::http1::ParseStatus;

void check(bool condition) {
  if (!condition) std::abort();
}

void checkInside(std::string_view view, const std::string& buffer) {
  if (view.empty()) return;
  check(view.data() >= buffer.data() && view.data() + view.size() <= buffer.data() + buffer.size());
}

void parseHeads(HeadParser::Mode mode, const std::string& input, size_t split) {
  HeadParser whole(mode);
  ParseStatus a = whole.parse(input);
  HeadParser pieces(mode);
  ParseStatus b = pieces.parse(std::string_view(input).substr(0, split));
  std::string copy = input;  // the buffer moves between calls, as it may in the server
  if (b == ParseStatus::kIncomplete) b = pieces.parse(copy);
  check(a == b);
  if (a == ParseStatus::kError) check(whole.error() == pieces.error());
  if (a != ParseStatus::kDone) return;
  const auto& h = whole.head();
  check(h.head_bytes <= input.size());
  check(h.head_bytes == pieces.head().head_bytes);
  check(h.headers.size() == pieces.head().headers.size());
  checkInside(h.method, input);
  checkInside(h.target, input);
  checkInside(h.reason, input);
  for (size_t i = 0; i < h.headers.size(); ++i) {
    checkInside(h.headers[i].name, input);
    checkInside(h.headers[i].value, input);
    check(h.headers[i].value == pieces.head().headers[i].value);
  }
}

std::string decodeChunked(std::string_view input, size_t split, int& state) {
  ChunkedDecoder decoder(1 << 20);
  std::string body;
  state = 0;
  for (std::string_view piece : {input.substr(0, split), input.substr(split)}) {
    for (int guard = 0; guard < 1 << 20 && !piece.empty(); ++guard) {
      ChunkedDecoder::Step step = decoder.next(piece);
      check(step.consumed <= piece.size());
      body.append(step.data);
      piece.remove_prefix(step.consumed);
      if (step.state != ChunkedDecoder::State::kData) {
        state = step.state == ChunkedDecoder::State::kDone ? 1 : 2;
        return body;
      }
      if (step.consumed == 0) break;
    }
  }
  return body;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t split = data[0] % size;
  const std::string input(reinterpret_cast<const char*>(data) + 1, size - 1);
  const size_t cut = input.empty() ? 0 : split % (input.size() + 1);
  parseHeads(HeadParser::Mode::kRequest, input, cut);
  parseHeads(HeadParser::Mode::kResponse, input, cut);
  int whole_state = 0;
  int split_state = 0;
  std::string whole = decodeChunked(input, input.size(), whole_state);
  std::string pieces = decodeChunked(input, cut, split_state);
  check(whole_state == split_state);
  if (whole_state == 1) check(whole == pieces);
  return 0;
}

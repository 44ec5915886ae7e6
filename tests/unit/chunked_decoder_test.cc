#include <gtest/gtest.h>

#include <string>

#include "core/http1/http1_parser.h"

namespace subgate::http1 {
namespace {

struct Decoded {
  ChunkedDecoder::State state = ChunkedDecoder::State::kData;
  std::string body;
  std::string trailers;
  size_t consumed = 0;
  bool too_large = false;
};

// Decodes `text` delivered in pieces of `step` bytes (0 = all at once).
Decoded decode(const std::string& text, size_t step = 0, uint64_t max = UINT64_MAX) {
  ChunkedDecoder decoder(max);
  Decoded out;
  size_t fed = 0;
  while (fed < text.size() && out.state == ChunkedDecoder::State::kData) {
    size_t n = step ? std::min(step, text.size() - fed) : text.size() - fed;
    std::string_view piece(text.data() + fed, n);
    // Bounded: each call consumes at least one byte of a non-empty piece, or ends.
    for (int guard = 0; guard < 100000 && !piece.empty(); ++guard) {
      ChunkedDecoder::Step s = decoder.next(piece);
      out.body.append(s.data);
      piece.remove_prefix(s.consumed);
      out.consumed += s.consumed;
      out.state = s.state;
      if (s.state != ChunkedDecoder::State::kData) break;
      if (s.consumed == 0) break;
    }
    fed += n;
  }
  out.trailers = std::string(decoder.trailers());
  out.too_large = decoder.bodyTooLarge();
  return out;
}

const std::string kBody =
    "5\r\nhello\r\n1;name=value;x=\"y\"\r\n \r\n10\r\n0123456789abcdef\r\n0\r\nX-Sum: 1\r\nY: "
    "2\r\n\r\n";

TEST(ChunkedDecoder, DecodesBodyExtensionsAndTrailers) {
  Decoded d = decode(kBody + "NEXT");
  EXPECT_EQ(d.state, ChunkedDecoder::State::kDone);
  EXPECT_EQ(d.body, "hello 0123456789abcdef");
  EXPECT_EQ(d.trailers, "X-Sum: 1\r\nY: 2\r\n");
  EXPECT_EQ(d.consumed, kBody.size());  // stops exactly at the end: NEXT is not consumed
}

TEST(ChunkedDecoder, EverySplitGivesTheSameBody) {
  for (size_t step = 1; step <= kBody.size(); ++step) {
    Decoded d = decode(kBody, step);
    ASSERT_EQ(d.state, ChunkedDecoder::State::kDone) << "step " << step;
    EXPECT_EQ(d.body, "hello 0123456789abcdef") << "step " << step;
    EXPECT_EQ(d.trailers, "X-Sum: 1\r\nY: 2\r\n") << "step " << step;
  }
}

TEST(ChunkedDecoder, EmptyBody) {
  Decoded d = decode("0\r\n\r\n");
  EXPECT_EQ(d.state, ChunkedDecoder::State::kDone);
  EXPECT_EQ(d.body, "");
  EXPECT_EQ(d.trailers, "");
}

TEST(ChunkedDecoder, UppercaseAndLeadingZeros) {
  Decoded d = decode("000A\r\n0123456789\r\n0\r\n\r\n");
  EXPECT_EQ(d.state, ChunkedDecoder::State::kDone);
  EXPECT_EQ(d.body, "0123456789");
}

TEST(ChunkedDecoder, Rejections) {
  const char* bad[] = {
      "\r\n",                           // no size
      "x\r\n",                          // not hex
      "-1\r\n",                         // sign
      " 5\r\nhello\r\n0\r\n\r\n",       // leading space
      "5 \r\nhello\r\n0\r\n\r\n",       // trailing space
      "11111111111111111\r\n",          // 17 hex digits
      "5\nhello\r\n0\r\n\r\n",          // bare LF after the size
      "5\r\rhello",                     // CR CR
      "5\r\nhelloX\r\n0\r\n\r\n",       // data longer than its size
      "5\r\nhello\n0\r\n\r\n",          // bare LF after data
      "5;a\x01\r\nhello\r\n0\r\n\r\n",  // control byte in an extension
      "0\r\nX: 1\n\r\n",                // bare LF in a trailer
      "0\r\nX : 1\r\n\r\n",             // invalid trailer name
      "0\r\n folded\r\n\r\n",           // obs-fold in the trailers
      "0\r\nX: a\rb\r\n\r\n",           // bare CR in a trailer
  };
  for (const char* text : bad) {
    for (size_t step : {size_t{0}, size_t{1}}) {
      Decoded d = decode(text, step);
      EXPECT_EQ(d.state, ChunkedDecoder::State::kError) << "'" << text << "' step " << step;
    }
  }
}

TEST(ChunkedDecoder, BodyLimit) {
  Decoded ok = decode("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n", 0, 10);
  EXPECT_EQ(ok.state, ChunkedDecoder::State::kDone);
  Decoded over = decode("5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n", 0, 10);
  EXPECT_EQ(over.state, ChunkedDecoder::State::kError);
  EXPECT_TRUE(over.too_large);
}

TEST(ChunkedDecoder, TrailerLimit) {
  ChunkedDecoder decoder(UINT64_MAX, 16);
  ChunkedDecoder::Step s = decoder.next("0\r\nX-Long-Trailer: 123456789\r\n\r\n");
  EXPECT_EQ(s.state, ChunkedDecoder::State::kError);
}

TEST(ChunkedDecoder, ErrorIsSticky) {
  ChunkedDecoder decoder;
  EXPECT_EQ(decoder.next("zz").state, ChunkedDecoder::State::kError);
  EXPECT_EQ(decoder.next("0\r\n\r\n").state, ChunkedDecoder::State::kError);
  decoder.reset();
  EXPECT_EQ(decoder.next("0\r\n\r\n").state, ChunkedDecoder::State::kDone);
}

}  // namespace
}  // namespace subgate::http1

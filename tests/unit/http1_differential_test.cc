// Our parser against another one (Node's former http_parser, from Debian): on valid requests
// both must read the same method, URL, headers, keep-alive and body; wherever http_parser
// rejects a request, ours must reject it too (ours is the stricter of the two).
// Always built with the tests: tests/CMakeLists.txt links http_parser by name.
#if !__has_include(<http_parser.h>)
#error "http_parser.h is missing: install libhttp-parser-dev (scripts/setup.sh test)"
#endif
#include <gtest/gtest.h>
#include <http_parser.h>

#include <string>
#include <utility>
#include <vector>

#include "core/http1/http1_parser.h"

namespace subgate::http1 {
namespace {

struct Reference {
  bool ok = false;
  std::string method;
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool keep_alive = false;
  bool complete = false;
};

Reference referenceParse(const std::string& text) {
  Reference out;
  http_parser parser;
  http_parser_init(&parser, HTTP_REQUEST);
  parser.data = &out;
  http_parser_settings settings;
  http_parser_settings_init(&settings);
  settings.on_url = [](http_parser* p, const char* at, size_t n) {
    static_cast<Reference*>(p->data)->url.append(at, n);
    return 0;
  };
  settings.on_header_field = [](http_parser* p, const char* at, size_t n) {
    auto* r = static_cast<Reference*>(p->data);
    if (r->headers.empty() || !r->headers.back().second.empty()) r->headers.emplace_back();
    r->headers.back().first.append(at, n);
    return 0;
  };
  settings.on_header_value = [](http_parser* p, const char* at, size_t n) {
    static_cast<Reference*>(p->data)->headers.back().second.append(at, n);
    return 0;
  };
  settings.on_headers_complete = [](http_parser* p) {
    auto* r = static_cast<Reference*>(p->data);
    r->method = http_method_str(static_cast<http_method>(p->method));
    r->keep_alive = http_should_keep_alive(p) != 0;
    return 0;
  };
  settings.on_body = [](http_parser* p, const char* at, size_t n) {
    static_cast<Reference*>(p->data)->body.append(at, n);
    return 0;
  };
  settings.on_message_complete = [](http_parser* p) {
    static_cast<Reference*>(p->data)->complete = true;
    return 1;  // stop after one message
  };
  http_parser_execute(&parser, &settings, text.data(), text.size());
  out.ok = HTTP_PARSER_ERRNO(&parser) == HPE_OK || HTTP_PARSER_ERRNO(&parser) == HPE_PAUSED ||
           (out.complete && HTTP_PARSER_ERRNO(&parser) == HPE_CB_message_complete);
  return out;
}

// Parses with ours: head, then the body by its framing.
bool oursParse(const std::string& text, Reference& out) {
  HeadParser parser(HeadParser::Mode::kRequest);
  if (parser.parse(text) != ParseStatus::kDone) return false;
  const MessageHead& head = parser.head();
  out.method = std::string(head.method);
  out.url = std::string(head.target);
  for (const HeaderField& f : head.headers) out.headers.emplace_back(f.name, f.value);
  out.keep_alive = head.keep_alive;
  std::string_view rest = std::string_view(text).substr(head.head_bytes);
  if (head.framing == BodyFraming::kContentLength) {
    if (rest.size() < head.content_length) return false;
    out.body = std::string(rest.substr(0, head.content_length));
  } else if (head.framing == BodyFraming::kChunked) {
    ChunkedDecoder decoder;
    for (int guard = 0; guard < 10000; ++guard) {
      ChunkedDecoder::Step step = decoder.next(rest);
      out.body.append(step.data);
      rest.remove_prefix(step.consumed);
      if (step.state == ChunkedDecoder::State::kError) return false;
      if (step.state == ChunkedDecoder::State::kDone) break;
      if (step.consumed == 0) return false;
    }
    // http_parser reports trailer fields as headers: list ours the same way.
    std::string_view trailers = decoder.trailers();
    while (!trailers.empty()) {
      size_t end = trailers.find("\r\n");
      std::string_view line = trailers.substr(0, end);
      size_t colon = line.find(':');
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
        value.remove_prefix(1);
      out.headers.emplace_back(line.substr(0, colon), value);
      trailers.remove_prefix(end + 2);
    }
  }
  return true;
}

const char* kValid[] = {
    "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    "GET /path/to?q=1&r=%20x HTTP/1.1\r\nHost: example.com:8080\r\nAccept: */*\r\nUser-Agent: "
    "t/1\r\n\r\n",
    "POST /submit HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nContent-Type: "
    "text/plain\r\n\r\nhello world",
    "PUT /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n "
    "world\r\n0\r\n\r\n",
    "DELETE /r/1 HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    "GET /old HTTP/1.0\r\n\r\n",
    "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "PATCH /p HTTP/1.1\r\nHost: h\r\nX-Spaces:   padded   \r\nX-Tab:\tt\r\n\r\n",
    "POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
    "chunked\r\n\r\na;ext=1\r\n0123456789\r\n0\r\nTrailer-X: 1\r\n\r\n",
    "GET http://proxy.example/abs HTTP/1.1\r\nHost: proxy.example\r\n\r\n",
    "HEAD / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"abc\"\r\n\r\n",
    "POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n",
};

const char* kInvalid[] = {
    "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "GET / HTTP/1.1\r\nHost h\r\n\r\n",
    "GET / HTTP/1.1\r\nHo st: h\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nX: \x01\r\n\r\n",
    "G@T / HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n",
    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX\r\n0\r\n\r\n",
};

TEST(Http1Differential, ValidRequestsAgree) {
  for (const char* text : kValid) {
    Reference ref = referenceParse(text);
    ASSERT_TRUE(ref.ok && ref.complete) << "reference rejected: " << text;
    Reference ours;
    ASSERT_TRUE(oursParse(text, ours)) << "ours rejected: " << text;
    EXPECT_EQ(ours.method, ref.method) << text;
    EXPECT_EQ(ours.url, ref.url) << text;
    EXPECT_EQ(ours.keep_alive, ref.keep_alive) << text;
    EXPECT_EQ(ours.body, ref.body) << text;
    ASSERT_EQ(ours.headers.size(), ref.headers.size()) << text;
    for (size_t i = 0; i < ref.headers.size(); ++i) {
      EXPECT_EQ(ours.headers[i].first, ref.headers[i].first) << text;
      // http_parser keeps trailing whitespace of values; we strip it (RFC 9110 OWS).
      std::string value = ref.headers[i].second;
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
      EXPECT_EQ(ours.headers[i].second, value) << text;
    }
  }
}

TEST(Http1Differential, WhatTheReferenceRejectsWeRejectToo) {
  for (const char* text : kInvalid) {
    Reference ref = referenceParse(text);
    Reference ours;
    bool ours_ok = oursParse(text, ours);
    if (!ref.ok) {
      EXPECT_FALSE(ours_ok) << "accepted what http_parser rejects: " << text;
    }
    EXPECT_FALSE(ours_ok) << "accepted: " << text;  // every one of these is invalid
  }
}

}  // namespace
}  // namespace subgate::http1

// Runs requests through the phase pipeline in memory, for module unit tests: a config compiled
// from text, a request head parsed from raw HTTP/1.1, and a transport that records what the
// Request hands it. No sockets, no worker threads, no isolate processes: modules that need a
// worker (proxying, isolates) are tested by the integration tier instead.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/http1/http1_parser.h"
#include "core/pipeline/config_loader.h"
#include "core/pipeline/request.h"

namespace subgate::test_support {

// What the client would have received.
class RecordingTransport final : public RequestTransport {
 public:
  int status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // produced, then extra, in order
  std::optional<uint64_t> content_length;
  std::string body;
  std::string trailers;
  bool ended = false;
  bool aborted = false;

  // The first value of `name` (any case), or nullopt.
  std::optional<std::string> header(std::string_view name) const {
    for (const auto& [key, value] : headers)
      if (http1::iequals(key, name)) return value;
    return std::nullopt;
  }
  size_t count(std::string_view name) const {
    size_t n = 0;
    for (const auto& [key, value] : headers) n += http1::iequals(key, name);
    return n;
  }

  void transportSendHead(const ResponseHead& head,
                         std::span<const std::pair<std::string, std::string>> extra) override {
    status = head.status;
    content_length = head.content_length;
    for (const http1::HeaderField& field : head.headers)
      headers.emplace_back(std::string(field.name), std::string(field.value));
    for (const auto& header : extra) headers.push_back(header);
  }
  bool transportSendBody(std::string_view data) override {
    body += data;
    return true;
  }
  void transportEndResponse(std::string_view trailer_lines) override {
    trailers = trailer_lines;
    ended = true;
  }
  void transportFlush() override {}
  void transportStartBody() override {}
  void transportResumeBody() override {}
  void transportAbort() override { aborted = true; }
  std::string_view transportProtocol() const override { return "HTTP/1.1"; }
};

// One compiled config and the requests run against it.
class PipelineHarness {
 public:
  // Compiles `config_text` (relative paths resolve against `prefix`); check ok() / error().
  explicit PipelineHarness(std::string_view config_text, std::string prefix = "/tmp") {
    ConfigSource source;
    source.text = config_text;
    source.prefix = std::move(prefix);
    config_ = loadConfig(source, error_);
  }
  bool ok() const { return config_ != nullptr; }
  const std::string& error() const { return error_; }
  const RuntimeConfig& config() const { return *config_; }

  // One request in flight: its parsed head, the Request and what its transport recorded.
  struct Exchange {
    http1::HeadParser parser{http1::HeadParser::Mode::kRequest};
    std::string raw;
    Request request;
    RecordingTransport transport;
  };

  // Parses `raw` ("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), serves it on the first listener's default
  // server (or the one whose server_name matches Host) and runs the pipeline. The request may
  // still be in flight when a module suspended it. Only the head is parsed: a Content-Length
  // is seen (client_max_body_size) but no body is delivered. The log phase runs when the test
  // calls request.runLogPhase(), as a transport does once the response is on the wire.
  std::unique_ptr<Exchange> run(std::string raw, std::string_view remote = "127.0.0.1") {
    auto exchange = std::make_unique<Exchange>();
    exchange->raw = std::move(raw);
    if (exchange->parser.parse(exchange->raw) != http1::ParseStatus::kDone) {
      ADD_FAILURE() << "unparsable request: " << exchange->parser.errorMessage();
      return exchange;
    }
    const http1::MessageHead& head = exchange->parser.head();
    const ListenConf& listen = config_->listens.front();
    const ServerConf& server = listen.findServer(head.find("host"));
    exchange->request.begin(&exchange->transport, nullptr, config_, &server, &head, remote);
    exchange->request.run();
    return exchange;
  }

  // run() for a GET of `path` with Host `host` and the extra header lines ("Name: value\r\n"...).
  std::unique_ptr<Exchange> get(std::string_view path, std::string_view extra_lines = {},
                                std::string_view host = "example.com") {
    std::string raw = "GET ";
    raw.append(path).append(" HTTP/1.1\r\nHost: ").append(host).append("\r\n");
    raw.append(extra_lines).append("\r\n");
    return run(std::move(raw));
  }

 private:
  std::shared_ptr<const RuntimeConfig> config_;
  std::string error_;
};

// The loader's error for a config that must be refused (a test failure, and "", if it loads).
inline std::string configError(std::string_view text) {
  PipelineHarness harness(text);
  EXPECT_FALSE(harness.ok()) << text;
  return harness.error();
}

// configError() of a server with `directive` at its own level (line 3), beside
// `location / { return 200; }`.
inline std::string serverDirectiveError(std::string_view directive) {
  std::string text = "server {\n listen 127.0.0.1:8080;\n ";
  text.append(directive).append("\n location / { return 200; }\n}\n");
  return configError(text);
}

}  // namespace subgate::test_support

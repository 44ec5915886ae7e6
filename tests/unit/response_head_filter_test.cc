// The response-head phase (Request::sendHead / respond with a location's head filters): what a
// filter adds and removes reaches the transport, for streamed and local responses alike, and 1xx
// heads pass untouched. The filter here is a test module; add_header's own tests are in
// headers_module_test.cc.
#include <gtest/gtest.h>

#include "core/pipeline/request.h"
#include "tests/support/pipeline_harness.h"

namespace subgate {
namespace {

using test_support::RecordingTransport;

// Removes x-secret and adds x-filtered: the edits a real filter (Envoy's encoder filters, nginx's
// header filters) makes.
class EditingModule final : public Module {
 public:
  std::string_view name() const override { return "editing"; }
  bool hasHeadFilter() const override { return true; }
  void filterHead(const Request&, const ModuleConf&, ResponseHeadEdit& edit) const override {
    ++calls;
    edit.remove("x-secret");
    edit.add("x-filtered", std::to_string(edit.status()));
  }
  mutable int calls = 0;
};

class ResponseHeadFilter : public ::testing::Test {
 protected:
  void SetUp() override {
    server_.unmatched.head_filter.push_back({&module_, std::make_shared<ModuleConf>()});
    ASSERT_EQ(parser_.parse(raw_), http1::ParseStatus::kDone);
    request_.begin(&transport_, nullptr, nullptr, &server_, &parser_.head(), "127.0.0.1");
  }

  EditingModule module_;
  ServerConf server_;
  std::string raw_ = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
  http1::HeadParser parser_{http1::HeadParser::Mode::kRequest};
  RecordingTransport transport_;
  Request request_;
};

TEST_F(ResponseHeadFilter, EditsAStreamedHead) {
  const http1::HeaderField fields[] = {
      {"X-Secret", "1"}, {"content-type", "text/plain"}, {"x-secret", "2"}};
  ResponseHead head;
  head.status = 200;
  head.headers = fields;
  request_.sendHead(head);
  EXPECT_EQ(module_.calls, 1);
  EXPECT_EQ(transport_.status, 200);
  EXPECT_EQ(transport_.count("x-secret"), 0u);
  EXPECT_EQ(transport_.header("content-type"), "text/plain");
  EXPECT_EQ(transport_.header("x-filtered"), "200");
}

TEST_F(ResponseHeadFilter, EditsALocalReply) {
  LocalReply reply;
  reply.status = 201;
  reply.body = "made";
  reply.headers.emplace_back("x-secret", "s");
  reply.headers.emplace_back("location", "/made");
  request_.respond(std::move(reply));
  EXPECT_EQ(module_.calls, 1);
  EXPECT_EQ(transport_.status, 201);
  EXPECT_FALSE(transport_.header("x-secret"));
  EXPECT_EQ(transport_.header("location"), "/made");
  EXPECT_EQ(transport_.header("x-filtered"), "201");
  EXPECT_EQ(transport_.body, "made");
  EXPECT_TRUE(transport_.ended);
}

TEST_F(ResponseHeadFilter, InformationalHeadsPassUntouched) {
  const http1::HeaderField fields[] = {{"x-secret", "1"}, {"upgrade", "websocket"}};
  ResponseHead head;
  head.status = 101;
  head.headers = fields;
  request_.sendHead(head);
  EXPECT_EQ(module_.calls, 0);
  EXPECT_EQ(transport_.header("x-secret"), "1");
  EXPECT_FALSE(transport_.header("x-filtered"));
}

TEST_F(ResponseHeadFilter, ALocationWithoutFiltersSendsTheHeadAsProduced) {
  server_.unmatched.head_filter.clear();
  const http1::HeaderField fields[] = {{"x-secret", "1"}};
  ResponseHead head;
  head.status = 200;
  head.headers = fields;
  request_.sendHead(head);
  EXPECT_EQ(module_.calls, 0);
  EXPECT_EQ(transport_.header("x-secret"), "1");
}

}  // namespace
}  // namespace subgate

// The pure parts of the subhosting ingress: x-forwarded-host syntax, x-deno-config parsing and
// the instance id of a request.
#include <gtest/gtest.h>

#include "core/ingress/host_syntax.h"
#include "core/ingress/instance_id.h"
#include "core/isolates/boot_client.h"

namespace subgate {
namespace {

TEST(HostSyntax, AcceptsNamesAddressesAndPorts) {
  for (const char* host : {"example.com", "example.com:8443", "a", "127.0.0.1", "127.0.0.1:80",
                           "[::1]", "[::1]:443", "[2001:db8::7]", "xn--bcher-kva.example",
                           "my_host.local", "a%20b", "[v1.fe80::a+en1]", "example.com:65535"}) {
    EXPECT_TRUE(isValidHostHeader(host)) << host;
  }
}

TEST(HostSyntax, RejectsEverythingElse) {
  for (const char* host : {"",
                           ":80",
                           "example.com:",
                           "example.com:65536",
                           "example.com:123456",
                           "exa mple",
                           "a/b",
                           "a?b",
                           "a#b",
                           "a@b",
                           "[::1",
                           "::1",
                           "[zz::1]",
                           "[::1]x",
                           "[::1]:",
                           "x:y:z",
                           "a%2",
                           "a%zz",
                           "[]",
                           "example.com:8a"}) {
    EXPECT_FALSE(isValidHostHeader(host)) << host;
  }
  EXPECT_FALSE(isValidHostHeader(std::string(256, 'a')));
  // A NUL inside an IPv6 literal: inet_pton saw "::" and the rest went unchecked.
  EXPECT_FALSE(isValidHostHeader(std::string("[::\0evil]", 9)));
  EXPECT_FALSE(isValidHostHeader(std::string("[::1\0]:80", 9)));
  EXPECT_TRUE(isValidHostHeader("[::ffff:192.0.2.1]")) << "an IPv4 tail stays valid";
}

TEST(DenoConfig, ParsesFields) {
  DeploymentCode code;
  std::string error;
  ASSERT_TRUE(parseDenoConfig(R"({"entrypoint":"file:///src/app.js","envs":{"A":"1","B":""},
      "permissions":{"net":["example.com","api.example:443"]},"unknown":[1,2]})",
                              code, error))
      << error;
  EXPECT_EQ(code.entry_path, "/src/app.js");
  EXPECT_EQ(code.envs_json, R"({"A":"1","B":""})");
  EXPECT_EQ(code.net, DeploymentCode::Net::kList);
  EXPECT_EQ(code.net_allow, (std::vector<std::string>{"example.com", "api.example:443"}));

  DeploymentCode minimal;
  ASSERT_TRUE(parseDenoConfig("{}", minimal, error));
  EXPECT_EQ(minimal.entry_path, "/src/main.ts");
  EXPECT_EQ(minimal.entrypoint, "file:///src/main.ts");
  EXPECT_EQ(minimal.net, DeploymentCode::Net::kAll);
  EXPECT_EQ(minimal.envs_json, "{}");

  DeploymentCode closed;
  ASSERT_TRUE(parseDenoConfig(R"({"permissions":{"net":false}})", closed, error));
  EXPECT_EQ(closed.net, DeploymentCode::Net::kNone);
  DeploymentCode empty_list;
  ASSERT_TRUE(parseDenoConfig(R"({"permissions":{"net":[]}})", empty_list, error));
  EXPECT_EQ(empty_list.net, DeploymentCode::Net::kNone);
}

TEST(DenoConfig, ParsesLayers) {
  DeploymentCode code;
  std::string error;
  ASSERT_TRUE(parseDenoConfig(R"({"layers":[{"kind":"eszip","id":"platform"},
      {"kind":"bundle","id":"user@1","specifier":"file:///src/user.js"}],"inline_layer":"user@1"})",
                              code, error))
      << error;
  ASSERT_EQ(code.layers.size(), 2u);
  EXPECT_EQ(code.layers[0].kind, CodeLayer::Kind::kEszip);
  EXPECT_EQ(code.layers[0].id, "platform");
  EXPECT_EQ(code.layers[1].kind, CodeLayer::Kind::kBundle);
  EXPECT_EQ(code.layers[1].specifier, "file:///src/user.js");
  EXPECT_EQ(code.inline_layer, "user@1");
  std::string many = R"({"layers":[)";
  for (size_t i = 0; i <= kMaxLayers; ++i)
    many += (i ? "," : "") + std::string(R"({"kind":"eszip","id":"l)") + std::to_string(i) + "\"}";
  DeploymentCode too_many;
  EXPECT_FALSE(parseDenoConfig(many + "]}", too_many, error));
}

TEST(DenoConfig, TheEntrypointMustBeALocalScriptInsideTheRoot) {
  DeploymentCode code;
  std::string error;
  for (const char* entry : {"file:///src/../../etc/passwd", "file:///src/x.exe", "file:///src/",
                            "https://example.com/main.ts", "file://host/main.ts", "main.ts",
                            "file:///src/main.ts?x=1", "file:///a%2fb.ts"}) {
    EXPECT_FALSE(parseDenoConfig(std::string(R"({"entrypoint":")") + entry + "\"}", code, error))
        << entry;
    EXPECT_NE(error.find("entrypoint"), std::string::npos) << error;
  }
  ASSERT_TRUE(parseDenoConfig(R"({"entrypoint":"file:///app/my%20site/main.tsx"})", code, error))
      << error;
  EXPECT_EQ(code.entry_path, "/app/my site/main.tsx");
}

TEST(DenoConfig, RejectsWrongTypesWithTheFieldName) {
  struct Case {
    const char* json;
    const char* mentions;
  } cases[] = {
      {"{not json", "not valid JSON"},
      {"[]", "not a JSON object"},
      {R"({"entrypoint":5})", "entrypoint"},
      {R"({"envs":[]})", "envs"},
      {R"({"envs":{"A":1}})", "\"A\""},
      {R"({"envs":{"A=B":"x"}})", "A=B"},
      {R"({"permissions":true})", "permissions"},
      {R"({"permissions":{"net":"yes"}})", "permissions.net"},
      {R"({"permissions":{"net":[1]}})", "permissions.net"},
      {R"({"permissions":{"net":["a b"]}})", "permissions.net"},
      {R"({"layers":[]})", "layers"},
      {R"({"layers":{}})", "layers"},
      {R"({"layers":[{"kind":"zip","id":"a"}]})", "unknown kind"},
      {R"({"layers":[{"kind":"eszip"}]})", "id"},
      {R"({"layers":[{"kind":"eszip","id":"a b"}]})", "id"},
      {R"({"layers":[{"kind":"eszip","id":"a"},{"kind":"eszip","id":"a"}]})", "twice"},
      {R"({"layers":[{"kind":"eszip","id":"a","specifier":"file:///a.ts"}]})", "specifier"},
      {R"({"layers":[{"kind":"eszip","id":"a"}],"inline_layer":"b"})", "not one of the layers"},
      {R"({"inline_layer":"x"})", "inline_layer"},
      {R"({"a":1,"a":2})", "not valid JSON"},
  };
  for (const Case& c : cases) {
    DeploymentCode code;
    std::string error;
    EXPECT_FALSE(parseDenoConfig(c.json, code, error)) << c.json;
    EXPECT_NE(error.find(c.mentions), std::string::npos) << c.json << " -> " << error;
  }
}

TEST(InstanceId, HeaderWinsOverQuery) {
  EXPECT_EQ(requestInstanceId("foo", "deno_isolate_instance_id=bar"), "foo");
  EXPECT_EQ(requestInstanceId("", "a=1&deno_isolate_instance_id=bar&b=2"), "bar");
  EXPECT_EQ(requestInstanceId("", "deno_isolate_instance_id=a%20b+c"), "a b c");
  EXPECT_EQ(requestInstanceId("", "x=1"), "");
  EXPECT_EQ(requestInstanceId("", ""), "");
  EXPECT_EQ(requestInstanceId("", "xdeno_isolate_instance_id=1"), "");
}

TEST(InstanceId, RejectsEmptyOversizedAndBadEncoding) {
  EXPECT_FALSE(requestInstanceId("", "deno_isolate_instance_id="));
  EXPECT_FALSE(requestInstanceId("", "deno_isolate_instance_id=%zz"));
  EXPECT_FALSE(requestInstanceId("", "deno_isolate_instance_id=%4"));
  EXPECT_FALSE(requestInstanceId(std::string(257, 'x'), ""));
  EXPECT_TRUE(requestInstanceId(std::string(256, 'x'), ""));
}

}  // namespace
}  // namespace subgate

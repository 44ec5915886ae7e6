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
}

TEST(DenoConfig, ParsesFields) {
  DeploymentCode code;
  std::string error;
  ASSERT_TRUE(parseDenoConfig(R"({"entrypoint":"file:///src/app.js","envs":{"A":"1","B":""},
      "permissions":{"net":["example.com","api.example:443"]},"unknown":[1,2]})",
                              code, error))
      << error;
  EXPECT_EQ(code.entry_file, "app.js");
  EXPECT_EQ(code.envs_json, R"({"A":"1","B":""})");
  EXPECT_EQ(code.net, DeploymentCode::Net::kList);
  EXPECT_EQ(code.net_allow, (std::vector<std::string>{"example.com", "api.example:443"}));

  DeploymentCode minimal;
  ASSERT_TRUE(parseDenoConfig("{}", minimal, error));
  EXPECT_EQ(minimal.entry_file, "main.ts");
  EXPECT_EQ(minimal.net, DeploymentCode::Net::kAll);
  EXPECT_EQ(minimal.envs_json, "{}");

  DeploymentCode closed;
  ASSERT_TRUE(parseDenoConfig(R"({"permissions":{"net":false}})", closed, error));
  EXPECT_EQ(closed.net, DeploymentCode::Net::kNone);
  DeploymentCode empty_list;
  ASSERT_TRUE(parseDenoConfig(R"({"permissions":{"net":[]}})", empty_list, error));
  EXPECT_EQ(empty_list.net, DeploymentCode::Net::kNone);
}

TEST(DenoConfig, EntryFileNeverEscapesTheCodeFolder) {
  DeploymentCode code;
  std::string error;
  for (const char* entry :
       {"file:///src/../../etc/passwd", "file:///src/x.exe", "file:///src/", "file:///a b.ts"}) {
    ASSERT_TRUE(parseDenoConfig(std::string(R"({"entrypoint":")") + entry + "\"}", code, error));
    EXPECT_EQ(code.entry_file, "main.ts") << entry;
  }
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
      {R"({"layers":[]})", "ESZIP"},
      {R"({"inline_layer":"x"})", "ESZIP"},
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

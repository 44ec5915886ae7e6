#include "core/pipeline/config_loader.h"

#include <gtest/gtest.h>

namespace subgate {
namespace {

std::shared_ptr<const RuntimeConfig> load(std::string_view text, std::string& err) {
  ConfigSource source;
  source.text = text;
  source.prefix = "/tmp";
  return loadConfig(source, err);
}

std::string errorOf(std::string_view text) {
  std::string err;
  auto config = load(text, err);
  EXPECT_EQ(config, nullptr) << text;
  return err;
}

constexpr const char* kMinimal = R"(
server {
    listen 127.0.0.1:8080;
    location / { return 200 "ok"; }
}
)";

TEST(ConfigLoader, LoadsTheMinimalConfig) {
  std::string err;
  auto config = load(kMinimal, err);
  ASSERT_TRUE(config) << err;
  ASSERT_EQ(config->listens.size(), 1u);
  EXPECT_EQ(config->listens[0].address.text, "127.0.0.1:8080");
  EXPECT_EQ(config->workers, 1);
}

TEST(ConfigLoader, ErrorsNameFileLineAndDirective) {
  EXPECT_EQ(errorOf("bogus 1;\nserver { location / { return 200; } }"),
            "<embedded>:1: unknown directive \"bogus\"");
  EXPECT_EQ(errorOf("server {\n listen 1;\n location / { return 200; }\n workers 2;\n}"),
            "<embedded>:4: \"workers\" directive is not allowed here");
  EXPECT_EQ(errorOf("workers 1 2;\nserver { location / { return 200; } }"),
            "<embedded>:1: invalid number of arguments in \"workers\" directive");
  EXPECT_EQ(errorOf("workers 1;\nworkers 2;\nserver { location / { return 200; } }"),
            "<embedded>:2: \"workers\" directive is duplicate");
  EXPECT_EQ(errorOf("workers zero;\nserver { location / { return 200; } }"),
            "<embedded>:1: invalid number \"zero\" in \"workers\" directive");
  EXPECT_EQ(errorOf("server {\n client_max_body_size 12q;\n location / { return 200; } }"),
            "<embedded>:2: invalid size \"12q\" in \"client_max_body_size\" directive");
  EXPECT_EQ(errorOf("server {\n keepalive_timeout soon;\n location / { return 200; } }"),
            "<embedded>:2: invalid duration \"soon\" in \"keepalive_timeout\" directive");
  EXPECT_EQ(errorOf("server { listen 1; listen 1;\n location / { return 200; } }"),
            "<embedded>:1: duplicate listen 0.0.0.0:1");
  EXPECT_EQ(errorOf("server {\n location / { }\n}"),
            "<embedded>:2: location \"/\" has no content handler (return or proxy_pass)");
  EXPECT_EQ(errorOf("server {\n location / { return 200; proxy_pass http://127.0.0.1:1; }\n}"),
            "<embedded>:2: more than one content handler (upstream and return)");
  EXPECT_EQ(errorOf("server {\n location / { proxy_pass http://nowhere; }\n}"),
            "<embedded>:2: no upstream \"nowhere\" (and not an address with a port)");
  EXPECT_EQ(errorOf("upstream u {\n}\nserver { location / { return 200; } }"),
            "<embedded>:1: upstream \"u\" has no servers");
  EXPECT_EQ(errorOf("upstream u { server 127.0.0.1:1; }\nupstream u { server 127.0.0.1:2; }\n"
                    "server { location / { return 200; } }"),
            "<embedded>:2: duplicate upstream \"u\"");
  EXPECT_EQ(
      errorOf("upstream u { server 127.0.0.1:1 weight=3; }\nserver { location / { return 200; } }"),
      "<embedded>:1: invalid server parameter \"weight=3\"");
  EXPECT_TRUE(errorOf("server {\n location ~ ( { return 200; }\n}")
                  .starts_with("<embedded>:2: invalid regex \"(\": offset 1: "));
  EXPECT_EQ(errorOf("server {\n location / { return 2000; }\n}"),
            "<embedded>:2: invalid return code \"2000\"");
  EXPECT_EQ(errorOf("server {\n location / { proxy_pass https://127.0.0.1:1; }\n}"),
            "<embedded>:2: proxy_pass to https:// upstreams is not supported yet");
  EXPECT_EQ(errorOf("server {\n location / { return 200; request_timeout 0s; }\n}"),
            "<embedded>:2: invalid duration \"0s\" in \"request_timeout\" directive");
  EXPECT_EQ(errorOf("server {\n location / { access_log stderr xml; return 200; }\n}"),
            "<embedded>:2: unknown log format \"xml\" (combined, json or a log_format name)");
  EXPECT_EQ(errorOf("keepalive 3;\nserver { location / { return 200; } }"),
            "<embedded>:1: \"keepalive\" directive is not allowed here");
  EXPECT_EQ(errorOf("workers 2;"), "<embedded>: no \"server\" block");
}

TEST(ConfigLoader, LocationsMatchLikeNginx) {
  std::string err;
  auto config = load(R"(
server {
    listen 127.0.0.1:8080;
    location / { return 200 "root"; }
    location /api/ { return 200 "api"; }
    location /api/v2/ { return 200 "v2"; }
    location = /api/ { return 200 "exact"; }
    location ~ \.php$ { return 200 "php"; }
    location ~* \.JPG$ { return 200 "jpg"; }
}
)",
                     err);
  ASSERT_TRUE(config) << err;
  const ServerConf& server = *config->servers[0];
  EXPECT_EQ(server.match("/x").pattern, "/");
  EXPECT_EQ(server.match("/api/").match, LocationConf::Match::kExact);
  EXPECT_EQ(server.match("/api/x").pattern, "/api/");
  EXPECT_EQ(server.match("/api/v2/x").pattern, "/api/v2/");
  EXPECT_EQ(server.match("/api/v2/index.php").pattern, "\\.php$");  // regex beats prefix
  EXPECT_EQ(server.match("/a/B.jpg").pattern, "\\.JPG$");
}

TEST(ConfigLoader, UnmatchedPathsFallBackToTheServer) {
  std::string err;
  auto config = load("server { location /a { return 200; } }", err);
  ASSERT_TRUE(config) << err;
  const LocationConf& fallback = config->servers[0]->match("/b");
  EXPECT_EQ(fallback.content.module, nullptr);  // answered 404 NOT_FOUND
  auto with_default = load("server { return 204; location /a { return 200; } }", err);
  ASSERT_TRUE(with_default) << err;
  EXPECT_NE(with_default->servers[0]->match("/b").content.module, nullptr);
}

TEST(ConfigLoader, LocationContentHandlerBeatsInheritedOne) {
  std::string err;
  auto config = load(R"(
server {
    proxy_pass http://127.0.0.1:9;
    location /ok { return 200; }
    location /up { client_max_body_size 0; }
}
)",
                     err);
  ASSERT_TRUE(config) << err;
  EXPECT_EQ(config->servers[0]->match("/ok").content.module->name(), "return");
  EXPECT_EQ(config->servers[0]->match("/up").content.module->name(), "upstream");
  EXPECT_EQ(config->servers[0]->match("/up").core.max_body_bytes, 0u);
}

TEST(ConfigLoader, CoreSettingsInheritAndOverride) {
  std::string err;
  auto config = load(R"(
client_max_body_size 2m;
server {
    client_body_timeout 5s;
    client_max_header_size 4k;
    location /a { return 200; }
    location /b { client_max_body_size 10k; client_body_timeout 1s; return 200; }
}
)",
                     err);
  ASSERT_TRUE(config) << err;
  const ServerConf& server = *config->servers[0];
  EXPECT_EQ(server.match("/a").core.max_body_bytes, 2u << 20);
  EXPECT_EQ(server.match("/a").core.client_body_timeout, std::chrono::seconds(5));
  EXPECT_EQ(server.match("/b").core.max_body_bytes, 10u << 10);
  EXPECT_EQ(server.match("/b").core.client_body_timeout, std::chrono::seconds(1));
  EXPECT_EQ(server.core.head_limits.max_head_bytes, 4096u);
}

TEST(ConfigLoader, ServersShareAListenAndAreChosenByName) {
  std::string err;
  auto config = load(R"(
server { listen 127.0.0.1:8080; server_name a.example; location / { return 200 "a"; } }
server { listen 127.0.0.1:8080; server_name B.example; location / { return 200 "b"; } }
)",
                     err);
  ASSERT_TRUE(config) << err;
  ASSERT_EQ(config->listens.size(), 1u);
  const ListenConf& listen = config->listens[0];
  EXPECT_EQ(&listen.findServer("b.example:8080"), config->servers[1].get());
  EXPECT_EQ(&listen.findServer("A.EXAMPLE"), config->servers[0].get());
  EXPECT_EQ(&listen.findServer("other"), config->servers[0].get());  // the default server
}

TEST(ConfigLoader, WorkersAuto) {
  std::string err;
  auto config = load("workers auto;\nserver { location / { return 200; } }", err);
  ASSERT_TRUE(config) << err;
  EXPECT_GE(config->workers, 1);
}

TEST(ConfigLoader, IoUringIsOnUnlessTurnedOff) {
  std::string err;
  auto config = load(kMinimal, err);
  ASSERT_TRUE(config) << err;
  EXPECT_TRUE(config->io_uring);
  config = load(std::string("io_uring off;\n") + kMinimal, err);
  ASSERT_TRUE(config) << err;
  EXPECT_FALSE(config->io_uring);
  EXPECT_EQ(errorOf("io_uring maybe;\nserver { location / { return 200; } }"),
            "<embedded>:1: invalid value \"maybe\" in \"io_uring\" directive, it must be \"on\" or "
            "\"off\"");
  EXPECT_EQ(errorOf("server {\n io_uring on;\n location / { return 200; } }"),
            "<embedded>:2: \"io_uring\" directive is not allowed here");
}

TEST(ConfigLoader, IoCoalesceTakesMicrosecondsOrOff) {
  std::string err;
  auto config = load(kMinimal, err);
  ASSERT_TRUE(config) << err;
  EXPECT_EQ(config->io_coalesce, std::chrono::microseconds(20));
  config = load(std::string("io_coalesce off;\n") + kMinimal, err);
  ASSERT_TRUE(config) << err;
  EXPECT_EQ(config->io_coalesce, std::chrono::microseconds(0));
  config = load(std::string("io_coalesce 1000us;\n") + kMinimal, err);
  ASSERT_TRUE(config) << err;
  EXPECT_EQ(config->io_coalesce, std::chrono::microseconds(1000));
  config = load(std::string("io_coalesce 1ms;\n") + kMinimal, err);  // the config's duration units
  ASSERT_TRUE(config) << err;
  EXPECT_EQ(config->io_coalesce, std::chrono::microseconds(1000));
  for (const char* bad : {"0us", "1001us", "20", "us", "20ms", "-5us", "2x0us", "fast"}) {
    EXPECT_EQ(
        errorOf(std::string("io_coalesce ") + bad + ";\nserver { location / { return 200; } }"),
        std::string("<embedded>:1: invalid value \"") + bad +
            "\" in \"io_coalesce\" directive (off, or 1us to 1000us)")
        << bad;
  }
}

}  // namespace
}  // namespace subgate

namespace subgate {
namespace {

TEST(ConfigLoader, ListenHttp2) {
  std::string err;
  auto config = load(R"(
server { listen 127.0.0.1:8080 http2; location / { return 200; } }
server { listen 127.0.0.1:8080 http2; server_name b; location / { return 200; } }
server { listen 127.0.0.1:8081; location / { return 200; } }
)",
                     err);
  ASSERT_TRUE(config) << err;
  ASSERT_EQ(config->listens.size(), 2u);
  EXPECT_TRUE(config->listens[0].http2);
  EXPECT_FALSE(config->listens[0].ssl);
  EXPECT_TRUE(config->listens[0].offersHttp2());
  EXPECT_FALSE(config->listens[1].http2);
  EXPECT_EQ(errorOf("server { listen 1 http2 http2; location / { return 200; } }"),
            "<embedded>:1: invalid listen parameter \"http2\" (expected ssl or http2)");
  EXPECT_EQ(errorOf("server { listen 1 h2; location / { return 200; } }"),
            "<embedded>:1: invalid listen parameter \"h2\" (expected ssl or http2)");
  EXPECT_EQ(errorOf("server { listen 1 http2; location / { return 200; } }\n"
                    "server { listen 1; location / { return 200; } }"),
            "<embedded>:2: listen 0.0.0.0:1 is used with and without http2");
  EXPECT_EQ(
      errorOf("server { listen 1 ssl http2; location / { return 200; } }"),
      "<embedded>:1: listen 1 ssl needs ssl_certificate and ssl_certificate_key in its server");
}

}  // namespace
}  // namespace subgate

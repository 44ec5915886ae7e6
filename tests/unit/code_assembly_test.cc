// core/isolates/code_assembly.h: a deployment's code, from the /boot body and its layers.
#include "core/isolates/code_assembly.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "core/bundle/eszip.h"
#include "core/bundle/eszip_writer.h"

namespace subgate {
namespace {

using bundle::EszipModuleKind;

std::string eszipOf(std::vector<std::pair<std::string, std::string>> modules,
                    std::vector<std::pair<std::string, std::string>> redirects = {}) {
  bundle::Eszip eszip;
  for (auto& [specifier, source] : modules)
    eszip.modules.push_back(
        {specifier,
         specifier.ends_with(".json") ? EszipModuleKind::kJson : EszipModuleKind::kJavaScript,
         source, ""});
  for (auto& [specifier, target] : redirects) eszip.redirects.push_back({specifier, target});
  return bundle::writeEszip(eszip);
}

DeploymentCode configured(const std::string& entrypoint = "file:///src/main.ts") {
  DeploymentCode code;
  code.entrypoint = entrypoint;
  return code;
}

LayerFetch noLayers() {
  return [](const CodeLayer&, CodeFailure& failure) {
    failure.message = "unexpected";
    return std::optional<std::string>();
  };
}

const DeploymentModule* find(const DeploymentCode& code, const std::string& specifier) {
  for (const DeploymentModule& module : code.modules)
    if (module.specifier == specifier) return &module;
  return nullptr;
}

TEST(CodeAssembly, AOneModuleBodyIsTheEntrypoint) {
  DeploymentCode code = configured("file:///app/server.js");
  CodeFailure failure;
  ASSERT_TRUE(assembleCode(code, "Deno.serve(() => new Response('x'));", noLayers(), {}, failure))
      << failure.message;
  ASSERT_EQ(code.modules.size(), 1u);
  EXPECT_EQ(code.modules[0].specifier, "file:///app/server.js");
  EXPECT_EQ(code.modules[0].path, "/app/server.js");
  EXPECT_FALSE(code.modules[0].in_deno_dir);
  EXPECT_EQ(code.modules[0].bytes, "Deno.serve(() => new Response('x'));");
}

TEST(CodeAssembly, AnEszipBodyGivesLocalFilesAndCachedRemoteModules) {
  DeploymentCode code = configured();
  CodeFailure failure;
  const std::string body =
      eszipOf({{"file:///src/main.ts", "import './data.json';"},
               {"file:///src/data.json", "{}"},
               {"https://example.com/v1/lib.ts", "export const x: number = 1;"}},
              {{"https://example.com/lib.ts", "https://example.com/v1/lib.ts"}});
  ASSERT_TRUE(assembleCode(code, body, noLayers(), {}, failure)) << failure.message;
  EXPECT_EQ(code.bytes, body.size());
  ASSERT_EQ(code.modules.size(), 4u);
  EXPECT_EQ(find(code, "file:///src/data.json")->path, "/src/data.json");
  const DeploymentModule* remote = find(code, "https://example.com/v1/lib.ts");
  ASSERT_NE(remote, nullptr);
  EXPECT_TRUE(remote->in_deno_dir);
  EXPECT_TRUE(remote->path.starts_with("remote/https/example.com/")) << remote->path;
  EXPECT_NE(remote->bytes.find("application/typescript"), std::string::npos) << remote->bytes;
  const DeploymentModule* redirect = find(code, "https://example.com/lib.ts");
  ASSERT_NE(redirect, nullptr);
  EXPECT_NE(redirect->bytes.find("\"location\""), std::string::npos) << redirect->bytes;
}

TEST(CodeAssembly, LaterLayersReplaceEarlierModulesAndOthersAreFetched) {
  DeploymentCode code = configured();
  code.layers = {{CodeLayer::Kind::kEszip, "base", ""},
                 {CodeLayer::Kind::kEszip, "user", ""},
                 {CodeLayer::Kind::kBundle, "patch", "file:///src/patch.js"}};
  code.inline_layer = "user";
  std::map<std::string, std::string> served = {
      {"base", eszipOf({{"file:///src/config.ts", "base"}, {"file:///lib/base.ts", "lib"}})},
      {"patch", "patched"}};
  std::vector<std::string> asked;
  auto fetch = [&](const CodeLayer& layer, CodeFailure&) {
    asked.push_back(layer.id);
    return std::optional<std::string>(served.at(layer.id));
  };
  CodeFailure failure;
  ASSERT_TRUE(assembleCode(
      code, eszipOf({{"file:///src/main.ts", "main"}, {"file:///src/config.ts", "user"}}), fetch,
      {}, failure))
      << failure.message;
  EXPECT_EQ(asked, (std::vector<std::string>{"base", "patch"}));
  EXPECT_EQ(code.modules.size(), 4u);
  EXPECT_EQ(find(code, "file:///src/config.ts")->bytes, "user");
  EXPECT_EQ(find(code, "file:///lib/base.ts")->bytes, "lib");
  EXPECT_EQ(find(code, "file:///src/patch.js")->bytes, "patched");
}

TEST(CodeAssembly, AFailedLayerFetchIsTheAnswer) {
  DeploymentCode code = configured();
  code.layers = {{CodeLayer::Kind::kEszip, "gone", ""}};
  auto fetch = [](const CodeLayer&, CodeFailure& failure) {
    failure = {ErrorKind::kOriginBootRpcError, "status 404"};
    return std::optional<std::string>();
  };
  CodeFailure failure;
  EXPECT_FALSE(assembleCode(code, "", fetch, {}, failure));
  EXPECT_EQ(failure.error, ErrorKind::kOriginBootRpcError);
  EXPECT_EQ(failure.message, "status 404");
}

TEST(CodeAssembly, RefusesWhatCannotBeLoaded) {
  struct Case {
    std::string body;
    std::string mentions;
    BundleLimits limits;
  };
  BundleLimits two_modules;
  two_modules.max_modules = 2;
  BundleLimits small_modules;
  small_modules.max_module_bytes = 4;
  const std::string valid = eszipOf({{"file:///src/main.ts", "x"}});
  const Case cases[] = {
      {valid.substr(0, valid.size() - 3), "not a valid ESZIP", {}},
      {eszipOf({{"file:///src/other.ts", "x"}}), "entrypoint", {}},
      {eszipOf({{"file:///src/main.ts", "x"}, {"npm:chalk", "x"}}), "only file:", {}},
      {eszipOf({{"file:///src/main.ts", "x"}, {"file:///src/../x.ts", "x"}}), "segment", {}},
      {eszipOf({{"file:///src/main.ts", "x"}}, {{"file:///a.ts", "file:///src/main.ts"}}),
       "redirect",
       {}},
      {eszipOf({{"file:///src/main.ts", "x"}, {"file:///a.ts", "a"}, {"file:///b.ts", "b"}}),
       "bundle_max_modules", two_modules},
      {"a module body over the size", "bundle_max_module_size", small_modules},
  };
  for (const Case& c : cases) {
    DeploymentCode code = configured();
    CodeFailure failure;
    EXPECT_FALSE(assembleCode(code, c.body, noLayers(), c.limits, failure)) << c.mentions;
    EXPECT_EQ(failure.error, ErrorKind::kOriginInvalidBundle) << c.mentions;
    EXPECT_NE(failure.message.find(c.mentions), std::string::npos) << failure.message;
  }
}

TEST(CodeAssembly, TheLayersTogetherAreBounded) {
  DeploymentCode code = configured();
  code.layers = {{CodeLayer::Kind::kBundle, "a", "file:///src/a.js"},
                 {CodeLayer::Kind::kBundle, "b", ""}};
  BundleLimits limits;
  limits.max_bytes = 10;
  auto fetch = [](const CodeLayer&, CodeFailure&) {
    return std::optional<std::string>(std::string(8, 'x'));
  };
  CodeFailure failure;
  EXPECT_FALSE(assembleCode(code, "", fetch, limits, failure));
  EXPECT_NE(failure.message.find("bundle_max_bytes"), std::string::npos) << failure.message;
}

}  // namespace
}  // namespace subgate

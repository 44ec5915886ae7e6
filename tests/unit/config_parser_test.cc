#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "core/config/config_ast.h"

namespace subgate::config {
namespace {

std::optional<Node> parse(std::string_view text, std::string& err, const std::string& prefix = "") {
  ConfigError error;
  auto root = parseText(text, "t.conf", prefix, error);
  err = error.message;
  return root;
}

std::string errorOf(std::string_view text, const std::string& prefix = "") {
  std::string err;
  EXPECT_FALSE(parse(text, err, prefix)) << text;
  return err;
}

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/subgate-conf-XXXXXX";
    path_ = mkdtemp(pattern);
  }
  ~TempDir() { std::system(("rm -rf " + path_).c_str()); }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(path_ + "/" + name) << text;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ConfigParser, Grammar) {
  std::string err;
  auto root = parse(
      "# comment\n"
      "a 1 two;  # trailing comment\n"
      "block x {\n"
      "  inner \"quoted ; { } # text\" 'single';\n"
      "  nested { deep; }\n"
      "}\n"
      "word#notcomment;\n",
      err);
  ASSERT_TRUE(root) << err;
  ASSERT_EQ(root->children.size(), 3u);
  const Node& a = root->children[0];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.args, (std::vector<std::string>{"1", "two"}));
  EXPECT_EQ(a.line, 2);
  EXPECT_EQ(a.where(), "t.conf:2");
  const Node& block = root->children[1];
  EXPECT_TRUE(block.is_block);
  EXPECT_EQ(block.args, (std::vector<std::string>{"x"}));
  ASSERT_EQ(block.children.size(), 2u);
  EXPECT_EQ(block.children[0].args[0], "quoted ; { } # text");
  EXPECT_EQ(block.children[0].args[1], "single");
  EXPECT_EQ(block.children[0].line, 4);
  EXPECT_EQ(block.child("nested")->children[0].name, "deep");
  EXPECT_EQ(root->children[2].name, "word#notcomment");
}

TEST(ConfigParser, EscapesAndMultilineStrings) {
  std::string err;
  auto root = parse("a \"q\\\"x\\\\y\\n\\t\\z\" 'it\\'s';\nb \"one\ntwo\";\nc;\n", err);
  ASSERT_TRUE(root) << err;
  EXPECT_EQ(root->children[0].args[0], "q\"x\\y\n\t\\z");
  EXPECT_EQ(root->children[0].args[1], "it's");
  EXPECT_EQ(root->children[1].args[0], "one\ntwo");
  EXPECT_EQ(root->children[2].line, 4);  // lines inside strings are counted
}

// nginx reads `${name}` inside an unquoted word as a variable, not as a block (log_format).
TEST(ConfigParser, BracedVariablesStayInTheirWord) {
  std::string err;
  auto root = parse("f a${x}b ${y} $ {\n  inner;\n}\n", err);
  ASSERT_TRUE(root) << err;
  ASSERT_EQ(root->children.size(), 1u);
  const Node& f = root->children[0];
  EXPECT_EQ(f.args, (std::vector<std::string>{"a${x}b", "${y}", "$"}));
  EXPECT_TRUE(f.is_block);  // a `{` after whitespace still opens a block
  ASSERT_EQ(f.children.size(), 1u);
}

TEST(ConfigParser, EveryErrorMessage) {
  EXPECT_EQ(errorOf("a;\n}\n"), "t.conf:2: unexpected \"}\"");
  EXPECT_EQ(errorOf("a;\n;\n"), "t.conf:2: unexpected \";\"");
  EXPECT_EQ(errorOf("{ a; }"), "t.conf:1: unexpected \"{\"");
  EXPECT_EQ(errorOf("a b"), "t.conf:1: unexpected end of file, expecting \";\" or \"}\"");
  EXPECT_EQ(errorOf("a {\n b;\n"), "t.conf:3: unexpected end of file, expecting \"}\"");
  EXPECT_EQ(errorOf("a {\n b c }\n"), "t.conf:2: unexpected \"}\"");
  EXPECT_EQ(errorOf("a \"open;\n"), "t.conf:1: unterminated string");
  EXPECT_EQ(errorOf("include a b;"), "t.conf:1: \"include\" takes one argument");
  EXPECT_EQ(errorOf("include a { }"), "t.conf:1: \"include\" takes no block");
  EXPECT_EQ(errorOf("include /nonexistent/file.conf;"),
            "t.conf:1: include \"/nonexistent/file.conf\": no such file");
  ConfigError error;
  EXPECT_FALSE(parseFile("/nonexistent/subgate.conf", "", error));
  EXPECT_EQ(error.message, "/nonexistent/subgate.conf: cannot open: No such file or directory");
}

TEST(ConfigParser, IncludesExpandInPlaceWithTheirOwnLines) {
  TempDir dir;
  dir.write("b.conf", "from_b 1;\n\nfrom_b 2;\n");
  dir.write("a.conf", "from_a;\n");
  std::string err;
  auto root = parse("first;\nblock {\n include *.conf;\n}\nlast;\n", err, dir.path());
  ASSERT_TRUE(root) << err;
  const Node& block = root->children[1];
  ASSERT_EQ(block.children.size(), 3u);
  EXPECT_EQ(block.children[0].name, "from_a");  // sorted: a.conf before b.conf
  EXPECT_EQ(block.children[2].where(), dir.path() + "/b.conf:3");
  EXPECT_EQ(root->children[2].name, "last");
  // A wildcard that matches nothing is fine.
  EXPECT_TRUE(parse("include nothing*.conf;\n", err, dir.path())) << err;
}

TEST(ConfigParser, IncludeErrorsPointIntoTheIncludedFile) {
  TempDir dir;
  dir.write("bad.conf", "ok;\nbroken {\n");
  EXPECT_EQ(errorOf("include bad.conf;", dir.path()),
            dir.path() + "/bad.conf:3: unexpected end of file, expecting \"}\"");
}

TEST(ConfigParser, IncludeCyclesAndDepth) {
  TempDir dir;
  dir.write("self.conf", "include self.conf;\n");
  EXPECT_EQ(errorOf("include self.conf;", dir.path()),
            dir.path() + "/self.conf:1: include cycle through \"" + dir.path() + "/self.conf\"");
  // A chain deeper than 16 files. The names are appended, not built with `"literal" + string`:
  // GCC 12 at -O3 warns (-Wrestrict, a false positive) on that operator+ once inlined.
  auto chainFile = [](int i) { return std::string("d").append(std::to_string(i)).append(".conf"); };
  for (int i = 0; i < 20; ++i)
    dir.write(chainFile(i), std::string("include ").append(chainFile(i + 1)).append(";\n"));
  dir.write("d20.conf", "end;\n");
  std::string err = errorOf("include d0.conf;", dir.path());
  EXPECT_NE(err.find("include nesting is deeper than 16"), std::string::npos) << err;
}

// A device never ends (/dev/zero) and opening a FIFO blocks: only regular files are read, and
// anything else is named in the error before it is opened.
TEST(ConfigParser, OnlyRegularFilesAreRead) {
  TempDir dir;
  ASSERT_EQ(mkdir((dir.path() + "/sub.conf").c_str(), 0700), 0);
  ASSERT_EQ(mkfifo((dir.path() + "/pipe.conf").c_str(), 0600), 0);
  EXPECT_EQ(errorOf("include /dev/zero;"),
            "t.conf:1: include \"/dev/zero\": \"/dev/zero\" is not a regular file");
  EXPECT_EQ(
      errorOf("include pipe.conf;", dir.path()),
      "t.conf:1: include \"pipe.conf\": \"" + dir.path() + "/pipe.conf\" is not a regular file");
  // A wildcard's matches are checked too: here the directory sorts first.
  dir.write("z.conf", "ok;\n");
  EXPECT_EQ(errorOf("\ninclude s*.conf;", dir.path()),
            "t.conf:2: include \"s*.conf\": \"" + dir.path() + "/sub.conf\" is not a regular file");
  ConfigError error;
  EXPECT_FALSE(parseFile("/dev/zero", "", error));
  EXPECT_EQ(error.message, "/dev/zero: not a regular file");
  EXPECT_FALSE(parseFile(dir.path() + "/pipe.conf", "", error));
  EXPECT_EQ(error.message, dir.path() + "/pipe.conf: not a regular file");
}

// Untrusted text (the fuzz target's) may not make the parser read the host's files.
TEST(ConfigParser, RefusedIncludesNeverTouchTheFilesystem) {
  TempDir dir;
  dir.write("a.conf", "from_a;\n");
  ConfigError error;
  EXPECT_FALSE(parseText("x;\ninclude a.conf;", "t.conf", dir.path(), error, IncludeMode::kRefuse));
  EXPECT_EQ(error.message, "t.conf:2: \"include\" is not allowed here");
  error = {};
  EXPECT_FALSE(parseText("include /*/*/*/*/*/*;", "t.conf", "", error, IncludeMode::kRefuse));
  EXPECT_EQ(error.message, "t.conf:1: \"include\" is not allowed here");
  EXPECT_TRUE(parseText("include a.conf;", "t.conf", dir.path(), error));
}

TEST(ConfigValues, Sizes) {
  EXPECT_EQ(parseSize("0"), 0u);
  EXPECT_EQ(parseSize("512"), 512u);
  EXPECT_EQ(parseSize("64k"), 64u << 10);
  EXPECT_EQ(parseSize("16M"), 16u << 20);
  EXPECT_EQ(parseSize("2g"), 2ull << 30);
  for (const char* bad :
       {"", "k", "1.5k", "1kb", "-1", "1t", "99999999999999999999", "17179869184g"})
    EXPECT_FALSE(parseSize(bad)) << bad;
}

TEST(ConfigValues, Durations) {
  using std::chrono::milliseconds;
  EXPECT_EQ(parseDuration("30"), milliseconds(30000));
  EXPECT_EQ(parseDuration("500ms"), milliseconds(500));
  EXPECT_EQ(parseDuration("30s"), milliseconds(30000));
  EXPECT_EQ(parseDuration("5m"), milliseconds(300000));
  EXPECT_EQ(parseDuration("2h"), milliseconds(7200000));
  EXPECT_EQ(parseDuration("1d"), milliseconds(86400000));
  EXPECT_EQ(parseDuration("1m30s"), milliseconds(90000));
  EXPECT_EQ(parseDuration("0s"), milliseconds(0));
  for (const char* bad : {"", "s", "5y", "1.5s", "-1s", "1m30", "99999999999999999999d", " 5s"})
    EXPECT_FALSE(parseDuration(bad)) << bad;
  // Microseconds only where they make whole milliseconds.
  EXPECT_EQ(parseDuration("2000us"), milliseconds(2));
  EXPECT_FALSE(parseDuration("1500us"));
}

TEST(ConfigValues, FineDurations) {
  using std::chrono::microseconds;
  EXPECT_EQ(parseFineDuration("20us"), microseconds(20));
  EXPECT_EQ(parseFineDuration("1ms"), microseconds(1000));
  EXPECT_EQ(parseFineDuration("1ms500us"), microseconds(1500));
  EXPECT_EQ(parseFineDuration("2"), microseconds(2000000));
  EXPECT_EQ(parseFineDuration("1d"), microseconds(86400000000LL));
  for (const char* bad : {"", "us", "20u", "20 us", "-5us", "1.5us", "9999999999999999d"})
    EXPECT_FALSE(parseFineDuration(bad)) << bad;
}

TEST(ConfigValues, Flags) {
  EXPECT_EQ(parseFlag("on"), true);
  EXPECT_EQ(parseFlag("off"), false);
  EXPECT_FALSE(parseFlag("yes"));
}

}  // namespace
}  // namespace subgate::config

// The nginx-style configuration language: lexer, parser, `include`, and value parsers.
//
// Grammar: a file is a list of statements. A statement is a directive name followed by zero or
// more arguments and either `;` or a block `{ statements }`. Arguments are bare words or quoted
// strings ('...' or "..." with \" \' \\ \n \t escapes). `#` starts a comment to end of line
// (outside quotes). `include PATTERN;` is expanded in place at parse time (glob, sorted;
// relative patterns resolve against the prefix directory); include cycles and depth > 16 are
// errors.
//
// Errors are reported as "FILE:LINE: message" in ConfigError::message. The parser stops at the
// first error. Pure functions of their inputs plus the filesystem for includes; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace subgate::config {

struct Node {
  std::string name;               // directive name
  std::vector<std::string> args;  // arguments, quotes removed, escapes resolved
  bool is_block = false;          // ended with a { } block rather than ';'
  std::vector<Node> children;     // block contents when is_block
  std::string file;               // file the directive came from ("<embedded>" for text)
  int line = 0;                   // 1-based line of the directive name

  // "file:line" for error messages.
  std::string where() const;
  // First child directive with this name, or nullptr.
  const Node* child(std::string_view child_name) const;
};

struct ConfigError {
  std::string message;  // "file:line: what is wrong", empty when no error
  explicit operator bool() const { return !message.empty(); }
};

// Parses a file. `prefix` is the directory relative include patterns resolve against. The file
// and every file an include matches must be regular files (not a directory, device or FIFO).
// Returns the root node (name "", is_block true, children = top-level statements).
std::optional<Node> parseFile(const std::string& path, const std::string& prefix, ConfigError& err);

// What parseText does with `include`: kFollow expands it as parseFile does; kRefuse makes it an
// error without touching the filesystem (for text from an untrusted source, such as a fuzzer's,
// whose `include /*/*/*/*` would walk the whole host).
enum class IncludeMode { kFollow, kRefuse };

// Parses text already in memory; `file_name` is used in error messages.
std::optional<Node> parseText(std::string_view text, const std::string& file_name,
                              const std::string& prefix, ConfigError& err,
                              IncludeMode includes = IncludeMode::kFollow);

// "512", "64k", "16m", "1g" (case-insensitive suffix, powers of 1024). nullopt if malformed
// or overflowing.
std::optional<uint64_t> parseSize(std::string_view text);

// "500ms", "30s", "5m", "2h", "1d"; a bare number means seconds. nullopt if malformed,
// negative or overflowing.
std::optional<std::chrono::milliseconds> parseDuration(std::string_view text);
// parseDuration's syntax plus microseconds ("20us"), for settings finer than a millisecond.
std::optional<std::chrono::microseconds> parseFineDuration(std::string_view text);

// "on" / "off". nullopt otherwise.
std::optional<bool> parseFlag(std::string_view text);

}  // namespace subgate::config

// Lexer and parser of the config language, with `include` expansion.
//
// Error messages (each prefixed with "FILE:LINE: "):
//   unexpected "}"                         a "}" with no open block
//   unexpected ";"                         an empty statement
//   unexpected "{"                         a block with no directive name
//   unexpected end of file, expecting ";" or "}"   a directive cut off at the end of the file
//   unexpected end of file, expecting "}"  an unclosed block
//   unterminated string                    a quote with no closing quote
//   include "P": no such file              a pattern without wildcards that matches nothing
//   include "P": cannot read               glob(3) failed
//   include "P": "F" is not a regular file a match that is a directory, device, FIFO, ...
//   "include" is not allowed here          IncludeMode::kRefuse
//   include nesting is deeper than 16      includes of includes of ...
//   include cycle through "F"              a file that includes itself, directly or not
//   "include" takes one argument / takes no block
// and the file reader's errors (core/files/read_file.h): "FILE: cannot open: REASON", "FILE: not
// a regular file", ...
#include <glob.h>
#include <sys/stat.h>

#include "core/config/config_ast.h"
#include "core/files/read_file.h"

namespace subgate::config {
namespace {

constexpr int kMaxIncludeDepth = 16;

struct Token {
  enum class Kind { kWord, kSemicolon, kOpen, kClose, kEnd } kind;
  std::string text;
  int line;
};

class Lexer {
 public:
  Lexer(std::string_view text, const std::string& file) : text_(text), file_(file) {}

  // Returns false with `err` set on a lexical error.
  bool next(Token& token, ConfigError& err) {
    skipSpaceAndComments();
    token.line = line_;
    token.text.clear();
    if (pos_ >= text_.size()) {
      token.kind = Token::Kind::kEnd;
      return true;
    }
    char c = text_[pos_];
    if (c == ';' || c == '{' || c == '}') {
      ++pos_;
      token.kind = c == ';'   ? Token::Kind::kSemicolon
                   : c == '{' ? Token::Kind::kOpen
                              : Token::Kind::kClose;
      token.text = c;
      return true;
    }
    token.kind = Token::Kind::kWord;
    if (c == '"' || c == '\'') return quoted(c, token, err);
    while (pos_ < text_.size()) {
      c = text_[pos_];
      // `${name}` inside a word is a variable (log_format), not a block: as nginx reads it.
      if (c == '{' && !token.text.empty() && token.text.back() == '$') {
        const size_t close = text_.find('}', pos_);
        if (close != std::string_view::npos &&
            text_.substr(pos_, close - pos_).find_first_of(" \t\r\n;\"'") ==
                std::string_view::npos) {
          token.text.append(text_.substr(pos_, close + 1 - pos_));
          pos_ = close + 1;
          continue;
        }
      }
      if (isSpace(c) || c == ';' || c == '{' || c == '}' || c == '"' || c == '\'') break;
      token.text += c;
      ++pos_;
    }
    return true;
  }

 private:
  static bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

  void skipSpaceAndComments() {
    while (pos_ < text_.size()) {
      char c = text_[pos_];
      if (c == '\n') {
        ++line_;
        ++pos_;
      } else if (isSpace(c)) {
        ++pos_;
      } else if (c == '#') {
        while (pos_ < text_.size() && text_[pos_] != '\n') ++pos_;
      } else {
        return;
      }
    }
  }

  bool quoted(char quote, Token& token, ConfigError& err) {
    int start_line = line_;
    ++pos_;
    while (pos_ < text_.size()) {
      char c = text_[pos_++];
      if (c == quote) return true;
      if (c == '\n') ++line_;
      if (c == '\\' && pos_ < text_.size()) {
        char e = text_[pos_++];
        switch (e) {
          case '"':
          case '\'':
          case '\\': token.text += e; break;
          case 'n': token.text += '\n'; break;
          case 't': token.text += '\t'; break;
          default:
            if (e == '\n') ++line_;
            token.text += '\\';
            token.text += e;
        }
        continue;
      }
      token.text += c;
    }
    err.message = file_ + ":" + std::to_string(start_line) + ": unterminated string";
    return false;
  }

  std::string_view text_;
  const std::string& file_;
  size_t pos_ = 0;
  int line_ = 1;
};

// Whether `path` names a regular file (following symlinks). Each include match is checked here
// so that the error names the include and its line; readRegularFile checks again as it opens.
bool isRegularFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

class Parser {
 public:
  Parser(const std::string& prefix, IncludeMode includes, ConfigError& err)
      : prefix_(prefix), includes_(includes), err_(err) {}

  bool parseFileInto(const std::string& path, std::vector<Node>& out, int depth) {
    std::string text;
    std::string error;
    if (!files::readRegularFile(path, text, error)) {
      err_.message = error;
      return false;
    }
    for (const std::string& open : stack_) {
      if (open == path) {
        err_.message = path + ": include cycle through \"" + path + "\"";
        return false;
      }
    }
    stack_.push_back(path);
    bool ok = parseTextInto(text, path, out, depth);
    stack_.pop_back();
    return ok;
  }

  bool parseTextInto(std::string_view text, const std::string& file, std::vector<Node>& out,
                     int depth) {
    Lexer lexer(text, file);
    return parseBlock(lexer, file, out, depth, false);
  }

 private:
  bool fail(const std::string& file, int line, const std::string& message) {
    err_.message = file + ":" + std::to_string(line) + ": " + message;
    return false;
  }

  // Parses statements until "}" (when `nested`) or the end of the text.
  bool parseBlock(Lexer& lexer, const std::string& file, std::vector<Node>& out, int depth,
                  bool nested) {
    Token token;
    for (;;) {
      if (!lexer.next(token, err_)) return false;
      switch (token.kind) {
        case Token::Kind::kEnd:
          if (nested) return fail(file, token.line, "unexpected end of file, expecting \"}\"");
          return true;
        case Token::Kind::kClose:
          if (!nested) return fail(file, token.line, "unexpected \"}\"");
          return true;
        case Token::Kind::kSemicolon: return fail(file, token.line, "unexpected \";\"");
        case Token::Kind::kOpen: return fail(file, token.line, "unexpected \"{\"");
        case Token::Kind::kWord:
          if (!parseStatement(lexer, file, std::move(token), out, depth)) return false;
          break;
      }
    }
  }

  bool parseStatement(Lexer& lexer, const std::string& file, Token name, std::vector<Node>& out,
                      int depth) {
    Node node;
    node.name = std::move(name.text);
    node.file = file;
    node.line = name.line;
    Token token;
    for (;;) {
      if (!lexer.next(token, err_)) return false;
      if (token.kind == Token::Kind::kWord) {
        node.args.push_back(std::move(token.text));
        continue;
      }
      if (token.kind == Token::Kind::kEnd)
        return fail(file, token.line, "unexpected end of file, expecting \";\" or \"}\"");
      if (token.kind == Token::Kind::kClose) return fail(file, token.line, "unexpected \"}\"");
      break;
    }
    if (token.kind == Token::Kind::kOpen) {
      if (node.name == "include") return fail(file, node.line, "\"include\" takes no block");
      node.is_block = true;
      if (!parseBlock(lexer, file, node.children, depth, true)) return false;
      out.push_back(std::move(node));
      return true;
    }
    if (node.name == "include") return include(node, out, depth);
    out.push_back(std::move(node));
    return true;
  }

  bool include(const Node& node, std::vector<Node>& out, int depth) {
    if (node.args.size() != 1) return fail(node.file, node.line, "\"include\" takes one argument");
    if (depth + 1 > kMaxIncludeDepth)
      return fail(node.file, node.line,
                  "include nesting is deeper than " + std::to_string(kMaxIncludeDepth));
    if (includes_ == IncludeMode::kRefuse)
      return fail(node.file, node.line, "\"include\" is not allowed here");
    std::string pattern = node.args[0];
    if (!pattern.empty() && pattern[0] != '/' && !prefix_.empty())
      pattern = prefix_ + "/" + pattern;
    glob_t matches{};
    int rc = glob(pattern.c_str(), 0, nullptr, &matches);
    bool has_wildcard = node.args[0].find_first_of("*?[") != std::string::npos;
    if (rc == GLOB_NOMATCH) {
      globfree(&matches);
      if (has_wildcard) return true;
      return fail(node.file, node.line, "include \"" + node.args[0] + "\": no such file");
    }
    if (rc != 0) {
      globfree(&matches);
      return fail(node.file, node.line, "include \"" + node.args[0] + "\": cannot read");
    }
    std::vector<std::string> files(matches.gl_pathv, matches.gl_pathv + matches.gl_pathc);
    globfree(&matches);  // glob sorts its results
    for (const std::string& path : files) {
      if (!isRegularFile(path))
        return fail(node.file, node.line,
                    "include \"" + node.args[0] + "\": \"" + path + "\" is not a regular file");
      for (const std::string& open : stack_) {
        if (open == path)
          return fail(node.file, node.line, "include cycle through \"" + path + "\"");
      }
      if (!parseFileInto(path, out, depth + 1)) return false;
    }
    return true;
  }

  const std::string& prefix_;
  IncludeMode includes_;
  ConfigError& err_;
  std::vector<std::string> stack_;  // files being parsed, outermost first
};

}  // namespace

std::optional<Node> parseFile(const std::string& path, const std::string& prefix,
                              ConfigError& err) {
  Node root;
  root.is_block = true;
  root.file = path;
  Parser parser(prefix, IncludeMode::kFollow, err);
  if (!parser.parseFileInto(path, root.children, 0)) return std::nullopt;
  return root;
}

std::optional<Node> parseText(std::string_view text, const std::string& file_name,
                              const std::string& prefix, ConfigError& err, IncludeMode includes) {
  Node root;
  root.is_block = true;
  root.file = file_name;
  Parser parser(prefix, includes, err);
  if (!parser.parseTextInto(text, file_name, root.children, 0)) return std::nullopt;
  return root;
}

}  // namespace subgate::config

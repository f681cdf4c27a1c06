// Slack message text both ways; see slack/format.hpp for the rules.

#include "slack/format.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

namespace backline::slack {
namespace {

// ---------------------------------------------------------------- helpers

bool is_ascii_alnum(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_ascii_digit(char c) { return c >= '0' && c <= '9'; }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
// A "word" character for mrkdwn boundaries: ASCII letters and digits, and any
// byte of a non-ASCII UTF-8 sequence (letters of other scripts).
bool is_word(char c) { return is_ascii_alnum(c) || static_cast<unsigned char>(c) >= 0x80; }
// What backline::extract_mentions reads as part of a handle.
bool is_handle_char(char c) { return is_ascii_alnum(c) || c == '-' || c == '_' || c == '.'; }
// Characters of emoji-datasource short names (checked by the generator).
bool is_emoji_name_char(char c) {
  return (c >= 'a' && c <= 'z') || is_ascii_digit(c) || c == '_' || c == '+' || c == '-';
}

// Calls a lookup; an empty function or one that throws means "not found".
template <class F>
std::optional<std::string> call(const F& f, std::string_view arg) {
  if (!f)
    return std::nullopt;
  try {
    return f(arg);
  } catch (...) {
    return std::nullopt;
  }
}

// Slack ids (U…, W…, S…, C…) as we accept them from a lookup into a token.
bool valid_id(std::string_view id) {
  if (id.empty() || id.size() > 255)
    return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return is_ascii_alnum(c) || c == '_' || c == '-' || c == '.'; });
}

// Length of the UTF-8 sequence starting at s[i] when it is a valid one
// (no overlongs, surrogates or code points past U+10FFFF), else 1.
std::size_t utf8_len(std::string_view s, std::size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80)
    return 1;
  std::size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c == 0xE0) {
    len = 3, lo = 0xA0;
  } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
    len = 3;
  } else if (c == 0xED) {
    len = 3, hi = 0x9F;
  } else if (c == 0xF0) {
    len = 4, lo = 0x90;
  } else if (c >= 0xF1 && c <= 0xF3) {
    len = 4;
  } else if (c == 0xF4) {
    len = 4, hi = 0x8F;
  } else {
    return 1;
  }
  if (len > s.size() - i)
    return 1;
  const auto second = static_cast<unsigned char>(s[i + 1]);
  if (second < lo || second > hi)
    return 1;
  for (std::size_t k = 2; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if (b < 0x80 || b > 0xBF)
      return 1;
  }
  return len;
}

// &amp; &lt; &gt; → & < >, once; any other '&' stays.
std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '&') {
      if (s.substr(i, 5) == "&amp;") {
        out += '&', i += 5;
        continue;
      }
      if (s.substr(i, 4) == "&lt;") {
        out += '<', i += 4;
        continue;
      }
      if (s.substr(i, 4) == "&gt;") {
        out += '>', i += 4;
        continue;
      }
    }
    out += s[i++];
  }
  return out;
}

// A name from a lookup or a label, fit to stand in one line of text:
// control characters become spaces, surrounding blanks go.
std::string clean_name(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out += (u < 0x20 || u == 0x7F) ? ' ' : c;
  }
  const auto b = out.find_first_not_of(' ');
  if (b == std::string::npos)
    return {};
  const auto e = out.find_last_not_of(' ');
  return out.substr(b, e - b + 1);
}

// Does s[i..] look like a CommonMark entity or numeric character reference
// without its '&' ("amp;", "#123;")?
bool entity_like(std::string_view rest) {
  std::size_t k = 0;
  while (k < rest.size() && k < 40 && (is_ascii_alnum(rest[k]) || (k == 0 && rest[k] == '#')))
    ++k;
  return k > 0 && k < rest.size() && rest[k] == ';';
}

// The backslash escape CommonMark needs for a literal character in running
// text (not at the start of a line).
bool md_needs_escape(char c, bool prev_word, bool next_word, bool entity_follows) {
  switch (c) {
  case '\\': case '*': case '`': case '[': case ']': case '<': case '~':
    return true;
  case '_':  // intraword '_' never emphasises in CommonMark
    return !(prev_word && next_word);
  case '&':
    return entity_follows;
  default:
    return false;
  }
}

// A whole string as literal CommonMark inline text (names, labels).
std::string md_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 8);
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool prev_word = i > 0 && is_word(s[i - 1]);
    const bool next_word = i + 1 < s.size() && is_word(s[i + 1]);
    if (md_needs_escape(c, prev_word, next_word, c == '&' && entity_like(s.substr(i + 1))))
      out += '\\';
    out += c;
  }
  return out;
}

// A link destination for [label](dest): no spaces, controls or angle
// brackets; parentheses and backslashes escaped.
std::string md_destination(std::string_view url) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(url.size() + 8);
  for (char c : url) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7F || c == '<' || c == '>') {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    } else {
      if (c == '(' || c == ')' || c == '\\')
        out += '\\';
      out += c;
    }
  }
  return out;
}

bool autolink_safe(std::string_view url) {
  return std::none_of(url.begin(), url.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7F || c == '<' || c == '>';
  });
}

// "scheme:" of a URL, lower-cased; empty when there is none.
std::string url_scheme(std::string_view url) {
  if (url.empty() || !((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
    return {};
  std::string scheme;
  for (std::size_t i = 0; i < url.size() && i < 33; ++i) {
    const char c = url[i];
    if (c == ':')
      return scheme;
    if (!(is_ascii_alnum(c) || c == '+' || c == '.' || c == '-'))
      return {};
    scheme += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return {};
}

// ---------------------------------------------------------------- inbound: tokens

struct token_out {
  std::string text;
  std::string md;
};

token_out name_token(char sigil, std::string name) {
  token_out t;
  t.text = sigil + name;
  t.md = sigil + md_escape(name);
  return t;
}

// The inside of <…>; nothing when it is no token (then it is literal text).
std::optional<token_out> render_token(std::string_view inner, const name_lookup& names) {
  const auto bar = inner.find('|');
  const std::string_view head = inner.substr(0, bar);
  const bool has_label = bar != std::string_view::npos;
  const std::string label = has_label ? clean_name(unescape(inner.substr(bar + 1))) : std::string{};
  auto strip = [](std::string s, char sigil) {
    if (!s.empty() && s.front() == sigil)
      s.erase(0, 1);
    return clean_name(s);
  };
  auto resolve = [&](const auto& fn, std::string_view id, char sigil) -> std::optional<token_out> {
    std::string name;
    if (auto found = call(fn, id))
      name = strip(*found, sigil);
    if (name.empty())
      name = strip(label, sigil);
    if (name.empty())
      name = clean_name(unescape(id));
    if (name.empty())
      return std::nullopt;
    return name_token(sigil, std::move(name));
  };

  if (head.empty())
    return std::nullopt;
  if (head.front() == '@')
    return resolve(names.user_display_name, head.substr(1), '@');
  if (head.front() == '#')
    return resolve(names.channel_name, head.substr(1), '#');
  if (head.front() == '!') {
    const std::string_view cmd = head.substr(1);
    if (cmd.starts_with("subteam^"))
      return resolve(names.usergroup_handle, cmd.substr(8), '@');
    if (cmd == "here" || cmd == "channel" || cmd == "everyone")
      return name_token('@', std::string(cmd));
    // <!date^…|fallback> and friends: the fallback text, else the raw command.
    std::string shown = !label.empty() ? label : clean_name(unescape(cmd));
    if (shown.empty())
      return std::nullopt;
    return token_out{shown, md_escape(shown)};
  }

  // A link.
  const std::string url = unescape(head);
  const std::string scheme = url_scheme(url);
  if (scheme.empty())
    return std::nullopt;
  const bool mailto = scheme == "mailto";
  const std::string shown_url = mailto ? url.substr(7) : url;
  const bool plain = label.empty() || label == url || label == shown_url;
  token_out t;
  t.text = plain ? shown_url : label + " (" + shown_url + ")";
  const bool linkable = scheme == "http" || scheme == "https" || scheme == "ftp" || mailto;
  if (!linkable || shown_url.empty())
    t.md = md_escape(t.text);
  else if (plain && !mailto && autolink_safe(url))
    t.md = "<" + url + ">";
  else
    t.md = "[" + md_escape(plain ? shown_url : label) + "](" + md_destination(url) + ")";
  return t;
}

// ---------------------------------------------------------------- inbound: atoms

// The message, read once: each atom is a byte, an unescaped entity or a token.
struct atom {
  enum kind_t : std::uint8_t { byte, entity, token } kind;
  char c;           // byte, entity
  std::uint32_t t;  // token: index into tokens
};

struct message {
  std::vector<atom> atoms;
  std::vector<token_out> tokens;

  bool raw(std::size_t i, char c) const { return atoms[i].kind == atom::byte && atoms[i].c == c; }
  bool gt(std::size_t i) const { return atoms[i].kind != atom::token && atoms[i].c == '>'; }
  bool word(std::size_t i) const { return atoms[i].kind != atom::token && is_word(atoms[i].c); }
  bool fence(std::size_t i) const {
    return i + 3 <= atoms.size() && raw(i, '`') && raw(i + 1, '`') && raw(i + 2, '`');
  }
  // Code content: entities unescaped, tokens in their plain-text form.
  std::string plain(std::size_t lo, std::size_t hi) const {
    std::string out;
    for (std::size_t i = lo; i < hi; ++i)
      if (atoms[i].kind == atom::token)
        out += tokens[atoms[i].t].text;
      else
        out += atoms[i].c;
    return out;
  }
};

message lex(std::string_view s, const name_lookup& names) {
  message m;
  m.atoms.reserve(s.size());
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (c == '<') {
      std::size_t j = i + 1;
      while (j < s.size() && s[j] != '>' && s[j] != '<' && s[j] != '\n')
        ++j;
      if (j < s.size() && s[j] == '>' && j > i + 1) {
        if (auto t = render_token(s.substr(i + 1, j - i - 1), names)) {
          m.atoms.push_back({atom::token, 0, static_cast<std::uint32_t>(m.tokens.size())});
          m.tokens.push_back(std::move(*t));
          i = j + 1;
          continue;
        }
      }
    } else if (c == '&') {
      if (s.substr(i, 5) == "&amp;") {
        m.atoms.push_back({atom::entity, '&', 0});
        i += 5;
        continue;
      }
      if (s.substr(i, 4) == "&lt;" || s.substr(i, 4) == "&gt;") {
        m.atoms.push_back({atom::entity, s[i + 1] == 'l' ? '<' : '>', 0});
        i += 4;
        continue;
      }
    }
    m.atoms.push_back({atom::byte, c, 0});
    ++i;
  }
  return m;
}

// ---------------------------------------------------------------- inbound: output

// Builds the plain text and the CommonMark side by side. CommonMark is kept
// as lines, each quoted or not, so quotes and fenced blocks get their own lines.
class emitter {
public:
  std::string text;

  void set_quoted(bool q) { quoted_ = q; }

  // Markup or already-escaped CommonMark.
  void md(std::string_view s) {
    if (s.empty())
      return;
    line_ += s;
    start_ = 2;
    after_pre_ = false;
  }

  // One literal character of running text, escaped as CommonMark needs.
  void literal(char c, bool prev_word, bool next_word, bool entity_follows) {
    text += c;
    if (c == ' ' && after_pre_ && line_.empty())
      return;  // "```x``` more": the line after the fence starts at "more"
    bool esc = md_needs_escape(c, prev_word, next_word, entity_follows);
    switch (c) {
    case '#': case '-': case '+': case '=': case '>': case '|':
      esc = esc || start_ == 0;  // headings, lists, setext lines, quotes, tables
      break;
    case '.': case ')':
      esc = esc || start_ == 1;  // "1. " ordered lists
      break;
    default:
      break;
    }
    if (esc)
      line_ += '\\';
    line_ += c;
    after_pre_ = false;
    if (c == ' ' && start_ == 0)
      start_ = 0;
    else if (is_ascii_digit(c) && start_ <= 1)
      start_ = 1;
    else
      start_ = 2;
  }

  void newline() {
    text += '\n';
    if (after_pre_ && line_.empty())
      after_pre_ = false;  // the newline that ends the closing fence's line
    else
      push_line();
  }

  // A ``` block: its content as is (plain text, one leading and trailing
  // newline already dropped).
  void pre(std::string_view content) {
    text += content;
    while (!line_.empty() && line_.back() == ' ')
      line_.pop_back();
    if (!line_.empty())
      push_line();
    std::size_t run = 0, longest = 0;
    for (char c : content) {
      run = c == '`' ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    const std::string fence(std::max<std::size_t>(3, longest + 1), '`');
    line_ = fence;
    push_line();
    for (std::size_t b = 0; !content.empty();) {
      const auto e = content.find('\n', b);
      line_ = content.substr(b, e == std::string_view::npos ? std::string_view::npos : e - b);
      push_line();
      if (e == std::string_view::npos)
        break;
      b = e + 1;
    }
    line_ = fence;
    push_line();
    after_pre_ = true;
  }

  std::string finish() {
    if (!(after_pre_ && line_.empty()))
      push_line();
    return std::move(md_);
  }

private:
  void push_line() {
    if (any_)
      md_ += '\n';
    // A quote swallows the next line unless a blank line ends it.
    if (any_ && prev_quoted_ && !quoted_ && !line_.empty())
      md_ += '\n';
    if (quoted_) {
      md_ += '>';
      if (!line_.empty())
        md_ += ' ';
    }
    md_ += line_;
    any_ = true;
    prev_quoted_ = quoted_;
    line_.clear();
    start_ = 0;
    after_pre_ = false;
  }

  std::string md_;
  std::string line_;  // the current CommonMark line, without its "> "
  bool quoted_ = false;
  bool prev_quoted_ = false;
  bool any_ = false;
  bool after_pre_ = false;
  int start_ = 0;  // 0: only spaces on the line so far, 1: spaces then digits, 2: anything else
};

// One line of running text (no newline, no ``` block), as a row of items.
struct item {
  enum kind_t : std::uint8_t { lit, tok, emoji, code } kind;
  bool raw = false;          // lit: a byte of the message, not an unescaped entity
  char c = 0;                // lit
  std::uint32_t a = 0, b = 0;  // tok: a = token index; code: atoms [a, b)
  std::string_view e;        // emoji
};

int marker_index(const item& it) {
  if (it.kind != item::lit || !it.raw)
    return -1;
  switch (it.c) {
  case '*': return 0;
  case '_': return 1;
  case '~': return 2;
  default: return -1;
  }
}

class line_renderer {
public:
  line_renderer(const message& m, emitter& out) : m_(m), out_(out) {}

  void render(std::size_t lo, std::size_t hi) {
    read_items(lo, hi);
    find_markers();
    emit(0, items_.size(), 0);
  }

private:
  void read_items(std::size_t lo, std::size_t hi) {
    items_.clear();
    const auto& at = m_.atoms;
    for (std::size_t i = lo; i < hi;) {
      if (m_.raw(i, '`')) {  // `code`: up to the next backtick, not empty
        std::size_t k = i + 1;
        while (k < hi && !m_.raw(k, '`'))
          ++k;
        if (k < hi && k > i + 1) {
          items_.push_back({item::code, false, 0, static_cast<std::uint32_t>(i + 1), static_cast<std::uint32_t>(k), {}});
          i = k + 1;
          continue;
        }
      } else if (m_.raw(i, ':') && !(i > lo && m_.word(i - 1))) {
        if (auto n = read_emoji(i, hi)) {
          i = n;
          continue;
        }
      }
      if (at[i].kind == atom::token)
        items_.push_back({item::tok, false, 0, at[i].t, 0, {}});
      else
        items_.push_back({item::lit, at[i].kind == atom::byte, at[i].c, 0, 0, {}});
      ++i;
    }
  }

  // :name: or :name::skin-tone-N: at atom i; returns the atom after it, or 0.
  std::size_t read_emoji(std::size_t i, std::size_t hi) {
    static constexpr std::size_t max_name = 64;
    std::size_t j = i + 1;
    std::string name;
    while (j < hi && j - i <= max_name && m_.atoms[j].kind == atom::byte && is_emoji_name_char(m_.atoms[j].c))
      name += m_.atoms[j++].c;
    if (name.empty() || j >= hi || !m_.raw(j, ':'))
      return 0;
    auto found = emoji_for_shortcode(name);
    if (!found)
      return 0;
    std::size_t end = j + 1;
    static constexpr std::string_view tone = ":skin-tone-N:";
    if (hi - end >= tone.size()) {
      bool match = true;
      for (std::size_t k = 0; k < tone.size() && match; ++k)
        match = m_.atoms[end + k].kind == atom::byte &&
                (tone[k] == 'N' ? (m_.atoms[end + k].c >= '2' && m_.atoms[end + k].c <= '6')
                                : m_.atoms[end + k].c == tone[k]);
      if (match) {
        const std::string key = name + "::skin-tone-" + m_.atoms[end + 11].c;
        if (auto toned = emoji_for_shortcode(key)) {
          found = toned;
          end += tone.size();
        }
      }
    }
    items_.push_back({item::emoji, false, 0, 0, 0, *found});
    return end;
  }

  bool word(std::size_t k) const { return items_[k].kind == item::lit && is_word(items_[k].c); }
  bool space(std::size_t k) const { return items_[k].kind == item::lit && is_space(items_[k].c); }

  // Slack's rule: a marker opens after a non-word (or the line's start) and
  // before a non-blank; it closes after a non-blank and before a non-word
  // (or the line's end). A doubled marker ("**") neither opens nor closes.
  void find_markers() {
    const std::size_t n = items_.size();
    opener_.assign(n, false);
    for (auto& c : closers_)
      c.clear();
    for (std::size_t k = 0; k < n; ++k) {
      const int m = marker_index(items_[k]);
      if (m < 0)
        continue;
      opener_[k] = (k == 0 || !word(k - 1)) && k + 1 < n && !space(k + 1) && marker_index(items_[k + 1]) != m;
      if (k > 0 && !space(k - 1) && marker_index(items_[k - 1]) != m && (k + 1 == n || !word(k + 1)))
        closers_[m].push_back(k);
    }
  }

  void emit(std::size_t lo, std::size_t hi, int depth) {
    static constexpr std::array<std::string_view, 3> md_marker{"**", "*", "~~"};
    for (std::size_t k = lo; k < hi;) {
      const int m = marker_index(items_[k]);
      if (m >= 0 && opener_[k] && depth < 8) {
        const auto& cs = closers_[m];
        const auto it = std::lower_bound(cs.begin(), cs.end(), k + 2);
        if (it != cs.end() && *it < hi) {
          out_.md(md_marker[m]);
          emit(k + 1, *it, depth + 1);
          out_.md(md_marker[m]);
          k = *it + 1;
          continue;
        }
      }
      emit_item(k);
      ++k;
    }
  }

  void emit_item(std::size_t k) {
    const item& it = items_[k];
    switch (it.kind) {
    case item::lit: {
      bool entity_follows = false;
      if (it.c == '&') {
        std::string rest;
        for (std::size_t j = k + 1; j < items_.size() && j < k + 42 && items_[j].kind == item::lit; ++j)
          rest += items_[j].c;
        entity_follows = entity_like(rest);
      }
      out_.literal(it.c, k > 0 && word(k - 1), k + 1 < items_.size() && word(k + 1), entity_follows);
      break;
    }
    case item::tok:
      out_.text += m_.tokens[it.a].text;
      out_.md(m_.tokens[it.a].md);
      break;
    case item::emoji:
      out_.text += it.e;
      out_.md(it.e);
      break;
    case item::code: {
      const std::string content = m_.plain(it.a, it.b);
      out_.text += content;
      std::size_t run = 0, longest = 0;
      for (char c : content) {
        run = c == '`' ? run + 1 : 0;
        longest = std::max(longest, run);
      }
      const std::string ticks(longest + 1, '`');
      if (content.empty())
        break;
      const bool all_spaces = content.find_first_not_of(' ') == std::string::npos;
      const bool pad = content.front() == '`' || content.back() == '`' ||
                       (content.front() == ' ' && content.back() == ' ' && !all_spaces);
      std::string md = ticks;
      if (pad)
        md += ' ';
      md += content;
      if (pad)
        md += ' ';
      md += ticks;
      out_.md(md);
      break;
    }
    }
  }

  const message& m_;
  emitter& out_;
  std::vector<item> items_;
  std::vector<bool> opener_;
  std::array<std::vector<std::size_t>, 3> closers_;
};

// ---------------------------------------------------------------- outbound helpers

// Marks the bytes of `code` spans and ``` blocks (markers included).
std::vector<bool> code_mask(std::string_view s) {
  std::vector<bool> mask(s.size(), false);
  for (std::size_t from = 0;;) {
    const auto a = s.find("```", from);
    if (a == std::string_view::npos)
      break;
    const auto b = s.find("```", a + 3);
    if (b == std::string_view::npos)
      break;
    std::fill(mask.begin() + static_cast<std::ptrdiff_t>(a), mask.begin() + static_cast<std::ptrdiff_t>(b + 3), true);
    from = b + 3;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (mask[i] || s[i] != '`')
      continue;
    std::size_t k = i + 1;
    while (k < s.size() && s[k] != '`' && s[k] != '\n' && !mask[k])
      ++k;
    if (k < s.size() && s[k] == '`' && !mask[k] && k > i + 1) {
      std::fill(mask.begin() + static_cast<std::ptrdiff_t>(i), mask.begin() + static_cast<std::ptrdiff_t>(k + 1), true);
      i = k;
    }
  }
  return mask;
}

}  // namespace

// ==================================================================== outbound

std::string escape_text(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  for (char c : text) {
    switch (c) {
    case '&': out += "&amp;"; break;
    case '<': out += "&lt;"; break;
    case '>': out += "&gt;"; break;
    default: out += c; break;
    }
  }
  return out;
}

std::string to_slack_text(std::string_view agent_text, const directory_lookup& directory) {
  const std::string s = escape_text(agent_text);
  const std::vector<bool> mask = code_mask(s);

  auto token_for = [&](std::string_view handle) -> std::optional<std::string> {
    if (handle == "here" || handle == "channel" || handle == "everyone")
      return "<!" + std::string(handle) + ">";
    if (auto id = call(directory.usergroup_id, handle); id && valid_id(*id))
      return "<!subteam^" + *id + ">";
    if (auto id = call(directory.user_id, handle); id && valid_id(*id))
      return "<@" + *id + ">";
    return std::nullopt;
  };

  std::string out;
  out.reserve(s.size() + 16);
  std::size_t word_start = 0;  // where the current blank-delimited word began
  bool in_url = false;         // the current word has a "://" (or starts "www.") so far
  for (std::size_t i = 0; i < s.size();) {
    const char c = s[i];
    if (is_space(c)) {
      word_start = i + 1;
      in_url = false;
    } else if (c == ':' && s.compare(i, 3, "://") == 0) {
      in_url = true;
    } else if (i == word_start && s.compare(i, 4, "www.") == 0) {
      in_url = true;
    }
    if (c != '@' || mask[i] || in_url || (i > 0 && is_handle_char(s[i - 1]))) {
      out += c;
      ++i;
      continue;
    }
    std::size_t j = i + 1;
    while (j < s.size() && is_handle_char(s[j]) && !mask[j])
      ++j;
    const std::string_view run = std::string_view(s).substr(i + 1, j - i - 1);
    // The longest reading first: trailing dots end sentences; then trailing
    // '-' and '_' too ("@bob-" … "@bob_").
    std::string_view first = run, second = run;
    while (!first.empty() && first.back() == '.')
      first.remove_suffix(1);
    while (!second.empty() && (second.back() == '.' || second.back() == '-' || second.back() == '_'))
      second.remove_suffix(1);
    std::optional<std::string> token;
    std::string_view used = first;
    if (!first.empty())
      token = token_for(first);
    if (!token && second != first && !second.empty()) {
      token = token_for(second);
      used = second;
    }
    if (token) {
      out += *token;
      i += 1 + used.size();
    } else {
      out += '@';
      ++i;
    }
  }
  return out;
}

std::vector<std::string> split_for_slack(std::string_view text, std::size_t limit) {
  std::vector<std::string> parts;
  if (text.empty())
    return parts;
  if (limit == 0)
    limit = 1;
  const std::size_t n = text.size();
  // unit[p]: p starts a UTF-8 sequence (or an invalid byte); free[p]: also
  // not inside a <…> token. A part may end before p when these hold.
  std::vector<bool> unit(n + 1, true), free(n + 1, true);
  for (std::size_t i = 0; i < n;) {
    const std::size_t len = utf8_len(text, i);
    for (std::size_t k = 1; k < len; ++k)
      unit[i + k] = free[i + k] = false;
    i += len;
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (text[i] != '<')
      continue;
    std::size_t j = i + 1;
    while (j < n && text[j] != '>' && text[j] != '<' && text[j] != '\n')
      ++j;
    if (j < n && text[j] == '>') {
      for (std::size_t k = i + 1; k <= j; ++k)
        free[k] = false;
      i = j;
    }
  }

  std::size_t start = 0;
  while (n - start > limit) {
    const std::size_t hi = start + limit;
    auto last = [&](auto ok) -> std::size_t {
      for (std::size_t p = hi; p > start; --p)
        if (ok(p))
          return p;
      return 0;
    };
    std::size_t cut = last([&](std::size_t p) { return free[p] && text[p - 1] == '\n'; });
    if (!cut)
      cut = last([&](std::size_t p) { return free[p] && text[p - 1] == ' '; });
    if (!cut)
      cut = last([&](std::size_t p) { return free[p]; });
    if (!cut)  // a token longer than the limit: cut it, between characters
      cut = last([&](std::size_t p) { return unit[p]; });
    if (!cut)  // a limit shorter than one character
      cut = hi;
    parts.emplace_back(text.substr(start, cut - start));
    start = cut;
  }
  parts.emplace_back(text.substr(start));
  return parts;
}

// ==================================================================== inbound

std::vector<std::string> mentioned_user_ids(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view opener : {"<@", "<!subteam^"})
    for (std::size_t at = text.find(opener); at != std::string_view::npos; at = text.find(opener, at + opener.size())) {
      auto from = at + opener.size();
      auto end = text.find_first_of(">|<", from);
      if (end == std::string_view::npos || text[end] == '<')
        continue;
      auto id = std::string(text.substr(from, end - from));
      bool plausible = !id.empty() && id.size() <= 32 &&
                       std::all_of(id.begin(), id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)); });
      if (plausible && std::find(out.begin(), out.end(), id) == out.end())
        out.push_back(std::move(id));
    }
  return out;
}

rendered render_inbound(std::string_view slack_text, const name_lookup& names) {
  const message m = lex(slack_text, names);
  const std::size_t n = m.atoms.size();

  // ``` blocks: from a fence to the next one (an unclosed fence is text).
  std::vector<std::pair<std::size_t, std::size_t>> pres;  // fence positions
  for (std::size_t i = 0; i < n;) {
    std::size_t a = i;
    while (a < n && !m.fence(a))
      ++a;
    if (a >= n)
      break;
    std::size_t b = a + 3;
    while (b < n && !m.fence(b))
      ++b;
    if (b >= n)
      break;
    pres.emplace_back(a, b);
    i = b + 3;
  }

  emitter out;
  line_renderer lines(m, out);
  bool line_start = true;
  bool quote_rest = false;  // after ">>>": the rest of the message is quoted

  auto running_text = [&](std::size_t lo, std::size_t hi) {
    for (std::size_t p = lo; p < hi;) {
      if (line_start) {
        // "> " quotes this line, ">>> " the rest of the message; one space
        // after the marker belongs to it.
        bool quoted = quote_rest, marker = false;
        if (hi - p >= 3 && m.gt(p) && m.gt(p + 1) && m.gt(p + 2)) {
          quote_rest = quoted = marker = true;
          p += 3;
        } else if (m.gt(p)) {
          quoted = marker = true;
          p += 1;
        }
        if (marker && p < hi && m.raw(p, ' '))
          ++p;
        out.set_quoted(quoted);
        line_start = false;
      }
      std::size_t e = p;
      while (e < hi && !m.raw(e, '\n'))
        ++e;
      lines.render(p, e);
      if (e < hi) {
        out.newline();
        line_start = true;
        p = e + 1;
      } else {
        p = e;
      }
    }
  };

  std::size_t pos = 0;
  for (const auto& [a, b] : pres) {
    running_text(pos, a);
    if (line_start) {
      out.set_quoted(quote_rest);
      line_start = false;
    }
    std::string content = m.plain(a + 3, b);
    if (!content.empty() && content.front() == '\n')
      content.erase(0, 1);
    if (!content.empty() && content.back() == '\n')
      content.pop_back();
    out.pre(content);
    pos = b + 3;
  }
  running_text(pos, n);

  rendered r;
  r.markdown = out.finish();
  r.text = std::move(out.text);
  return r;
}

// ==================================================================== emoji

std::optional<std::string_view> emoji_for_shortcode(std::string_view name) noexcept {
  const auto table = detail::emoji_table();
  const auto it = std::lower_bound(table.begin(), table.end(), name,
                                   [](const detail::emoji_entry& e, std::string_view n) { return e.name < n; });
  if (it == table.end() || it->name != name)
    return std::nullopt;
  return it->emoji;
}

}  // namespace backline::slack

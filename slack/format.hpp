// Slack message text, both ways: pure functions, no I/O.
//
// Outbound (an agent's text → a Slack `text` field): escape & < >, turn @here,
// @channel, @everyone, @<usergroup handle> and @<user name> into Slack's mention
// tokens, and split long text into parts Slack takes whole.
//
// Inbound (a Slack message's `text` → the inbox): resolve mention, channel and
// link tokens to names, unescape, turn emoji shortcodes into Unicode and render
// Slack's mrkdwn twice: as plain text and as CommonMark.
//
// Every function here takes any bytes (truncated tokens, invalid UTF-8, huge
// input) without throwing (short of std::bad_alloc), in near-linear time.
// Lookup callbacks may be empty; one that throws counts as "not found".
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace backline::slack {

// ---- outbound: agent → Slack ----

// Slack's escaping: & < > become &amp; &lt; &gt;, nothing else changes.
std::string escape_text(std::string_view text);

// How @names in an agent's text become Slack ids. Each returns the id for a
// handle / name, or nothing when there is no such group or user.
struct directory_lookup {
  std::function<std::optional<std::string>(std::string_view handle)> usergroup_id;  // "finance" → "S123"
  std::function<std::optional<std::string>(std::string_view name)> user_id;         // "john.doe" → "U123"
};

// escape_text, then @here → <!here>, @channel → <!channel>, @everyone →
// <!everyone>, @handle → <!subteam^S…> (user groups win over users),
// @name → <@U…>. A handle is made of ASCII letters, digits, '-', '_' and '.'
// (as backline::extract_mentions reads them); trailing '.', '-' and '_' are
// tried off when the longer form matches nothing. Not mentions: unknown names
// (left as "@name"), an address (a@b.com), an '@' inside a URL, and '@' inside
// `code` or ``` blocks.
std::string to_slack_text(std::string_view agent_text, const directory_lookup& directory);

// Splits text into ordered parts of at most `limit` bytes whose concatenation
// is `text` (nothing is dropped or added). A part ends, by preference, just
// after a newline, else just after a space, else anywhere else; never inside a
// UTF-8 sequence nor inside a <…> token — unless one sequence or token alone
// is longer than `limit`, which is then cut where it must. Empty text gives no
// parts. A limit of 0 counts as 1.
std::vector<std::string> split_for_slack(std::string_view text, std::size_t limit = 40000);

// ---- inbound: Slack → inbox ----

// How ids in a Slack message become names. Each returns nothing when unknown.
struct name_lookup {
  std::function<std::optional<std::string>(std::string_view user_id)> user_display_name;   // "U123" → "Jane Doe"
  std::function<std::optional<std::string>(std::string_view subteam_id)> usergroup_handle;  // "S123" → "finance"
  std::function<std::optional<std::string>(std::string_view channel_id)> channel_name;      // "C123" → "general"
};

struct rendered {
  std::string text;      // plain text: no markup at all
  std::string markdown;  // CommonMark (+ GFM ~~strike~~): literal characters escaped where needed
};

// Renders a Slack message's text:
//   <@U1> <@U1|label> → @Display Name (lookup, else the label, else the id);
//   <!subteam^S1> <!subteam^S1|@handle> → @handle; <!here> → @here, same for
//   channel and everyone; <#C1> <#C1|name> → #name;
//   <https://x|label> → "label (https://x)" / [label](https://x); <https://x> →
//   the URL (markdown: <https://x>); <mailto:a@b.com|a@b.com> → a@b.com;
//   only http, https, ftp and mailto become markdown links;
//   &amp; &lt; &gt; unescaped (once, after the tokens are read);
//   :shortcode: → Unicode emoji (+ ::skin-tone-2..6), unknown ones stay as
//   they are, and a ':' right after a letter or digit starts none (10:30:00);
//   mrkdwn *bold* _italic_ ~strike~ `code` ```pre``` and > / >>> quotes:
//   markers only count at word boundaries (snake_case, 2*3*4 stay as they are),
//   and never across lines (pre blocks excepted).
rendered render_inbound(std::string_view slack_text, const name_lookup& names);

// The ids a Slack text mentions, each once, in order of first mention: users
// (<@U1>, <@U1|label> → "U1") and user groups (<!subteam^S1> → "S1"): what
// to look up before render_inbound.
std::vector<std::string> mentioned_user_ids(std::string_view slack_text);

// ---- emoji ----

// The Unicode form of a Slack emoji shortcode, without colons: "+1", "thumbsup",
// "white_check_mark", or with a skin tone "+1::skin-tone-3". Nothing for
// unknown names (custom workspace emoji have no Unicode form). The data is
// emoji-datasource (see slack/emoji_table.cpp and slack/EMOJI-LICENSE).
std::optional<std::string_view> emoji_for_shortcode(std::string_view name) noexcept;

namespace detail {
struct emoji_entry {
  std::string_view name;   // shortcode without colons, or "<name>::skin-tone-N"
  std::string_view emoji;  // UTF-8
};
// Sorted by name (bytewise), unique; generated into slack/emoji_table.cpp.
std::span<const emoji_entry> emoji_table() noexcept;
// "emoji-datasource <version>".
std::string_view emoji_table_source() noexcept;
}  // namespace detail

}  // namespace backline::slack

// Slack text both ways (slack/format.hpp): escaping and mentions outbound,
// splitting, tokens / mrkdwn / emoji inbound, and the emoji table.

#include "slack/format.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <stdexcept>

using namespace backline::slack;

namespace {

// The emoji in the tests, spelled as UTF-8 bytes.
const std::string thumbs = "\xF0\x9F\x91\x8D";            // U+1F44D
const std::string check_mark = "\xE2\x9C\x85";            // U+2705
const std::string tone2 = "\xF0\x9F\x8F\xBB";             // U+1F3FB
const std::string tone3 = "\xF0\x9F\x8F\xBC";             // U+1F3FC
const std::string tone6 = "\xF0\x9F\x8F\xBF";             // U+1F3FF
const std::string tada = "\xF0\x9F\x8E\x89";              // U+1F389
const std::string smile = "\xF0\x9F\x98\x84";             // U+1F604
const std::string hundred = "\xF0\x9F\x92\xAF";           // U+1F4AF

std::optional<std::string> from(const std::map<std::string, std::string, std::less<>>& m, std::string_view key) {
  if (auto it = m.find(key); it != m.end())
    return it->second;
  return std::nullopt;
}

directory_lookup test_directory() {
  static const std::map<std::string, std::string, std::less<>> groups{
      {"finance", "S100"}, {"finance-team", "S101"}, {"ops", "S102"}, {"both", "S103"}};
  static const std::map<std::string, std::string, std::less<>> users{
      {"john.doe", "U100"}, {"jane", "U101"}, {"both", "U102"}, {"bob_", "U103"}, {"ann", "U104"}};
  return {[](std::string_view h) { return from(groups, h); }, [](std::string_view n) { return from(users, n); }};
}

name_lookup test_names() {
  static const std::map<std::string, std::string, std::less<>> users{
      {"U100", "John Doe"}, {"U101", "Jane *Star* Smith"}, {"U102", "line\nbreak"}};
  static const std::map<std::string, std::string, std::less<>> groups{{"S100", "finance"}, {"S101", "@ops"}};
  static const std::map<std::string, std::string, std::less<>> channels{{"C100", "general"}, {"C101", "l2-finance"}};
  return {[](std::string_view id) { return from(users, id); }, [](std::string_view id) { return from(groups, id); },
          [](std::string_view id) { return from(channels, id); }};
}

rendered render(std::string_view s) { return render_inbound(s, test_names()); }
std::string text_of(std::string_view s) { return render(s).text; }
std::string md_of(std::string_view s) { return render(s).markdown; }

std::string join(const std::vector<std::string>& parts) {
  std::string all;
  for (const auto& p : parts)
    all += p;
  return all;
}

// A part that ends inside a UTF-8 sequence would make the next one start on a
// continuation byte.
bool starts_mid_utf8(const std::string& s) {
  return !s.empty() && (static_cast<unsigned char>(s[0]) & 0xC0) == 0x80;
}

}  // namespace

// ============================================================ outbound

TEST_CASE("format: escape_text escapes only & < >", "[format]") {
  CHECK(escape_text("") == "");
  CHECK(escape_text("plain text") == "plain text");
  CHECK(escape_text("a & b") == "a &amp; b");
  CHECK(escape_text("<b>") == "&lt;b&gt;");
  CHECK(escape_text("&amp;") == "&amp;amp;");
  CHECK(escape_text("if a<b && c>d") == "if a&lt;b &amp;&amp; c&gt;d");
  CHECK(escape_text("\"quotes\" 'and' *stars* _u_ ~t~ `c` :) @x #y") == "\"quotes\" 'and' *stars* _u_ ~t~ `c` :) @x #y");
  CHECK(escape_text("caf\xC3\xA9 \xF0\x9F\x91\x8D") == "caf\xC3\xA9 \xF0\x9F\x91\x8D");
  CHECK(escape_text(std::string_view("a\0b", 3)) == std::string("a\0b", 3));
  CHECK(escape_text("\xFF\xFE<") == "\xFF\xFE&lt;");
}

TEST_CASE("format: to_slack_text turns @here, @channel, @everyone into special mentions", "[format]") {
  const auto dir = test_directory();
  CHECK(to_slack_text("@here please look", dir) == "<!here> please look");
  CHECK(to_slack_text("ping @channel", dir) == "ping <!channel>");
  CHECK(to_slack_text("@everyone!", dir) == "<!everyone>!");
  CHECK(to_slack_text("(@here)", dir) == "(<!here>)");
  CHECK(to_slack_text("@here, @channel.", dir) == "<!here>, <!channel>.");
  CHECK(to_slack_text("@heres", dir) == "@heres");
  CHECK(to_slack_text("@Here", dir) == "@Here");
  // Also without any directory at all.
  CHECK(to_slack_text("@here", directory_lookup{}) == "<!here>");
}

TEST_CASE("format: to_slack_text resolves user groups and users, groups first", "[format]") {
  const auto dir = test_directory();
  CHECK(to_slack_text("@finance can you check?", dir) == "<!subteam^S100> can you check?");
  CHECK(to_slack_text("ask @finance-team.", dir) == "ask <!subteam^S101>.");
  CHECK(to_slack_text("@john.doe said", dir) == "<@U100> said");
  CHECK(to_slack_text("thanks @john.doe.", dir) == "thanks <@U100>.");
  CHECK(to_slack_text("@jane, @ann: hi", dir) == "<@U101>, <@U104>: hi");
  CHECK(to_slack_text("@both", dir) == "<!subteam^S103>");
  CHECK(to_slack_text("@ops@jane", dir) == "<!subteam^S102>@jane");  // the second '@' follows a word: an address
  // Trailing '-' and '_' are punctuation unless the longer name exists.
  CHECK(to_slack_text("@jane- and @ann_", dir) == "<@U101>- and <@U104>_");
  CHECK(to_slack_text("@bob_ here", dir) == "<@U103> here");
  // Unknown names stay as they were typed.
  CHECK(to_slack_text("@nobody there", dir) == "@nobody there");
  CHECK(to_slack_text("@ alone and @", dir) == "@ alone and @");
  CHECK(to_slack_text("@@jane", dir) == "@<@U101>");
}

TEST_CASE("format: to_slack_text leaves addresses, URLs and code alone", "[format]") {
  const auto dir = test_directory();
  CHECK(to_slack_text("mail jane@finance.com", dir) == "mail jane@finance.com");
  CHECK(to_slack_text("a@b.com", dir) == "a@b.com");
  CHECK(to_slack_text("see https://medium.com/@jane/post", dir) == "see https://medium.com/@jane/post");
  CHECK(to_slack_text("see www.x.com/@jane then @jane", dir) == "see www.x.com/@jane then <@U101>");
  CHECK(to_slack_text("type `@here` to page", dir) == "type `@here` to page");
  CHECK(to_slack_text("```\n@channel\n``` but @here", dir) == "```\n@channel\n``` but <!here>");
  CHECK(to_slack_text("`unclosed @here", dir) == "`unclosed <!here>");
}

TEST_CASE("format: to_slack_text escapes first, so agents cannot forge tokens", "[format]") {
  const auto dir = test_directory();
  CHECK(to_slack_text("<!channel> & <@U1>", dir) == "&lt;!channel&gt; &amp; &lt;@U1&gt;");
  CHECK(to_slack_text("a < b > c & @here", dir) == "a &lt; b &gt; c &amp; <!here>");
  CHECK(to_slack_text(">@jane", dir) == "&gt;<@U101>");
  // A lookup that answers something that is not an id is ignored.
  directory_lookup bad{[](std::string_view) -> std::optional<std::string> { return "S1> <!channel"; },
                       [](std::string_view) -> std::optional<std::string> { return std::string{}; }};
  CHECK(to_slack_text("@finance", bad) == "@finance");
  // A lookup that throws counts as "not found".
  directory_lookup throwing{[](std::string_view) -> std::optional<std::string> { throw std::runtime_error("down"); },
                            [](std::string_view) -> std::optional<std::string> { return "U9"; }};
  CHECK(to_slack_text("@jane", throwing) == "<@U9>");
}

TEST_CASE("format: to_slack_text passes other text through", "[format]") {
  const auto dir = test_directory();
  CHECK(to_slack_text("", dir) == "");
  CHECK(to_slack_text("*bold* _it_ :tada: caf\xC3\xA9", dir) == "*bold* _it_ :tada: caf\xC3\xA9");
  CHECK(to_slack_text("\xFF@jane\xC3", dir) == "\xFF<@U101>\xC3");
  CHECK(to_slack_text("line1\n@jane\tline2", dir) == "line1\n<@U101>\tline2");
}

TEST_CASE("format: split_for_slack keeps short text whole and loses nothing", "[format]") {
  CHECK(split_for_slack("").empty());
  CHECK(split_for_slack("hello") == std::vector<std::string>{"hello"});
  CHECK(split_for_slack("hello", 5) == std::vector<std::string>{"hello"});
  const std::string big(100000, 'x');
  auto parts = split_for_slack(big);
  REQUIRE(parts.size() == 3);
  CHECK(parts[0].size() == 40000);
  CHECK(parts[1].size() == 40000);
  CHECK(parts[2].size() == 20000);
  CHECK(join(parts) == big);
}

TEST_CASE("format: split_for_slack prefers a newline, then a space", "[format]") {
  CHECK(split_for_slack("aaaa\nbbb ccc", 8) == std::vector<std::string>{"aaaa\n", "bbb ccc"});
  CHECK(split_for_slack("aa bb\ncc dd", 8) == std::vector<std::string>{"aa bb\n", "cc dd"});
  CHECK(split_for_slack("aa bb cc dd", 8) == std::vector<std::string>{"aa bb ", "cc dd"});
  CHECK(split_for_slack("abcdefghij", 4) == std::vector<std::string>{"abcd", "efgh", "ij"});
  CHECK(split_for_slack("one two three four", 9) == std::vector<std::string>{"one two ", "three ", "four"});
  CHECK(split_for_slack("a\n\n\nb", 2) == std::vector<std::string>{"a\n", "\n\n", "b"});
}

TEST_CASE("format: split_for_slack never cuts a UTF-8 sequence", "[format]") {
  const std::string e = "\xC3\xA9";         // 2 bytes
  const std::string euro = "\xE2\x82\xAC";  // 3 bytes
  auto parts = split_for_slack(e + e + e, 3);
  CHECK(parts == std::vector<std::string>{e, e, e});
  parts = split_for_slack("a" + euro + euro, 5);
  CHECK(parts == std::vector<std::string>{"a" + euro, euro});
  parts = split_for_slack(thumbs + thumbs + thumbs, 9);
  CHECK(parts == std::vector<std::string>{thumbs + thumbs, thumbs});
  // Invalid bytes are single characters.
  parts = split_for_slack("\xFF\xFE\xC3", 2);
  CHECK(parts == std::vector<std::string>{"\xFF\xFE", "\xC3"});
  // A limit smaller than a character must still make progress.
  parts = split_for_slack(thumbs, 2);
  CHECK(join(parts) == thumbs);
  CHECK(std::all_of(parts.begin(), parts.end(), [](const auto& p) { return p.size() <= 2; }));
  CHECK(split_for_slack("abc", 0) == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("format: split_for_slack never cuts a <…> token", "[format]") {
  auto parts = split_for_slack("hi <@U12345> there", 9);
  CHECK(parts == std::vector<std::string>{"hi ", "<@U12345>", " there"});
  parts = split_for_slack("see <https://example.com/a b|label> now", 36);
  CHECK(parts == std::vector<std::string>{"see <https://example.com/a b|label> ", "now"});
  parts = split_for_slack("x<!here>y", 4);
  CHECK(join(parts) == "x<!here>y");
  CHECK(std::all_of(parts.begin(), parts.end(), [](const auto& p) { return p.size() <= 4; }));
  // A token longer than the limit is cut after all (between characters).
  parts = split_for_slack("<https://" + std::string(20, 'a') + ">", 10);
  CHECK(parts.size() == 3);
  CHECK(join(parts) == "<https://" + std::string(20, 'a') + ">");
  // A lone '<' (or &lt;) is no token.
  CHECK(split_for_slack("a < b c", 4) == std::vector<std::string>{"a < ", "b c"});
}

TEST_CASE("format: split_for_slack on realistic long messages", "[format]") {
  std::string text;
  for (int i = 0; text.size() < 130000; ++i)
    text += "Line " + std::to_string(i) + ": caf\xC3\xA9 <@U" + std::to_string(i) + "> " + thumbs + " ok\n";
  const auto parts = split_for_slack(text);
  CHECK(parts.size() == 4);
  CHECK(join(parts) == text);
  for (const auto& p : parts) {
    CHECK(p.size() <= 40000);
    CHECK(!starts_mid_utf8(p));
  }
  for (std::size_t i = 0; i + 1 < parts.size(); ++i)
    CHECK(parts[i].back() == '\n');
}

// ============================================================ inbound: tokens

TEST_CASE("format: render_inbound resolves user mentions", "[format]") {
  CHECK(text_of("<@U100> please") == "@John Doe please");
  CHECK(text_of("<@U100|johnny>") == "@John Doe");
  CHECK(text_of("<@U999|johnny>") == "@johnny");
  CHECK(text_of("<@U999|@johnny>") == "@johnny");
  CHECK(text_of("<@U999>") == "@U999");
  CHECK(text_of("hi <@W123>!") == "hi @W123!");
  CHECK(text_of("<@U102>") == "@line break");  // names stay on one line
  CHECK(md_of("<@U101>") == "@Jane \\*Star\\* Smith");
  CHECK(text_of("<@U101>") == "@Jane *Star* Smith");
  CHECK(render_inbound("<@U100>", name_lookup{}).text == "@U100");
}

TEST_CASE("format: render_inbound resolves groups, specials and channels", "[format]") {
  CHECK(text_of("<!subteam^S100>") == "@finance");
  CHECK(text_of("<!subteam^S100|@fin>") == "@finance");
  CHECK(text_of("<!subteam^S101>") == "@ops");
  CHECK(text_of("<!subteam^S999|@payroll>") == "@payroll");
  CHECK(text_of("<!subteam^S999>") == "@S999");
  CHECK(text_of("<!here>") == "@here");
  CHECK(text_of("<!here|here>") == "@here");
  CHECK(text_of("<!here|@here>") == "@here");
  CHECK(text_of("<!channel> <!everyone>") == "@channel @everyone");
  CHECK(text_of("<!date^1392734382^{date}|Feb 18, 2014>") == "Feb 18, 2014");
  CHECK(text_of("in <#C100|old-name> and <#C101>") == "in #general and #l2-finance");
  CHECK(text_of("<#C999|random>") == "#random");
  CHECK(text_of("<#C999>") == "#C999");
  CHECK(md_of("<#C101> <!here>") == "#l2-finance @here");
}

TEST_CASE("format: render_inbound renders links in text and CommonMark", "[format]") {
  auto r = render("<https://x.com|label>");
  CHECK(r.text == "label (https://x.com)");
  CHECK(r.markdown == "[label](https://x.com)");
  r = render("see <https://x.com/a?b=1&amp;c=2>");
  CHECK(r.text == "see https://x.com/a?b=1&c=2");
  CHECK(r.markdown == "see <https://x.com/a?b=1&c=2>");
  r = render("<mailto:a@b.com|a@b.com>");
  CHECK(r.text == "a@b.com");
  CHECK(r.markdown == "[a@b.com](mailto:a@b.com)");
  r = render("<mailto:a@b.com|Write us>");
  CHECK(r.text == "Write us (a@b.com)");
  CHECK(r.markdown == "[Write us](mailto:a@b.com)");
  r = render("<https://x.com|https://x.com>");
  CHECK(r.text == "https://x.com");
  r = render("<https://x.com/(a)|a [b] *c*>");
  CHECK(r.text == "a [b] *c* (https://x.com/(a))");
  CHECK(r.markdown == "[a \\[b\\] \\*c\\*](https://x.com/\\(a\\))");
  r = render("<https://x.com|Tom &amp; Jerry>");
  CHECK(r.text == "Tom & Jerry (https://x.com)");
  // Links with other schemes are shown, never made clickable.
  r = render("<javascript:alert(1)|click>");
  CHECK(r.text == "click (javascript:alert(1))");
  CHECK(r.markdown == "click (javascript:alert(1))");
}

TEST_CASE("format: render_inbound keeps broken and truncated tokens as text", "[format]") {
  CHECK(text_of("<@U12") == "<@U12");
  CHECK(text_of("a <@U12 b") == "a <@U12 b");
  CHECK(text_of("<!subteam^") == "<!subteam^");
  CHECK(text_of("<https://x|") == "<https://x|");
  CHECK(text_of("<>") == "<>");
  CHECK(text_of("<not a link>") == "<not a link>");
  CHECK(text_of("<<@U100>>") == "<@John Doe>");
  CHECK(text_of("<@U100\nx>") == "<@U100\nx>");
  CHECK(text_of("<@>") == "<@>");
  CHECK(text_of("<#>") == "<#>");
  CHECK(text_of("<!>") == "<!>");
  CHECK(md_of("<@U12") == "\\<@U12");
}

TEST_CASE("format: render_inbound unescapes the three entities once, after tokens", "[format]") {
  CHECK(text_of("a &amp; b &lt;c&gt;") == "a & b <c>");
  CHECK(text_of("&amp;lt;") == "&lt;");
  CHECK(text_of("&lt;@U100&gt;") == "<@U100>");  // escaped text is no token
  CHECK(text_of("&quot; &copy; & &am") == "&quot; &copy; & &am");
  CHECK(md_of("Q&amp;A") == "Q&A");
  CHECK(md_of("&amp;copy;") == "\\&copy;");  // would be an entity in CommonMark
  CHECK(md_of("&lt;b&gt;") == "\\<b>");
}

// ============================================================ inbound: emoji

TEST_CASE("format: render_inbound turns shortcodes into emoji", "[format]") {
  CHECK(text_of(":white_check_mark: done") == check_mark + " done");
  CHECK(text_of(":+1:") == thumbs);
  CHECK(text_of(":thumbsup::tada:") == thumbs + tada);
  CHECK(text_of("great :smile:!") == "great " + smile + "!");
  CHECK(text_of("(:100:)") == "(" + hundred + ")");
  CHECK(md_of(":+1: *ok*") == thumbs + " **ok**");
}

TEST_CASE("format: render_inbound applies skin tones 2 to 6", "[format]") {
  // skin-tone-N is the modifier U+1F3FB + (N - 2), as emoji-datasource has it.
  CHECK(text_of(":+1::skin-tone-2:") == thumbs + tone2);
  CHECK(text_of(":+1::skin-tone-3:") == thumbs + tone3);
  CHECK(text_of(":thumbsup::skin-tone-6: ok") == thumbs + tone6 + " ok");
  // A tone on an emoji without tones, or out of range, stays as it was.
  CHECK(text_of(":tada::skin-tone-3:") == tada + tone3);  // the tone shortcode alone is an emoji too
  CHECK(text_of(":+1::skin-tone-7:") == thumbs + ":skin-tone-7:");
  CHECK(text_of(":+1::skin-tone-") == thumbs + ":skin-tone-");
  CHECK(text_of(":skin-tone-2:") == tone2);
}

TEST_CASE("format: render_inbound leaves unknown shortcodes, times and broken ones", "[format]") {
  CHECK(text_of(":party-parrot:") == ":party-parrot:");
  CHECK(text_of(":party-parrot::+1:") == ":party-parrot:" + thumbs);
  CHECK(text_of("at 10:30:00") == "at 10:30:00");
  CHECK(text_of("ratio 1:100:2") == "ratio 1:100:2");
  CHECK(text_of("a:smile:") == "a:smile:");
  CHECK(text_of(":+1") == ":+1");
  CHECK(text_of("+1:") == "+1:");
  CHECK(text_of("::") == "::");
  CHECK(text_of(": smile :") == ": smile :");
  CHECK(text_of(":SMILE:") == ":SMILE:");
  CHECK(text_of("`:smile:`") == ":smile:");  // not in code
  CHECK(text_of("http://x.com:8080/") == "http://x.com:8080/");
}

TEST_CASE("format: emoji_for_shortcode looks names up in the generated table", "[format]") {
  CHECK(emoji_for_shortcode("+1") == std::optional<std::string_view>(thumbs));
  CHECK(emoji_for_shortcode("thumbsup") == std::optional<std::string_view>(thumbs));
  CHECK(emoji_for_shortcode("white_check_mark") == std::optional<std::string_view>(check_mark));
  CHECK(emoji_for_shortcode("+1::skin-tone-3") == std::optional<std::string_view>(thumbs + tone3));
  CHECK(emoji_for_shortcode("man-heart-man::skin-tone-2").has_value());
  CHECK(emoji_for_shortcode("hash") == std::optional<std::string_view>("#\xEF\xB8\x8F\xE2\x83\xA3"));
  CHECK(emoji_for_shortcode("flag-fr") == std::optional<std::string_view>("\xF0\x9F\x87\xAB\xF0\x9F\x87\xB7"));
  CHECK_FALSE(emoji_for_shortcode("party-parrot"));
  CHECK_FALSE(emoji_for_shortcode(""));
  CHECK_FALSE(emoji_for_shortcode(":+1:"));
  CHECK_FALSE(emoji_for_shortcode("+"));
  CHECK_FALSE(emoji_for_shortcode("tada::skin-tone-3"));
  CHECK_FALSE(emoji_for_shortcode(std::string(1000, 'z')));
  CHECK_FALSE(emoji_for_shortcode("\xFF\x00"));
}

TEST_CASE("format: the emoji table is sorted, unique, valid UTF-8 and from emoji-datasource", "[format]") {
  const auto table = detail::emoji_table();
  CHECK(detail::emoji_table_source().starts_with("emoji-datasource "));
  REQUIRE(table.size() > 3000);
  std::size_t base = 0;
  for (std::size_t i = 0; i < table.size(); ++i) {
    const auto& e = table[i];
    if (i > 0)
      CHECK(table[i - 1].name < e.name);
    CHECK(!e.emoji.empty());
    CHECK(!starts_mid_utf8(std::string(e.emoji)));
    if (e.name.find("::skin-tone-") == std::string_view::npos)
      ++base;
    CHECK(emoji_for_shortcode(e.name) == std::optional<std::string_view>(e.emoji));
  }
  CHECK(base > 1900);
}

// ============================================================ inbound: mrkdwn

TEST_CASE("format: render_inbound bold, italic, strike to plain text and CommonMark", "[format]") {
  auto r = render("*bold* _italic_ ~strike~");
  CHECK(r.text == "bold italic strike");
  CHECK(r.markdown == "**bold** *italic* ~~strike~~");
  r = render("this is *very important*, ok?");
  CHECK(r.text == "this is very important, ok?");
  CHECK(r.markdown == "this is **very important**, ok?");
  r = render("*_both_*");
  CHECK(r.text == "both");
  CHECK(r.markdown == "***both***");
  r = render("(_aside_)");
  CHECK(r.markdown == "(*aside*)");
  r = render("*<@U100>* :+1:");
  CHECK(r.text == "@John Doe " + thumbs);
  CHECK(r.markdown == "**@John Doe** " + thumbs);
  r = render("~*a* b~");
  CHECK(r.markdown == "~~**a** b~~");
}

TEST_CASE("format: mrkdwn markers only count at word boundaries", "[format]") {
  auto r = render("snake_case_words");
  CHECK(r.text == "snake_case_words");
  CHECK(r.markdown == "snake_case_words");
  r = render("2*3*4");
  CHECK(r.text == "2*3*4");
  CHECK(r.markdown == "2\\*3\\*4");  // escaped: CommonMark would emphasise it
  r = render("a * b * c");
  CHECK(r.text == "a * b * c");
  CHECK(r.markdown == "a \\* b \\* c");
  CHECK(text_of("*bold*text") == "*bold*text");
  CHECK(text_of("x*bold*") == "x*bold*");
  CHECK(text_of("* not bold*") == "* not bold*");
  CHECK(text_of("*not bold *") == "*not bold *");
  CHECK(text_of("**") == "**");
  CHECK(text_of("**bold**") == "*bold*");  // a doubled marker is no marker
  CHECK(text_of("*********") == "*********");
  CHECK(text_of("~~gone~~") == "~gone~");
  CHECK(text_of("*") == "*");
  CHECK(text_of("_a") == "_a");
  CHECK(text_of("~5 min") == "~5 min");
  CHECK(md_of("~5 min") == "\\~5 min");
  CHECK(md_of("_private") == "\\_private");
  CHECK(text_of("*one\ntwo*") == "*one\ntwo*");  // never across lines
  CHECK(text_of("caf\xC3\xA9*x*") == "caf\xC3\xA9*x*");
  CHECK(text_of("*a* b*") == "a b*");
  CHECK(text_of("*a _b* c_") == "a _b c_");
}

TEST_CASE("format: inline code keeps its content literally", "[format]") {
  auto r = render("run `make *all*` now");
  CHECK(r.text == "run make *all* now");
  CHECK(r.markdown == "run `make *all*` now");
  r = render("`a &lt; b` and `:+1:`");
  CHECK(r.text == "a < b and :+1:");
  CHECK(r.markdown == "`a < b` and `:+1:`");
  r = render("`<@U100>`");
  CHECK(r.text == "@John Doe");
  CHECK(r.markdown == "`@John Doe`");
  r = render("*bold `code`*");
  CHECK(r.markdown == "**bold `code`**");
  r = render("`` empty");
  CHECK(r.text == "`` empty");
  CHECK(r.markdown == "\\`\\` empty");
  r = render("`unclosed");
  CHECK(r.text == "`unclosed");
  r = render("` padded `");
  CHECK(r.text == " padded ");
  CHECK(r.markdown == "`  padded  `");
}

TEST_CASE("format: ``` blocks become fenced code", "[format]") {
  auto r = render("before\n```\ncode *x*\n  indented\n```\nafter");
  CHECK(r.text == "before\ncode *x*\n  indented\nafter");
  CHECK(r.markdown == "before\n```\ncode *x*\n  indented\n```\nafter");
  r = render("```one line```");
  CHECK(r.text == "one line");
  CHECK(r.markdown == "```\none line\n```");
  r = render("see ```x = 1``` here");
  CHECK(r.text == "see x = 1 here");
  CHECK(r.markdown == "see\n```\nx = 1\n```\nhere");
  r = render("```a ` b `` c```");
  CHECK(r.text == "a ` b `` c");
  CHECK(r.markdown == "```\na ` b `` c\n```");
  r = render("```\n&lt;tag&gt; :+1: <@U100>\n```");
  CHECK(r.text == "<tag> :+1: @John Doe");
  r = render("```unclosed *b*");
  CHECK(r.text == "```unclosed b");
  r = render("```a```\n\nb");
  CHECK(r.markdown == "```\na\n```\n\nb");
  r = render("``````");
  CHECK(r.text == "");
}

TEST_CASE("format: > and >>> quotes", "[format]") {
  auto r = render("&gt; quoted\nreply");
  CHECK(r.text == "quoted\nreply");
  CHECK(r.markdown == "> quoted\n\nreply");
  r = render("&gt; one\n&gt; two");
  CHECK(r.text == "one\ntwo");
  CHECK(r.markdown == "> one\n> two");
  r = render("&gt;no space");
  CHECK(r.text == "no space");
  CHECK(r.markdown == "> no space");
  r = render("intro\n&gt;&gt;&gt; all\nof this");
  CHECK(r.text == "intro\nall\nof this");
  CHECK(r.markdown == "intro\n> all\n> of this");
  r = render("&gt; *bold* quote");
  CHECK(r.markdown == "> **bold** quote");
  r = render("a &gt; b");
  CHECK(r.text == "a > b");
  CHECK(r.markdown == "a > b");
  r = render("&gt; ```code```");
  CHECK(r.markdown == "> ```\n> code\n> ```");
  r = render("&gt;");
  CHECK(r.text == "");
  CHECK(r.markdown == ">");
}

TEST_CASE("format: plain characters that CommonMark would read are escaped", "[format]") {
  CHECK(md_of("# not a heading") == "\\# not a heading");
  CHECK(md_of("- not a list") == "\\- not a list");
  CHECK(md_of("1. first") == "1\\. first");
  CHECK(md_of("a\n---") == "a\n\\---");
  CHECK(md_of("[x](y)") == "\\[x\\](y)");
  CHECK(md_of("back\\slash") == "back\\\\slash");
  CHECK(md_of("in #general - ok 1. 2") == "in #general - ok 1. 2");
  CHECK(text_of("# not a heading") == "# not a heading");
}

TEST_CASE("format: render_inbound keeps lines and odd input", "[format]") {
  auto r = render("");
  CHECK(r.text == "");
  CHECK(r.markdown == "");
  r = render("one\ntwo\n");
  CHECK(r.text == "one\ntwo\n");
  CHECK(r.markdown == "one\ntwo\n");
  r = render("caf\xC3\xA9 \xFF\xFE ok");
  CHECK(r.text == "caf\xC3\xA9 \xFF\xFE ok");
  r = render(std::string_view("a\0b", 3));
  CHECK(r.text == std::string("a\0b", 3));
  // A lookup that throws counts as unknown.
  name_lookup throwing{[](std::string_view) -> std::optional<std::string> { throw std::runtime_error("x"); }, {}, {}};
  CHECK(render_inbound("<@U1|bob>", throwing).text == "@bob");
}

TEST_CASE("format: a realistic L2 reply", "[format]") {
  const auto r = render(
      "<@U100> refund is *approved* :white_check_mark:\n"
      "&gt; can we refund order #123?\n"
      "Details: <https://erp.example.com/o/123|order 123> &amp; ticket `FIN-9`, cc <!subteam^S100>");
  CHECK(r.text ==
        "@John Doe refund is approved " + check_mark + "\n"
        "can we refund order #123?\n"
        "Details: order 123 (https://erp.example.com/o/123) & ticket FIN-9, cc @finance");
  CHECK(r.markdown ==
        "@John Doe refund is **approved** " + check_mark + "\n"
        "> can we refund order #123?\n"
        "\n"
        "Details: [order 123](https://erp.example.com/o/123) & ticket `FIN-9`, cc @finance");
}

// ============================================================ robustness

TEST_CASE("format: every function takes arbitrary bytes", "[format]") {
  const std::string alphabet = "<>@!#|^:*_~`&;\n amp lt gt +1 skin-tone-3 here U S C \xC3\xA9\xF0\x9F\x91\x8D\xFF\x80";
  std::mt19937 rng(12345);
  std::uniform_int_distribution<std::size_t> pick(0, alphabet.size() - 1), length(0, 200);
  const auto dir = test_directory();
  const auto names = test_names();
  for (int round = 0; round < 3000; ++round) {
    std::string s;
    for (std::size_t n = length(rng); n > 0; --n)
      s += alphabet[pick(rng)];
    CHECK_NOTHROW(to_slack_text(s, dir));
    CHECK_NOTHROW(render_inbound(s, names));
    const std::size_t limit = 1 + round % 17;
    const auto parts = split_for_slack(s, limit);
    CHECK(join(parts) == s);
    CHECK(std::all_of(parts.begin(), parts.end(), [&](const auto& p) { return !p.empty() && p.size() <= limit; }));
  }
}

TEST_CASE("format: large adversarial input stays fast", "[format]") {
  const auto names = test_names();
  const std::string patterns[] = {std::string(200000, '*'), std::string(200000, '<'), std::string(200000, '`'),
                                  std::string(200000, ':'), std::string(200000, '_')};
  for (const auto& s : patterns) {
    const auto r = render_inbound(s, names);
    CHECK(!r.text.empty());
    CHECK(join(split_for_slack(s)) == s);
  }
  std::string mixed;
  while (mixed.size() < 200000)
    mixed += "*a _b ~c `d :e <@f &gt; ";
  CHECK(render_inbound(mixed, names).text.size() > 100000);
  std::string at;
  while (at.size() < 200000)
    at += "@jane @nobody @";
  CHECK(to_slack_text(at, test_directory()).size() > 100000);
}

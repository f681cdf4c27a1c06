// Slack text both ways (slack/format): mentions, mrkdwn, emoji and
// splitting take any bytes without throwing and in bounded output, with
// lookups that find some names, find none, or throw.
//
// Input: bytes 0-1 give split_for_slack's limit; the rest is the text.

#include "fuzz/fuzz_check.hpp"
#include "slack/format.hpp"

#include <stdexcept>

using namespace backline;

namespace {

// Names starting with 'x' (or ids with 'X') make the lookup throw; those
// starting with 'u', 'g' or 'c' are found.
std::optional<std::string> found_if(std::string_view key, char first, std::string prefix) {
  if (!key.empty() && (key.front() == 'x' || key.front() == 'X'))
    throw std::runtime_error("lookup failed");
  if (key.empty() || (key.front() != first && key.front() != (first - 'a' + 'A')))
    return std::nullopt;
  return prefix + std::string(key.substr(0, 40));
}

const slack::directory_lookup directory{
  [](std::string_view handle) { return found_if(handle, 'g', "S"); },
  [](std::string_view name) { return found_if(name, 'u', "U"); },
};
const slack::name_lookup names{
  [](std::string_view id) { return found_if(id, 'u', "Name of "); },
  [](std::string_view id) { return found_if(id, 's', "team-"); },
  [](std::string_view id) { return found_if(id, 'c', "chan-"); },
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  const size_t limit = (size_t(data[0]) << 8 | data[1]) % 512;
  const auto text = backline::fuzz::bytes_of(data + 2, size - 2);
  const size_t bound = 16 * text.size() + 256;  // no blow-up: output grows at most linearly

  // Outbound.
  auto escaped = slack::escape_text(text);
  FUZZ_CHECK(escaped.find_first_of("<>") == std::string::npos);
  FUZZ_CHECK(escaped.size() >= text.size() && escaped.size() <= 5 * text.size());
  auto out = slack::to_slack_text(text, directory);
  FUZZ_CHECK(out.size() <= bound);
  auto bare = slack::to_slack_text(text, {});
  FUZZ_CHECK(bare.size() <= bound);
  FUZZ_CHECK(bare.find("<@") == std::string::npos && bare.find("<!subteam") == std::string::npos);

  auto parts = slack::split_for_slack(out, limit);
  std::string joined;
  for (const auto& p : parts) {
    FUZZ_CHECK(!p.empty() && p.size() <= std::max<size_t>(limit, 1));
    joined += p;
  }
  FUZZ_CHECK(joined == out);

  // Inbound.
  auto shown = slack::render_inbound(text, names);
  FUZZ_CHECK(shown.text.size() <= bound && shown.markdown.size() <= bound);
  auto unnamed = slack::render_inbound(text, {});
  FUZZ_CHECK(unnamed.text.size() <= bound && unnamed.markdown.size() <= bound);

  if (auto emoji = slack::emoji_for_shortcode(text))
    FUZZ_CHECK(!emoji->empty());
  return 0;
}

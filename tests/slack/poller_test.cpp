// The poller: replies the Events API never brought are found with
// conversations.replies, inside the call budget, once each; done threads are
// left alone. End to end: backline and the Slack fake on loopback, with the
// budget's window shortened so that minutes take a fraction of a second.

#include <boost/json.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <thread>

#include "slack/events.hpp"
#include "support/live_slack.hpp"

namespace json = boost::json;
using namespace backline;
using namespace std::chrono_literals;
using backline::testing::live_slack;

namespace {

size_t from_slack(const json::array& messages) {
  return static_cast<size_t>(std::count_if(messages.begin(), messages.end(),
                                           [](const json::value& m) { return m.at("direction") == "from_slack"; }));
}

auto poll_only(uint32_t budget, uint32_t window_ms, uint32_t page) {
  return [=](server_config& c) {
    c.slack_inbound = "poll";
    c.slack_poll_budget = budget;
    c.slack_poll_window_ms = window_ms;
    c.slack_poll_page = page;
    c.slack_poll_interval_ms = 20;
  };
}

} // namespace

TEST_CASE("poller: slack ts compare as decimals and file URLs only from Slack's hosts", "[slack]") {
  CHECK(slack::ts_less("1712345678.000200", "1712345678.000300"));
  CHECK(slack::ts_less("999999999.999999", "1000000000.000001"));  // not as strings
  CHECK_FALSE(slack::ts_less("1712345678.0002", "1712345678.000200"));
  CHECK_FALSE(slack::ts_less("5.000001", "5.000001"));
  auto api = "https://slack.com/api/";
  CHECK(slack::may_download_from("https://files.slack.com/files-pri/T1-F1/x.png", api));
  CHECK(slack::may_download_from("https://a.slack-edge.com/x.png", api));
  CHECK_FALSE(slack::may_download_from("http://files.slack.com/files-pri/T1-F1/x.png", api));  // no plain http
  CHECK_FALSE(slack::may_download_from("https://files.slack.com.evil.example/x", api));
  CHECK_FALSE(slack::may_download_from("https://evil.example/files.slack.com", api));
  CHECK_FALSE(slack::may_download_from("https://files.slack.com@evil.example/x", api));
  CHECK_FALSE(slack::may_download_from("https://169.254.169.254/latest/meta-data", api));
  CHECK_FALSE(slack::may_download_from("file:///etc/passwd", api));
  // A fake (tests, the sandbox): its own host and port, nothing else on it.
  CHECK(slack::may_download_from("http://127.0.0.1:4567/files-pri/F1/a.txt", "http://127.0.0.1:4567/api/"));
  CHECK_FALSE(slack::may_download_from("http://127.0.0.1:22/x", "http://127.0.0.1:4567/api/"));
  // One parse for the check and the download: a query or fragment before
  // the first '/' is not part of the host for either.
  for (auto url : {"https://files.slack.com?x@evil.example/y", "https://files.slack.com#@evil.example/y"}) {
    auto parsed = slack::parse_file_url(url);
    INFO(url);
    if (parsed) {
      CHECK(parsed->host == "files.slack.com");  // what is checked is where the download goes
      CHECK(parsed->origin() == "https://files.slack.com:443");
    }
  }
  auto u = slack::parse_file_url("https://Files.Slack.com/files-pri/T1-F1/x.png?t=1");
  REQUIRE(u);
  CHECK(u->host == "files.slack.com");
  CHECK(u->target == "/files-pri/T1-F1/x.png?t=1");
  CHECK_FALSE(slack::parse_file_url("https://user:pw@files.slack.com/x"));
  CHECK_FALSE(slack::parse_file_url("ftp://files.slack.com/x"));
  CHECK_FALSE(slack::parse_file_url("not a url"));
}

TEST_CASE("poller: with events off every reply arrives once, inside the call budget", "[slack]") {
  live_slack f(poll_only(5, 500, 15));
  auto [bot, agent, chat_id] = f.assigned_chat_for_alice();
  std::vector<std::string> threads, parents;
  for (auto channel : {"C0FINANCE", "C0HR", "C0OPS"}) {
    threads.push_back(f.open_thread(agent, chat_id, channel));
    parents.push_back(f.parent_ts_of(threads.back(), agent));
    REQUIRE_FALSE(parents.back().empty());
  }
  const char* channels[] = {"C0FINANCE", "C0HR", "C0OPS"};
  for (int i = 0; i < 12; ++i)
    f.fake.post_reply(channels[i % 3], parents[i % 3], "U0ERIN", "answer " + std::to_string(i));
  CHECK(f.fake.event_deliveries().empty());  // nothing pushed (no events URL): only the poller finds them
  for (size_t k = 0; k < threads.size(); ++k) {
    auto list = f.messages_until(threads[k], agent, [](const json::array& l) { return from_slack(l) >= 4; });
    CHECK(from_slack(list) == 4);
    CHECK(list.back().at("author").at("name") == "erin");  // users.info's display name, not U0ERIN
  }
  CHECK(f.fake.busiest_window("conversations.replies", 480ms) <= 5);  // 20 ms short of the window: jitter
  // A window longer than the test holds every call: the count above counts.
  CHECK(f.fake.busiest_window("conversations.replies", std::chrono::hours(1))
        == f.fake.call_count("conversations.replies"));
  httplib::Client cli("127.0.0.1", f.srv->port());
  auto metrics = cli.Get("/metrics");
  REQUIRE(metrics);
  CHECK_THAT(metrics->body, Catch::Contains("backline_slack_poll_replies_total 12\n") &&
                              Catch::Contains("backline_slack_poll_threads 3\n"));
}

TEST_CASE("poller: a budget of 1 call per window with 15 messages a call still converges", "[slack]") {
  live_slack f(poll_only(1, 100, 15));  // 40 replies: 3 calls, 100 ms apart at least
  auto [bot, agent, chat_id] = f.assigned_chat_for_alice();
  auto thread = f.open_thread(agent, chat_id, "C0FINANCE", "Question");
  auto parent = f.parent_ts_of(thread, agent);
  REQUIRE_FALSE(parent.empty());
  for (int i = 0; i < 40; ++i)
    f.fake.post_reply("C0FINANCE", parent, i % 2 ? "U0ERIN" : "U0HUGO", "part " + std::to_string(i));
  auto list = f.messages_until(thread, agent, [](const json::array& l) { return from_slack(l) >= 40; });
  REQUIRE(from_slack(list) == 40);
  // In Slack's order, each once.
  size_t n = 0;
  for (const auto& m : list)
    if (m.at("direction") == "from_slack")
      CHECK(m.at("text") == json::value("part " + std::to_string(n++)));
  CHECK(f.fake.busiest_window("conversations.replies", 80ms) <= 1);
  for (const auto& c : f.fake.calls())
    if (c.method == "conversations.replies")
      CHECK(c.args.at("limit").as_int64() == 15);
}

TEST_CASE("poller: a done thread is no longer polled, an open one still is", "[slack]") {
  live_slack f(poll_only(20, 200, 15));
  auto [bot, agent, chat_id] = f.assigned_chat_for_alice();
  auto open_id = f.open_thread(agent, chat_id, "C0FINANCE", "Open");
  auto done_id = f.open_thread(agent, chat_id, "C0HR", "Done soon");
  auto open_ts = f.parent_ts_of(open_id, agent);
  auto done_ts = f.parent_ts_of(done_id, agent);
  int status = 0;
  f.call("POST", "/api/v1/threads/" + done_id + "/done", agent, json::object{}, &status);
  REQUIRE(status == 200);
  auto polled = [&](const std::string& ts) {
    auto calls = f.fake.calls();
    return std::count_if(calls.begin(), calls.end(), [&](const slack::api_call& c) {
      return c.method == "conversations.replies" && c.args.contains("ts") && c.args.at("ts") == json::value(ts);
    });
  };
  // The poller makes one call at a time: once a reply posted after Done has
  // come through a poll of the open thread, any call for the done thread
  // that was under way has reached Slack. Two such rounds, then the count.
  size_t replies = 0;
  auto one_round = [&, agent = agent] {  // a copy: clang 14 captures no structured binding
    f.fake.post_reply("C0FINANCE", open_ts, "U0ERIN", "still here " + std::to_string(++replies));
    f.messages_until(open_id, agent, [&](const json::array& l) { return from_slack(l) == replies; });
  };
  one_round();
  one_round();
  auto done_before = polled(done_ts);
  auto open_before = polled(open_ts);
  one_round();
  CHECK(polled(done_ts) == done_before);
  CHECK(polled(open_ts) > open_before);
}

TEST_CASE("poller: with events and polling both on, lost events are found and none is kept twice", "[slack]") {
  live_slack f([](server_config& c) {
    c.slack_poll_budget = 20;
    c.slack_poll_window_ms = 200;
    c.slack_poll_interval_ms = 20;
  });
  auto [bot, agent, chat_id] = f.assigned_chat_for_alice();
  auto thread = f.open_thread(agent, chat_id, "C0FINANCE", "Question");
  auto parent = f.parent_ts_of(thread, agent);
  f.fake.post_reply("C0FINANCE", parent, "U0ERIN", "by event");  // pushed, and polled later too
  f.messages_until(thread, agent, [](const json::array& l) { return from_slack(l) == 1; });
  f.fake.events_enabled(false);  // Slack stops pushing
  f.fake.post_reply("C0FINANCE", parent, "U0HUGO", "lost event");
  auto list = f.messages_until(thread, agent, [](const json::array& l) { return from_slack(l) >= 2; });
  std::this_thread::sleep_for(300ms);  // more polls come; nothing doubles
  list = f.call("GET", "/api/v1/threads/" + thread + "/messages", agent).at("messages").as_array();
  CHECK(from_slack(list) == 2);
  CHECK(list.back().at("text") == "lost event");
}

TEST_CASE("poller: Slack's rate limit pauses polling for its Retry-After, then it converges", "[slack]") {
  live_slack f(poll_only(50, 1000, 15));
  auto [bot, agent, chat_id] = f.assigned_chat_for_alice();
  auto thread = f.open_thread(agent, chat_id, "C0FINANCE", "Question");
  auto parent = f.parent_ts_of(thread, agent);
  f.fake.inject_fault("conversations.replies", slack::fault_kind::ratelimit, 1, 1);
  f.fake.post_reply("C0FINANCE", parent, "U0ERIN", "after the pause");
  f.messages_until(thread, agent, [](const json::array& l) { return from_slack(l) == 1; });
  std::vector<slack::api_call> replies;
  for (const auto& c : f.fake.calls())
    if (c.method == "conversations.replies")
      replies.push_back(c);
  auto limited = std::find_if(replies.begin(), replies.end(), [](const slack::api_call& c) { return c.http_status == 429; });
  REQUIRE(limited != replies.end());
  REQUIRE(limited + 1 != replies.end());
  CHECK((limited + 1)->at - limited->at >= 1000ms);  // never sooner than Retry-After
}

namespace {

// A reply with a file from Slack, by event or by poll, reaches the inbox with
// the file stored and served; one too large is left out with a note.
void files_from_slack_arrive(live_slack& f) {
  auto [bot, agent, chat_id] = f.assigned_chat_for_alice();
  auto thread = f.open_thread(agent, chat_id, "C0FINANCE", "Receipt?");
  auto parent = f.parent_ts_of(thread, agent);
  std::string png = "\x89PNG\r\n\x1a\n-pretend-image";
  f.fake.post_reply("C0FINANCE", parent, "U0ERIN", "here it is",
                    {slack::fake_file{"receipt.png", png, "image/png"}, slack::fake_file{"huge.bin", std::string(5000, 'x')}});
  auto list = f.messages_until(thread, agent, [](const json::array& l) { return from_slack(l) == 1; });
  auto& reply = list.back().as_object();
  REQUIRE(reply.at("files").as_array().size() == 1);
  auto& file = reply.at("files").at(0);
  CHECK(file.at("name") == "receipt.png");
  CHECK(file.at("mimetype") == "image/png");
  CHECK_THAT(std::string(reply.at("text").as_string()),
             Catch::StartsWith("here it is") && Catch::Contains("huge.bin was not downloaded"));
  httplib::Client cli("127.0.0.1", f.srv->port());
  auto got = cli.Get(("/api/v1/files/" + std::string(file.at("id").as_string())).c_str(),
                     httplib::Headers{{"Authorization", "Bearer " + agent}});
  REQUIRE(got);
  CHECK(got->status == 200);
  CHECK(got->body == png);
  CHECK(got->get_header_value("Content-Type") == "image/png");
  CHECK_THAT(got->get_header_value("Content-Disposition"), Catch::StartsWith("inline"));
}

} // namespace

TEST_CASE("files in Slack replies are downloaded with the bot token and served by the inbox, by event", "[slack]") {
  live_slack f([](server_config& c) {
    c.slack_inbound = "events";
    c.max_file_bytes = 1000;
  });
  files_from_slack_arrive(f);
}

TEST_CASE("files in Slack replies are downloaded with the bot token and served by the inbox, by poll", "[slack]") {
  live_slack f([](server_config& c) {
    c.max_file_bytes = 1000;
    poll_only(20, 200, 15)(c);
  });
  files_from_slack_arrive(f);
}

TEST_CASE("poller: faults on conversations.replies (500, timeout, cut connection) lose and duplicate nothing", "[slack]") {
  for (auto kind : {slack::fault_kind::server_error, slack::fault_kind::slow, slack::fault_kind::drop}) {
    CAPTURE(static_cast<int>(kind));
    live_slack f([](server_config& c) {
      poll_only(50, 200, 15)(c);
      c.slack_poll_interval_ms = 50;
      c.slack_timeout_ms = 300;
    });
    auto [bot, agent, chat_id] = f.assigned_chat_for_alice();
    auto thread = f.open_thread(agent, chat_id, "C0FINANCE", "Question");
    auto parent = f.parent_ts_of(thread, agent);
    f.fake.inject_fault("conversations.replies", slack::fault_spec{kind, 3, 1, 600ms});  // slow: past the timeout
    for (int i = 0; i < 4; ++i)
      f.fake.post_reply("C0FINANCE", parent, "U0ERIN", "r" + std::to_string(i));
    auto list = f.messages_until(thread, agent, [](const json::array& l) { return from_slack(l) >= 4; });
    std::this_thread::sleep_for(200ms);
    list = f.call("GET", "/api/v1/threads/" + thread + "/messages", agent).at("messages").as_array();
    CHECK(from_slack(list) == 4);
  }
}

// The outbox across a real crash: the backline binary is killed (SIGKILL)
// after Slack took a post but before backline heard so; restarted on the same
// data, it finds the post by its outbox id in Slack's metadata and never
// posts it again.

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <signal.h>

#include <thread>

#include "slack/fake_slack.hpp"
#include "support/killable_backline.hpp"
#include "support/wait.hpp"

namespace json = boost::json;
using namespace backline;
using namespace backline::testing;
using namespace std::chrono_literals;

namespace {

size_t posts_of(const slack::fake_slack& fake, const std::string& method, const std::string& text) {
  size_t n = 0;
  for (const auto& s : fake.sent())
    n += s.method == method && s.text == text ? 1 : 0;
  return n;
}

} // namespace

TEST_CASE("a crash (SIGKILL) right after Slack accepted a post, with or without files, leads to no second post", "[slack]") {
  temp_dir dir;
  slack::fake_slack fake;
  fake.start();
  killable_backline b{dir, fake, {"--slack-inbound", "events", "--slack-timeout-ms", "5000"}};
  b.start();
  auto token_of = [&](const std::string& id, const std::string& role) {
    return std::string(b.call("POST", "/api/v1/users", "admin-crash",
                              json::object{{"id", id}, {"name", id}, {"role", role}, {"inbox_access", true}})
                         .at("token")
                         .as_string());
  };
  auto bot = token_of("bot", "bot");
  auto agent = token_of("alice", "agent");
  auto chat = std::string(b.call("POST", "/api/v1/chats", bot, json::object{{"customer", {{"id", "c"}, {"name", "D"}}}})
                            .at("id")
                            .as_string());
  b.call("POST", "/api/v1/chats/" + chat + "/assign", bot, json::object{{"agent_id", "alice"}});
  auto thread = std::string(b.call("POST", "/api/v1/chats/" + chat + "/threads", agent,
                                   json::object{{"channel_id", "C0FINANCE"}, {"text", "Refund?"}})
                              .at("id")
                              .as_string());
  REQUIRE(backline::testing::eventually(
    [&] { return b.call("GET", "/api/v1/threads/" + thread, agent).at("slack_ts").is_string(); }));

  // Slack takes the next post at once but holds its answer for 3 s; backline
  // is killed in between. Once for text, once for text with a file.
  for (bool with_file : {false, true}) {
    CAPTURE(with_file);
    std::string text = with_file ? "Receipt attached" : "Paid, please confirm";
    std::string method = with_file ? "files.completeUploadExternal" : "chat.postMessage";
    fake.inject_fault(method, slack::fault_spec{slack::fault_kind::slow, 1, 1, 3000ms});
    if (with_file) {
      httplib::Client cli("127.0.0.1", b.port);
      httplib::MultipartFormDataItems form{{"text", text, "", ""}, {"files", "paid", "receipt.txt", "text/plain"}};
      auto r = cli.Post(("/api/v1/threads/" + thread + "/messages").c_str(),
                        httplib::Headers{{"Authorization", "Bearer " + agent}}, form);
      REQUIRE(r);
      REQUIRE(r->status == 201);
    } else {
      b.call("POST", "/api/v1/threads/" + thread + "/messages", agent, json::object{{"text", text}});
    }
    REQUIRE(backline::testing::eventually([&] { return posts_of(fake, method, text) > 0; }));
    REQUIRE(posts_of(fake, method, text) == 1);
    b.proc->signal(SIGKILL);
    REQUIRE(b.proc->wait(10s) == 128 + SIGKILL);

    b.start();  // same data: the message is acknowledged but not recorded as sent
    std::string delivery;
    backline::testing::eventually([&] {
      auto messages = b.call("GET", "/api/v1/threads/" + thread + "/messages", agent).at("messages").as_array();
      delivery = std::string(messages.back().at("delivery").as_string());
      return delivery == "sent";
    });
    CHECK(delivery == "sent");
    CHECK(posts_of(fake, method, text) == 1);  // found by its outbox id or its files, not posted again
  }
  CHECK(fake.call_count("conversations.replies") >= 2);
  b.proc->signal(SIGTERM);
  CHECK(b.proc->wait(20s) == 0);
  fake.stop();
}

// The Slack port over the Web API, against the local Slack fake: order,
// metadata, pacing, retries, a channel Slack rejects, and files.

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <thread>

#include "backline/file_store.hpp"
#include "backline/inbox.hpp"
#include "slack/fake_slack.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace backline;
using namespace std::chrono_literals;
using backline::testing::temp_dir;

namespace {

struct web_port_fixture {
  temp_dir dir;
  slack::fake_slack fake;
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  std::shared_ptr<file_store> files = std::make_shared<file_store>(dir.sub("files"));
  slack_port_actor port;

  explicit web_port_fixture(std::chrono::milliseconds min_interval = 20ms, int burst = 3,
                            std::chrono::milliseconds timeout = 2000ms, size_t callers = 4,
                            slack::fake_slack_config fake_config = {})
      : fake(std::move(fake_config)) {
    fake.start();
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    sys = std::make_unique<caf::actor_system>(cfg);
    slack_port_options opts;
    opts.api_url = fake.base_url();
    opts.token = fake.config().bot_token;
    opts.timeout = timeout;
    opts.min_interval = min_interval;
    opts.burst = burst;
    opts.max_backoff = 1000ms;
    opts.callers = callers;
    port = inbox::spawn_web_slack_port(*sys, opts, files);
  }
  ~web_port_fixture() {
    caf::anon_send_exit(port, caf::exit_reason::user_shutdown);
    port = nullptr;
    sys.reset();
    fake.stop();
  }

  std::pair<reply_status, std::string> post(outbound_post p, std::chrono::milliseconds limit = 10s) {
    caf::scoped_actor self{*sys};
    std::pair<reply_status, std::string> out{reply_status{errc::timeout, "no answer"}, ""};
    self->request(port, limit, atoms::post::value, std::move(p))
      .receive([&](const reply_status& st, const std::string& ts) { out = {st, ts}; }, [](caf::error&) {});
    return out;
  }
};

outbound_post message(std::string channel, std::string thread_ts, std::string text, std::string id = "m-1") {
  outbound_post post;
  post.thread_id = "ch-1.t1";
  post.message_id = std::move(id);
  post.channel_id = std::move(channel);
  post.thread_ts = std::move(thread_ts);
  post.text = std::move(text);
  return post;
}

} // namespace

TEST_CASE("the web port posts parents and replies with their outbox id in Slack metadata", "[slack]") {
  web_port_fixture f;
  auto parent = f.post(message("C0FINANCE", "", "Refund for Dana? @here & <b>", "m-parent"));
  REQUIRE(parent.first.ok());
  REQUIRE_FALSE(parent.second.empty());
  auto reply = f.post(message("C0FINANCE", parent.second, "any news?", "m-reply"));
  REQUIRE(reply.first.ok());
  auto thread = f.fake.thread("C0FINANCE", parent.second);
  REQUIRE(thread.size() == 2);
  CHECK(thread[0].at("text") == "Refund for Dana? <!here> &amp; &lt;b&gt;");
  CHECK(thread[1].at("text") == "any news?");
  auto posts = f.fake.sent();
  REQUIRE(posts.size() == 2);
  CHECK(posts[1].args.at("metadata").at("event_payload").at("outbox_id") == "m-reply");
  // The port keeps no copy of what it sent: a busy server's memory does not grow with its posts.
  caf::scoped_actor self{*f.sys};
  std::optional<size_t> kept;
  self->request(f.port, 10s, atoms::sent_log::value)
    .receive([&](const std::vector<outbound_post>& sent) { kept = sent.size(); }, [](caf::error&) {});
  CHECK(kept == size_t{0});
}

// Thread actors ask the port once for their channel's actor, then post to it
// directly: the same queue, order and pacing as posts through the port.
TEST_CASE("a channel's actor from the port posts in the same order as the port itself", "[slack]") {
  web_port_fixture f;
  caf::scoped_actor self{*f.sys};
  auto route = [&](const std::string& channel) {
    slack_channel_actor found;
    self->request(f.port, 10s, atoms::route::value, channel)
      .receive([&](slack_channel_actor& a) { found = std::move(a); }, [](caf::error&) {});
    return found;
  };
  auto finance = route("C0FINANCE");
  REQUIRE(finance);
  CHECK(route("C0FINANCE") == finance);
  CHECK(route("C0HR") != finance);

  auto parent = f.post(message("C0FINANCE", "", "Refund for Dana?", "m-parent"));
  REQUIRE(parent.first.ok());
  // Sent before any is answered, to the channel's actor: in order. (A sender
  // keeps to one way: through the port is one hop more, and may come later.)
  auto one = self->request(finance, 10s, atoms::post::value, message("C0FINANCE", parent.second, "one", "m-one"));
  auto two = self->request(finance, 10s, atoms::post::value, message("C0FINANCE", parent.second, "two", "m-two"));
  auto three = self->request(finance, 10s, atoms::post::value, message("C0FINANCE", parent.second, "three", "m-three"));
  for (auto* h : {&one, &two, &three}) {
    bool ok = false;
    h->receive([&](const reply_status& st, const std::string& ts) { ok = st.ok() && !ts.empty(); },
               [](caf::error&) {});
    CHECK(ok);
  }
  // The port's own posts to the channel go through the same actor.
  CHECK(f.post(message("C0FINANCE", parent.second, "four", "m-four")).first.ok());
  auto thread = f.fake.thread("C0FINANCE", parent.second);
  REQUIRE(thread.size() == 5);
  CHECK(thread[1].at("text") == "one");
  CHECK(thread[2].at("text") == "two");
  CHECK(thread[3].at("text") == "three");
  CHECK(thread[4].at("text") == "four");
}

TEST_CASE("rate limits and server errors are retried: the message reaches Slack once", "[slack]") {
  web_port_fixture f;
  f.fake.inject_fault("chat.postMessage", {slack::fault_kind::ratelimit, 1, 1});
  f.fake.inject_fault("chat.postMessage", {slack::fault_kind::server_error, 2});
  auto start = std::chrono::steady_clock::now();
  auto r = f.post(message("C0HR", "", "please check"));
  REQUIRE(r.first.ok());
  CHECK(std::chrono::steady_clock::now() - start >= 1s);  // Retry-After was honoured
  size_t posted = 0;
  for (auto& s : f.fake.sent())
    posted += s.method == "chat.postMessage" ? 1 : 0;
  CHECK(posted == 1);
  CHECK(f.fake.call_count("chat.postMessage") == 4);
}

TEST_CASE("an archived channel fails its messages with the reason, other channels carry on", "[slack]") {
  web_port_fixture f;
  f.fake.archive_channel("C0OPS");
  auto failed = f.post(message("C0OPS", "", "hello ops"));
  CHECK_FALSE(failed.first.ok());
  CHECK_THAT(failed.first.message, Catch::Contains("is_archived"));
  CHECK(f.post(message("C0FINANCE", "", "hello finance")).first.ok());
  f.fake.unarchive_channel("C0OPS");
  CHECK(f.post(message("C0OPS", "", "hello again")).first.ok());  // it recovers
}

TEST_CASE("text with files is one Slack message: the text is the files' comment", "[slack]") {
  web_port_fixture f;
  auto parent = f.post(message("C0FINANCE", "", "parent"));
  REQUIRE(parent.first.ok());
  auto ref = f.files->put("receipt.png", "image/png", "PNGDATA", "ch-1");
  REQUIRE(ref);
  auto m = message("C0FINANCE", parent.second, "receipt attached", "m-file");
  m.files.push_back(*ref);
  REQUIRE(f.post(m).first.ok());
  auto thread = f.fake.thread("C0FINANCE", parent.second);
  REQUIRE(thread.size() == 2);
  CHECK(thread[1].at("text") == "receipt attached");
  REQUIRE(thread[1].at("files").as_array().size() == 1);
  auto file_id = std::string(thread[1].at("files").at(0).at("id").as_string());
  CHECK(f.fake.file_content(file_id) == std::optional<std::string>("PNGDATA"));
}

TEST_CASE("posts to one channel are paced and kept in order", "[slack]") {
  web_port_fixture f(200ms, 1);
  caf::scoped_actor self{*f.sys};
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i)
    self->send(f.port, atoms::post::value, message("C0HR", "", "n" + std::to_string(i), "m-" + std::to_string(i)));
  for (int i = 0; i < 5; ++i)
    self->receive([](const reply_status& st, const std::string&) { CHECK(st.ok()); },
                  caf::after(10s) >> [] { FAIL("no answer"); });
  CHECK(std::chrono::steady_clock::now() - start >= 750ms);  // 1 at once, then one per 200 ms
  auto posts = f.fake.sent();
  REQUIRE(posts.size() == 5);
  for (int i = 0; i < 5; ++i)
    CHECK(posts[i].text == "n" + std::to_string(i));
}

TEST_CASE("pacing counts from Slack's answer: a post held up on its way cannot bring the next one too close",
          "[slack]") {
  // One caller, so a slow answer in #finance holds #hr's next post on its way to Slack.
  web_port_fixture f(400ms, 1, 2000ms, 1);
  f.fake.set_rate_limit("chat.postMessage", {2.5, 1});  // Slack enforces the same pace: 1 per 400 ms
  auto start = std::chrono::steady_clock::now();
  REQUIRE(f.post(message("C0HR", "", "y1", "m-y1")).first.ok());  // #hr's bucket is empty, here and in Slack
  std::this_thread::sleep_until(start + 300ms);
  f.fake.inject_fault("chat.postMessage", {slack::fault_kind::slow, 1, 1, 250ms});
  caf::scoped_actor self{*f.sys};
  // Slack takes x1 at once and answers 250 ms later; the caller waits for it.
  self->send(f.port, atoms::post::value, message("C0FINANCE", "", "x1", "m-x1"));
  std::this_thread::sleep_for(20ms);
  // y2 is due at 400 ms but reaches Slack only after x1's answer (~550 ms);
  // y3 must wait 400 ms from then, not from when y2 was sent.
  self->send(f.port, atoms::post::value, message("C0HR", "", "y2", "m-y2"));
  self->send(f.port, atoms::post::value, message("C0HR", "", "y3", "m-y3"));
  for (int i = 0; i < 3; ++i)
    self->receive([](const reply_status& st, const std::string&) { CHECK(st.ok()); },
                  caf::after(10s) >> [] { FAIL("no answer"); });
  size_t refused = 0;
  for (const auto& c : f.fake.calls())
    refused += c.method == "chat.postMessage" && c.http_status == 429 ? 1 : 0;
  CHECK(refused == 0);
  CHECK(f.fake.call_count("chat.postMessage") == 4);
  auto posts = f.fake.sent();
  REQUIRE(posts.size() == 4);
  CHECK(posts[3].text == "y3");
}

TEST_CASE("a post whose answer was lost is found by its outbox id, not posted twice", "[slack]") {
  web_port_fixture f;
  // Slack takes the message, but the connection is cut before its answer.
  f.fake.inject_fault("chat.postMessage", {slack::fault_kind::drop, 1});
  auto r = f.post(message("C0FINANCE", "", "only once please", "m-once"));
  REQUIRE(r.first.ok());
  size_t posted = 0;
  for (auto& s : f.fake.sent())
    posted += s.method == "chat.postMessage" ? 1 : 0;
  CHECK(posted == 1);
  CHECK(f.fake.call_count("conversations.history") >= 1);  // it looked before posting again
  CHECK(f.fake.message("C0FINANCE", r.second).has_value());
}

// A busy channel tells the port its length at most every 100 ms, not at
// every post; the last length still arrives.
TEST_CASE("the port's queue depth catches up with a busy channel", "[slack]") {
  web_port_fixture f(10s, 1);  // one post now, the next in 10 s
  caf::scoped_actor self{*f.sys};
  auto queued = [&] {
    uint64_t out = 0;
    self->request(f.port, 5s, atoms::health::value)
      .receive([&](const reply_status&, uint64_t q) { out = q; }, [](caf::error&) {});
    return out;
  };
  for (int i = 0; i < 6; ++i)
    self->send(f.port, atoms::post::value, message("C0HR", "", "n" + std::to_string(i), "m-" + std::to_string(i)));
  uint64_t seen = 0;
  backline::testing::eventually([&] { return (seen = queued()) == 5; });
  CHECK(seen == 5);  // the first went out; five wait for their turn
}

TEST_CASE("a rejected token keeps messages queued and says so, until Slack takes the token again", "[slack]") {
  web_port_fixture f;
  caf::scoped_actor self{*f.sys};
  auto health = [&] {
    std::pair<reply_status, uint64_t> out{reply_status{errc::timeout, "no answer"}, 0};
    self->request(f.port, 5s, atoms::health::value)
      .receive([&](const reply_status& st, uint64_t queued) { out = {st, queued}; }, [](caf::error&) {});
    return out;
  };
  CHECK(health().first.ok());
  f.fake.revoke_token();
  self->send(f.port, atoms::post::value, message("C0FINANCE", "", "while revoked", "m-revoked"));
  std::pair<reply_status, uint64_t> h;
  for (int i = 0; i < 200; ++i) {
    h = health();
    if (!h.first.ok())
      break;
    std::this_thread::sleep_for(10ms);
  }
  CHECK(h.first.code == errc::unauthenticated);
  CHECK(h.second == 1);  // still queued, not dropped
  f.fake.restore_token();
  bool delivered = false;
  self->receive([&](const reply_status& st, const std::string& ts) { delivered = st.ok() && !ts.empty(); },
                caf::after(10s) >> [] {});
  CHECK(delivered);
  CHECK(health().first.ok());
  CHECK(health().second == 0);
}

TEST_CASE("mentions go out as Slack's tokens: groups by handle and people by name, looked up and cached", "[slack]") {
  web_port_fixture f;
  auto with_mentions = [](std::string text, std::string id) {
    auto p = message("C0FINANCE", "", text, std::move(id));
    for (const auto& m : extract_mentions(text))
      p.mentions.push_back(m);
    return p;
  };
  auto r = f.post(with_mentions("@here @finance-team can @Erin Finance or @hugo check? @nobody & <b>", "m-1"));
  REQUIRE(r.first.ok());
  auto sent = f.fake.sent();
  REQUIRE(sent.size() == 1);
  CHECK(sent[0].text ==
        "<!here> <!subteam^S0FIN> can <@U0ERIN> Finance or <@U0HUGO> check? @nobody &amp; &lt;b&gt;");
  // A second post with names uses the cached lookup: no more directory calls.
  auto lookups = f.fake.call_count("users.list") + f.fake.call_count("usergroups.list");
  REQUIRE(f.post(with_mentions("@hugo again", "m-2")).first.ok());
  CHECK(f.fake.call_count("users.list") + f.fake.call_count("usergroups.list") == lookups);
  // Text without @names looks nothing up.
  REQUIRE(f.post(message("C0FINANCE", "", "plain", "m-3")).first.ok());
  CHECK(f.fake.call_count("users.list") + f.fake.call_count("usergroups.list") == lookups);
}

TEST_CASE("many callers share one lookup of the workspace's names: posts with @names in many channels at once "
          "fetch them once, and each goes out with real mentions", "[slack]") {
  constexpr int channels = 24;  // more than the callers: every caller posts some
  slack::fake_slack_config workspace;
  workspace.worker_threads = 64;
  for (int i = 0; i < channels; ++i)
    workspace.workspace.channels.push_back({"C1CH" + std::to_string(i), "team-" + std::to_string(i)});
  web_port_fixture f(20ms, 3, 2000ms, 16, workspace);
  caf::scoped_actor self{*f.sys};
  for (int i = 0; i < channels; ++i) {
    auto p = message("C1CH" + std::to_string(i), "", "@hugo and @finance-team, please look", "m-" + std::to_string(i));
    for (const auto& m : extract_mentions(p.text))
      p.mentions.push_back(m);
    self->send(f.port, atoms::post::value, std::move(p));
  }
  int ok = 0;
  for (int i = 0; i < channels; ++i)
    self->receive([&](const reply_status& st, const std::string&) { ok += st.ok() ? 1 : 0; },
                  caf::after(10s) >> [] { FAIL("no answer"); });
  CHECK(ok == channels);
  // Slack allows these about 20 times a minute: one caller each would have
  // asked up to 16 times.
  CHECK(f.fake.call_count("users.list") == 1);
  CHECK(f.fake.call_count("usergroups.list") == 1);
  auto sent = f.fake.sent();
  REQUIRE(sent.size() == static_cast<size_t>(channels));
  for (const auto& m : sent)
    CHECK(m.text == "<@U0HUGO> and <!subteam^S0FIN>, please look");
}

TEST_CASE("names of Slack users are looked up once and cached, unknown ids stay ids", "[slack]") {
  web_port_fixture f;
  caf::scoped_actor self{*f.sys};
  std::vector<std::string> names;
  auto ask = [&](std::vector<std::string> ids) {
    self->request(f.port, 5s, atoms::resolve::value, std::move(ids))
      .receive([&](const std::vector<std::string>& n) { names = n; }, [](caf::error&) { FAIL("no answer"); });
  };
  ask({"U0ERIN", "U0HUGO", "U0ERIN", "U0NOBODY"});
  CHECK(names == std::vector<std::string>{"erin", "hugo", "erin", "U0NOBODY"});
  auto calls = f.fake.call_count("users.info");
  ask({"U0HUGO"});
  CHECK(names == std::vector<std::string>{"hugo"});
  CHECK(f.fake.call_count("users.info") == calls);
}

// Every method the port writes with, under every fault Slack can throw at it:
// each message ends up in the thread exactly once.
TEST_CASE("faults on every write method (429, 500, timeout, cut connection) lose and duplicate nothing", "[slack]") {
  using slack::fault_kind;
  for (std::string method : {"chat.postMessage", "files.getUploadURLExternal", "files.completeUploadExternal",
                             "reactions.add"})
    for (auto kind : {fault_kind::ratelimit, fault_kind::server_error, fault_kind::slow, fault_kind::drop}) {
      CAPTURE(method, static_cast<int>(kind));
      web_port_fixture f(20ms, 3, 300ms);
      auto parent = f.fake.post_message("C0FINANCE", "U0ERIN", "a thread");
      slack::fault_spec fault{kind, 1, 1, 700ms};
      f.fake.inject_fault(method, fault);
      auto p = message("C0FINANCE", parent, "the answer", "m-" + method);
      if (method.rfind("files.", 0) == 0) {
        auto ref = f.files->put("receipt.txt", "text/plain", "paid", "ch-1");
        REQUIRE(ref);
        p.files.push_back(*ref);
      }
      if (method == "reactions.add") {
        p.text.clear();
        p.reaction = "white_check_mark";
      }
      auto r = f.post(p, 20s);
      INFO(r.first.message);
      REQUIRE(r.first.ok());
      if (method == "reactions.add") {
        auto m = f.fake.message("C0FINANCE", parent);
        REQUIRE(m);
        auto& reactions = m->at("reactions").as_array();
        REQUIRE(reactions.size() == 1);
        CHECK(reactions[0].at("count") == 1);
        continue;
      }
      size_t ours = 0;
      for (const auto& m : f.fake.thread("C0FINANCE", parent))
        if (m.contains("bot_id")) {
          ++ours;
          CHECK(m.at("text") == "the answer");
          if (!p.files.empty())
            CHECK(m.at("files").as_array().size() == 1);
        }
      CHECK(ours == 1);
    }
}

TEST_CASE("a busy thread does not hold the channel: threads take turns, each in its own order", "[slack]") {
  web_port_fixture f(50ms, 1);
  auto busy = f.fake.post_message("C0FINANCE", "U0ERIN", "busy thread");
  auto quiet = f.fake.post_message("C0FINANCE", "U0HUGO", "quiet thread");
  caf::scoped_actor self{*f.sys};
  auto send = [&](std::string thread, std::string parent, std::string text) {
    auto p = message("C0FINANCE", std::move(parent), text, "m-" + text);
    p.thread_id = std::move(thread);
    self->send(f.port, atoms::post::value, std::move(p));  // the answer comes back as a message
  };
  for (int i = 1; i <= 5; ++i)
    send("ch-1.t1", busy, "busy-" + std::to_string(i));
  send("ch-1.t2", quiet, "quiet-1");
  for (int i = 0; i < 6; ++i)
    self->receive([](const reply_status& st, const std::string&) { CHECK(st.ok()); },
                  caf::after(std::chrono::seconds(10)) >> [] { FAIL("no answer"); });
  std::vector<std::string> order;
  for (const auto& s : f.fake.sent())
    order.push_back(s.text);
  // The quiet thread's message goes out second, not sixth; the busy one stays in order.
  CHECK(order == std::vector<std::string>{"busy-1", "quiet-1", "busy-2", "busy-3", "busy-4", "busy-5"});
}

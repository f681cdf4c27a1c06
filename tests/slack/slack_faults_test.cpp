// Slack misbehaving in every way it can at once, end to end: `backline serve`
// against the Slack fake while agents post (text, files) and L2 people reply,
// with faults injected on every Web API method the server uses (429 with
// Retry-After, 500, answers slower than the client's timeout, connections cut
// after the method ran), events delivered twice, late, out of order or never,
// the token revoked for a while and a channel archived. At the end every
// acknowledged message reached Slack once, in its thread's order; every L2
// reply is in the inbox once, in Slack's order; the archived channel's
// messages failed with the reason and nothing else was held up. The figures
// are printed (tests/reliability/README.md quotes them).
//
// BACKLINE_FAULT_SECONDS makes a longer run (default 6).

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "support/env.hpp"
#include "support/killable_backline.hpp"
#include "support/wait.hpp"

namespace json = boost::json;
using namespace backline;
using namespace backline::testing;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string>& methods_used() {
  static const std::vector<std::string> m{
    "chat.postMessage",         "chat.update",    "chat.delete",     "reactions.add",
    "files.getUploadURLExternal", "files.completeUploadExternal", "conversations.replies",
    "conversations.info",       "users.info",     "users.list",      "usergroups.list",
    "users.conversations"};
  return m;
}

struct thread_ref {
  std::string id, channel, parent_ts;
};

// What the clients were told.
struct ledger {
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> acked;  // thread id -> texts, in the order acknowledged
  std::vector<std::string> to_archived;                   // acknowledged for the archived channel's thread
  std::map<std::string, std::vector<std::string>> replies;  // thread id -> L2 reply texts, in Slack's order
  size_t files = 0, refused = 0;
};

httplib::Result post_message(int port, const std::string& token, const std::string& thread, const std::string& text,
                             bool with_file) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(10, 0);
  httplib::Headers h{{"Authorization", "Bearer " + token}};
  auto path = "/api/v1/threads/" + thread + "/messages";
  if (!with_file)
    return cli.Post(path.c_str(), h, json::serialize(json::object{{"text", text}}), "application/json");
  httplib::MultipartFormDataItems form{{"text", text, "", ""},
                                       {"files", "bytes of " + text, text + ".txt", "text/plain"}};
  return cli.Post(path.c_str(), h, form);
}

// Texts expected in one thread, in order, against what arrived there.
struct tally {
  size_t expected = 0, lost = 0, doubled = 0, threads_misordered = 0;
  void add(const std::vector<std::string>& want, const std::vector<std::string>& got) {
    expected += want.size();
    std::map<std::string, size_t> count;
    for (const auto& text : got)
      ++count[text];
    for (const auto& text : want) {
      lost += count[text] == 0 ? 1 : 0;
      doubled += count[text] > 1 ? 1 : 0;
    }
    threads_misordered += got != want ? 1 : 0;
    CHECK(got == want);
  }
};

json::array messages_of(killable_backline& b, const std::string& admin, const std::string& thread) {
  auto v = b.call("GET", "/api/v1/threads/" + thread + "/messages", admin);  // admins read without clearing
  return v.at("messages").as_array();
}

} // namespace

TEST_CASE("Slack faults on every method and event neither lose nor double nor reorder anything", "[slack]") {
  const auto seconds = env_int("BACKLINE_FAULT_SECONDS", 6);
  temp_dir dir;
  slack::fake_slack fake{[] {
    slack::fake_slack_config c;
    c.event_senders = 3;  // concurrent deliveries: events overtake each other
    c.event_retry_delays = {50ms, 150ms, 300ms};
    return c;
  }()};
  fake.add_channel(slack::fake_channel{"C0ARCHIVE", "old-projects"});
  fake.start();
  killable_backline b{dir, fake,
                      {"--slack-inbound", "both", "--slack-poll-window-ms", "1000", "--slack-poll-budget", "40",
                       "--slack-poll-interval-ms", "300", "--slack-min-interval-ms", "20", "--slack-timeout-ms",
                       "800", "--log-requests", "off"}};
  b.start();

  const std::string admin = "admin-crash";
  auto token_of = [&](const std::string& id, const std::string& role) {
    return std::string(
      b.call("POST", "/api/v1/users", admin, json::object{{"id", id}, {"name", id}, {"role", role}, {"inbox_access", true}})
        .at("token")
        .as_string());
  };
  auto bot = token_of("bot", "bot");
  auto alice = token_of("alice", "agent");
  auto chat = std::string(
    b.call("POST", "/api/v1/chats", bot, json::object{{"customer", {{"id", "c"}, {"name", "D"}}}}).at("id").as_string());
  b.call("POST", "/api/v1/chats/" + chat + "/assign", bot, json::object{{"agent_id", "alice"}});
  std::vector<thread_ref> threads;
  for (std::string channel : {"C0FINANCE", "C0HR", "C0OPS", "C0FINANCE", "C0HR", "C0OPS", "C0ARCHIVE"}) {
    auto v = b.call("POST", "/api/v1/chats/" + chat + "/threads", alice,
                    json::object{{"channel_id", channel}, {"text", "Question for " + channel}});
    threads.push_back({std::string(v.at("id").as_string()), channel, ""});
  }
  backline::testing::eventually([&] {
    size_t known = 0;
    for (auto& t : threads) {
      if (t.parent_ts.empty()) {
        auto v = b.call("GET", "/api/v1/threads/" + t.id, alice);
        if (v.at("slack_ts").is_string())
          t.parent_ts = std::string(v.at("slack_ts").as_string());
      }
      known += t.parent_ts.empty() ? 0 : 1;
    }
    return known == threads.size();
  });
  for (auto& t : threads)
    REQUIRE_FALSE(t.parent_ts.empty());
  const thread_ref archived = threads.back();
  threads.pop_back();

  ledger book;
  std::atomic<bool> stop{false};
  // Two agents' clients, each posting in turn to its own threads (a quarter with a file).
  std::vector<std::thread> clients;
  for (int c = 0; c < 2; ++c)
    clients.emplace_back([&, c] {
      for (int n = 0; !stop; ++n) {
        bool to_archive = n % 7 == 3;
        const auto& t = to_archive ? archived : threads[static_cast<size_t>(c + 2 * (n % 3))];
        auto text = "out-" + std::to_string(c) + "-" + std::to_string(n);
        bool file = n % 4 == 1;
        auto r = post_message(b.port, alice, t.id, text, file);
        std::lock_guard lk(book.mu);
        if (r && r->status == 201) {
          (to_archive ? book.to_archived : book.acked[t.id]).push_back(text);
          book.files += file ? 1 : 0;
        } else {
          ++book.refused;  // told so: not acknowledged, so not promised
        }
        std::this_thread::sleep_for(10ms);  // an agent's pace, not a flood
      }
    });
  // L2 people reply in Slack (events, and the poller for what events miss).
  std::thread l2([&] {
    std::mt19937 rng(7);
    for (int n = 0; !stop; ++n) {
      const auto& t = threads[rng() % threads.size()];
      auto text = "in-" + std::to_string(n);
      fake.post_reply(t.channel, t.parent_ts, n % 2 ? "U0HUGO" : "U0ERIN", text);
      {
        std::lock_guard lk(book.mu);
        book.replies[t.id].push_back(text);
      }
      std::this_thread::sleep_for(40ms);
    }
  });
  // Faults: one on a random method every 120 ms, and the events and the token misbehave in turn.
  size_t faults = 0;
  std::map<std::string, size_t> faults_by_method;
  const auto start = std::chrono::steady_clock::now();
  const auto until = start + std::chrono::seconds(seconds);
  std::mt19937 rng(20261125);
  bool archived_yet = false, revoked = false, events_off = false, late = false;
  while (std::chrono::steady_clock::now() < until) {
    const auto& method = methods_used()[rng() % methods_used().size()];
    slack::fault_spec fault;
    switch (rng() % 4) {
      case 0: fault = {slack::fault_kind::ratelimit, 1, 1}; break;
      case 1: fault = {slack::fault_kind::server_error, 2}; break;
      case 2: fault = {slack::fault_kind::slow, 1, 1, 1200ms}; break;  // past the client's 800 ms: a timeout
      default: fault = {slack::fault_kind::drop, 1}; break;
    }
    fake.inject_fault(method, fault);
    ++faults;
    ++faults_by_method[method];
    const double at = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / seconds;
    if (at > 0.1 && !archived_yet) {
      fake.archive_channel("C0ARCHIVE");
      archived_yet = true;
    }
    if (at > 0.15 && at < 0.3)
      fake.duplicate_next_events(3);  // twice, same event_id
    if ((at > 0.3 && at < 0.45) != events_off) {
      events_off = !events_off;
      fake.events_enabled(!events_off);  // never: only the poller finds these
    }
    if ((at > 0.5 && at < 0.65) != late) {
      late = !late;
      fake.delay_events(late ? 900ms : 0ms);  // late, and overtaken by later ones
    }
    if ((at > 0.7 && at < 0.8) != revoked) {
      revoked = !revoked;
      revoked ? fake.revoke_token() : fake.restore_token();
    }
    std::this_thread::sleep_for(120ms);
  }
  stop = true;
  for (auto& c : clients)
    c.join();
  l2.join();
  fake.clear_faults();
  fake.restore_token();
  fake.events_enabled(true);
  fake.delay_events(0ms);

  // Everything settles: each acknowledged message sent, each reply in the inbox.
  auto settled = [&] {
    for (const auto& t : threads) {
      size_t sent = 0, from_slack = 0;
      for (const auto& m : messages_of(b, admin, t.id)) {
        if (m.at("direction") == "from_slack")
          ++from_slack;
        else if (m.as_object().contains("delivery") && m.at("delivery") == "sent")
          ++sent;
      }
      if (sent < book.acked[t.id].size() + 1 || from_slack < book.replies[t.id].size())
        return false;
    }
    // The archived channel's messages are each decided, sent or failed (its
    // tail waits behind retries of the faults like any channel's).
    size_t decided = 0;
    for (const auto& m : messages_of(b, admin, archived.id))
      if (m.at("direction") == "to_slack" && m.as_object().contains("delivery") &&
          (m.at("delivery") == "sent" || m.at("delivery") == "failed"))
        ++decided;
    return decided >= book.to_archived.size() + 1;  // and its opening message
  };
  // The backlog the faults built up drains at Slack's pace: the longer the run, the longer it may take.
  const auto settle_start = std::chrono::steady_clock::now();
  const auto settle_limit = settle_start + std::chrono::seconds(30 + 2 * seconds);
  bool ok = false;
  while (!(ok = settled()) && std::chrono::steady_clock::now() < settle_limit)
    std::this_thread::sleep_for(100ms);
  const auto settle_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - settle_start).count();
  CHECK(ok);

  // Outbound: once each, in each thread's order, in Slack (the parent aside).
  tally out, in;
  for (const auto& t : threads) {
    std::vector<std::string> in_slack;
    for (const auto& m : fake.thread(t.channel, t.parent_ts))
      if (m.contains("bot_id") && m.at("ts") != json::value(t.parent_ts))
        in_slack.push_back(std::string(m.at("text").as_string()));
    INFO("outbound, thread " << t.id << " in " << t.channel);
    out.add(book.acked[t.id], in_slack);
  }
  // Inbound: once each, in Slack's order.
  for (const auto& t : threads) {
    std::vector<std::string> in_inbox;
    for (const auto& m : messages_of(b, admin, t.id))
      if (m.at("direction") == "from_slack")
        in_inbox.push_back(std::string(m.at("text").as_string()));
    INFO("inbound, thread " << t.id << " in " << t.channel);
    in.add(book.replies[t.id], in_inbox);
  }
  // The archived channel: each message either reached Slack once (before the
  // archive) or failed with Slack's reason; nothing after a failure got through.
  std::map<std::string, size_t> archived_in_slack;
  for (const auto& m : fake.thread(archived.channel, archived.parent_ts))
    if (m.contains("bot_id") && m.at("ts") != json::value(archived.parent_ts))
      ++archived_in_slack[std::string(m.at("text").as_string())];
  size_t archived_failed = 0, archived_sent = 0;
  bool failed_yet = false;
  bool opening = true;  // the thread's opening message went before the archive
  for (const auto& m : messages_of(b, admin, archived.id)) {
    if (m.at("direction") != "to_slack" || std::exchange(opening, false))
      continue;
    auto text = std::string(m.at("text").as_string());
    auto delivery = m.as_object().contains("delivery") ? std::string(m.at("delivery").as_string()) : "";
    INFO("archived channel message " << text << " " << delivery);
    if (delivery == "failed") {
      ++archived_failed;
      failed_yet = true;
      CHECK(archived_in_slack[text] == 0);
      CHECK(m.at("delivery_error").as_string().find("archived") != json::string::npos);
    } else {
      ++archived_sent;
      CHECK(delivery == "sent");
      CHECK(archived_in_slack[text] == 1);
      CHECK_FALSE(failed_yet);
    }
  }
  CHECK(archived_failed > 0);
  CHECK(archived_failed + archived_sent == book.to_archived.size());

  // Done through the faults: one closing reply and one check mark.
  for (const auto& method : methods_used())
    fake.inject_fault(method, slack::fault_spec{slack::fault_kind::drop, 1});
  b.call("POST", "/api/v1/threads/" + threads[0].id + "/done", alice, json::object{});
  size_t closing = 0, marks = 0;
  backline::testing::eventually([&] {
    closing = marks = 0;
    for (const auto& s : fake.sent()) {
      closing += s.method == "chat.postMessage" && s.thread_ts == threads[0].parent_ts &&
                 s.text.find("Marked as done") != std::string::npos;
      marks += s.method == "reactions.add" && s.ts == threads[0].parent_ts;
    }
    return closing > 0 && marks > 0;
  });
  CHECK(closing == 1);
  CHECK(marks == 1);

  std::map<std::string, size_t> deliveries_of;
  for (const auto& d : fake.event_deliveries())
    ++deliveries_of[d.event_id];
  size_t delivered_twice = 0;
  for (const auto& [id, n] : deliveries_of)
    delivered_twice += n > 1 ? 1 : 0;
  // What the poller found that no event brought (the events switched off, or late).
  std::string found_by_poll = "?";
  {
    httplib::Client cli("127.0.0.1", b.port);
    auto r = cli.Get("/metrics");
    REQUIRE(r);
    const std::string name = "\nbackline_slack_poll_replies_total ";
    if (auto at = r->body.find(name); at != std::string::npos)
      found_by_poll = r->body.substr(at + name.size(), r->body.find('\n', at + 1) - at - name.size());
  }
  std::cout << "slack faults: " << seconds << " s, " << faults << " faults injected on " << faults_by_method.size()
            << " methods, channel archived, token revoked, events doubled/late/lost; outbound " << out.expected
            << " acknowledged (" << book.files << " with files, " << book.refused << " refused): lost " << out.lost
            << ", duplicated " << out.doubled << ", threads out of order " << out.threads_misordered << "; inbound "
            << in.expected << " replies: lost " << in.lost << ", duplicated " << in.doubled
            << ", threads out of order " << in.threads_misordered << "; archived channel: " << archived_failed
            << " failed with the reason; events delivered twice " << delivered_twice << ", replies found by the poller "
            << found_by_poll << "; settled " << settle_s << " s after the faults stopped" << std::endl;
  CHECK(out.lost == 0);
  CHECK(out.doubled == 0);
  CHECK(in.lost == 0);
  CHECK(in.doubled == 0);
  CHECK(out.expected > 20);
  CHECK(in.expected > 20);
  b.proc->signal(SIGTERM);
  CHECK(b.proc->wait(20s) == 0);
  fake.stop();
}

// Crash safety under load: `backline serve` against the Slack fake, driven by
// several clients at once (threads, agent messages with and without files,
// Mark as Done, a chat transferred back and forth) while L2 people reply in Slack (by events and by
// poll), is killed with SIGKILL at random moments and started again on the
// same data, round after round. At the end nothing acknowledged is lost or
// doubled, in the inbox or in Slack, and the counts are right.
//
// The rounds here are short (CI); BACKLINE_CRASH_ROUNDS and
// BACKLINE_CRASH_ROUND_MS make a longer run (see scripts/crash-soak).

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "support/env.hpp"
#include "support/killable_backline.hpp"
#include "support/wait.hpp"

namespace json = boost::json;
using namespace backline;
using namespace backline::testing;
using namespace std::chrono_literals;

namespace {

// What the clients were told (2xx), and what they sent without an answer.
struct ledger {
  std::mutex mu;
  std::map<std::string, std::string> acked_messages;    // text -> thread id
  std::map<std::string, std::string> unknown_messages;  // text -> thread id (no answer: a crash)
  std::set<std::string> acked_done;                     // thread ids
  std::set<std::string> with_files;                     // acknowledged messages that had a file
  std::map<std::string, std::string> slack_replies;     // reply text -> thread id (posted in the fake)
  size_t acked_writes = 0;
  size_t acked_transfers = 0;
  size_t refused_to_old_owner = 0;  // 403s that showed an unanswered transfer had happened
};

struct world {
  std::string admin = "admin-crash", bot, alice;
  std::vector<std::string> chats;
  std::vector<std::string> reply_threads;  // open throughout: L2 replies go here
  std::vector<std::string> done_threads;   // clients may close these
  std::map<std::string, std::string> parent_of;   // thread id -> Slack parent ts
  std::map<std::string, std::string> channel_of;  // thread id -> Slack channel
  // A chat handed back and forth between alice and bob during the rounds,
  // with a thread its owner of the moment writes to.
  std::string bob, transfer_chat, transfer_thread;
};

httplib::Result send(int port, const std::string& method, const std::string& path, const std::string& token,
                     const json::value& body = nullptr) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(5, 0);
  httplib::Headers h{{"Authorization", "Bearer " + token}};
  return method == "GET" ? cli.Get(path.c_str(), h) : cli.Post(path.c_str(), h, json::serialize(body), "application/json");
}

// One client: messages (a third with a file) to random threads, sometimes
// Mark as Done on a closable thread; every answer goes into the ledger.
void client_loop(int id, int port, const world& w, ledger& book, std::atomic<bool>& stop) {
  std::mt19937 rng(static_cast<unsigned>(id * 7919 + port));
  for (int n = 0; !stop; ++n) {
    auto text = "c" + std::to_string(id) + "-p" + std::to_string(port) + "-" + std::to_string(n);
    bool closing = rng() % 10 == 0;
    if (closing) {
      auto& thread = w.done_threads[rng() % w.done_threads.size()];
      auto r = send(port, "POST", "/api/v1/threads/" + thread + "/done", w.alice, json::object{});
      if (r && r->status == 200) {
        std::lock_guard lk(book.mu);
        book.acked_done.insert(thread);
        ++book.acked_writes;
      }
      continue;
    }
    auto pool = rng() % 2 ? &w.reply_threads : &w.done_threads;
    auto& thread = (*pool)[rng() % pool->size()];
    bool file = rng() % 3 == 0;
    auto post = [&]() -> httplib::Result {
      if (!file)
        return send(port, "POST", "/api/v1/threads/" + thread + "/messages", w.alice, json::object{{"text", text}});
      httplib::Client cli("127.0.0.1", port);
      cli.set_read_timeout(5, 0);
      httplib::MultipartFormDataItems form{{"text", text, "", ""}, {"files", "bytes of " + text, text + ".txt", "text/plain"}};
      return cli.Post(("/api/v1/threads/" + thread + "/messages").c_str(),
                      httplib::Headers{{"Authorization", "Bearer " + w.alice}}, form);
    };
    auto r = post();
    if (!r && r.error() == httplib::Error::Connection)
      continue;  // never reached a server (it was down)
    std::lock_guard lk(book.mu);
    if (r && r->status == 201) {
      book.acked_messages[text] = thread;
      ++book.acked_writes;
      if (file)
        book.with_files.insert(text);
    } else if (!r || r->status >= 500) {
      book.unknown_messages[text] = thread;
    }
    // 409: the thread was closed meanwhile; nothing was written.
  }
}

// The transfer client: hands the transfer chat to the other agent, then
// writes to its thread as the new owner. After a crash it may not know who
// owns the chat (the transfer may or may not be in the log); a 403 tells it.
void transfer_loop(int port, const world& w, ledger& book, std::string& owner, std::atomic<bool>& stop) {
  auto token = [&](const std::string& agent) { return agent == "alice" ? w.alice : w.bob; };
  auto other = [](const std::string& agent) { return std::string(agent == "alice" ? "bob" : "alice"); };
  for (int n = 0; !stop; ++n) {
    auto target = other(owner);
    auto r = send(port, "POST", "/api/v1/chats/" + w.transfer_chat + "/transfer", token(owner),
                  json::object{{"agent_id", target}});
    if (!r && r.error() == httplib::Error::Connection)
      continue;
    if (r && r->status == 200) {
      owner = target;
      std::lock_guard lk(book.mu);
      ++book.acked_transfers;
      ++book.acked_writes;
    } else if (r && r->status == 403) {
      owner = target;  // an unanswered transfer had gone through
      std::lock_guard lk(book.mu);
      ++book.refused_to_old_owner;
      continue;
    } else {
      continue;  // no answer: the next attempt finds out
    }
    auto text = "t-p" + std::to_string(port) + "-" + std::to_string(n) + "-by-" + owner;
    auto m = send(port, "POST", "/api/v1/threads/" + w.transfer_thread + "/messages", token(owner),
                  json::object{{"text", text}});
    if (!m && m.error() == httplib::Error::Connection)
      continue;
    std::lock_guard lk(book.mu);
    if (m && m->status == 201) {
      book.acked_messages[text] = w.transfer_thread;
      ++book.acked_writes;
    } else if (!m || m->status >= 500) {
      book.unknown_messages[text] = w.transfer_thread;
    }
  }
}

json::array messages_of(int port, const world& w, const std::string& thread) {
  auto r = send(port, "GET", "/api/v1/threads/" + thread + "/messages", w.admin);  // admins read without clearing
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return json::parse(r->body).at("messages").as_array();
}

} // namespace

TEST_CASE("crash rounds: SIGKILL under mixed load loses and doubles nothing, in the inbox or in Slack", "[slack]") {
  const int rounds = env_int("BACKLINE_CRASH_ROUNDS", 3);
  const int round_ms = env_int("BACKLINE_CRASH_ROUND_MS", 1200);
  temp_dir dir;
  slack::fake_slack fake{[] {
    slack::fake_slack_config c;
    c.event_retry_delays = {50ms, 100ms, 200ms};  // a dead server misses them: the poller must find them
    return c;
  }()};
  fake.start();
  killable_backline b{dir, fake,
                      {"--slack-inbound", "both", "--slack-poll-window-ms", "1000", "--slack-poll-budget", "50",
                       "--slack-poll-interval-ms", "200", "--slack-min-interval-ms", "20", "--slack-timeout-ms", "2000",
                       "--log-requests", "off"}};
  b.start();

  world w;
  auto token_of = [&](const std::string& id, const std::string& role) {
    return std::string(b.call("POST", "/api/v1/users", w.admin,
                              json::object{{"id", id}, {"name", id}, {"role", role}, {"inbox_access", true}})
                         .at("token")
                         .as_string());
  };
  w.bot = token_of("bot", "bot");
  w.alice = token_of("alice", "agent");
  w.bob = token_of("bob", "agent");
  const auto& bob = w.bob;
  const char* channels[] = {"C0FINANCE", "C0HR", "C0OPS"};
  for (int c = 0; c < 3; ++c) {
    auto chat = std::string(b.call("POST", "/api/v1/chats", w.bot, json::object{{"customer", {{"id", "c"}, {"name", "D"}}}})
                              .at("id")
                              .as_string());
    b.call("POST", "/api/v1/chats/" + chat + "/assign", w.bot, json::object{{"agent_id", "alice"}});
    w.chats.push_back(chat);
    for (int t = 0; t < 4; ++t) {
      auto thread = std::string(b.call("POST", "/api/v1/chats/" + chat + "/threads", w.alice,
                                       json::object{{"channel_id", channels[(c + t) % 3]}, {"text", "Question"}})
                                  .at("id")
                                  .as_string());
      (t < 2 ? w.reply_threads : w.done_threads).push_back(thread);
      w.channel_of[thread] = channels[(c + t) % 3];
    }
  }
  backline::testing::eventually([&] {
    for (const auto& t : w.reply_threads) {
      auto v = b.call("GET", "/api/v1/threads/" + t, w.alice);
      if (v.at("slack_ts").is_string())
        w.parent_of[t] = std::string(v.at("slack_ts").as_string());
    }
    return w.parent_of.size() == w.reply_threads.size();
  });
  REQUIRE(w.parent_of.size() == w.reply_threads.size());
  // A transfer away and back, so ownership changes are in the log too.
  b.call("POST", "/api/v1/chats/" + w.chats[0] + "/transfer", w.alice, json::object{{"agent_id", "bob"}});
  b.call("POST", "/api/v1/chats/" + w.chats[0] + "/transfer", bob, json::object{{"agent_id", "alice"}});
  // And a chat that changes hands during the rounds.
  w.transfer_chat = std::string(
    b.call("POST", "/api/v1/chats", w.bot, json::object{{"customer", {{"id", "t"}, {"name", "T"}}}}).at("id").as_string());
  b.call("POST", "/api/v1/chats/" + w.transfer_chat + "/assign", w.bot, json::object{{"agent_id", "alice"}});
  w.transfer_thread = std::string(b.call("POST", "/api/v1/chats/" + w.transfer_chat + "/threads", w.alice,
                                         json::object{{"channel_id", "C0OPS"}, {"text", "Who takes this?"}})
                                    .at("id")
                                    .as_string());
  std::string transfer_owner = "alice";  // as the transfer client believes

  ledger book;
  std::mt19937 rng(20261125);
  for (int round = 0; round < rounds; ++round) {
    if (round > 0)
      b.start();
    std::atomic<bool> stop{false};
    std::vector<std::thread> clients;
    for (int c = 0; c < 3; ++c)
      clients.emplace_back(client_loop, c, b.port, std::cref(w), std::ref(book), std::ref(stop));
    clients.emplace_back(transfer_loop, b.port, std::cref(w), std::ref(book), std::ref(transfer_owner), std::ref(stop));
    // L2 people reply in Slack meanwhile (pushed as events; the poller finds what a dead server missed).
    std::thread l2([&] {
      for (int n = 0; !stop; ++n) {
        auto& thread = w.reply_threads[static_cast<size_t>(n) % w.reply_threads.size()];
        auto text = "l2-r" + std::to_string(round) + "-" + std::to_string(n);
        fake.post_reply(w.channel_of[thread], w.parent_of[thread], "U0HUGO", text);
        {
          std::lock_guard lk(book.mu);
          book.slack_replies[text] = thread;
        }
        std::this_thread::sleep_for(30ms);
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(round_ms / 2 + static_cast<int>(rng() % static_cast<unsigned>(round_ms))));
    b.proc->signal(SIGKILL);  // mid-load
    stop = true;
    REQUIRE(b.proc->wait(10s) == 128 + SIGKILL);
    for (auto& c : clients)
      c.join();
    l2.join();
  }

  // The last start: everything settles (deliveries, polls), then the audit.
  b.start();
  auto settled = [&] {
    // Each thread's messages read once a look (not once per message: the
    // check would grow with the square of what the rounds wrote).
    std::map<std::string, json::array> read;
    auto messages = [&](const std::string& t) -> const json::array& {
      auto it = read.find(t);
      if (it == read.end())
        it = read.emplace(t, messages_of(b.port, w, t)).first;
      return it->second;
    };
    for (const auto& t : w.reply_threads) {
      size_t replies = 0;
      for (const auto& m : messages(t))
        replies += m.at("direction") == "from_slack" ? 1 : 0;
      size_t expected = 0;
      for (const auto& [text, thread] : book.slack_replies)
        expected += thread == t ? 1 : 0;
      if (replies < expected)
        return false;
    }
    for (const auto& [text, thread] : book.acked_messages)
      for (const auto& m : messages(thread))
        if (m.at("text") == json::value(text) && m.at("delivery") != "sent")
          return false;
    return true;
  };
  CHECK(backline::testing::eventually(settled, std::chrono::minutes(2), std::chrono::milliseconds(200)));

  // Every acknowledged message is in its thread once and reached Slack once;
  // an unanswered one is there at most once, and in Slack exactly when in the inbox.
  std::map<std::string, size_t> in_inbox, in_slack;
  std::vector<std::string> transfer_threads{w.transfer_thread};
  for (auto* pool : {&w.reply_threads, &w.done_threads, &transfer_threads})
    for (const auto& t : *pool)
      for (const auto& m : messages_of(b.port, w, t))
        ++in_inbox[std::string(m.at("text").as_string())];
  for (const auto& s : fake.sent())
    if (s.method == "chat.postMessage" || s.method == "files.completeUploadExternal")
      ++in_slack[s.text];
  size_t lost = 0, doubled = 0;
  for (const auto& [text, thread] : book.acked_messages) {
    lost += in_inbox[text] == 0 || in_slack[text] == 0 ? 1 : 0;
    doubled += in_inbox[text] > 1 || in_slack[text] > 1 ? 1 : 0;
    if (in_inbox[text] != 1 || in_slack[text] != 1)
      UNSCOPED_INFO("acknowledged " << text << ": inbox " << in_inbox[text] << ", Slack " << in_slack[text]);
  }
  for (const auto& [text, thread] : book.unknown_messages) {
    doubled += in_inbox[text] > 1 || in_slack[text] > 1 ? 1 : 0;
    CHECK(in_slack[text] == in_inbox[text]);
  }
  size_t replies_lost = 0, replies_doubled = 0;
  for (const auto& [text, thread] : book.slack_replies) {
    auto n = in_inbox[text];
    replies_lost += n == 0 ? 1 : 0;
    replies_doubled += n > 1 ? 1 : 0;
  }
  // Statuses and unread counts (nobody read: every Slack reply is unread).
  for (const auto& t : book.acked_done) {
    auto v = b.call("GET", "/api/v1/threads/" + t, w.admin);
    CHECK(v.at("status") == "done");
  }
  for (const auto& t : w.reply_threads) {
    auto v = b.call("GET", "/api/v1/threads/" + t, w.admin);
    size_t from_slack = 0;
    for (const auto& m : messages_of(b.port, w, t))
      from_slack += m.at("direction") == "from_slack" ? 1 : 0;
    CHECK(v.at("unread").to_number<uint64_t>() == from_slack);
  }
  // The chat that changed hands: the log names one owner, who may write to
  // its thread; the other agent may not, and does not see it in My Chats.
  auto owner_now = std::string(b.call("GET", "/api/v1/chats/" + w.transfer_chat, w.admin).at("agent_id").as_string());
  CHECK((owner_now == "alice" || owner_now == "bob"));
  const auto& owner_token = owner_now == "alice" ? w.alice : w.bob;
  const auto& former_token = owner_now == "alice" ? w.bob : w.alice;
  auto by_owner = send(b.port, "POST", "/api/v1/threads/" + w.transfer_thread + "/messages", owner_token,
                       json::object{{"text", "after the rounds, by the owner"}});
  REQUIRE(by_owner);
  CHECK(by_owner->status == 201);
  auto by_former = send(b.port, "POST", "/api/v1/threads/" + w.transfer_thread + "/messages", former_token,
                        json::object{{"text", "after the rounds, by the other agent"}});
  REQUIRE(by_former);
  CHECK(by_former->status == 403);
  auto mine = b.call("GET", "/api/v1/chats?view=mine", former_token).at("chats").as_array();
  for (const auto& c : mine)
    CHECK(c.at("id") != json::value(w.transfer_chat));
  CHECK(book.acked_transfers > 0);

  std::cout << "crash rounds: " << rounds << " SIGKILLs, " << book.acked_writes << " acknowledged writes ("
            << book.acked_transfers << " transfers, "
            << book.acked_messages.size() << " messages, " << book.with_files.size() << " of them with a file), "
            << book.unknown_messages.size() << " unanswered, " << book.slack_replies.size()
            << " L2 replies; lost " << lost << ", duplicated " << doubled << "; replies lost " << replies_lost
            << ", duplicated " << replies_doubled << std::endl;
  CHECK(lost == 0);
  CHECK(doubled == 0);
  CHECK(replies_lost == 0);
  CHECK(replies_doubled == 0);
  CHECK(book.acked_messages.size() > 0);
  b.proc->signal(SIGTERM);
  CHECK(b.proc->wait(20s) == 0);
  fake.stop();
  // The log the crashes left passes the auditor's checks.
  for (std::string command : {"verify", "rebuild"}) {
    child_process audit({backline_binary(), "audit", command, "--data", dir.sub("data")}, dir.sub("audit-" + command));
    int rc = audit.wait(120s);
    auto said = read_file(dir.sub("audit-" + command));
    INFO("backline audit " << command << ": " << said);
    CHECK(rc == 0);
    if (command == "verify")
      CHECK_THAT(said, Catch::Contains("verified") && !Catch::Contains("NOT VERIFIED"));
  }
}

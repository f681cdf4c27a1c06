// The directory view: what start-up reads instead of replaying the whole log
// must give the directory exactly what the whole replay gives it, whatever
// the view's age (a crash leaves it behind the log, or written in part).

#include "backline/caf_scheduler.hpp"
#include "backline/directory_view.hpp"

#include <catch2/catch.hpp>

#include <boost/json.hpp>

#include <chrono>
#include <random>
#include <thread>

#include "support/temp_dir.hpp"
#include "support/wait.hpp"

using namespace backline;
using backline::testing::temp_dir;
namespace json = boost::json;

namespace {

std::unique_ptr<event_store> open_store(const std::string& dir) {
  auto s = event_store::open(dir);
  REQUIRE(s);
  return std::move(s.value());
}

void append(event_store& store, const std::string& stream, const std::string& type, const json::object& payload,
            const std::string& actor = "system") {
  append_request r;
  r.stream = stream;
  r.events.push_back(new_event{type, actor, json::serialize(payload)});
  REQUIRE(store.append(std::move(r)));
}

/// A log written as the actors write it: chats created, assigned,
/// transferred, resolved and reopened; threads opened, delivered (or not,
/// or failed), answered, done with a closing message. Random but seeded.
class scenario {
public:
  explicit scenario(event_store& store, unsigned seed) : store_(store), rng_(seed) {}

  /// One more step of the conversation history.
  void step() {
    const auto pick = std::uniform_int_distribution<int>(0, 99)(rng_);
    if (chats_.empty() || pick < 12)
      return new_chat("");
    auto& c = chats_[std::uniform_int_distribution<size_t>(0, chats_.size() - 1)(rng_)];
    const std::string stream = "chat-" + c.id;
    if (pick < 22) {
      append(store_, stream, c.agent.empty() ? "chat_assigned" : "chat_transferred",
             {{"agent_id", c.agent = "agent-" + std::to_string(pick % 3)}});
    } else if (pick < 30) {
      append(store_, stream, "chat_message_added", {{"id", "m" + std::to_string(++n_)}, {"kind", "customer"},
                                                    {"text", "hello"}, {"author", "cust"}});
    } else if (pick < 40 && !c.resolved) {
      append(store_, stream, "chat_resolved", json::object{});
      c.resolved = true;
    } else if (pick < 45 && c.resolved) {
      const std::string successor = "ch" + std::to_string(++n_);
      append(store_, stream, "chat_reopened", {{"successor_chat_id", successor}});
      new_chat(c.id, successor);
    } else if (pick < 58) {
      // A thread: its stream first, then the chat records it (two appends, as
      // the actors do; a crash may fall between them).
      const std::string thread = c.id + ".t" + std::to_string(++c.threads);
      append(store_, "thread-" + thread, "thread_created",
             {{"id", thread}, {"chat_id", c.id}, {"channel_id", "C" + std::to_string(pick % 4)},
              {"created_by", "agent-1"}, {"title", "t"}, {"message_id", "tm" + std::to_string(++n_)},
              {"text", "please"}});
      open_.push_back({thread, "tm" + std::to_string(n_)});
      if (pick % 5 != 0)  // sometimes the chat never records it
        append(store_, stream, "thread_opened",
               {{"thread_id", thread}, {"note_id", "n" + std::to_string(n_)}, {"note", "opened"},
                {"thread", json::object{{"id", thread}}}});
    } else if (!open_.empty()) {
      auto i = std::uniform_int_distribution<size_t>(0, open_.size() - 1)(rng_);
      auto& [thread, message] = open_[i];
      const std::string tstream = "thread-" + thread;
      ++n_;
      const std::string ts = "17000000" + std::to_string(n_ % 100) + "." + std::to_string(n_);
      if (pick < 72) {
        append(store_, tstream, "slack_delivered", {{"message_id", message}, {"slack_ts", ts}});
      } else if (pick < 76) {
        append(store_, tstream, "slack_delivery_failed", {{"message_id", message}, {"reason", "channel_not_found"}});
      } else if (pick < 84) {
        message = "tm" + std::to_string(++n_);
        append(store_, tstream, "thread_message_sent", {{"id", message}, {"text", "more"}, {"author_id", "agent-1"}});
      } else if (pick < 90) {
        append(store_, tstream, "slack_reply_received",
               {{"id", "r" + std::to_string(++n_)}, {"text", "answer"}, {"slack_ts", ts}, {"author_id", "U1"}});
      } else {
        message = "close" + std::to_string(++n_);
        append(store_, tstream, "thread_done", {{"closing_id", message}, {"closing_text", "thanks"}});
      }
    }
  }

private:
  struct chat {
    std::string id;
    std::string agent;
    bool resolved = false;
    size_t threads = 0;
  };

  void new_chat(const std::string& previous, std::string id = {}) {
    if (id.empty())
      id = "ch" + std::to_string(++n_);
    json::object p{{"id", id}, {"customer_id", "cu" + std::to_string(n_)}, {"customer_name", "Ann"}};
    if (!previous.empty())
      p["previous_chat_id"] = previous;
    append(store_, "chat-" + id, "chat_created", p);
    chats_.push_back({id, "", false, 0});
  }

  event_store& store_;
  std::mt19937 rng_;
  uint64_t n_ = 0;
  std::vector<chat> chats_;
  std::vector<std::pair<std::string, std::string>> open_;  // thread, its latest outbound message
};

/// The whole replay and the view-based load agree on everything the directory starts from.
void require_same(const inbox::directory_index& full, const inbox::directory_index& viewed) {
  REQUIRE(full.chats.size() == viewed.chats.size());
  for (const auto& [id, e] : full.chats) {
    auto i = viewed.chats.find(id);
    REQUIRE(i != viewed.chats.end());
    CHECK(i->second.resolved == e.resolved);
    CHECK(i->second.agent_id == e.agent_id);
    CHECK(i->second.json == e.json);
  }
  CHECK(full.thread_by_slack == viewed.thread_by_slack);
  CHECK(full.open_in_slack == viewed.open_in_slack);
  CHECK(full.threads_to_deliver == viewed.threads_to_deliver);
}

inbox::directory_index full_replay(const event_store& store) {
  auto index = inbox::load_directory_index(store);
  REQUIRE(index);
  return std::move(*index);
}

inbox::directory_index through_view(event_store& store, inbox::directory_view_report* report = nullptr) {
  auto index = inbox::load_directory_index_with_view(store, report);
  REQUIRE(index);
  return std::move(*index);
}

} // namespace

TEST_CASE("a view entry reads back as it was written, and damage is refused") {
  chat_view_entry c{"ch1", true, "agent-1", R"({"id":"ch1"})", {"ch1.t1", "ch1.t2"}};
  thread_view_entry t{"ch1.t1", "C1", "1700000000.000100", false, true};
  auto c2 = inbox::decode_chat_view_entry(inbox::encode_view_entry(c));
  auto t2 = inbox::decode_thread_view_entry(inbox::encode_view_entry(t));
  REQUIRE(c2);
  REQUIRE(t2);
  CHECK(*c2 == c);
  CHECK(*t2 == t);
  auto bytes = inbox::encode_view_entry(c);
  CHECK(inbox::decode_chat_view_entry(bytes.substr(0, bytes.size() - 1)).error().code() == errc::corrupt);
  CHECK(inbox::decode_chat_view_entry(bytes + "x").error().code() == errc::corrupt);
  CHECK(inbox::decode_thread_view_entry(bytes).error().code() == errc::corrupt);
  CHECK(inbox::decode_chat_view_entry("").error().code() == errc::corrupt);
}

TEST_CASE("the view's update is a pure function of the view and the touched streams' events") {
  // A view of a chat with one thread; then the chat is transferred and the
  // thread delivered: only those two streams' events make the new view.
  auto ev = [](std::string stream, uint64_t seq, std::string type, json::object p) {
    event_record e;
    e.stream = std::move(stream);
    e.seq = seq;
    e.type = std::move(type);
    e.time = "2026-12-01T10:00:00.000Z";
    e.payload = json::serialize(p);
    return e;
  };
  std::vector<event_record> chat{ev("chat-ch1", 1, "chat_created", {{"id", "ch1"}, {"customer_id", "c"}}),
                                 ev("chat-ch1", 2, "chat_assigned", {{"agent_id", "a1"}}),
                                 ev("chat-ch1", 3, "thread_opened", {{"thread_id", "ch1.t1"}})};
  std::vector<event_record> thread{ev("thread-ch1.t1", 1, "thread_created",
                                      {{"id", "ch1.t1"}, {"channel_id", "C1"}, {"message_id", "m1"}})};
  directory_view view;
  directory_view_change first{10, {{"chat-ch1", inbox::chat_view_entry_of(chat)}},
                              {{"thread-ch1.t1", inbox::thread_view_entry_of(thread)}}};
  inbox::apply_view_change(view, first);
  auto index = inbox::index_of_view(view);
  CHECK(view.position == 10);
  CHECK(index.chats.at("ch1").agent_id == "a1");
  CHECK(index.threads_to_deliver == std::vector<std::string>{"ch1.t1"});
  CHECK(index.open_in_slack.empty());

  chat.push_back(ev("chat-ch1", 4, "chat_transferred", {{"agent_id", "a2"}}));
  thread.push_back(ev("thread-ch1.t1", 2, "slack_delivered", {{"message_id", "m1"}, {"slack_ts", "17.1"}}));
  directory_view_change second{12, {{"chat-ch1", inbox::chat_view_entry_of(chat)}},
                               {{"thread-ch1.t1", inbox::thread_view_entry_of(thread)}}};
  inbox::apply_view_change(view, second);
  index = inbox::index_of_view(view);
  CHECK(view.position == 12);
  CHECK(index.chats.at("ch1").agent_id == "a2");
  CHECK(index.threads_to_deliver.empty());
  CHECK(index.thread_by_slack.at("C1|17.1") == "ch1.t1");
  CHECK(index.open_in_slack.at("ch1.t1") == std::make_pair(std::string("C1"), std::string("17.1")));

  // A chat stream without chat_created has no entry (and drops one it had).
  directory_view_change gone{13, {{"chat-ch1", inbox::chat_view_entry_of({})}}, {}};
  inbox::apply_view_change(view, gone);
  CHECK(inbox::index_of_view(view).chats.empty());
}

TEST_CASE("an old data directory without a view: the view is built from the whole log, then used") {
  temp_dir dir("directory-view");
  auto store = open_store(dir.sub("log"));
  scenario s(*store, 7);
  for (int i = 0; i < 400; ++i)
    s.step();
  auto none = store->view_position(inbox::directory_view_name);
  REQUIRE(none);
  CHECK(!none->has_value());

  inbox::directory_view_report report;
  require_same(full_replay(*store), through_view(*store, &report));
  CHECK(!report.had_view);
  CHECK(report.note.empty());
  CHECK(report.to == store->head().position);
  CHECK(report.chats > 0);

  // The next start reads the view and replays nothing.
  require_same(full_replay(*store), through_view(*store, &report));
  CHECK(report.had_view);
  CHECK(report.from == store->head().position);
  CHECK(report.chats == 0);
  CHECK(report.threads == 0);
}

TEST_CASE("a view advanced now and then equals the whole replay at every start") {
  temp_dir dir("directory-view");
  auto store = open_store(dir.sub("log"));
  scenario s(*store, GENERATE(1u, 2u, 3u));
  std::mt19937 rng(99);
  for (int round = 0; round < 25; ++round) {
    const int steps = std::uniform_int_distribution<int>(0, 60)(rng);
    for (int i = 0; i < steps; ++i)
      s.step();
    if (round % 3 == 0) {
      // While serving: the keeper's advance, without a start.
      auto advanced = inbox::advance_directory_view(*store);
      REQUIRE(advanced);
      CHECK(*advanced == store->head().position);
      continue;
    }
    inbox::directory_view_report report;
    require_same(full_replay(*store), through_view(*store, &report));
    CHECK(report.to == store->head().position);
  }
}

TEST_CASE("after a crash the view is older than the log, or written in part: the start still equals the replay") {
  temp_dir dir("directory-view");
  {
    auto store = open_store(dir.sub("log"));
    scenario writer(*store, 11);
    for (int i = 0; i < 300; ++i)
      writer.step();
    REQUIRE(inbox::advance_directory_view(*store));
    for (int i = 0; i < 200; ++i)
      writer.step();
    // A keeper interrupted mid-way: some entries newer than the position it
    // never recorded, as if the process died between two of its writes.
    auto change = inbox::directory_view_change_since(*store, *store->view_position(inbox::directory_view_name).value());
    REQUIRE(change);
    std::vector<event_store::view_write> part;
    for (const auto& [stream, entry] : change->threads)
      if (part.size() < change->threads.size() / 2)
        part.push_back({"t|" + stream, inbox::encode_view_entry(entry)});
    REQUIRE(store->put_view(inbox::directory_view_name, part, std::nullopt));
    for (int i = 0; i < 150; ++i)
      writer.step();
  }  // no clean shutdown: nothing advanced the view at the end
  auto store = open_store(dir.sub("log"));
  auto before = store->view_position(inbox::directory_view_name);
  REQUIRE(before);
  REQUIRE(before->has_value());
  CHECK(**before < store->head().position);
  inbox::directory_view_report report;
  require_same(full_replay(*store), through_view(*store, &report));
  CHECK(report.had_view);
  CHECK(report.from == **before);
  CHECK(report.to == store->head().position);
}

TEST_CASE("a damaged view is not trusted: the directory is rebuilt from the log") {
  temp_dir dir("directory-view");
  auto store = open_store(dir.sub("log"));
  scenario s(*store, 5);
  for (int i = 0; i < 200; ++i)
    s.step();
  REQUIRE(inbox::advance_directory_view(*store));
  REQUIRE(store->put_view(inbox::directory_view_name, {{"c|chat-ch1", std::string("garbage")}}, std::nullopt));
  inbox::directory_view_report report;
  require_same(full_replay(*store), through_view(*store, &report));
  CHECK(!report.had_view);
  CHECK_THAT(report.note, Catch::Contains("malformed"));
  // Rebuilt and stored whole: the next start uses it.
  require_same(full_replay(*store), through_view(*store, &report));
  CHECK(report.had_view);
}

TEST_CASE("the view keeper keeps the stored view close behind the log while it grows") {
  temp_dir dir("directory-view");
  std::shared_ptr<event_store> store = open_store(dir.sub("log"));
  scenario s(*store, 3);
  for (int i = 0; i < 100; ++i)
    s.step();
  caf::actor_system_config cfg;
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  choose_caf_scheduler(cfg);  // work sharing under ThreadSanitizer, which cannot see work stealing's hand-offs
  caf::actor_system sys{cfg};
  inbox::view_keeper_options opts;
  opts.tick = std::chrono::milliseconds(10);
  opts.max_age = std::chrono::milliseconds(0);
  auto keeper = inbox::spawn_view_keeper(sys, store, opts);
  auto caught_up = [&] {
    return backline::testing::eventually([&] {
      auto p = store->view_position(inbox::directory_view_name);
      REQUIRE(p);
      return p->value_or(0) == store->head().position;
    });
  };
  CHECK(caught_up());
  for (int i = 0; i < 100; ++i)
    s.step();
  CHECK(caught_up());
  caf::anon_send_exit(keeper, caf::exit_reason::user_shutdown);
  // What the keeper stored is what a start reads, with nothing to replay.
  inbox::directory_view_report report;
  require_same(full_replay(*store), through_view(*store, &report));
  CHECK(report.had_view);
  CHECK(report.chats + report.threads == 0);
}

TEST_CASE("a thread's entry folded event by event is the entry of its whole stream, at every event") {
  temp_dir dir;
  auto store = open_store(dir.path());
  scenario s(*store, 7);
  for (int i = 0; i < 3000; ++i)
    s.step();
  auto threads = store->list_streams("thread-");
  REQUIRE(threads);
  REQUIRE(threads->size() > 20);
  size_t compared = 0;
  for (const auto& stream : *threads) {
    auto events = store->read_stream(stream).value();
    inbox::thread_view_fold fold;
    for (size_t n = 0; n < events.size(); ++n) {
      inbox::apply_thread_view_event(fold, events[n]);
      std::vector<event_record> prefix(events.begin(), events.begin() + static_cast<std::ptrdiff_t>(n + 1));
      INFO(stream << " after event " << n + 1);
      REQUIRE(fold.entry == inbox::thread_view_entry_of(prefix));
      CHECK(fold.seq == events[n].seq);
      ++compared;
    }
  }
  CHECK(compared > 200);
}

TEST_CASE("the keeper's folds carried across advances give the entries of whole streams") {
  temp_dir dir;
  auto store = open_store(dir.path());
  scenario s(*store, 11);
  inbox::thread_view_folds folds;
  folds.max_threads = 25;  // also cleared and rebuilt on the way
  uint64_t position = 0;
  for (int round = 0; round < 12; ++round) {
    for (int i = 0; i < 250; ++i)
      s.step();
    auto carried = inbox::directory_view_change_since(*store, position, &folds);
    auto whole = inbox::directory_view_change_since(*store, position);
    REQUIRE(carried);
    REQUIRE(whole);
    CHECK(carried->position == whole->position);
    CHECK(carried->chats == whole->chats);
    CHECK(carried->threads == whole->threads);
    CHECK(folds.by_stream.size() <= folds.max_threads);
    position = whole->position;
  }
}

#include "backline/journal.hpp"
#include "backline/caf_scheduler.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>

#include "support/caf_fixture.hpp"
#include "support/small_tmpfs.hpp"
#include "support/temp_dir.hpp"

using namespace backline;
using backline::testing::caf_fixture;
using backline::testing::temp_dir;

namespace {

std::shared_ptr<event_store> open_store(const std::string& dir) {
  auto s = event_store::open(dir);
  REQUIRE(s);
  return std::shared_ptr<event_store>(std::move(s.value()));
}

append_request one_event(std::string stream, std::string payload,
                         expected_version ev = expected_version::any()) {
  append_request r;
  r.stream = std::move(stream);
  r.expected = ev;
  r.events.push_back(new_event{"noted", "tester", std::move(payload)});
  return r;
}

struct appender_state {
  static inline const char* name = "appender";
  journal_actor journal;
  int id = 0;
  int count = 0;
  int next = 0;
  int acked = 0;
  caf::actor report_to;
};

void append_next(caf::stateful_actor<appender_state>* self) {
  auto& st = self->state;
  if (st.next == st.count) {
    self->send(st.report_to, st.id, st.acked);
    self->quit();
    return;
  }
  append_request r;
  r.stream = "thread-" + std::to_string(st.id);
  r.expected = expected_version::exact(static_cast<uint64_t>(st.next));
  r.events.push_back(new_event{"noted", "a" + std::to_string(st.id),
                               "{\"n\":" + std::to_string(st.next) + "}"});
  st.next += 1;
  self->request(st.journal, caf::infinite, atoms::append::value, std::move(r))
    .then([self](const append_reply& rep) {
      if (rep.status.ok())
        self->state.acked += 1;
      append_next(self);
    });
}

caf::behavior appender_behavior(caf::stateful_actor<appender_state>* self, journal_actor journal, int id,
                                int count) {
  self->state.journal = std::move(journal);
  self->state.id = id;
  self->state.count = count;
  return {[self](caf::actor report_to) {
    self->state.report_to = std::move(report_to);
    append_next(self);
  }};
}

} // namespace

TEST_CASE_METHOD(caf_fixture, "journal answers an append once it is durable") {
  temp_dir dir;
  auto store = open_store(dir.path());
  auto j = journal::spawn(sys, store, {.detached = false});
  auto reply = request<append_reply>(j, atoms::append::value, one_event("chat-1", "{\"n\":1}"));
  REQUIRE(reply.status.ok());
  CHECK(reply.value.last_seq == 1);
  CHECK(reply.value.first_position == 1);
  // What was acknowledged is on disk: the store reads it back.
  auto events = store->read_stream("chat-1");
  REQUIRE(events);
  REQUIRE(events->size() == 1);
  CHECK(events->at(0).payload == "{\"n\":1}");
  self->send_exit(j, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(caf_fixture, "appends that wait together are written as one batch") {
  temp_dir dir;
  auto store = open_store(dir.path());
  auto j = journal::spawn(sys, store, {.detached = false});
  // Ten appends land in the mailbox before the journal runs: one write.
  for (int i = 0; i < 10; ++i)
    self->send(j, atoms::append::value, one_event("thread-" + std::to_string(i % 3), "{}"));
  run();
  int answered = 0;
  for (int i = 0; i < 10; ++i)
    self->receive([&](const append_reply& r) {
      CHECK(r.status.ok());
      ++answered;
    });
  CHECK(answered == 10);
  auto stats = request<journal_stats>(j, atoms::stats::value);
  CHECK(stats.batches == 1);
  CHECK(stats.requests == 10);
  CHECK(stats.events == 10);
  CHECK(stats.largest_batch == 10);
  CHECK(store->head().position == 10);
  self->send_exit(j, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(caf_fixture, "a conflicting append fails alone, as a value") {
  temp_dir dir;
  auto store = open_store(dir.path());
  auto j = journal::spawn(sys, store, {.detached = false});
  self->send(j, atoms::append::value, one_event("chat-7", "{}", expected_version::no_stream()));
  self->send(j, atoms::append::value, one_event("chat-7", "{}", expected_version::no_stream()));
  self->send(j, atoms::append::value, one_event("chat-7", "{}", expected_version::exact(1)));
  run();
  std::vector<reply_status> got;
  for (int i = 0; i < 3; ++i)
    self->receive([&](const append_reply& r) { got.push_back(r.status); });
  REQUIRE(got.size() == 3);
  CHECK(got[0].ok());
  CHECK(got[1].code == errc::conflict);
  CHECK(got[2].ok());
  CHECK(store->stream_version("chat-7").value() == 2);
  auto health = request<reply_status>(j, atoms::health::value);
  CHECK(health.ok());  // a conflict is the caller's problem, not the log's
  self->send_exit(j, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(caf_fixture, "an append of the wrong form is refused as it comes in and writes nothing") {
  temp_dir dir;
  auto store = open_store(dir.path());
  auto j = journal::spawn(sys, store, {.detached = false});
  self->send(j, atoms::append::value, one_event("chat-7", "{}"));
  self->send(j, atoms::append::value, one_event("chat-7", "{not json"));
  self->send(j, atoms::append::value, one_event("bad|stream", "{}"));
  self->send(j, atoms::append::value, one_event("chat-7", std::string("{\"t\":\"") + "\xff\"}"));
  self->send(j, atoms::append::value, one_event("chat-7", "[1]"));
  run();
  std::vector<reply_status> got;
  for (int i = 0; i < 5; ++i)
    self->receive([&](const append_reply& r) { got.push_back(r.status); });
  REQUIRE(got.size() == 5);
  // The refusals come first: they are answered as they come in, the good
  // appends once their batch is durable.
  std::vector<errc> codes;
  for (const auto& st : got)
    codes.push_back(st.code);
  CHECK(std::count(codes.begin(), codes.end(), errc::invalid_argument) == 3);
  CHECK(std::count(codes.begin(), codes.end(), errc::ok) == 2);
  CHECK(got[0].code == errc::invalid_argument);
  CHECK(got[0].message.find("payload is not JSON") != std::string::npos);
  CHECK(got[1].message.find("bad|stream") != std::string::npos);
  CHECK(store->head().position == 2);
  CHECK(store->stream_version("chat-7").value() == 2);
  self->send_exit(j, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(caf_fixture, "journal serves reads, idempotency records and snapshots") {
  temp_dir dir;
  auto store = open_store(dir.path());
  auto j = journal::spawn(sys, store, {.detached = false});
  auto req = one_event("chat-2", "{\"a\":1}");
  req.idempotency_key = "user-1|key-9";
  req.idempotency_result = "{\"id\":\"chat-2\"}";
  REQUIRE(request<append_reply>(j, atoms::append::value, req).status.ok());
  auto again = request<append_reply>(j, atoms::append::value, req);
  REQUIRE(again.status.ok());
  CHECK(again.value.duplicate);
  CHECK(again.value.stored_result == "{\"id\":\"chat-2\"}");

  auto read = request<read_reply>(j, atoms::read_strm::value, std::string{"chat-2"},
                                  uint64_t{1}, uint64_t{0});
  REQUIRE(read.status.ok());
  CHECK(read.events.size() == 1);
  auto all = request<read_reply>(j, atoms::read_all::value, uint64_t{1}, uint64_t{0});
  CHECK(all.events.size() == 1);

  self->send(j, atoms::idem_get::value, std::string{"user-1|key-9"});
  run();
  self->receive([](const reply_status& s, bool found, const std::string& stored) {
    CHECK(s.ok());
    CHECK(found);
    CHECK(stored == "{\"id\":\"chat-2\"}");
  });

  auto put = request<reply_status>(j, atoms::snap_put::value, std::string{"chat-2"},
                                   snapshot{1, "state"});
  CHECK(put.ok());
  self->send(j, atoms::snap_get::value, std::string{"chat-2"});
  run();
  self->receive([](const reply_status& s, bool found, const snapshot& snap) {
    CHECK(s.ok());
    CHECK(found);
    CHECK(snap.version == 1);
    CHECK(snap.data == "state");
  });
  self->send_exit(j, caf::exit_reason::user_shutdown);
}

// The real scheduler and a detached journal: many appenders at once.
TEST_CASE("64 concurrent appenders x 1000 events: all acknowledged, none lost or duplicated") {
  constexpr int appenders = 64;
  constexpr int per_appender = 1000;
  temp_dir dir;
  {
    caf::actor_system_config cfg;
    choose_caf_scheduler(cfg);
    caf::actor_system sys{cfg};
    auto store = open_store(dir.path());
    auto j = journal::spawn(sys, store);
    caf::scoped_actor self{sys};
    // Each appender (see appender_behavior) appends its events one after
    // another, each waiting for the previous acknowledgement, so per-stream
    // order is the caller's order.
    std::vector<caf::actor> actors;
    for (int i = 0; i < appenders; ++i) {
      actors.push_back(sys.spawn(appender_behavior, j, i, per_appender));
      self->send(actors.back(), caf::actor_cast<caf::actor>(self));
    }
    int total_acked = 0;
    for (int i = 0; i < appenders; ++i)
      self->receive([&](int, int acked) { total_acked += acked; });
    CHECK(total_acked == appenders * per_appender);
    auto stats = caf::make_function_view(j)(atoms::stats::value);
    REQUIRE(stats);
    // Group commit happened: far fewer writes than events.
    CHECK(stats->batches < static_cast<uint64_t>(total_acked));
    self->send_exit(j, caf::exit_reason::user_shutdown);
  }
  // Reopen: every acknowledged event is there once, in order per stream.
  auto store = open_store(dir.path());
  CHECK(store->head().position == uint64_t{appenders * per_appender});
  for (int i = 0; i < appenders; ++i) {
    auto events = store->read_stream("thread-" + std::to_string(i));
    REQUIRE(events);
    REQUIRE(events->size() == static_cast<size_t>(per_appender));
    for (int n = 0; n < per_appender; ++n) {
      CHECK(events->at(n).seq == static_cast<uint64_t>(n + 1));
      CHECK(events->at(n).payload == "{\"n\":" + std::to_string(n) + "}");
    }
  }
  std::map<uint64_t, int> positions;
  auto all = store->read_all();
  REQUIRE(all);
  for (auto& e : *all)
    positions[e.position]++;
  CHECK(positions.size() == static_cast<size_t>(appenders * per_appender));
}

TEST_CASE("shutdown with batches at the writer and the syncer: every append is answered, each acknowledged one "
          "is stored, none refused is") {
  constexpr int appends = 3000;
  temp_dir dir;
  int acknowledged = 0;
  int refused = 0;
  {
    caf::actor_system_config cfg;
    choose_caf_scheduler(cfg);
    caf::actor_system sys{cfg};
    auto j = journal::spawn(sys, open_store(dir.path()));
    caf::scoped_actor self{sys};
    std::vector<decltype(self->request(j, caf::infinite, atoms::append::value, append_request{}))> answers;
    for (int i = 0; i < appends; ++i)
      answers.push_back(self->request(j, caf::infinite, atoms::append::value,
                                      one_event("chat-" + std::to_string(i % 40), "{\"n\":" + std::to_string(i) + "}")));
    // The first answer means batches are on their way through the writer
    // and the syncer; the exit lands among them.
    bool first = true;
    for (auto& answer : answers) {
      answer.receive(
        [&](const append_reply& r) {
          (r.status.ok() ? acknowledged : refused) += 1;
          if (first)
            self->send_exit(j, caf::exit_reason::user_shutdown);
          first = false;
        },
        [&](const caf::error&) { refused += 1; });  // never taken in: the journal had quit
    }
    self->wait_for(j);
  }
  CHECK(acknowledged + refused == appends);
  CHECK(acknowledged > 0);
  auto store = open_store(dir.path());
  CHECK(store->head().position == static_cast<uint64_t>(acknowledged));
  auto all = store->read_all();
  REQUIRE(all);
  CHECK(all->size() == static_cast<size_t>(acknowledged));
}

TEST_CASE_METHOD(caf_fixture, "a journal with too many waiting appends answers busy instead of queueing") {
  temp_dir dir;
  auto store = open_store(dir.path());
  journal_options opts;
  opts.detached = false;
  opts.max_waiting_requests = 3;
  auto j = journal::spawn(sys, store, opts);
  for (int i = 0; i < 5; ++i)
    self->send(j, atoms::append::value, one_event("chat-1", "{}"));
  run();
  int ok = 0, busy = 0;
  for (int i = 0; i < 5; ++i)
    self->receive([&](const append_reply& r) {
      ok += r.status.ok() ? 1 : 0;
      busy += r.status.code == errc::busy ? 1 : 0;
    });
  CHECK(ok == 3);
  CHECK(busy == 2);
  CHECK(store->head().position == 3);  // the refused appends wrote nothing
  self->send_exit(j, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(caf_fixture, "a full disk: the journal refuses appends, says so once, and resumes once space is freed") {
  temp_dir dir;
  backline::testing::small_tmpfs disk(dir.sub("disk"), "4m");
  if (!disk.mounted()) {
    WARN("SKIPPED: cannot mount a tmpfs at " << disk.path() << " (" << disk.error() << "); this test needs root");
    return;
  }
  auto store = open_store(disk.path() + "/log");
  std::vector<std::string> lines;  // the test scheduler runs the journal on this thread
  journal_options opts;
  opts.detached = false;
  opts.log = [&lines](const std::string& line) { lines.push_back(line); };
  auto j = journal::spawn(sys, store, opts);
  disk.fill_leaving(disk.path() + "/filler", 256 * 1024);

  const std::string payload = "{\"pad\":\"" + std::string(16 * 1024, 'x') + "\"}";
  uint64_t acknowledged = 0;
  append_reply refused;
  for (int i = 0; i < 100; ++i) {
    auto r = request<append_reply>(j, atoms::append::value, one_event("chat-1", payload));
    if (!r.status.ok()) {
      refused = r;
      break;
    }
    ++acknowledged;
  }
  INFO("acknowledged " << acknowledged);
  REQUIRE(refused.status.code == errc::no_space);
  REQUIRE(acknowledged > 0);
  CHECK_THAT(refused.status.message, Catch::Contains("No space left on device"));
  // Refused at once from now on, in words, and the log is unhealthy.
  auto again = request<append_reply>(j, atoms::append::value, one_event("chat-1", "{}"));
  CHECK(again.status.code == errc::no_space);
  CHECK_THAT(again.status.message, Catch::Contains("writes are refused until space is freed"));
  CHECK(request<reply_status>(j, atoms::health::value).code == errc::no_space);
  // Resume attempts while the disk is still full fail quietly.
  for (int i = 0; i < 3; ++i) {
    trigger_timeouts();
    run();
  }
  CHECK(request<append_reply>(j, atoms::append::value, one_event("chat-1", "{}")).status.code == errc::no_space);
  REQUIRE(lines.size() == 1);
  CHECK_THAT(lines[0], Catch::StartsWith("journal: disk full at " + disk.path() + "/log: writes refused until space is freed"));
  // Reads keep working, and hold exactly what was acknowledged.
  auto read = request<read_reply>(j, atoms::read_strm::value, std::string("chat-1"), uint64_t{1}, uint64_t{0});
  REQUIRE(read.status.ok());
  CHECK(read.events.size() == acknowledged);

  std::filesystem::remove(disk.path() + "/filler");
  trigger_timeouts();
  run();
  REQUIRE(lines.size() == 2);
  CHECK_THAT(lines[1], Catch::Contains("is writable again") && Catch::Contains("2 writes were refused"));
  CHECK(request<reply_status>(j, atoms::health::value).ok());
  auto after = request<append_reply>(j, atoms::append::value, one_event("chat-1", "{\"after\":true}"));
  REQUIRE(after.status.ok());
  CHECK(after.value.last_seq == acknowledged + 1);
  self->send_exit(j, caf::exit_reason::user_shutdown);
  run();
  // Reopened, the log holds the acknowledged events and nothing refused.
  store.reset();
  auto reopened = open_store(disk.path() + "/log");
  auto events = reopened->read_stream("chat-1");
  REQUIRE(events);
  CHECK(events->size() == acknowledged + 1);
  CHECK(events->back().payload == "{\"after\":true}");
}

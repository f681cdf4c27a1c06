// scale_bench: what many chats cost. Two parts:
//
// 1. Memory and activation: N chats (10k, 100k; 1M with --full), each with
//    one open thread, in a fresh log; then the inbox actors start on that log
//    as `backline serve` does (the directory index loaded first), every chat
//    is activated from the log by a chat_get command, one at a time, then
//    every thread by a thread_get. Figures: resident memory (VmRSS, once the
//    allocator gave back what it holds free: release_free_memory) per
//    activated chat actor and per open thread actor, and the activation
//    latency percentiles (command sent → answered, the actor replaying its
//    stream from the log).
// 2. Start-up: `backline serve` (a child process) on logs of 100k and 1M events
//    (10M with --full): seconds from exec to the ready file. Twice: the first
//    start builds the directory view from the whole log (the log is written
//    without one), the second reads the view its predecessor left; then
//    100k more events are written behind the view (a crash just before the
//    view keeper's advance) and a third start replays them.
//
// The logs are made fast: one template chat is made through the real actors
// (created, assigned, one thread opened, delivered to the in-memory Slack
// port; for the start-up log, with 98 messages posted in the thread), then
// its events are appended again and again with the chat id replaced (thread
// ids derive from it), straight into the event store in large unsynced
// batches. Message ids and Slack ts repeat across the copies; nothing at
// start-up or activation depends on their being unique.
//
//   scale_bench [--chats 10000,100000] [--startup-events 100000,1000000] [--quick] [--full]
//               [--backline PATH] [--dir DIR]
//
// Ends with one JSON line:
// {"bench":"scale","figures":{"chats_10000":{…},"startup_1000000":{…}}}

#include <caf/all.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backline/caf_scheduler.hpp"
#include "backline/inbox.hpp"
#include "backline/malloc_tuning.hpp"
#include "bench/support/backline_child.hpp"
#include "bench/support/load_generator.hpp"

using namespace backline;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

long rss_bytes() {
  backline::release_free_memory();
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6)) * 1024;
  return 0;
}

std::shared_ptr<event_store> open_store(const std::string& dir, bool sync) {
  store_options opts;
  opts.sync = sync;
  auto opened = event_store::open(dir, opts);
  if (!opened)
    throw std::runtime_error(opened.error().describe());
  return std::shared_ptr<event_store>(std::move(opened.value()));
}

// No timeout on purpose: each timed request leaves a timeout message in the
// scoped actor's mailbox, which its receive then skips and keeps, and over a
// million requests scanning those made every receive slow (activation fell
// to 35/s past 250k chats, all of it in CAF's mailbox). The bench as a whole
// runs under a time limit instead.
api_reply ask(caf::scoped_actor& self, const directory_actor& directory, command c) {
  api_reply out;
  self->request(directory, caf::infinite, atoms::command::value, std::move(c))
    .receive([&](api_reply& r) { out = std::move(r); }, [&](caf::error& e) { out = {599, to_string(e)}; });
  return out;
}

std::string id_of(const api_reply& r) {
  return std::string(json::parse(r.body).as_object().at("id").as_string());
}

void expect(const api_reply& r, int status, const char* what) {
  if (r.status != status)
    throw std::runtime_error(std::string(what) + ": " + std::to_string(r.status) + " " + r.body);
}

const caller bot{"bench-bot", "Bench Bot", role::bot, false};
const caller agent{"agent-0", "Agent 0", role::agent, true};
const caller admin{"root", "Root", role::admin, false};

// The inbox actors on a store, as the server starts them.
struct inbox_actors {
  caf::actor_system& sys;
  journal_actor journal;
  slack_port_actor slack;
  notifications_actor notifications;
  directory_actor directory;

  inbox_actors(caf::actor_system& s, std::shared_ptr<event_store> store, inbox::directory_index index) : sys(s) {
    journal = journal::spawn(sys, store);
    slack = inbox::spawn_memory_slack_port(sys);
    notifications = inbox::spawn_notifications(sys);
    directory = inbox::spawn_directory(sys, journal, slack, notifications, std::move(index));
  }
  ~inbox_actors() {
    caf::scoped_actor self{sys};
    for (auto a : {caf::actor_cast<caf::actor>(directory), caf::actor_cast<caf::actor>(slack),
                   caf::actor_cast<caf::actor>(notifications), caf::actor_cast<caf::actor>(journal)}) {
      self->send_exit(a, caf::exit_reason::user_shutdown);
      self->wait_for(a);
    }
  }
};

// One chat made through the actors; its streams' events, to copy.
struct chat_template {
  std::string chat_id;
  std::vector<std::pair<std::string, std::vector<event_record>>> streams;  // stream name, events
  size_t events = 0;
};

chat_template make_template(caf::actor_system& sys, const std::string& dir, size_t posts) {
  std::filesystem::remove_all(dir);
  auto store = open_store(dir, false);
  chat_template t;
  {
    inbox_actors box(sys, store, {});
    caf::scoped_actor self{sys};
    api_reply created;
    self->request(box.directory, std::chrono::seconds(60), atoms::create::value, bot,
                  std::string(R"({"customer_id":"cust-1","customer_name":"Customer One","text":"hello"})"),
                  std::string())
      .receive([&](api_reply& r) { created = std::move(r); }, [&](caf::error& e) { created = {599, to_string(e)}; });
    expect(created, 201, "create chat");
    t.chat_id = id_of(created);
    expect(ask(self, box.directory,
               {verb::chat_assign, bot, t.chat_id, "", json::serialize(json::object{{"agent_id", agent.id}}), ""}),
           200, "assign");
    auto thread = ask(self, box.directory,
                      {verb::thread_create, agent, t.chat_id, "",
                       json::serialize(json::object{{"channel_id", "C0FINANCE"}, {"text", "Refund for order 1?"}}),
                       ""});
    expect(thread, 201, "thread");
    auto thread_id = id_of(thread);
    for (size_t i = 0; i < posts; ++i)
      expect(ask(self, box.directory,
                 {verb::thread_post, agent, t.chat_id, thread_id,
                  json::serialize(json::object{{"text", "Any news on the refund? (" + std::to_string(i) + ")"}}), ""}),
             201, "post");
    // Let the Slack deliveries land (each is an event of its own).
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  auto streams = store->list_streams("");
  if (!streams)
    throw std::runtime_error(streams.error().describe());
  for (auto& s : *streams) {
    if (s.find(t.chat_id) == std::string::npos)
      continue;  // not the chat's own (none expected; copies would clash)
    auto events = store->read_stream(s);
    if (!events)
      throw std::runtime_error(events.error().describe());
    t.events += events->size();
    t.streams.emplace_back(s, std::move(*events));
  }
  return t;
}

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

// Appends `copies` copies of the template (copy k's chat id: the template's
// with "k<k>" appended) to a fresh store at dir. Returns the chat ids.
/// Copies first, first + 1, … of the template chat (a fresh log when first is 0,
/// else appended to the log there).
std::vector<std::string> fill(const chat_template& t, const std::string& dir, size_t copies, size_t first = 0) {
  if (first == 0)
    std::filesystem::remove_all(dir);
  auto store = open_store(dir, false);
  std::vector<std::string> ids;
  ids.reserve(copies);
  std::vector<append_request> batch;
  auto started = clock_type::now();
  auto next_report = started + std::chrono::seconds(5);
  for (size_t k = first; k < first + copies; ++k) {
    std::string id = t.chat_id + "k" + std::to_string(k);
    ids.push_back(id);
    for (const auto& [stream, events] : t.streams) {
      append_request r;
      r.stream = replaced(stream, t.chat_id, id);
      r.expected = expected_version::no_stream();
      for (const auto& e : events)
        r.events.push_back({e.type, e.actor, replaced(e.payload, t.chat_id, id), e.time});
      batch.push_back(std::move(r));
    }
    if (batch.size() >= 512 || k + 1 == first + copies) {
      for (auto& res : store->append_batch(std::move(batch)))
        if (!res)
          throw std::runtime_error("fill: " + res.error().describe());
      batch.clear();
    }
    if (clock_type::now() >= next_report) {
      std::printf("    filling: %zu/%zu chats, %zu events\n", k + 1 - first, copies, (k + 1 - first) * t.events);
      std::fflush(stdout);
      next_report += std::chrono::seconds(5);
    }
  }
  if (auto s = store->sync(); !s.ok())
    throw std::runtime_error(s.message());
  return ids;
}

struct percentiles {
  double p50 = 0, p99 = 0, max = 0;
};

percentiles percentiles_of(std::vector<double> v) {
  if (v.empty())
    return {};
  std::sort(v.begin(), v.end());
  auto at = [&](double p) {
    return v[std::clamp<size_t>(static_cast<size_t>(std::ceil(p * static_cast<double>(v.size()))), 1, v.size()) - 1];
  };
  return {at(0.5), at(0.99), v.back()};
}

json::object measure_chats(caf::actor_system& sys, const chat_template& t, const std::string& dir, size_t n) {
  std::printf("  %zu chats: filling the log (%zu events)…\n", n, n * t.events);
  std::fflush(stdout);
  auto fill_start = clock_type::now();
  auto ids = fill(t, dir, n);
  double fill_s = seconds_since(fill_start);

  auto load_start = clock_type::now();
  auto store = open_store(dir, false);
  auto index = inbox::load_directory_index(*store);
  if (!index)
    throw std::runtime_error(index.error().describe());
  double index_s = seconds_since(load_start);
  json::object out;
  {
    inbox_actors box(sys, store, std::move(*index));
    caf::scoped_actor self{sys};
    // One command first, so the actors' own start-up is not counted per chat.
    std::string thread_suffix;
    for (const auto& [stream, events] : t.streams)
      if (stream.rfind("thread-", 0) == 0)
        thread_suffix = stream.substr(7 + t.chat_id.size());  // the thread id after the chat id
    long rss0 = rss_bytes();
    std::vector<double> chat_ms, thread_ms;
    chat_ms.reserve(n);
    auto act_start = clock_type::now();
    auto next_report = act_start + std::chrono::seconds(5);
    for (auto& id : ids) {
      auto t0 = clock_type::now();
      expect(ask(self, box.directory, {verb::chat_get, admin, id, "", "", ""}), 200, "chat_get");
      chat_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
      if (clock_type::now() >= next_report) {
        std::printf("    activating chats: %zu/%zu\n", chat_ms.size(), n);
        std::fflush(stdout);
        next_report += std::chrono::seconds(5);
      }
    }
    double chats_s = seconds_since(act_start);
    long rss1 = rss_bytes();
    if (!thread_suffix.empty()) {
      thread_ms.reserve(n);
      for (auto& id : ids) {
        auto t0 = clock_type::now();
        expect(ask(self, box.directory, {verb::thread_get, admin, id, id + thread_suffix, "", ""}), 200,
               "thread_get");
        thread_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
        if (clock_type::now() >= next_report) {
          std::printf("    activating threads: %zu/%zu\n", thread_ms.size(), n);
          std::fflush(stdout);
          next_report += std::chrono::seconds(5);
        }
      }
    }
    long rss2 = rss_bytes();
    auto c = percentiles_of(chat_ms), th = percentiles_of(thread_ms);
    double per_chat = static_cast<double>(rss1 - rss0) / static_cast<double>(n);
    double per_thread = static_cast<double>(rss2 - rss1) / static_cast<double>(n);
    std::printf("  %zu chats: log filled in %.1f s, index loaded in %.2f s; RSS per chat actor %.0f B, per thread "
                "actor %.0f B\n    chat activation p50 %.3f ms p99 %.3f ms max %.2f ms (%.0f/s); thread activation "
                "p50 %.3f ms p99 %.3f ms\n",
                n, fill_s, index_s, per_chat, per_thread, c.p50, c.p99, c.max, static_cast<double>(n) / chats_s,
                th.p50, th.p99);
    std::fflush(stdout);
    out = json::object{{"events", n * t.events},
                       {"fill_seconds", fill_s},
                       {"index_load_seconds", index_s},
                       {"rss_before_bytes", rss0},
                       {"rss_per_chat_bytes", per_chat},
                       {"rss_per_thread_bytes", per_thread},
                       {"chat_activation_p50_ms", c.p50},
                       {"chat_activation_p99_ms", c.p99},
                       {"chat_activation_max_ms", c.max},
                       {"chats_activated_per_s", static_cast<double>(n) / chats_s},
                       {"thread_activation_p50_ms", th.p50},
                       {"thread_activation_p99_ms", th.p99}};
  }
  store.reset();
  std::filesystem::remove_all(dir);
  return out;
}

json::object measure_startup(const chat_template& t, const std::string& workdir, const std::string& binary,
                             size_t events) {
  size_t copies = (events + t.events - 1) / t.events;
  std::printf("  start-up with %zu events: filling the log (%zu chats of %zu events)…\n", copies * t.events, copies,
              t.events);
  std::fflush(stdout);
  std::filesystem::remove_all(workdir);
  std::filesystem::create_directories(workdir + "/data");
  auto fill_start = clock_type::now();
  fill(t, workdir + "/data/log", copies);
  double fill_s = seconds_since(fill_start);
  // The log is written straight into the store, without the directory view a
  // server keeps beside its log: the first start builds the view from the
  // whole log (as on a data directory from before the view), and stores it
  // at its clean shutdown; the second start is the usual one.
  auto start_once = [&] {
    auto start = clock_type::now();
    bench::backline_child child(binary, workdir, {});
    child.wait_ready(std::chrono::seconds(1800));  // a start replaying a long log takes minutes
    double secs = seconds_since(start);
    child.stop();
    return secs;
  };
  double first_s = start_once();
  double secs = start_once();
  // A crash just before the view keeper's next advance: the view is its
  // bound (100,000 events) behind the log, and those events are in RocksDB's
  // write-ahead log only.
  const size_t tail = (100000 + t.events - 1) / t.events;
  fill(t, workdir + "/data/log", tail, copies);
  double crash_s = start_once();
  std::printf("  start-up with %zu events: %.2f s to ready (the first start, building the directory view from the "
              "whole log: %.2f s; with %zu events after the view, as after a crash: %.2f s; log filled in %.1f s)  "
              "[target < 5 s with 10M]\n",
              copies * t.events, secs, first_s, tail * t.events, crash_s, fill_s);
  std::fflush(stdout);
  std::filesystem::remove_all(workdir);
  return json::object{{"events", copies * t.events},
                      {"chats", copies},
                      {"seconds", secs},
                      {"first_start_seconds", first_s},
                      {"tail_events", tail * t.events},
                      {"after_crash_seconds", crash_s},
                      {"fill_seconds", fill_s}};
}

} // namespace

int main(int argc, char** argv) {
  backline::tune_malloc();  // as `backline` runs
  std::vector<size_t> chats{10000, 100000};
  std::vector<size_t> startup{100000, 1000000};
  std::string binary = bench::default_backline_path().string();
  std::string dir = (std::filesystem::temp_directory_path() / ("scale_bench." + std::to_string(::getpid()))).string();
  try {
    bench::arguments args(argc, argv);
    for (std::string a; args.next(a);) {
      auto next = [&] { return args.value(); };
      if (a == "--chats")
        chats = bench::parse_list(next());
      else if (a == "--startup-events")
        startup = bench::parse_list(next());
      else if (a == "--backline")
        binary = next();
      else if (a == "--dir")
        dir = next();
      else if (a == "--quick")
        chats = {10000, 100000}, startup = {100000, 1000000};
      else if (a == "--full")
        chats = {10000, 100000, 1000000}, startup = {100000, 1000000, 10000000};
      else
        throw std::invalid_argument("unknown option " + a);
    }
  } catch (const std::exception& e) {
    std::cerr << "scale_bench: " << e.what()
              << "\nusage: scale_bench [--chats 10000,100000] [--startup-events 100000,1000000] [--quick] [--full]\n"
                 "                   [--backline PATH] [--dir DIR]\n";
    return 2;
  }
  json::object figures;
  try {
    caf::actor_system_config cfg;
    backline::choose_caf_scheduler(cfg);  // as `backline serve` runs its actors
    cfg.set("logger.console-verbosity", caf::atom("quiet"));
    cfg.set("logger.file-verbosity", caf::atom("quiet"));
    caf::actor_system sys{cfg};
    std::printf("scale_bench: %u cores; logs in %s (unsynced fill; the measured actors' journal unsynced too)\n",
                std::thread::hardware_concurrency(), dir.c_str());
    auto small = make_template(sys, dir + "/template", 0);
    std::printf("  template chat: %zu events in %zu streams\n", small.events, small.streams.size());
    for (size_t n : chats)
      figures["chats_" + std::to_string(n)] = measure_chats(sys, small, dir + "/chats", n);
    if (!startup.empty()) {
      if (::access(binary.c_str(), X_OK) != 0)
        throw std::runtime_error("backline binary " + binary + " is not there (build it or pass --backline PATH)");
      auto big = make_template(sys, dir + "/template", 98);
      std::printf("  start-up template chat: %zu events in %zu streams\n", big.events, big.streams.size());
      for (size_t e : startup)
        figures["startup_" + std::to_string(e)] = measure_startup(big, dir + "/serve", binary, e);
    }
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "scale_bench: " << e.what() << "\n";
    std::filesystem::remove_all(dir);
    return 1;
  }
  std::filesystem::remove_all(dir);
  std::cout << json::serialize(json::object{{"bench", "scale"}, {"figures", figures}}) << std::endl;
  return 0;
}

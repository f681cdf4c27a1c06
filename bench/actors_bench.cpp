// actors_bench: thread-message posts per second through backline's real
// actors — directory → thread → journal (the chat activates the thread and
// checks its first command), as an HTTP request goes, without HTTP — under
// fan-in from N posting threads (N = 1, 16, 256), beside
// the ceiling measured in the same run: N bare CAF request/response pairs
// (ping-pong) carrying messages of the very same types and sizes.
//
//   actors_bench [--fanin 1,16,256] [--seconds S] [--warmup S] [--sync] [--quick] [--dir DIR]
//
// Setup: one chat per posting thread, created by a bot, assigned to an agent,
// with one internal thread the agent opened (all through the directory, on
// the in-memory Slack port). Each poster actor posts into its own thread, one
// post in flight at a time (as one keep-alive HTTP connection would), for
// the window after a warm-up. The journal writes to a temporary RocksDB with
// fsync OFF by default (store_options.sync = false), so the actors, not the
// disk, are what is measured; --sync turns it on (as in production) and the
// full run also gives the synced figure at the largest fan-in.
//
// Ends with one JSON line:
// {"bench":"actors","figures":{"actors_n16":…,"pingpong_n16":…,"ratio_n16":…,…},"sync":false}

#include <caf/all.hpp>

#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "backline/caf_scheduler.hpp"
#include "backline/inbox.hpp"
#include "backline/malloc_tuning.hpp"
#include "bench/support/options.hpp"

using namespace backline;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

namespace {

// One command to send over and over, where to, and until when; latencies
// (µs) of the replies inside the window go to `latency_us`, owned by the
// main thread and read only after this actor said it is done.
struct poster_state {
  static inline const char* name = "poster";
  poster_state() = default;
  caf::typed_actor<caf::replies_to<atoms::command, command>::with<api_reply>> target;
  command cmd;
  clock_type::time_point measure_from, end;
  std::vector<uint32_t>* latency_us = nullptr;
  uint64_t failures = 0;
  caf::actor done;
};

using command_target = caf::typed_actor<caf::replies_to<atoms::command, command>::with<api_reply>>;

void post_next(caf::stateful_actor<poster_state>* self) {
  auto sent_at = clock_type::now();
  if (sent_at >= self->state.end) {
    self->send(self->state.done, self->state.failures);
    self->quit();
    return;
  }
  self->request(self->state.target, caf::infinite, atoms::command::value, self->state.cmd)
    .then(
      [self, sent_at](const api_reply& r) {
        auto now = clock_type::now();
        if (r.status / 100 != 2)
          ++self->state.failures;
        else if (sent_at >= self->state.measure_from && now <= self->state.end)
          self->state.latency_us->push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(now - sent_at).count()));
        post_next(self);
      },
      [self](const caf::error&) {
        ++self->state.failures;
        post_next(self);
      });
}

caf::behavior poster(caf::stateful_actor<poster_state>* self, command_target target, command cmd,
                     clock_type::time_point measure_from, clock_type::time_point end, std::vector<uint32_t>* latency_us,
                     caf::actor done) {
  auto& st = self->state;
  st.target = std::move(target);
  st.cmd = std::move(cmd);
  st.measure_from = measure_from;
  st.end = end;
  st.latency_us = latency_us;
  st.done = std::move(done);
  post_next(self);
  return {[] {}};
}

// The ceiling's other end: answers every command at once with a reply of
// the same size as backline's.
struct pong_state {
  static inline const char* name = "pong";
  pong_state() = default;
  api_reply reply;
};

command_target::behavior_type pong(command_target::stateful_pointer<pong_state> self, api_reply reply) {
  self->state.reply = std::move(reply);
  return {[self](atoms::command, const command&) { return self->state.reply; }};
}

struct level_result {
  double per_s = 0;
  double p50 = 0, p99 = 0;  // ms
  uint64_t failures = 0;
};

double percentile_ms(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty())
    return 0;
  size_t rank = std::clamp<size_t>(static_cast<size_t>(std::ceil(p * static_cast<double>(sorted.size()))), 1,
                                   sorted.size());
  return sorted[rank - 1] / 1000.0;
}

// N posters, each sending its own command to its own target, for warmup + window.
level_result drive(caf::actor_system& sys, const std::vector<command_target>& targets,
                   const std::vector<command>& cmds, double warmup_s, double window_s) {
  size_t n = cmds.size();
  std::vector<std::vector<uint32_t>> latencies(n);
  caf::scoped_actor self{sys};
  auto start = clock_type::now();
  auto measure_from = start + std::chrono::milliseconds(static_cast<long>(warmup_s * 1000));
  auto end = measure_from + std::chrono::milliseconds(static_cast<long>(window_s * 1000));
  for (size_t i = 0; i < n; ++i) {
    latencies[i].reserve(1 << 16);
    sys.spawn(poster, targets[i % targets.size()], cmds[i], measure_from, end, &latencies[i], caf::actor{self});
  }
  level_result r;
  for (size_t i = 0; i < n; ++i)
    self->receive([&](uint64_t failures) { r.failures += failures; });
  std::vector<uint32_t> all;
  for (auto& l : latencies)
    all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  r.per_s = static_cast<double>(all.size()) / window_s;
  r.p50 = percentile_ms(all, 0.5);
  r.p99 = percentile_ms(all, 0.99);
  return r;
}

api_reply ask(caf::actor_system& sys, const directory_actor& directory, command c) {
  caf::scoped_actor self{sys};
  api_reply out;
  self->request(directory, std::chrono::seconds(30), atoms::command::value, std::move(c))
    .receive([&](api_reply& r) { out = std::move(r); }, [&](caf::error& e) { out = {599, to_string(e)}; });
  return out;
}

std::string id_of(const api_reply& r) {
  return std::string(json::parse(r.body).as_object().at("id").as_string());
}

// The inbox actors over a fresh store, and one chat with one thread per poster.
struct inbox_setup {
  std::shared_ptr<event_store> store;
  caf::actor_system& sys;
  journal_actor journal;
  slack_port_actor slack;
  notifications_actor notifications;
  directory_actor directory;
  std::vector<command> posts;  // one per thread
  caller bot{"bench-bot", "Bench Bot", role::bot, false};

  inbox_setup(caf::actor_system& s, const std::string& dir, bool sync, size_t threads) : sys(s) {
    std::filesystem::remove_all(dir);
    store_options opts;
    opts.sync = sync;
    auto opened = event_store::open(dir, opts);
    if (!opened)
      throw std::runtime_error(opened.error().describe());
    store = std::shared_ptr<event_store>(std::move(opened.value()));
    journal = journal::spawn(sys, store);
    slack = inbox::spawn_memory_slack_port(sys);
    notifications = inbox::spawn_notifications(sys);
    directory = inbox::spawn_directory(sys, journal, slack, notifications, {});
    caf::scoped_actor self{sys};
    for (size_t i = 0; i < threads; ++i) {
      caller agent{"agent-" + std::to_string(i % 8), "Agent " + std::to_string(i % 8), role::agent, true};
      api_reply created;
      std::string n = std::to_string(i);
      self->request(directory, std::chrono::seconds(30), atoms::create::value, bot,
                    json::serialize(json::object{{"customer_id", "cust-" + n}, {"customer_name", "Customer " + n},
                                                 {"text", "hello"}}),
                    std::string())
        .receive([&](api_reply& r) { created = std::move(r); }, [&](caf::error& e) { created = {599, to_string(e)}; });
      if (created.status != 201)
        throw std::runtime_error("create chat: " + std::to_string(created.status) + " " + created.body);
      auto chat = id_of(created);
      auto assigned = ask(sys, directory,
                          {verb::chat_assign, bot, chat, "", json::serialize(json::object{{"agent_id", agent.id}}), ""});
      if (assigned.status != 200)
        throw std::runtime_error("assign: " + std::to_string(assigned.status) + " " + assigned.body);
      auto thread = ask(sys, directory,
                        {verb::thread_create, agent, chat, "",
                         json::serialize(json::object{{"channel_id", "C0FINANCE"}, {"text", "query"}}), ""});
      if (thread.status != 201)
        throw std::runtime_error("thread: " + std::to_string(thread.status) + " " + thread.body);
      posts.push_back({verb::thread_post, agent, chat, id_of(thread),
                       json::serialize(json::object{{"text", "load message " + n}}), ""});
    }
  }

  ~inbox_setup() {
    caf::scoped_actor self{sys};
    for (auto a : {caf::actor_cast<caf::actor>(directory), caf::actor_cast<caf::actor>(slack),
                   caf::actor_cast<caf::actor>(notifications), caf::actor_cast<caf::actor>(journal)}) {
      self->send_exit(a, caf::exit_reason::user_shutdown);
      self->wait_for(a);
    }
  }
};

} // namespace

int main(int argc, char** argv) {
  backline::tune_malloc();  // as `backline` runs
  std::vector<size_t> fanin{1, 16, 256};
  double seconds = 4, warmup = 1;
  bool sync = false, quick = false;
  std::string dir = (std::filesystem::temp_directory_path() / ("actors_bench." + std::to_string(::getpid()))).string();
  try {
    bench::arguments args(argc, argv);
    for (std::string a; args.next(a);) {
      auto next = [&] { return args.value(); };
      if (a == "--fanin")
        fanin = bench::parse_list(next());
      else if (a == "--seconds")
        seconds = std::stod(next());
      else if (a == "--warmup")
        warmup = std::stod(next());
      else if (a == "--sync")
        sync = true;
      else if (a == "--dir")
        dir = next();
      else if (a == "--quick")
        quick = true, seconds = 2, warmup = 0.5;
      else
        throw std::invalid_argument("unknown option " + a);
    }
  } catch (const std::exception& e) {
    std::cerr << "actors_bench: " << e.what()
              << "\nusage: actors_bench [--fanin 1,16,256] [--seconds S] [--warmup S] [--sync] [--quick] [--dir DIR]\n";
    return 2;
  }

  caf::actor_system_config cfg;
  backline::choose_caf_scheduler(cfg);  // as `backline serve` runs its actors
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  std::printf("actors_bench: %u cores, CAF scheduler with %zu workers, journal fsync %s, %.1f s warm-up + %.1f s per "
              "level\n",
              std::thread::hardware_concurrency(), sys.scheduler().num_workers(), sync ? "ON" : "OFF (--sync for on)",
              warmup, seconds);
  std::printf("  %8s  %14s %14s %8s %10s %10s\n", "fan-in", "backline /s", "ping-pong /s", "ratio", "p50 ms",
              "p99 ms");
  std::string figures;
  size_t request_bytes = 0, reply_bytes = 0;
  uint64_t failures_total = 0;
  try {
    for (size_t n : fanin) {
      level_result real, bare;
      api_reply sample;
      {
        inbox_setup box(sys, dir, sync, n);
        sample = ask(sys, box.directory, box.posts[0]);  // also the size the ceiling replies with
        if (sample.status != 201)
          throw std::runtime_error("post: " + std::to_string(sample.status) + " " + sample.body);
        real = drive(sys, {command_target{caf::actor_cast<command_target>(box.directory)}}, box.posts, warmup, seconds);
        request_bytes = box.posts[0].body.size();
        reply_bytes = sample.body.size();
        std::vector<command_target> pongs;
        for (size_t i = 0; i < n; ++i)
          pongs.push_back(sys.spawn(pong, sample));
        bare = drive(sys, pongs, box.posts, warmup, seconds);
        caf::scoped_actor self{sys};
        for (auto& p : pongs)
          self->send_exit(p, caf::exit_reason::user_shutdown);
      }
      double ratio = bare.per_s > 0 ? real.per_s / bare.per_s : 0;
      failures_total += real.failures;
      std::printf("  %8zu  %14.0f %14.0f %8.3f %10.3f %10.3f%s\n", n, real.per_s, bare.per_s, ratio, real.p50,
                  real.p99, real.failures ? "  (failures!)" : "");
      std::fflush(stdout);
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "%s\"actors_n%zu\":%.0f,\"pingpong_n%zu\":%.0f,\"ratio_n%zu\":%.4f,\"p50_ms_n%zu\":%.3f,"
                    "\"p99_ms_n%zu\":%.3f,\"failures_n%zu\":%llu",
                    figures.empty() ? "" : ",", n, real.per_s, n, bare.per_s, n, ratio, n, real.p50, n, real.p99, n,
                    static_cast<unsigned long long>(real.failures));
      figures += buf;
    }
    if (!sync && !quick && !fanin.empty()) {
      size_t n = fanin.back();
      inbox_setup box(sys, dir, true, n);
      auto synced = drive(sys, {caf::actor_cast<command_target>(box.directory)}, box.posts, warmup, seconds);
      std::printf("  %8zu  %14.0f  with fsync ON (p99 %.3f ms)\n", n, synced.per_s, synced.p99);
      char buf[96];
      std::snprintf(buf, sizeof buf, ",\"actors_synced_n%zu\":%.0f", n, synced.per_s);
      figures += buf;
    }
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "actors_bench: " << e.what() << "\n";
    std::filesystem::remove_all(dir);
    return 1;
  }
  std::filesystem::remove_all(dir);
  std::printf("  messages: a thread_post command with a %zu-byte body; replies %zu bytes of body\n", request_bytes,
              reply_bytes);
  std::printf("{\"bench\":\"actors\",\"figures\":{%s,\"request_body_bytes\":%zu,\"reply_body_bytes\":%zu},"
              "\"sync\":%s}\n",
              figures.c_str(), request_bytes, reply_bytes, sync ? "true" : "false");
  return failures_total ? 1 : 0;
}

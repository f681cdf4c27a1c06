// journal_bench: durable appends per second through the journal from N
// concurrent appender actors (N = 1, 16, 256), beside the ceilings measured
// in the same run on the same disk: raw synced RocksDB WriteBatches of the
// same encoded events, and one fsync per event.
//
//   journal_bench [--events N] [--appenders 1|16|256] [--repeat K] [--dir DIR] [--quick]
//                 [--actor-scheduler sharing|stealing]   (default: the server's, sharing)
//
// Ends with one JSON line: {"bench":"journal","figures":{…},"ratio":…,"target":0.7}

#include <caf/all.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "backline/caf_scheduler.hpp"
#include "backline/journal.hpp"
#include "backline/malloc_tuning.hpp"
#include "persistence/raw_writer.hpp"

using namespace backline;
using clock_type = std::chrono::steady_clock;

namespace {

// CPU seconds of the whole process so far (every thread: the journal's,
// RocksDB's, CAF's): divided by the events, the CPU an event costs.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto secs = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return secs(ru.ru_utime) + secs(ru.ru_stime);
}

std::string sample_payload(size_t i) {
  return "{\"text\":\"Customer asks whether the refund for order " + std::to_string(100000 + i) +
         " was issued; card ending 4242, amount 129.90 EUR\",\"author\":\"agent-7\"}";
}

// An appender: appends `count` events to its own stream, one in flight at a
// time (each waits for its acknowledgement, as an HTTP caller would), then
// tells `done` it finished.
struct appender_state {
  static inline const char* name = "appender";
  journal_actor journal;
  std::string stream;
  size_t count = 0;
  size_t sent = 0;
  caf::actor done;
};

void append_next(caf::stateful_actor<appender_state>* self) {
  auto& st = self->state;
  if (st.sent == st.count) {
    self->send(st.done, true);
    self->quit();
    return;
  }
  append_request r;
  r.stream = st.stream;
  r.events.push_back(new_event{"thread_message_added", "agent-7", sample_payload(st.sent++)});
  self->request(st.journal, caf::infinite, atoms::append::value, std::move(r))
    .then([self](const append_reply& rep) {
      if (!rep.status.ok()) {
        std::cerr << "append failed: " << rep.status.message << "\n";
        std::exit(1);
      }
      append_next(self);
    });
}

caf::behavior appender(caf::stateful_actor<appender_state>* self, journal_actor journal, std::string stream,
                       size_t count, caf::actor done) {
  self->state.journal = std::move(journal);
  self->state.stream = std::move(stream);
  self->state.count = count;
  self->state.done = std::move(done);
  append_next(self);
  return {[] {}};
}

double journal_rate(const std::string& dir, size_t appenders, size_t total_events, actor_scheduler policy,
                    journal_stats& stats, double& cpu_per_event) {
  std::filesystem::remove_all(dir);
  auto opened = event_store::open(dir);
  if (!opened) {
    std::cerr << opened.error().describe() << "\n";
    std::exit(1);
  }
  std::shared_ptr<event_store> store(std::move(opened.value()));
  caf::actor_system_config cfg;
  backline::choose_caf_scheduler(cfg, 0, policy);  // as `backline serve` runs its actors
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  auto journal = journal::spawn(sys, store);
  caf::scoped_actor self{sys};
  size_t per = total_events / appenders;
  double cpu0 = cpu_seconds();
  auto start = clock_type::now();
  for (size_t i = 0; i < appenders; ++i)
    sys.spawn(appender, journal, "thread-" + std::to_string(i), per, caf::actor{self});
  for (size_t i = 0; i < appenders; ++i)
    self->receive([](bool) {});
  double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  cpu_per_event = (cpu_seconds() - cpu0) / static_cast<double>(per * appenders);
  self->request(journal, caf::infinite, atoms::stats::value).receive(
    [&](journal_stats& s) { stats = s; }, [](caf::error&) {});
  self->send_exit(journal, caf::exit_reason::user_shutdown);
  self->wait_for(journal);
  return static_cast<double>(per * appenders) / secs;
}

// The events as the journal would store them from `streams` appenders
// taking turns: positions global, seqs per stream, hashes chained.
std::vector<event_record> chained_events(size_t count, size_t streams) {
  std::vector<event_record> events;
  events.reserve(count);
  std::vector<uint64_t> seqs(streams, 0);
  std::string prev;
  for (size_t i = 0; i < count; ++i) {
    event_record e;
    e.position = i + 1;
    e.stream = "thread-" + std::to_string(i % streams);
    e.seq = ++seqs[i % streams];
    e.type = "thread_message_added";
    e.time = "2026-11-25T13:00:00.000Z";
    e.actor = "agent-7";
    e.payload = sample_payload(i);
    e.prev_hash = prev;
    e.hash = event_hash(e);
    prev = e.hash;
    events.push_back(std::move(e));
  }
  return events;
}

double raw_rate(const std::string& dir, size_t events, size_t streams, size_t batch_size, bool sync,
                persistence::raw_layout layout = persistence::raw_layout::store_keys,
                double* cpu_per_event = nullptr) {
  std::filesystem::remove_all(dir);
  auto chained = chained_events(events, streams);
  double cpu0 = cpu_seconds();
  auto secs = persistence::raw_write_seconds(dir, chained, batch_size, sync, layout);
  if (cpu_per_event)
    *cpu_per_event = (cpu_seconds() - cpu0) / static_cast<double>(events);
  if (!secs) {
    std::cerr << "raw writer: " << secs.error().describe() << "\n";
    std::exit(1);
  }
  return static_cast<double>(events) / secs.value();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

} // namespace

int main(int argc, char** argv) {
  backline::tune_malloc();  // as `backline` runs
  size_t events = 64000;
  size_t only_appenders = 0;  // 0: all of 1, 16, 256
  size_t repeat = 3;          // turns of ceiling and journal per N (medians compared)
  auto policy = actor_scheduler::sharing;  // the server's default (--actor-scheduler)
  std::string dir = (std::filesystem::temp_directory_path() / "backline-journal-bench").string();
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--events" && i + 1 < argc)
      events = std::stoul(argv[++i]);
    else if (a == "--dir" && i + 1 < argc)
      dir = argv[++i];
    else if (a == "--appenders" && i + 1 < argc)
      only_appenders = std::stoul(argv[++i]);
    else if (a == "--repeat" && i + 1 < argc)
      repeat = std::max<size_t>(1, std::stoul(argv[++i]));
    else if (a == "--quick")
      events = 25600;
    else if (a == "--actor-scheduler" && i + 1 < argc && actor_scheduler_named(argv[i + 1]))
      policy = *actor_scheduler_named(argv[++i]);
    else {
      std::cerr << "usage: journal_bench [--events N] [--appenders 1|16|256] [--repeat K] [--dir DIR] [--quick]\n"
                   "                     [--actor-scheduler sharing|stealing]\n";
      return 2;
    }
  }
  std::printf("journal_bench: %zu events per run, data in %s, %u cores, actors on CAF work %s\n", events,
              dir.c_str(), std::thread::hardware_concurrency(), std::string(to_string(policy)).c_str());

  // Ceilings on the same disk, same encoded events.
  double raw_single = raw_rate(dir, std::min<size_t>(events / 8, 4000), 1, 1, true);
  std::printf("  ceiling  one fsync per event                %10.0f events/s\n", raw_single);

  std::string figures;
  double ratio_256 = 0;
  double journal_256 = 0;
  for (size_t n : {size_t{1}, size_t{16}, size_t{256}}) {
    if (only_appenders != 0 && n != only_appenders)
      continue;
    // The ceiling: the very key/value pairs the store writes for these
    // events (record, global pointer, stream head), in synced batches of N,
    // with no journal, actors, checks, encoding or hashing in the way. The
    // record-only figure shows what the three-key layout itself costs.
    //
    // The machine is shared and a run is short, so the ceiling and the
    // journal run `repeat` times, taking turns, and the medians are compared
    // (the spread is printed beside them).
    std::vector<double> raws, raw_cpus, rates, journal_cpus;
    journal_stats stats;
    for (size_t r = 0; r < repeat; ++r) {
      double raw_cpu = 0;
      raws.push_back(raw_rate(dir, events, n, n, true, persistence::raw_layout::store_keys, &raw_cpu));
      raw_cpus.push_back(raw_cpu);
      double journal_cpu = 0;
      journal_stats run_stats;
      rates.push_back(journal_rate(dir, n, events, policy, run_stats, journal_cpu));
      journal_cpus.push_back(journal_cpu);
      stats.batches += run_stats.batches;
      stats.syncs += run_stats.syncs;
      stats.requests += run_stats.requests;
    }
    double raw_record_only = raw_rate(dir, events, n, n, true, persistence::raw_layout::record_only);
    const double raw = median(raws), rate = median(rates), raw_cpu = median(raw_cpus),
                 journal_cpu = median(journal_cpus);
    double ratio = rate / raw;
    double avg_batch = stats.batches ? static_cast<double>(stats.requests) / stats.batches : 0;
    double per_sync = stats.syncs ? static_cast<double>(stats.requests) / stats.syncs : 0;
    std::printf("  N=%-4zu  raw synced batches of %-4zu (store keys)  %10.0f events/s\n", n, n, raw);
    std::printf("  N=%-4zu  raw synced batches of %-4zu (record only) %10.0f events/s\n", n, n, raw_record_only);
    std::printf("  N=%-4zu  journal, %-4zu appender actors          %10.0f events/s  ratio %.2f  avg batch %.1f, "
                "%.1f per fsync\n", n, n, rate, ratio, avg_batch, per_sync);
    std::printf("  N=%-4zu  CPU per event (all threads): journal %.1f us, raw synced batches %.1f us\n", n,
                journal_cpu * 1e6, raw_cpu * 1e6);
    if (repeat > 1)
      std::printf("  N=%-4zu  medians of %zu turns each; raw %.0f-%.0f, journal %.0f-%.0f events/s\n", n, repeat,
                  *std::min_element(raws.begin(), raws.end()), *std::max_element(raws.begin(), raws.end()),
                  *std::min_element(rates.begin(), rates.end()), *std::max_element(rates.begin(), rates.end()));
    char buf[512];
    std::snprintf(buf, sizeof buf,
                  "%s\"journal_n%zu\":%.0f,\"raw_batch%zu\":%.0f,\"raw_record_only_batch%zu\":%.0f,"
                  "\"ratio_n%zu\":%.3f,\"avg_batch_n%zu\":%.1f,\"per_fsync_n%zu\":%.1f,\"cpu_us_per_event_n%zu\":%.2f,"
                  "\"raw_cpu_us_per_event_n%zu\":%.2f",
                  figures.empty() ? "" : ",", n, rate, n, raw, n, raw_record_only, n, ratio, n, avg_batch, n, per_sync, n,
                  journal_cpu * 1e6, n, raw_cpu * 1e6);
    figures += buf;
    if (n == 256) {
      ratio_256 = ratio;
      journal_256 = rate;
    }
  }
  double vs_single = journal_256 / raw_single;
  std::printf("  journal at N=256 vs one fsync per event: %.1fx (target > 20x)\n", vs_single);
  std::printf("  journal at N=256 vs raw synced batches:  %.2f (target >= 0.70) %s\n", ratio_256,
              ratio_256 >= 0.7 && vs_single > 20 ? "MET" : "MISSED");
  std::filesystem::remove_all(dir);
  std::printf("{\"bench\":\"journal\",\"figures\":{%s,\"raw_fsync_per_event\":%.0f,\"vs_fsync_per_event\":%.1f},"
              "\"ratio\":%.3f,\"target\":0.7}\n",
              figures.c_str(), raw_single, vs_single, ratio_256);
  return 0;
}

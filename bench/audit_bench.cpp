// audit_bench: `backline audit verify` on a large log, beside the ceiling
// measured in the same run: sha256sum over an export of the same events
// (the least any check of those bytes must cost), and the replay of one chat
// in that log.
//
//   audit_bench [--events N] [--quick] [--dir DIR] [--keep]
//
// The log is generated through the journal (group commit, fsync off as with
// `backline serve --no-sync`): conversations of 18 events each (a chat, its
// customer and agent messages, an internal thread with Slack deliveries and
// replies, done, resolved), 2,000 of them under way at any time, so the
// global order interleaves many streams as a busy server's does. With --dir
// and --keep the log is kept, and a later run with the same --dir and
// --events reuses it instead of generating it again.
//
// Ends with one JSON line: {"bench":"audit","figures":{…},"ratio":…,"target":0.5}

#include <caf/all.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "backline/audit.hpp"
#include "backline/caf_scheduler.hpp"
#include "backline/journal.hpp"
#include "backline/malloc_tuning.hpp"

using namespace backline;
using clock_type = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

std::string hex_id(const char* prefix, uint64_t n) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%s%016llx", prefix, static_cast<unsigned long long>(n * 0x9e3779b97f4a7c15ull));
  return buf;
}

std::string chat_id_of(uint64_t conversation) { return hex_id("ch-", conversation + 1); }

/// The k-th event (0..17) of a conversation: stream, type, actor, payload,
/// shaped like what the domain writes.
append_request conversation_event(uint64_t c, int k) {
  const auto chat = chat_id_of(c);
  const auto thread = thread_id_of(chat, 1);
  const auto agent = "agent-" + std::to_string(c % 50);
  const auto customer = "cust-" + std::to_string(c);
  const auto msg = [&](int n) { return hex_id("m-", c * 32 + static_cast<uint64_t>(n)); };
  const auto ts = [&](int n) { return std::to_string(1700000000 + c) + "." + std::to_string(100 + n); };
  std::string stream = "chat-" + chat, type, actor = "bot";
  boost::json::object p;
  switch (k) {
    case 0:
      type = "chat_created";
      p = {{"id", chat}, {"customer_id", customer}, {"customer_name", "Customer " + std::to_string(c)},
           {"previous_chat_id", ""}};
      break;
    case 1:
    case 11:
    case 16:
      type = "chat_message_added";
      actor = k == 1 ? "bot" : agent;
      p = {{"id", msg(k)}, {"kind", k == 1 ? "customer" : "agent"},
           {"text", "Where is the refund for order " + std::to_string(100000 + c) + "? It was promised last week."},
           {"author", k == 1 ? customer : agent}};
      break;
    case 2:
      type = "chat_assigned";
      p = {{"agent_id", agent}, {"from", ""}};
      break;
    case 3: {
      type = "thread_opened";
      actor = agent;
      boost::json::object t{{"id", thread}, {"chat_id", chat}, {"channel_id", "C-finance"}, {"created_by", agent},
                            {"created_by_name", "Agent " + agent}, {"title", "Was the refund issued?"},
                            {"text", "Chat " + chat + " with customer " + customer + "\nWas the refund issued?"},
                            {"message_id", msg(0)}, {"mentions", boost::json::array{}},
                            {"files", boost::json::array{}}};
      p = {{"thread_id", thread}, {"note_id", hex_id("n-", c)},
           {"note", "Internal thread " + thread + " opened in Slack channel C-finance: Was the refund issued?"},
           {"thread", t}};
      break;
    }
    case 4:
      stream = "thread-" + thread;
      type = "thread_created";
      actor = "system";
      p = {{"id", thread}, {"chat_id", chat}, {"channel_id", "C-finance"}, {"created_by", agent},
           {"created_by_name", "Agent " + agent}, {"title", "Was the refund issued?"},
           {"text", "Chat " + chat + " with customer " + customer + "\nWas the refund issued?"},
           {"message_id", msg(0)}, {"mentions", boost::json::array{}}, {"files", boost::json::array{}}};
      break;
    case 5:
    case 9:
    case 15:
      stream = "thread-" + thread;
      type = "slack_delivered";
      actor = "slack";
      p = {{"message_id", msg(k)}, {"slack_ts", ts(k)}};
      break;
    case 6:
    case 12:
      stream = "thread-" + thread;
      type = "slack_reply_received";
      actor = "slack";
      p = {{"id", msg(k)}, {"slack_ts", ts(k)}, {"author_id", "U0FIN" + std::to_string(c % 7)},
           {"author_name", "Finance L2"}, {"text", "Yes, it went out on Monday; reference RF-" + std::to_string(c)},
           {"markdown", "Yes, it went out on Monday; reference RF-" + std::to_string(c)},
           {"slack_text", "Yes, it went out on Monday; reference RF-" + std::to_string(c)}, {"late", false},
           {"files", boost::json::array{}}};
      break;
    case 7:
    case 13:
      stream = "thread-" + thread;
      type = "thread_read";
      actor = agent;
      break;
    case 8:
      stream = "thread-" + thread;
      type = "thread_message_sent";
      actor = agent;
      p = {{"id", msg(k)}, {"text", "Thanks! Could you also send the bank reference?"}, {"author_id", agent},
           {"author_name", "Agent " + agent}, {"mentions", boost::json::array{}}, {"files", boost::json::array{}}};
      break;
    case 10:
      type = "chat_message_added";
      p = {{"id", msg(k)}, {"kind", "customer"}, {"text", "Thank you, I can see it now."}, {"author", customer}};
      break;
    case 14:
      stream = "thread-" + thread;
      type = "thread_done";
      actor = agent;
      p = {{"closing_id", msg(k)}, {"closing_text", ":white_check_mark: Marked as done - this thread is closed."},
           {"closing_author", "Agent " + agent}};
      break;
    default:
      type = "chat_resolved";
      actor = agent;
      break;
  }
  append_request r;
  r.stream = std::move(stream);
  r.events.push_back(new_event{std::move(type), std::move(actor), boost::json::serialize(p)});
  return r;
}

constexpr int events_per_conversation = 18;
constexpr uint64_t conversations_under_way = 2000;

/// Appends `total` events through the journal, one event per request as the
/// actors do, with up to 1,024 requests in flight.
void generate(const std::string& log_dir, uint64_t total) {
  store_options opts;
  opts.sync = false;
  auto opened = event_store::open(log_dir, opts);
  if (!opened) {
    std::cerr << opened.error().describe() << "\n";
    std::exit(1);
  }
  std::shared_ptr<event_store> store = std::move(opened).value();
  caf::actor_system_config cfg;
  backline::choose_caf_scheduler(cfg);  // as `backline serve` runs its actors
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  cfg.set("logger.file-verbosity", caf::atom("quiet"));
  caf::actor_system sys{cfg};
  auto journal = journal::spawn(sys, store);
  caf::scoped_actor self{sys};
  using handle = decltype(self->request(journal, caf::infinite, atoms::append::value, append_request{}));
  std::deque<handle> in_flight;
  auto settle_one = [&] {
    in_flight.front().receive(
      [](const append_reply& r) {
        if (!r.status.ok()) {
          std::cerr << "append failed: " << r.status.message << "\n";
          std::exit(1);
        }
      },
      [](caf::error& e) {
        std::cerr << "append failed: " << caf::to_string(e) << "\n";
        std::exit(1);
      });
    in_flight.pop_front();
  };
  // 2,000 conversations under way, advanced round robin.
  constexpr uint64_t active = conversations_under_way;
  std::vector<std::pair<uint64_t, int>> slots;  // conversation, next event
  uint64_t next_conversation = 0;
  for (uint64_t i = 0; i < active; ++i)
    slots.emplace_back(next_conversation++, 0);
  const auto start = clock_type::now();
  for (uint64_t n = 0; n < total; ++n) {
    auto& [c, k] = slots[n % active];
    in_flight.push_back(self->request(journal, caf::infinite, atoms::append::value, conversation_event(c, k)));
    if (++k == events_per_conversation) {
      c = next_conversation++;
      k = 0;
    }
    if (in_flight.size() >= 1024)
      settle_one();
    if (n % 1000000 == 999999)
      std::cerr << "  generated " << (n + 1) / 1000000 << "M events, " << static_cast<uint64_t>((n + 1) / seconds_since(start))
                << " events/s\n";
  }
  while (!in_flight.empty())
    settle_one();
  self->send_exit(journal, caf::exit_reason::user_shutdown);
  self->wait_for(journal);
}

uint64_t events_in(const std::string& log_dir) {
  store_options ro;
  ro.read_only = true;
  auto store = event_store::open(log_dir, ro);
  return store ? (*store)->head().position : 0;
}

struct timed_command {
  int code = 0;
  double seconds = 0;
  std::string out, err;
};

timed_command run_audit(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  const auto start = clock_type::now();
  timed_command r;
  r.code = audit::run_command(args, out, err, false, [](const char*) -> const char* { return nullptr; });
  r.seconds = seconds_since(start);
  r.out = out.str();
  r.err = err.str();
  return r;
}

/// CPU seconds (user and system) of this process, or of its waited-for children.
double cpu_seconds(int who) {
  rusage u{};
  ::getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec)
         + static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

} // namespace

int main(int argc, char** argv) {
  backline::tune_malloc();  // as `backline` runs
  uint64_t events = 10'000'000;
  std::string dir;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--events" && i + 1 < argc)
      events = std::stoull(argv[++i]);
    else if (a == "--quick")
      events = 1'000'000;
    else if (a == "--dir" && i + 1 < argc)
      dir = argv[++i];
    else if (a == "--keep")
      keep = true;
    else {
      std::cerr << "usage: audit_bench [--events N] [--quick] [--dir DIR] [--keep]\n";
      return 2;
    }
  }
  if (dir.empty())
    dir = (fs::temp_directory_path() / ("backline-audit-bench-" + std::to_string(::getpid()))).string();
  const auto data = dir + "/data";
  const auto log_dir = data + "/log";
  const auto export_file = dir + "/export.jsonl";

  if (events_in(log_dir) == events) {
    std::cout << "reusing the log of " << events << " events in " << log_dir << "\n";
  } else {
    fs::remove_all(dir);
    fs::create_directories(data);
    std::cout << "generating " << events << " events through the journal into " << log_dir << " …\n";
    const auto start = clock_type::now();
    generate(log_dir, events);
    std::cout << "  done in " << seconds_since(start) << " s\n";
  }

  // 1. verify, exactly as `backline audit verify` runs it (opening included).
  const double cpu_before = cpu_seconds(RUSAGE_SELF);
  auto verified = run_audit({"verify", "--data", data});
  const double verify_cpu = cpu_seconds(RUSAGE_SELF) - cpu_before;
  std::cout << verified.out << verified.err;
  if (verified.code != 0) {
    std::cerr << "verify did not verify the generated log\n";
    return 1;
  }
  const double verify_rate = static_cast<double>(events) / verified.seconds;
  std::printf("verify: %.2f s, %.0f events/s (CPU %.1f s on 2 cores)\n", verified.seconds, verify_rate, verify_cpu);

  // 2. The ceiling: sha256sum over an export of the same events.
  auto exported = run_audit({"export", "--data", data, "--out", export_file});
  if (exported.code != 0) {
    std::cerr << exported.err;
    return 1;
  }
  const auto export_bytes = fs::file_size(export_file);
  std::printf("export: %.2f s, %.0f MB\n", exported.seconds, static_cast<double>(export_bytes) / 1e6);
  // Read once so both runs start from a warm page cache, as verify did.
  std::system(("cat '" + export_file + "' > /dev/null").c_str());
  const auto sha_start = clock_type::now();
  const double children_before = cpu_seconds(RUSAGE_CHILDREN);
  const int sha = std::system(("sha256sum '" + export_file + "' > /dev/null").c_str());
  const double sha_seconds = seconds_since(sha_start);
  const double sha_cpu = cpu_seconds(RUSAGE_CHILDREN) - children_before;
  if (sha != 0) {
    std::cerr << "sha256sum failed\n";
    return 1;
  }
  std::printf("ceiling: sha256sum over the export: %.2f s, %.0f MB/s, %.0f events/s (CPU %.1f s)\n", sha_seconds,
              static_cast<double>(export_bytes) / 1e6 / sha_seconds, static_cast<double>(events) / sha_seconds,
              sha_cpu);
  const double ratio = sha_seconds / verified.seconds;
  std::printf("verify / ceiling: %.2f (target >= 0.5); 10M-event time target < 60 s\n", ratio);

  // 3. Replay of one chat: 50 chats spread over the log, on one opened store
  //    (the store's opening is measured on its own), and one whole command.
  std::vector<double> replay_ms;
  // Conversations still under way when the log ended are left out.
  const uint64_t conversations = events / events_per_conversation - conversations_under_way;
  double open_ms = 0;
  {
    const auto scratch = dir + "/secondary";
    store_options ro;
    ro.read_only = true;
    ro.secondary_dir = scratch;
    const auto open_start = clock_type::now();
    auto store = event_store::open(log_dir, ro);
    open_ms = seconds_since(open_start) * 1000;
    if (!store) {
      std::cerr << store.error().describe() << "\n";
      return 1;
    }
    for (uint64_t i = 0; i < 50; ++i) {
      const auto chat = chat_id_of(i * (conversations / 50));
      const auto start = clock_type::now();
      auto timeline = audit::chat_timeline(**store, chat);
      replay_ms.push_back(seconds_since(start) * 1000);
      if (!timeline || timeline->size() != events_per_conversation) {
        std::cerr << "replay of chat " << chat << " gave "
                  << (timeline ? std::to_string(timeline->size()) + " events" : timeline.error().describe()) << "\n";
        return 1;
      }
    }
    fs::remove_all(scratch);
  }
  auto one = run_audit({"replay", "--data", data, "--chat", chat_id_of(conversations / 2)});
  std::printf("replay of one chat (%d events): median %.2f ms, max %.2f ms (target < 50 ms); "
              "opening the log read-only %.0f ms; the whole command %.0f ms\n",
              events_per_conversation, median(replay_ms), *std::max_element(replay_ms.begin(), replay_ms.end()),
              open_ms, one.seconds * 1000);

  std::printf("{\"bench\":\"audit\",\"figures\":{\"events\":%llu,\"verify_seconds\":%.2f,\"verify_events_per_s\":%.0f,"
              "\"verify_cpu_seconds\":%.1f,\"export_bytes\":%llu,\"sha256sum_seconds\":%.2f,\"sha256sum_cpu_seconds\":%.1f,\"replay_chat_median_ms\":%.2f,\"replay_chat_max_ms\":%.2f,"
              "\"open_ms\":%.0f,\"replay_command_ms\":%.0f},\"ratio\":%.2f,\"target\":0.5}\n",
              static_cast<unsigned long long>(events), verified.seconds, verify_rate, verify_cpu,
              static_cast<unsigned long long>(export_bytes), sha_seconds, sha_cpu, median(replay_ms),
              *std::max_element(replay_ms.begin(), replay_ms.end()), open_ms, one.seconds * 1000, ratio);
  if (!keep)
    fs::remove_all(dir);
  return 0;
}

// `backline audit verify|replay|export|rebuild`: options, opening the log
// read-only, progress on a terminal, output and exit codes.

#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <ostream>

#include "backline/audit.hpp"

namespace json = boost::json;

namespace backline::audit {
namespace {

struct request {
  std::string command;  // verify | replay | export | rebuild
  std::string data_dir;
  std::string chat, thread, agent, from, to;  // replay
  std::string format = "text";                // replay
  std::string out;                            // export
  uint64_t from_position = 1;                 // export
};

result<uint64_t> parse_position(const std::string& text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || end != text.data() + text.size() || v == 0)
    return status{errc::invalid_argument, "--from: a position (1, 2, 3…), got '" + text + "'"};
  return v;
}

result<request> parse_request(const std::vector<std::string>& args,
                              const std::function<const char*(const char*)>& getenv) {
  request r;
  if (args.empty())
    return status{errc::invalid_argument, "which audit? verify, replay, export or rebuild"};
  r.command = args[0];
  if (r.command != "verify" && r.command != "replay" && r.command != "export" && r.command != "rebuild")
    return status{errc::invalid_argument, "unknown audit command '" + r.command + "'"};
  const char* env_data = getenv("BACKLINE_DATA");
  r.data_dir = env_data != nullptr && *env_data != '\0' ? env_data : "./backline-data";
  bool from_given = false;
  for (size_t i = 1; i < args.size(); ++i) {
    const auto& flag = args[i];
    if (i + 1 >= args.size())
      return status{errc::invalid_argument, flag + ": missing its value (or not an option of audit " + r.command + ")"};
    const auto& value = args[++i];
    auto allowed = [&](std::initializer_list<const char*> commands) {
      for (auto c : commands)
        if (r.command == c)
          return true;
      return false;
    };
    if (flag == "--data") {
      if (value.empty())
        return status{errc::invalid_argument, "--data: the directory must not be empty"};
      r.data_dir = value;
    } else if (flag == "--chat" && allowed({"replay"})) {
      r.chat = value;
    } else if (flag == "--thread" && allowed({"replay"})) {
      r.thread = value;
    } else if (flag == "--agent" && allowed({"replay"})) {
      r.agent = value;
    } else if (flag == "--to" && allowed({"replay"})) {
      r.to = value;
    } else if (flag == "--format" && allowed({"replay"})) {
      if (value != "text" && value != "jsonl")
        return status{errc::invalid_argument, "--format: text or jsonl, got '" + value + "'"};
      r.format = value;
    } else if (flag == "--from" && allowed({"replay"})) {
      r.from = value;
      from_given = true;
    } else if (flag == "--from" && allowed({"export"})) {
      auto pos = parse_position(value);
      if (!pos)
        return pos.error();
      r.from_position = *pos;
    } else if (flag == "--out" && allowed({"export"})) {
      if (value.empty())
        return status{errc::invalid_argument, "--out: a file name"};
      r.out = value;
    } else {
      return status{errc::invalid_argument, "unknown option '" + flag + "' for audit " + r.command};
    }
  }
  if (r.command == "replay") {
    const int selectors = !r.chat.empty() + !r.thread.empty() + !r.agent.empty() + (from_given || !r.to.empty());
    if (selectors != 1)
      return status{errc::invalid_argument,
                    "replay needs exactly one of --chat ID, --thread ID, --agent ID, or --from TIME --to TIME"};
    if (from_given || !r.to.empty()) {
      auto from = r.from.empty() ? std::optional<std::string>("0000-01-01T00:00:00.000Z") : canonical_time(r.from);
      if (!from)
        return status{errc::invalid_argument, "--from: a UTC time like 2026-11-25T13:00:00Z, got '" + r.from + "'"};
      auto to = r.to.empty() ? std::optional<std::string>("9999-12-31T23:59:59.999Z") : canonical_time(r.to, true);
      if (!to)
        return status{errc::invalid_argument, "--to: a UTC time like 2026-11-25T14:00:00Z, got '" + r.to + "'"};
      if (*from > *to)
        return status{errc::invalid_argument,
                      "the time range is inverted: --from " + r.from + " is after --to " + r.to};
      r.from = *from;
      r.to = *to;
    }
  }
  if (r.command == "export" && r.out.empty())
    return status{errc::invalid_argument, "export needs --out FILE"};
  return r;
}

/// A directory for the secondary instance's own files, removed afterwards.
class scratch_dir {
public:
  scratch_dir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "backline-audit-XXXXXX").string();
    if (::mkdtemp(pattern.data()) != nullptr)
      path_ = pattern;
  }
  ~scratch_dir() {
    std::error_code ec;
    if (!path_.empty())
      std::filesystem::remove_all(path_, ec);
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  const std::string& path() const { return path_; }

private:
  std::string path_;
};

/// The store of a data directory, opened as a RocksDB secondary: it never
/// writes into the log, and a running server may keep writing meanwhile.
struct opened_log {
  scratch_dir scratch;  // declared first: removed after the store is closed
  std::unique_ptr<event_store> store;
};

result<std::unique_ptr<opened_log>> open_log(const std::string& data_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(data_dir, ec))
    return status{errc::not_found, "no data directory " + data_dir + " (is --data right?)"};
  if (!fs::is_directory(data_dir, ec))
    return status{errc::invalid_argument, data_dir + " is not a directory"};
  const auto log_dir = data_dir + "/log";
  if (!fs::exists(fs::path(log_dir) / "CURRENT", ec))
    return status{errc::not_found, "no event log in " + data_dir + " (" + log_dir
                                     + " holds no RocksDB database; is --data right?)"};
  auto out = std::make_unique<opened_log>();
  if (out->scratch.path().empty())
    return status{errc::io_error, "cannot create a scratch directory under "
                                    + std::filesystem::temp_directory_path().string()};
  store_options opts;
  opts.read_only = true;
  opts.secondary_dir = out->scratch.path();
  auto store = event_store::open(log_dir, opts);
  if (!store)
    return store.error();
  out->store = std::move(store).value();
  return out;
}

/// The progress bar on a terminal's stderr; nothing otherwise.
class progress_bar {
public:
  progress_bar(std::ostream& err, bool enabled) : err_(err), enabled_(enabled) {}
  ~progress_bar() { clear(); }
  progress_fn callback() {
    if (!enabled_)
      return {};
    return [this](std::string_view phase, uint64_t done, uint64_t total) { draw(phase, done, total); };
  }
  void clear() {
    if (enabled_ && drawn_) {
      err_ << '\r' << std::string(width_, ' ') << '\r' << std::flush;
      drawn_ = false;
    }
  }

private:
  void draw(std::string_view phase, uint64_t done, uint64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (phase != phase_) {
      phase_ = phase;
      started_ = now;
    } else if (now - last_ < std::chrono::milliseconds(100)) {
      return;
    }
    last_ = now;
    const auto line = progress_line(phase, done, total, std::chrono::duration<double>(now - started_).count());
    err_ << '\r' << line;
    if (line.size() < width_)
      err_ << std::string(width_ - line.size(), ' ');
    err_ << std::flush;
    width_ = std::max(width_, line.size());
    drawn_ = true;
  }

  std::ostream& err_;
  bool enabled_;
  bool drawn_ = false;
  size_t width_ = 0;
  std::string phase_;
  std::chrono::steady_clock::time_point started_{}, last_{};
};

int exit_code_of(const status& st) { return st.code() == errc::corrupt ? exit_damaged : exit_cannot; }

int fail(std::ostream& err, const std::string& command, const status& st) {
  err << "backline audit " << command << ": "
      << (st.code() == errc::corrupt ? "the log is damaged or was tampered with: " : "") << st.message() << "\n";
  return exit_code_of(st);
}

int verify(const request& r, opened_log& log, std::ostream& out, std::ostream& err, progress_bar& bar) {
  auto report = verify_log(*log.store, {}, bar.callback());
  bar.clear();
  if (!report)
    return fail(err, r.command, report.error());
  if (report->verified()) {
    out << "events   " << report->events << "\n";
    out << "head     position " << report->head_position << ", hash "
        << (report->head_hash.empty() ? "(none: the log is empty)" : report->head_hash) << "\n";
    out << "verified\n";
    return exit_ok;
  }
  const auto& p = *report->problem;
  out << "events   " << report->events << " verified before the problem, of " << report->head_position << "\n";
  out << "head     position " << report->head_position << ", hash "
      << (report->head_hash.empty() ? "(unreadable)" : report->head_hash) << "\n";
  if (p.position != 0)
    out << "NOT VERIFIED: first bad position " << p.position << ": " << p.what << "\n";
  else
    out << "NOT VERIFIED: " << p.what << "\n";
  return exit_damaged;
}

int replay(const request& r, opened_log& log, std::ostream& out, std::ostream& err, progress_bar& bar) {
  result<std::vector<timeline_entry>> entries = status{};
  if (!r.chat.empty())
    entries = chat_timeline(*log.store, r.chat);
  else if (!r.thread.empty())
    entries = thread_timeline(*log.store, r.thread);
  else if (!r.agent.empty())
    entries = agent_timeline(*log.store, r.agent, bar.callback());
  else
    entries = time_timeline(*log.store, r.from, r.to, bar.callback());
  bar.clear();
  if (!entries)
    return fail(err, r.command, entries.error());
  // Everything was read before anything is printed: a damaged record stops
  // the replay with nothing half-shown.
  for (const auto& t : *entries)
    out << (r.format == "jsonl" ? json::serialize(timeline_json(t)) : timeline_text(t)) << "\n";
  if (entries->empty())
    err << "backline audit replay: no events " << (r.agent.empty() ? "in that time range" : "of agent " + r.agent)
        << "\n";
  return exit_ok;
}

int export_to_file(const request& r, opened_log& log, std::ostream& out, std::ostream& err, progress_bar& bar) {
  // Written beside the target and renamed when whole: a failed export
  // leaves no file that could pass for one.
  const auto partial = r.out + ".partial";
  std::ofstream file(partial, std::ios::binary | std::ios::trunc);
  if (!file)
    return fail(err, r.command, {errc::io_error, "cannot write " + partial});
  std::vector<char> buffer(1 << 20);
  file.rdbuf()->pubsetbuf(buffer.data(), static_cast<std::streamsize>(buffer.size()));
  auto report = export_log(*log.store, r.from_position, file, bar.callback());
  bar.clear();
  file.close();
  std::error_code ec;
  if (!report) {
    std::filesystem::remove(partial, ec);
    return fail(err, r.command, report.error());
  }
  if (!file) {
    std::filesystem::remove(partial, ec);
    return fail(err, r.command, {errc::io_error, "cannot write " + partial});
  }
  std::filesystem::rename(partial, r.out, ec);
  if (ec) {
    std::filesystem::remove(partial, ec);
    return fail(err, r.command, {errc::io_error, "cannot rename " + partial + " to " + r.out});
  }
  out << "exported " << report->events << " events";
  if (report->events > 0)
    out << " (positions " << report->from_position << " to " << report->head_position << ")";
  out << " to " << r.out << "\n";
  out << "head     position " << report->head_position << ", hash "
      << (report->head_hash.empty() ? "(none: nothing exported)" : report->head_hash) << "\n";
  return exit_ok;
}

int rebuild(const request& r, opened_log& log, std::ostream& out, std::ostream& err, progress_bar& bar) {
  auto report = rebuild_and_compare(*log.store, bar.callback());
  bar.clear();
  if (!report)
    return fail(err, r.command, report.error());
  out << "replayed " << report->events << " events: " << report->chats << " chats, " << report->threads
      << " threads, " << report->users << " users\n";
  if (report->differences.empty()) {
    out << "no difference: the actors would load exactly the state the log replays to\n";
    return exit_ok;
  }
  out << report->differences.size() << " difference" << (report->differences.size() == 1 ? "" : "s")
      << " between the log replayed and what the actors would load:\n";
  const size_t shown = std::min<size_t>(report->differences.size(), 200);
  for (size_t i = 0; i < shown; ++i)
    out << "  " << report->differences[i] << "\n";
  if (shown < report->differences.size())
    out << "  … and " << report->differences.size() - shown << " more\n";
  return exit_damaged;
}

} // namespace

std::string progress_line(std::string_view phase, uint64_t done, uint64_t total, double seconds) {
  constexpr int width = 24;
  const double fraction = total == 0 ? 0.0 : std::min(1.0, static_cast<double>(done) / static_cast<double>(total));
  const int filled = static_cast<int>(fraction * width);
  std::string line(phase);
  line += " [" + std::string(static_cast<size_t>(filled), '#') + std::string(static_cast<size_t>(width - filled), '.')
          + "] ";
  char buf[160];
  const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
  std::snprintf(buf, sizeof buf, "%3d%%  %llu/%llu events  ", static_cast<int>(fraction * 100),
                static_cast<unsigned long long>(done), static_cast<unsigned long long>(total));
  line += buf;
  if (rate >= 1000)
    std::snprintf(buf, sizeof buf, "%.0fk events/s", rate / 1000);
  else
    std::snprintf(buf, sizeof buf, "%.0f events/s", rate);
  line += buf;
  if (rate > 0 && total > done) {
    const auto left = static_cast<unsigned long long>(static_cast<double>(total - done) / rate + 0.5);
    std::snprintf(buf, sizeof buf, "  %llum%02llus left", left / 60, left % 60);
    line += buf;
  }
  return line;
}

std::string help() {
  return "usage: backline audit <command> [options]\n"
         "\n"
         "Every audit command opens the event log read-only (a RocksDB secondary\n"
         "instance): it changes no byte of it and may run while the server runs.\n"
         "\n"
         "  verify  [--data DIR]\n"
         "      recomputes the hash chain, checks every stream's seqs and that the\n"
         "      global index and the streams agree; prints the events,\n"
         "      the head hash and \"verified\", or the first bad position and what is wrong\n"
         "  replay  (--chat ID | --thread ID | --agent ID | --from TIME --to TIME)\n"
         "          [--format text|jsonl] [--data DIR]\n"
         "      the timeline of what happened, in log order, with who did it; a chat\n"
         "      includes its threads and the chats that reopened it. TIME is UTC:\n"
         "      2026-11-25, 2026-11-25T13:00, 2026-11-25T13:00:05Z or …05.123Z\n"
         "  export  --out FILE [--from POSITION] [--data DIR]\n"
         "      JSON Lines of every event with its hash, and the chain head, for an\n"
         "      independent check (tools/verify_export.mjs)\n"
         "  rebuild [--data DIR]\n"
         "      replays every event into fresh state and compares it with what the\n"
         "      actors would load (statuses, unread counts, outbox); reports differences\n"
         "\n"
         "DIR defaults to $BACKLINE_DATA, else ./backline-data (the log is DIR/log).\n"
         "Exit codes: 0 verified / done / no difference; 1 the log is tampered or\n"
         "corrupt (rebuild: differences found); 2 the log cannot be read, or a bad\n"
         "request (usage, unknown id, inverted time range).\n"
         "A progress bar (events/s, time left) goes to stderr when it is a terminal.\n";
}

namespace {

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool err_is_tty,
        const std::function<const char*(const char*)>& getenv) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? err : out) << help();
    return args.empty() ? exit_cannot : exit_ok;
  }
  for (const auto& a : args)
    if (a == "--help" || a == "-h") {
      out << help();
      return exit_ok;
    }
  auto r = parse_request(args, getenv);
  if (!r) {
    err << "backline audit: " << r.error().message() << "\n(backline audit --help lists the commands)\n";
    return exit_cannot;
  }
  auto log = open_log(r->data_dir);
  if (!log)
    return fail(err, r->command, log.error().code() == errc::corrupt
                                   ? log.error()
                                   : status{log.error().code(), "cannot read the log: " + log.error().message()});
  progress_bar bar(err, err_is_tty);
  if (r->command == "verify")
    return verify(*r, **log, out, err, bar);
  if (r->command == "replay")
    return replay(*r, **log, out, err, bar);
  if (r->command == "export")
    return export_to_file(*r, **log, out, err, bar);
  return rebuild(*r, **log, out, err, bar);
}

} // namespace

int run_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err, bool err_is_tty,
                const std::function<const char*(const char*)>& getenv) {
  // Damaged input is handled as values everywhere; what is left (no memory,
  // a library failing) still ends with a message and exit code 2, not a crash.
  try {
    return run(args, out, err, err_is_tty, getenv);
  } catch (const std::exception& ex) {
    err << "backline audit: cannot go on: " << ex.what() << "\n";
  } catch (...) {
    err << "backline audit: cannot go on\n";
  }
  return exit_cannot;
}

} // namespace backline::audit

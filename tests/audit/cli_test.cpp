// `backline audit …` end to end: the real binary against logs written by a
// real `backline serve` (running, or stopped), damaged on purpose, read
// beside a writing server, and checked again by the independent script in
// tools/ on its export.

#include <fcntl.h>
#include <pty.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include "audit/scenario.hpp"
#include "persistence/keys.hpp"
#include "persistence/raw_writer.hpp"
#include "support/process.hpp"

namespace json = boost::json;
namespace fs = std::filesystem;
namespace keys = backline::persistence;
using namespace backline;
using namespace backline::testing;
using namespace std::chrono_literals;

namespace {

struct run_result {
  int code = -1;
  std::string out, err;
};

/// Runs a program with stdout and stderr to their own files (not a
/// terminal), waits at most 120 s.
run_result run(const std::vector<std::string>& argv, const temp_dir& dir) {
  static int n = 0;
  const auto out_file = dir.sub("out-" + std::to_string(++n));
  const auto err_file = dir.sub("err-" + std::to_string(n));
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execv(args[0], args.data());
    std::_Exit(127);
  }
  run_result r;
  const auto end = std::chrono::steady_clock::now() + 120s;
  while (std::chrono::steady_clock::now() < end) {
    int st = 0;
    if (::waitpid(pid, &st, WNOHANG) == pid) {
      r.code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  if (r.code == -1) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  r.out = read_file(out_file);
  r.err = read_file(err_file);
  return r;
}

run_result audit(const std::vector<std::string>& args, const temp_dir& dir) {
  std::vector<std::string> argv{backline_binary(), "audit"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, dir);
}

/// The independent check of an export: Node and tools/verify_export.mjs only.
run_result node_check(const std::string& file, const temp_dir& dir) {
  return run({"/usr/bin/env", "node", std::string(BACKLINE_SOURCE_DIR) + "/tools/verify_export.mjs", file}, dir);
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::string line;
  std::istringstream in(text);
  while (std::getline(in, line))
    out.push_back(line);
  return out;
}

/// "first bad position N" in a report, or 0.
uint64_t bad_position(const std::string& report) {
  std::smatch m;
  if (std::regex_search(report, m, std::regex("first bad position ([0-9]+)")))
    return std::stoull(m[1]);
  return 0;
}

std::string head_line(const std::string& report) {
  for (const auto& l : lines_of(report))
    if (l.rfind("head ", 0) == 0)
      return l;
  return {};
}

/// `backline serve` as a child process, with the local Slack fake as its
/// Slack (events pushed back, no poller).
struct served {
  temp_dir& dir;
  slack_workspace slack;
  std::unique_ptr<child_process> proc;
  int port = -1;

  explicit served(temp_dir& d) : dir(d) { start(); }
  ~served() { stop(); }
  void start() {
    const auto ready = dir.sub("ready");
    fs::remove(ready);
    proc = std::make_unique<child_process>(
      std::vector<std::string>{backline_binary(), "serve", "--listen", "127.0.0.1:0", "--data", data(), "--ready-file",
                               ready, "--http-threads", "16", "--log-requests", "off", "--slack-api-url",
                               slack.fake.base_url(), "--slack-inbound", "events",
                               // One writer posts as fast as it can: no per-caller limit.
                               "--rate-limit", "0"},
      dir.sub("server.log"),
      std::vector<std::string>{std::string("BACKLINE_ADMIN_TOKEN=") + audit_admin_token,
                               "SLACK_BOT_TOKEN=" + slack.fake.config().bot_token,
                               "SLACK_SIGNING_SECRET=" + slack.fake.config().signing_secret});
    port = wait_for_ready_file(ready, 30s);
    REQUIRE(port > 0);
    slack.push_events_to(port);
  }
  scenario_result run_scenario() {
    api_client client(port);
    return run_audit_scenario(client, slack.fake);
  }
  void stop() {
    if (!proc)
      return;
    proc->signal(SIGTERM);
    CHECK(proc->wait(30s) == 0);
    proc.reset();
  }
  std::string data() const { return dir.sub("data"); }
  std::string log() const { return dir.sub("data") + "/log"; }
};

/// Every file under dir with its bytes: to show that nothing changed.
std::map<std::string, std::string> snapshot_of(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::recursive_directory_iterator(dir))
    if (entry.is_regular_file())
      files[entry.path().string()] = read_file(entry.path().string());
  return files;
}

} // namespace

TEST_CASE("backline audit on a log written by backline serve: verify, replay, export, rebuild", "[audit]") {
  temp_dir dir("backline-audit-cli");
  served server(dir);
  const auto run_ = server.run_scenario();

  // While the server runs.
  auto verified = audit({"verify", "--data", server.data()}, dir);
  INFO(verified.err);
  REQUIRE(verified.code == 0);
  auto out = lines_of(verified.out);
  REQUIRE(out.size() == 3);
  CHECK(std::regex_match(out[0], std::regex("events   [0-9]+")));
  CHECK(std::regex_match(out[1], std::regex("head     position [0-9]+, hash [0-9a-f]{64}")));
  CHECK(out[2] == "verified");
  CHECK(verified.err.empty());  // stderr is not a terminal: no progress bar

  auto text = audit({"replay", "--data", server.data(), "--chat", run_.chat_id}, dir);
  INFO(text.err);
  REQUIRE(text.code == 0);
  auto lines = lines_of(text.out);
  REQUIRE(lines.size() == run_.chat_event_types.size());
  const std::vector<std::string> facts = {
    "by bot  chat " + run_.chat_id + " created for customer Dana (cust-1)",
    "by bot  customer cust-1 wrote in the chat: \"My refund is missing\"",
    "by bot  chat assigned to alice",
    "by alice  agent alice wrote in the chat: \"Let me check with finance\"",
    "by alice  internal thread " + run_.thread_id + " opened in Slack channel C0FINANCE",
    "by system  thread created in Slack channel C0FINANCE by User alice (alice)",
    "by slack  message ",
    "(U0ERIN), ts " + run_.reply_ts + ": \"Yes, on Monday\"",
    "by slack  Slack reply " + run_.reply_ts + " edited in Slack: \"Yes, on Monday 10:00\"",
    "by alice  User alice (alice) wrote to Slack",
    "by slack  message ",
    "by alice  thread read by alice",
    "(U0ERIN), ts " + run_.gone_ts + ": \"wrong thread, sorry\"",
    "by slack  Slack reply " + run_.gone_ts + " deleted in Slack",
    "by alice  chat transferred to bob (from alice)",
    "by bob  thread marked done by User bob (bob)",
    "by slack  message ",
    "by bob  chat resolved",
    "by bot  chat reopened as chat " + run_.successor_id,
    "by bot  chat " + run_.successor_id + " created for customer Dana (cust-1); it reopens chat " + run_.chat_id,
  };
  for (size_t i = 0; i < facts.size(); ++i) {
    INFO("line " << i << ": " << lines[i]);
    CHECK(lines[i].find(facts[i]) != std::string::npos);
  }

  auto jsonl = audit({"replay", "--data", server.data(), "--chat", run_.chat_id, "--format", "jsonl"}, dir);
  REQUIRE(jsonl.code == 0);
  std::vector<std::string> types;
  uint64_t last_position = 0;
  for (const auto& l : lines_of(jsonl.out)) {
    auto o = json::parse(l).as_object();
    types.emplace_back(o.at("type").as_string());
    CHECK(o.at("position").as_int64() > static_cast<int64_t>(last_position));
    last_position = static_cast<uint64_t>(o.at("position").as_int64());
  }
  CHECK(types == run_.chat_event_types);

  auto thread = audit({"replay", "--data", server.data(), "--thread", run_.thread_id}, dir);
  REQUIRE(thread.code == 0);
  CHECK(lines_of(thread.out).size() == 12);
  auto bob = audit({"replay", "--data", server.data(), "--agent", "bob", "--format", "jsonl"}, dir);
  REQUIRE(bob.code == 0);
  CHECK(lines_of(bob.out).size() == 3);
  auto today = audit({"replay", "--data", server.data(), "--from", "2000-01-01", "--to", "2999-12-31"}, dir);
  REQUIRE(today.code == 0);

  const auto file = dir.sub("export.jsonl");
  auto exported = audit({"export", "--data", server.data(), "--out", file}, dir);
  INFO(exported.err);
  REQUIRE(exported.code == 0);
  CHECK_THAT(exported.out, Catch::Contains("exported "));
  CHECK(lines_of(today.out).size() + 2 == lines_of(read_file(file)).size());  // header and footer
  auto checked = node_check(file, dir);
  INFO(checked.err);
  REQUIRE(checked.code == 0);
  CHECK(checked.out == verified.out);  // the same events, head and verdict

  auto rebuilt = audit({"rebuild", "--data", server.data()}, dir);
  INFO(rebuilt.out << rebuilt.err);
  REQUIRE(rebuilt.code == 0);
  CHECK_THAT(rebuilt.out, Catch::Contains("2 chats, 1 threads, 4 users"));
  CHECK_THAT(rebuilt.out, Catch::Contains("no difference"));

  // The export from a position: the script starts its chain there.
  auto tail = audit({"export", "--data", server.data(), "--out", dir.sub("tail.jsonl"), "--from", "10"}, dir);
  REQUIRE(tail.code == 0);
  auto tail_checked = node_check(dir.sub("tail.jsonl"), dir);
  CHECK(tail_checked.code == 0);
  CHECK(head_line(tail_checked.out) == head_line(verified.out));

  server.stop();
  auto after = audit({"verify", "--data", server.data()}, dir);
  CHECK(after.code == 0);
  CHECK(after.out == verified.out);
}

TEST_CASE("backline audit changes no byte of the data directory", "[audit]") {
  temp_dir dir("backline-audit-cli");
  served server(dir);
  const auto run_ = server.run_scenario();
  server.stop();
  const auto before = snapshot_of(server.data());
  REQUIRE(before.size() > 3);
  CHECK(audit({"verify", "--data", server.data()}, dir).code == 0);
  CHECK(audit({"replay", "--data", server.data(), "--chat", run_.chat_id}, dir).code == 0);
  CHECK(audit({"replay", "--data", server.data(), "--agent", "alice"}, dir).code == 0);
  CHECK(audit({"export", "--data", server.data(), "--out", dir.sub("x.jsonl")}, dir).code == 0);
  CHECK(audit({"rebuild", "--data", server.data()}, dir).code == 0);
  CHECK(audit({"replay", "--data", server.data(), "--chat", "ch-nope"}, dir).code == 2);
  const auto after = snapshot_of(server.data());
  CHECK(after.size() == before.size());
  for (const auto& [path, bytes] : before) {
    INFO(path);
    REQUIRE(after.count(path));
    CHECK(after.at(path) == bytes);
  }
}

TEST_CASE("backline audit verify runs while the server writes", "[audit]") {
  temp_dir dir("backline-audit-cli");
  served server(dir);
  const auto run_ = server.run_scenario();
  std::atomic<bool> stop{false};
  std::atomic<int> written{0}, failed{0};
  std::thread writer([&] {
    httplib::Client cli("127.0.0.1", server.port);
    httplib::Headers h{{"Authorization", "Bearer " + run_.bot}};
    const auto path = "/api/v1/chats/" + run_.successor_id + "/messages";
    while (!stop) {
      auto r = cli.Post(path.c_str(), h, R"({"from":"customer","text":"still there?"})", "application/json");
      if (r && r->status == 201)
        ++written;
      else
        ++failed;
    }
  });
  uint64_t last = 0;
  for (int round = 0; round < 4; ++round) {
    while (written < (round + 1) * 50)
      std::this_thread::sleep_for(5ms);
    auto v = audit({"verify", "--data", server.data()}, dir);
    INFO(v.out << v.err);
    CHECK(v.code == 0);
    CHECK_THAT(v.out, Catch::EndsWith("verified\n"));
    std::smatch m;
    REQUIRE(std::regex_search(v.out, m, std::regex("events   ([0-9]+)")));
    const auto events = std::stoull(m[1]);
    CHECK(events > last);
    last = events;
  }
  stop = true;
  writer.join();
  CHECK(failed == 0);
  server.stop();
  auto final_verify = audit({"verify", "--data", server.data()}, dir);
  CHECK(final_verify.code == 0);
  CHECK_THAT(final_verify.out, Catch::Contains("events   "));
}

TEST_CASE("tampered logs: verify and the independent check of the export name the same first bad position",
          "[audit]") {
  temp_dir dir("backline-audit-cli");
  {
    served server(dir);
    server.run_scenario();
  }
  const auto pristine = dir.sub("data");
  auto copy = [&](const std::string& name) {
    const auto to = dir.sub(name);
    fs::copy(pristine, to, fs::copy_options::recursive);
    return to;
  };
  // The key of the thread's 3rd record (its first Slack reply): the thread's
  // stream is found in alice's timeline.
  auto reply_key = [&](const std::string& data) -> std::string {
    std::string key;
    auto out = audit({"replay", "--data", data, "--agent", "alice", "--format", "jsonl"}, dir);
    for (const auto& l : lines_of(out.out)) {
      auto o = json::parse(l).as_object();
      if (o.at("type") == "thread_message_sent")
        key = keys::stream_key(std::string(o.at("stream").as_string()), 3);
    }
    REQUIRE_FALSE(key.empty());
    return key;
  };

  SECTION("a payload rewritten, its hash left: both name its position") {
    const auto data = copy("payload");
    const auto key = reply_key(data);
    auto stored = keys::raw_get_for_testing(data + "/log", key);
    REQUIRE(stored);
    auto e = decode_event(**stored);
    REQUIRE(e);
    e->payload = std::regex_replace(e->payload, std::regex("Yes, on Monday"), "No, never");
    REQUIRE(keys::raw_put_for_testing(data + "/log", key, encode_event(*e)));
    auto v = audit({"verify", "--data", data}, dir);
    CHECK(v.code == 1);
    CHECK(bad_position(v.out) == e->position);
    CHECK_THAT(v.out, Catch::Contains("NOT VERIFIED"));
    CHECK_THAT(v.out, Catch::Contains("does not match its contents"));
    const auto file = dir.sub("payload.jsonl");
    REQUIRE(audit({"export", "--data", data, "--out", file}, dir).code == 0);
    auto n = node_check(file, dir);
    CHECK(n.code == 1);
    CHECK(bad_position(n.out) == e->position);
  }
  SECTION("an event rewritten with its hash recomputed: both name the next position") {
    const auto data = copy("rehashed");
    const auto key = reply_key(data);
    auto stored = keys::raw_get_for_testing(data + "/log", key);
    REQUIRE(stored);
    auto e = decode_event(**stored);
    REQUIRE(e);
    e->payload = std::regex_replace(e->payload, std::regex("Yes, on Monday"), "No, never");
    e->hash = event_hash(*e);
    REQUIRE(keys::raw_put_for_testing(data + "/log", key, encode_event(*e)));
    auto v = audit({"verify", "--data", data}, dir);
    CHECK(v.code == 1);
    CHECK(bad_position(v.out) == e->position + 1);
    const auto file = dir.sub("rehashed.jsonl");
    REQUIRE(audit({"export", "--data", data, "--out", file}, dir).code == 0);
    auto n = node_check(file, dir);
    CHECK(n.code == 1);
    CHECK(bad_position(n.out) == e->position + 1);
  }
  SECTION("a record deleted: verify names it, export refuses and writes no file") {
    const auto data = copy("deleted");
    const auto key = reply_key(data);
    auto stored = keys::raw_get_for_testing(data + "/log", key);
    REQUIRE(stored);
    const auto position = decode_event(**stored)->position;
    REQUIRE(keys::raw_delete_for_testing(data + "/log", key));
    auto v = audit({"verify", "--data", data}, dir);
    CHECK(v.code == 1);
    CHECK(bad_position(v.out) == position);
    CHECK_THAT(v.out, Catch::Contains("which is not stored"));
    const auto file = dir.sub("deleted.jsonl");
    auto x = audit({"export", "--data", data, "--out", file}, dir);
    CHECK(x.code == 1);
    CHECK_THAT(x.err, Catch::Contains("position " + std::to_string(position)));
    CHECK_FALSE(fs::exists(file));
    CHECK_FALSE(fs::exists(file + ".partial"));
    auto r = audit({"rebuild", "--data", data}, dir);
    CHECK(r.code == 1);
    CHECK_THAT(r.err, Catch::Contains("position " + std::to_string(position)));
  }
  SECTION("a record cut short: every command says where, exit code 1") {
    const auto data = copy("cut");
    const auto key = reply_key(data);
    auto stored = keys::raw_get_for_testing(data + "/log", key);
    REQUIRE(stored);
    const auto position = decode_event(**stored)->position;
    REQUIRE(keys::raw_put_for_testing(data + "/log", key, stored->value().substr(0, stored->value().size() / 2)));
    auto v = audit({"verify", "--data", data}, dir);
    CHECK(v.code == 1);
    CHECK(bad_position(v.out) == position);
    CHECK_THAT(v.out, Catch::Contains("is damaged"));
    auto chat = lines_of(audit({"replay", "--data", pristine, "--agent", "alice", "--format", "jsonl"}, dir).out);
    const auto chat_id = std::string(json::parse(chat.front()).at("chat_id").as_string());
    auto r = audit({"replay", "--data", data, "--chat", chat_id}, dir);
    CHECK(r.code == 1);
    CHECK(r.out.empty());  // nothing half-shown
    CHECK_THAT(r.err, Catch::Contains("damaged or was tampered with"));
    CHECK_THAT(r.err, Catch::Contains("s|thread-"));
    CHECK(audit({"rebuild", "--data", data}, dir).code == 1);
    CHECK(audit({"export", "--data", data, "--out", dir.sub("cut.jsonl")}, dir).code == 1);
  }
  SECTION("a byte flipped in the write-ahead log: RocksDB's checksum catches it") {
    const auto data = copy("wal");
    {
      // The server's clean shutdown flushed its memtables, leaving the
      // write-ahead log empty: an event appended since is in it alone.
      auto store = event_store::open(data + "/log");
      REQUIRE(store);
      append_request req;
      req.stream = "chat-wal";
      req.events.push_back(new_event{"chat_message_added", "tester",
                                     json::serialize(json::object{{"text", std::string(4000, 'x')}})});
      REQUIRE((*store)->append(std::move(req)));
    }
    std::string wal;  // the largest (the others are empty)
    for (const auto& entry : fs::directory_iterator(data + "/log"))
      if (entry.path().extension() == ".log" && (wal.empty() || fs::file_size(entry.path()) > fs::file_size(wal)))
        wal = entry.path().string();
    REQUIRE_FALSE(wal.empty());
    auto bytes = read_file(wal);
    REQUIRE(bytes.size() > 2000);
    bytes[bytes.size() / 2] ^= 0x20;
    std::ofstream(wal, std::ios::binary | std::ios::trunc) << bytes;
    auto v = audit({"verify", "--data", data}, dir);
    CHECK(v.code == 1);
    CHECK_THAT(v.err, Catch::Contains("Corruption"));
    CHECK_THAT(v.err, Catch::Contains(data + "/log"));
    CHECK(v.out.find("verified") == std::string::npos);
  }
}

TEST_CASE("backline audit: bad input gets a clear message naming what and where, and exit code 2", "[audit]") {
  temp_dir dir("backline-audit-cli");
  {
    served server(dir);
    server.run_scenario();
  }
  const auto data = dir.sub("data");
  struct bad_case {
    std::vector<std::string> args;
    std::string message;
  };
  fs::create_directories(dir.sub("empty"));
  std::ofstream(dir.sub("a-file")) << "not a directory";
  const std::vector<bad_case> cases = {
    {{"verify", "--data", dir.sub("missing")}, "no data directory " + dir.sub("missing")},
    {{"verify", "--data", dir.sub("empty")}, "no event log in " + dir.sub("empty")},
    {{"verify", "--data", dir.sub("a-file")}, dir.sub("a-file") + " is not a directory"},
    {{"replay", "--data", data, "--chat", "ch-nope"}, "no chat ch-nope in the log"},
    {{"replay", "--data", data, "--thread", "ch-nope.t1"}, "no thread ch-nope.t1 in the log"},
    {{"replay", "--data", data, "--agent", "carol"}, "no user carol in the log"},
    {{"replay", "--data", data, "--from", "2026-11-25T14:00", "--to", "2026-11-25T13:00"}, "the time range is inverted"},
    {{"replay", "--data", data, "--from", "yesterday"}, "--from: a UTC time"},
    {{"replay", "--data", data}, "replay needs exactly one of"},
    {{"replay", "--data", data, "--chat", "a", "--agent", "b"}, "replay needs exactly one of"},
    {{"replay", "--data", data, "--chat", "a", "--format", "xml"}, "--format: text or jsonl"},
    {{"replay", "--data", data, "--out", "x"}, "unknown option '--out' for audit replay"},
    {{"export", "--data", data}, "export needs --out FILE"},
    {{"export", "--data", data, "--out", dir.sub("e.jsonl"), "--from", "0"}, "--from: a position"},
    {{"export", "--data", data, "--out", dir.sub("e.jsonl"), "--from", "99999"}, "is past the log's head"},
    {{"export", "--data", data, "--out", dir.sub("no-such-dir") + "/e.jsonl"}, "cannot write"},
    {{"verify", "--data"}, "--data: missing its value"},
    {{"bless", "--data", data}, "unknown audit command 'bless'"},
  };
  for (const auto& c : cases) {
    auto r = audit(c.args, dir);
    INFO(c.args[0] << " " << (c.args.size() > 2 ? c.args[2] : "") << ": " << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains(c.message));
    CHECK(r.out.find("verified") == std::string::npos);
  }
  auto help = audit({"--help"}, dir);
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("backline audit <command>"));
  CHECK(audit({}, dir).code == 2);
}

TEST_CASE("backline audit verify draws its progress bar only on a terminal", "[audit]") {
  temp_dir dir("backline-audit-cli");
  {
    served server(dir);
    server.run_scenario();
  }
  // Not a terminal: nothing on stderr.
  auto plain = audit({"verify", "--data", dir.sub("data")}, dir);
  CHECK(plain.code == 0);
  CHECK(plain.err.empty());
  // A terminal (a pseudo-terminal) for stderr: the bar, with a rate.
  int master = -1, slave = -1;
  REQUIRE(::openpty(&master, &slave, nullptr, nullptr, nullptr) == 0);
  const auto out_file = dir.sub("tty-out");
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(master);
    int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(slave, 2);
    const auto bin = backline_binary();
    const auto data = dir.sub("data");
    ::execl(bin.c_str(), bin.c_str(), "audit", "verify", "--data", data.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  ::close(slave);
  std::string tty;
  char buf[4096];
  while (true) {
    auto n = ::read(master, buf, sizeof buf);
    if (n <= 0)
      break;  // EIO once the child has exited
    tty.append(buf, static_cast<size_t>(n));
  }
  ::close(master);
  int st = 0;
  ::waitpid(pid, &st, 0);
  CHECK(WEXITSTATUS(st) == 0);
  CHECK_THAT(tty, Catch::Contains("events/s"));
  CHECK_THAT(tty, Catch::Contains("\r"));
  CHECK_THAT(read_file(out_file), Catch::EndsWith("verified\n"));
  CHECK(read_file(out_file).find("events/s") == std::string::npos);
}

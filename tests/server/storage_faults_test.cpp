// Storage faults end to end, on the real `backline serve`:
// - a full disk (a small tmpfs this test mounts): writes answer 503
//   storage_full with one log line for the episode, reads keep working,
//   nothing refused is in the log, and once space is freed writes are
//   accepted again without a restart;
// - a damaged database: the server refuses to start, says what is wrong and
//   what to run, and changes nothing.
//
// Mounting needs root (CI runs as root); elsewhere the full-disk test says so
// and skips.

#include <boost/json.hpp>
#include <httplib.h>
#include <rocksdb/db.h>

#include <catch2/catch.hpp>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "backline/server.hpp"
#include "support/api_answer.hpp"
#include "support/process.hpp"
#include "support/small_tmpfs.hpp"
#include "support/temp_dir.hpp"

namespace json = boost::json;
namespace fs = std::filesystem;
using namespace backline;
using namespace backline::testing;
using namespace std::chrono_literals;

namespace {

struct api {
  int port = 0;
  answer get(const std::string& path, const std::string& token) const {
    httplib::Client cli("127.0.0.1", port);
    cli.set_read_timeout(20, 0);
    return answer_of(cli.Get(path.c_str(), {{"Authorization", "Bearer " + token}}));
  }
  answer post(const std::string& path, const std::string& token, const json::object& body) const {
    httplib::Client cli("127.0.0.1", port);
    cli.set_read_timeout(20, 0);
    return answer_of(
      cli.Post(path.c_str(), {{"Authorization", "Bearer " + token}}, json::serialize(body), "application/json"));
  }
  answer post_files(const std::string& path, const std::string& token,
                    const httplib::MultipartFormDataItems& items) const {
    httplib::Client cli("127.0.0.1", port);
    cli.set_read_timeout(20, 0);
    return answer_of(cli.Post(path.c_str(), {{"Authorization", "Bearer " + token}}, items));
  }
};

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size()))
    ++n;
  return n;
}

struct run_result {
  int code = -1;
  std::string output;
};

run_result run_backline(const std::vector<std::string>& args, const temp_dir& dir, std::chrono::seconds limit = 60s) {
  static int n = 0;
  auto out = dir.sub("run-" + std::to_string(++n) + ".txt");
  std::vector<std::string> argv{backline_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  child_process proc(argv, out);
  run_result r;
  r.code = proc.wait(limit);
  r.output = read_file(out);
  return r;
}

} // namespace

TEST_CASE("a full disk: writes answer 503 storage_full, nothing refused is stored, freeing space resumes writes",
          "[storage]") {
  temp_dir dir("backline-full");
  small_tmpfs disk(dir.sub("disk"), "8m");
  if (!disk.mounted()) {
    WARN("SKIPPED: cannot mount a tmpfs at " << disk.path() << " (" << disk.error()
                                             << "); this test needs root, as in CI");
    return;
  }
  const std::string data = disk.path() + "/data";
  const std::string admin = "admin-token-full-disk";
  const std::string log_file = dir.sub("serve.log");
  child_process proc({backline_binary(), "serve", "--listen", "127.0.0.1:0", "--data", data, "--ready-file",
                      dir.sub("ready"), "--http-threads", "8", "--log-requests", "off"},
                     log_file, {"BACKLINE_ADMIN_TOKEN=" + admin});
  api a{wait_for_ready_file(dir.sub("ready"), 30s)};
  REQUIRE(a.port > 0);
  struct show_log {
    std::string file;
    ~show_log() {
      if (std::uncaught_exceptions() > 0)
        std::cerr << "the server's output:\n" << read_file(file) << "\n";
    }
  } show{log_file};

  auto new_user = [&](const std::string& id, const std::string& role) {
    auto u = a.post("/api/v1/users", admin, {{"id", id}, {"name", id}, {"role", role}, {"inbox_access", true}});
    REQUIRE(u.status == 201);
    return u.get("token");
  };
  const auto bot = new_user("bot", "bot");
  const auto agent = new_user("alice", "agent");
  auto new_chat = [&](const std::string& customer) {
    return a.post("/api/v1/chats", bot, {{"customer", {{"id", customer}, {"name", customer}}}, {"text", "hello"}});
  };
  auto chat = new_chat("cust-0");
  REQUIRE(chat.status == 201);
  const auto chat_id = chat.get("id");
  REQUIRE(a.post("/api/v1/chats/" + chat_id + "/assign", bot, {{"agent_id", "alice"}}).status == 200);
  auto thread = a.post("/api/v1/chats/" + chat_id + "/threads", agent, {{"channel_id", "C0FINANCE"}, {"text", "q"}});
  REQUIRE(thread.status == 201);
  const auto thread_id = thread.get("id");
  const auto messages_path = "/api/v1/threads/" + thread_id + "/messages";

  // The disk nearly full: a filler file takes all but what the writes below use up.
  const std::string filler = disk.path() + "/filler";
  disk.fill_leaving(filler, 512 * 1024);
  std::set<std::string> acknowledged, refused;
  std::set<std::string> acknowledged_files;
  const std::string padding(8 * 1024, 'x');
  answer first_refusal;
  for (int i = 0; i < 400 && refused.size() < 5; ++i) {
    const auto text = "message " + std::to_string(i) + " " + padding;
    answer r;
    if (i % 10 == 9) {  // now and then a message with a file
      r = a.post_files(messages_path, agent,
                       {{"text", text, "", ""}, {"files", std::string(16 * 1024, 'f'), "f.bin", "application/octet-stream"}});
    } else {
      r = a.post(messages_path, agent, {{"text", text}});
    }
    if (r.status == 201) {
      acknowledged.insert(text);
      if (auto* files = r.body.as_object().if_contains("files"))
        for (const auto& f : files->as_array())
          acknowledged_files.insert(std::string(f.at("id").as_string()));
      continue;
    }
    INFO("status " << r.status << ": " << json::serialize(r.body));
    REQUIRE(r.status == 503);
    CHECK(r.error_code() == "storage_full");
    CHECK_THAT(r.error_message(), Catch::Contains("disk is full"));
    if (refused.empty())
      first_refusal = r;
    refused.insert(text);
  }
  INFO("acknowledged " << acknowledged.size() << ", refused " << refused.size());
  REQUIRE(refused.size() == 5);
  REQUIRE(acknowledged.size() > 10);  // the disk filled up under the writes, not before them

  // Every kind of write is refused while full, in words; reads keep working.
  auto refused_chat = new_chat("cust-refused");
  CHECK(refused_chat.status == 503);
  CHECK(refused_chat.error_code() == "storage_full");
  auto refused_thread = a.post("/api/v1/chats/" + chat_id + "/threads", agent,
                               {{"channel_id", "C0FINANCE"}, {"text", "refused thread"}});
  CHECK(refused_thread.status == 503);
  CHECK(refused_thread.error_code() == "storage_full");
  auto refused_upload = a.post_files(messages_path, agent,
                                     {{"text", "refused upload", "", ""},
                                      {"files", std::string(64 * 1024, 'u'), "u.bin", "application/octet-stream"}});
  CHECK(refused_upload.status == 503);
  CHECK(refused_upload.error_code() == "storage_full");
  refused.insert("refused upload");
  CHECK(a.get(messages_path, agent).status == 200);
  CHECK(a.get("/api/v1/chats/" + chat_id, agent).status == 200);
  {
    httplib::Client cli("127.0.0.1", a.port);
    auto health = cli.Get("/healthz");
    REQUIRE(health);
    CHECK(health->status == 503);
    CHECK_THAT(health->body, Catch::Contains("space"));
  }
  CHECK(count_of(read_file(log_file), "journal: disk full at " + data + "/log: writes refused until space is freed")
        == 1);

  // Space freed: writes are accepted again, without a restart.
  fs::remove(filler);
  const auto freed_at = std::chrono::steady_clock::now();
  answer after;
  for (auto end = std::chrono::steady_clock::now() + 20s; std::chrono::steady_clock::now() < end;) {
    after = a.post(messages_path, agent, {{"text", "after the disk was freed"}});
    if (after.status != 503)
      break;
    std::this_thread::sleep_for(100ms);
  }
  REQUIRE(after.status == 201);
  const auto resumed_ms =
    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - freed_at).count();
  acknowledged.insert("after the disk was freed");
  CHECK(new_chat("cust-after").status == 201);
  auto log = read_file(log_file);
  CHECK(count_of(log, "journal: disk full at") == 1);
  CHECK_THAT(log, Catch::Contains("is writable again"));

  // Acknowledged writes are in the log exactly once, refused ones are not.
  auto listed = a.get(messages_path, agent);
  REQUIRE(listed.status == 200);
  std::map<std::string, int> seen;
  for (const auto& m : listed.body.at("messages").as_array())
    seen[std::string(m.at("text").as_string())] += 1;
  size_t lost = 0, duplicated = 0, refused_but_stored = 0;
  for (const auto& text : acknowledged) {
    INFO(text.substr(0, 12));
    CHECK(seen[text] == 1);
    lost += seen[text] == 0 ? 1 : 0;
    duplicated += seen[text] > 1 ? 1 : 0;
  }
  for (const auto& text : refused) {
    INFO(text.substr(0, 12));
    CHECK(seen.count(text) == 0);
    refused_but_stored += seen.count(text);
  }
  std::cout << "full disk: " << acknowledged.size() << " acknowledged messages (" << acknowledged_files.size()
            << " files), " << refused.size() << " messages and a chat and a thread refused with 503 storage_full; "
            << "lost " << lost << ", duplicated " << duplicated << ", refused but stored " << refused_but_stored
            << "; writes accepted again " << resumed_ms << " ms after space was freed, no restart\n";
  auto chats = a.get("/api/v1/chats?view=active", admin);
  REQUIRE(chats.status == 200);
  CHECK_THAT(json::serialize(chats.body), !Catch::Contains("cust-refused") && Catch::Contains("cust-after"));
  // No stored file but those acknowledged messages name, and no half-written one.
  std::set<std::string> stored_files;
  for (const auto& entry : fs::directory_iterator(data + "/files")) {
    const auto name = entry.path().filename().string();
    if (!entry.is_regular_file())
      continue;
    CHECK(name.front() != '.');  // a temporary left behind
    if (entry.path().extension() != ".meta")
      stored_files.insert(name);
  }
  CHECK(stored_files == acknowledged_files);

  proc.signal(SIGTERM);
  REQUIRE(proc.wait(30s) == 0);
  auto verified = run_backline({"audit", "verify", "--data", data}, dir);
  INFO(verified.output);
  CHECK(verified.code == 0);
  CHECK_THAT(verified.output, Catch::Contains("verified"));
}

namespace {

/// A data directory with a few events written by a short run of the server.
void short_run(const std::string& data) {
  server_config cfg;
  cfg.listen_port = 0;
  cfg.data_dir = data;
  cfg.http_threads = 4;
  cfg.admin_token = "admin-token-short-run";
  cfg.log_requests = false;
  std::ostringstream log;
  auto srv = server::start(cfg, log);
  REQUIRE(srv);
  api a{(*srv)->port()};
  for (int i = 0; i < 20; ++i)
    REQUIRE(a.post("/api/v1/users", cfg.admin_token,
                   {{"id", "agent" + std::to_string(i)}, {"name", "A"}, {"role", "agent"}, {"inbox_access", true}})
              .status == 201);
  (*srv)->stop();
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void overwrite(const std::string& path, size_t offset, const std::string& bytes) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  REQUIRE(f);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string first_file(const std::string& dir, const std::string& prefix, const std::string& extension) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    auto name = entry.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && (extension.empty() || entry.path().extension() == extension))
      return entry.path().string();
  }
  FAIL("no " << prefix << "*" << extension << " in " << dir);
  return {};
}

/// The files of a directory with their bytes (RocksDB's own info log aside);
/// only the table files when `tables_only`.
std::map<std::string, std::string> snapshot_of(const std::string& dir, bool tables_only) {
  std::map<std::string, std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const auto name = entry.path().filename().string();
    if (!entry.is_regular_file() || name == "LOG" || name.rfind("LOG.old", 0) == 0)
      continue;
    if (tables_only && entry.path().extension() != ".sst")
      continue;
    out[name] = file_bytes(entry.path().string());
  }
  return out;
}

} // namespace

TEST_CASE("a damaged database: backline serve refuses to start, says what is wrong and what to run, repairs nothing",
          "[storage]") {
  struct damage {
    const char* what;
    std::function<void(const std::string& log_dir)> apply;
    const char* rocksdb_says;
    bool opens;  // RocksDB opens it (the damage is found when the server reads the log)
  };
  const std::vector<damage> damages{
    {"CURRENT garbled",
     [](const std::string& log_dir) {
       std::ofstream(log_dir + "/CURRENT", std::ios::trunc) << "MANIFEST-garbage";  // no newline, no such file
     },
     "Corruption", false},
    {"MANIFEST garbled",
     [](const std::string& log_dir) {
       auto manifest = first_file(log_dir, "MANIFEST-", "");
       overwrite(manifest, 0, std::string(64, '\x5a'));
     },
     "Corruption", false},
    {"CURRENT deleted",
     [](const std::string& log_dir) { fs::remove(log_dir + "/CURRENT"); },
     "CURRENT file is missing", false},
    {"a table file's block corrupted",
     [](const std::string& log_dir) {
       {
         // Move what the short run wrote from the write-ahead log into a table file.
         rocksdb::DB* raw = nullptr;
         rocksdb::Options o;
         REQUIRE(rocksdb::DB::Open(o, log_dir, &raw).ok());
         std::unique_ptr<rocksdb::DB> db(raw);
         REQUIRE(db->Flush(rocksdb::FlushOptions()).ok());
         REQUIRE(db->Close().ok());
       }
       overwrite(first_file(log_dir, "", ".sst"), 100, std::string(32, '\x5a'));
     },
     "Corruption", true},
    {"a table file missing",
     [](const std::string& log_dir) {
       {
         rocksdb::DB* raw = nullptr;
         REQUIRE(rocksdb::DB::Open(rocksdb::Options(), log_dir, &raw).ok());
         std::unique_ptr<rocksdb::DB> db(raw);
         REQUIRE(db->Flush(rocksdb::FlushOptions()).ok());
         REQUIRE(db->Close().ok());
       }
       fs::remove(first_file(log_dir, "", ".sst"));
     },
     "No such file or directory", false},
  };
  for (const auto& d : damages) {
    DYNAMIC_SECTION(d.what) {
      temp_dir dir("backline-damaged");
      const auto data = dir.sub("data");
      short_run(data);
      d.apply(data + "/log");
      // Where RocksDB opens the database, it writes its own bookkeeping
      // (a new MANIFEST and write-ahead log); the damaged table stays as it is.
      auto before = snapshot_of(data + "/log", d.opens);
      auto r = run_backline({"serve", "--listen", "127.0.0.1:0", "--data", data, "--ready-file", dir.sub("ready")},
                            dir, 30s);
      INFO(r.output);
      CHECK(r.code != 0);
      CHECK(r.code != -1);  // it exited (did not keep running)
      CHECK_FALSE(fs::exists(dir.sub("ready")));
      CHECK_THAT(r.output, Catch::Contains(data + "/log"));
      CHECK_THAT(r.output, Catch::Contains("damaged"));
      CHECK_THAT(r.output, Catch::Contains(d.rocksdb_says));
      CHECK_THAT(r.output, Catch::Contains("backline audit verify --data " + data));
      CHECK(snapshot_of(data + "/log", d.opens) == before);  // nothing repaired
    }
  }
}

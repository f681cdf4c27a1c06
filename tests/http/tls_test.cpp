// HTTPS in-process (--tls-cert / --tls-key), with a certificate each test
// makes with the openssl command-line tool: API calls over TLS, plain HTTP
// on the HTTPS port refused cleanly, certificates and keys that do not load
// refused at start naming the file, and clients that never finish their
// handshake dropped by the read timeout without holding the others up.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <httplib.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "backline/config.hpp"
#include "backline/server.hpp"
#include "support/process.hpp"
#include "support/raw_client.hpp"
#include "support/temp_dir.hpp"

namespace json = boost::json;
using namespace backline;
using namespace backline::testing;
using namespace std::chrono_literals;

namespace {

// A self-signed certificate for 127.0.0.1 and its key, in `dir`.
struct test_certificate {
  std::string cert, key;
};

test_certificate make_certificate(const temp_dir& dir, const std::string& name = "server") {
  test_certificate c{dir.sub(name + "-cert.pem"), dir.sub(name + "-key.pem")};
  std::string cmd = "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2"
                    " -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
                    " -keyout '" + c.key + "' -out '" + c.cert + "' > '" + dir.sub(name + "-openssl.log") + "' 2>&1";
  REQUIRE(std::system(cmd.c_str()) == 0);
  return c;
}

json::value parse(const std::string& body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  return ec ? json::value{} : v;
}

struct tls_fixture {
  temp_dir dir;
  test_certificate cert = make_certificate(dir);
  std::ostringstream progress;
  std::unique_ptr<server> srv;
  std::string admin = "admin-token-for-tls-tests";

  explicit tls_fixture(size_t threads = 8, uint32_t read_timeout_s = 10) {
    server_config cfg;
    cfg.listen_port = 0;
    cfg.data_dir = dir.sub("data");
    cfg.http_threads = threads;
    cfg.read_timeout_s = read_timeout_s;
    cfg.admin_token = admin;
    cfg.log_requests = false;
    cfg.tls_cert = cert.cert;
    cfg.tls_key = cert.key;
    auto s = server::start(cfg, progress);
    REQUIRE(s);
    srv = std::move(s.value());
  }
  ~tls_fixture() {
    if (srv)
      srv->stop();
  }
  // A client that checks the server's certificate against the test's own.
  std::unique_ptr<httplib::SSLClient> client() const {
    auto cli = std::make_unique<httplib::SSLClient>("127.0.0.1", srv->port());
    cli->set_ca_cert_path(cert.cert.c_str());
    cli->enable_server_certificate_verification(true);
    cli->set_connection_timeout(5, 0);
    cli->set_read_timeout(5, 0);
    return cli;
  }
};

} // namespace

TEST_CASE("tls: the API answers over HTTPS with the test's certificate and says https where it listens") {
  tls_fixture f;
  CHECK_THAT(f.progress.str(), Catch::Contains("listening on https://127.0.0.1:"));
  auto cli = f.client();
  auto health = cli->Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  // An API call and its effect, on one keep-alive connection.
  auto made = cli->Post("/api/v1/users", {{"Authorization", "Bearer " + f.admin}},
                        R"({"id":"tls-agent","name":"TLS Agent","role":"agent"})", "application/json");
  REQUIRE(made);
  CHECK(made->status == 201);
  auto token = std::string(parse(made->body).as_object().at("token").as_string());
  auto me = cli->Get("/api/v1/me", {{"Authorization", "Bearer " + token}});
  REQUIRE(me);
  CHECK(me->status == 200);
  CHECK_THAT(me->body, Catch::Contains("tls-agent"));
  // A larger answer than one TLS record (16 KiB): the page's files.
  auto page = cli->Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->body.size() > 0);
}

TEST_CASE("tls: plain HTTP to the HTTPS port fails cleanly and the server keeps serving") {
  tls_fixture f;
  httplib::Client plain("127.0.0.1", f.srv->port());
  plain.set_read_timeout(5, 0);
  auto r = plain.Get("/healthz");
  // Told in plain HTTP to use https (or, at worst, a closed connection).
  if (r) {
    CHECK(r->status == 400);
    CHECK_THAT(r->body, Catch::Contains("https_required"));
  }
  // Garbage that is not HTTP either.
  {
    raw_client junk(f.srv->port());
    REQUIRE(junk.send(std::string(300, '\x01')));
    CHECK(junk.closed_within(5s));
  }
  auto cli = f.client();
  auto health = cli->Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
}

TEST_CASE("tls: a client that never finishes its handshake is dropped by the read timeout and holds no one up") {
  tls_fixture f(/*threads=*/4, /*read_timeout_s=*/1);
  auto t0 = std::chrono::steady_clock::now();
  raw_client silent(f.srv->port());       // connects, says nothing
  raw_client half(f.srv->port());         // starts a ClientHello, stops
  REQUIRE(half.send(std::string("\x16\x03\x01\x00\xc8\x01", 6)));
  // Meanwhile others are served.
  auto cli = f.client();
  auto health = cli->Get("/healthz");
  REQUIRE(health);
  CHECK(health->status == 200);
  // Dropped by the 1 s read timeout; the bounds leave room for a slow machine.
  CHECK(silent.closed_within(15s));
  CHECK(half.closed_within(15s));
  CHECK(std::chrono::steady_clock::now() - t0 < 20s);
  auto again = f.client()->Get("/healthz");
  REQUIRE(again);
  CHECK(again->status == 200);
  auto metrics = f.client()->Get("/metrics");
  REQUIRE(metrics);
  CHECK_THAT(metrics->body, Catch::Contains("\nbackline_http_read_timeouts_total 2\n"));
}

TEST_CASE("tls: a certificate or key that does not load or does not match refuses to start, naming the file") {
  temp_dir dir;
  auto good = make_certificate(dir);
  auto other = make_certificate(dir, "other");
  std::string garbage = dir.sub("garbage.pem");
  std::ofstream(garbage) << "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n";

  auto start_with = [&](const std::string& cert, const std::string& key) {
    server_config cfg;
    cfg.listen_port = 0;
    cfg.data_dir = dir.sub("data");
    cfg.http_threads = 2;
    cfg.tls_cert = cert;
    cfg.tls_key = key;
    std::ostringstream progress;
    return server::start(cfg, progress);
  };
  SECTION("a key that is not a key") {
    auto s = start_with(good.cert, garbage);
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error().message(), Catch::Contains("TLS key " + garbage));
  }
  SECTION("a certificate that is not a certificate") {
    auto s = start_with(garbage, good.key);
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error().message(), Catch::Contains("TLS certificate " + garbage));
  }
  SECTION("a key of another certificate") {
    auto s = start_with(good.cert, other.key);
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error().message(), Catch::Contains("does not match"));
    CHECK_THAT(s.error().message(), Catch::Contains(other.key));
  }
  SECTION("a file that is not there") {
    auto s = start_with(good.cert, dir.sub("missing-key.pem"));
    REQUIRE_FALSE(s);
    CHECK_THAT(s.error().message(), Catch::Contains(dir.sub("missing-key.pem")));
  }
  SECTION("backline serve exits non-zero with the message; one of the two alone is a configuration error") {
    child_process bad({backline_binary(), "serve", "--listen", "127.0.0.1:0", "--data", dir.sub("data"),
                       "--tls-cert", good.cert, "--tls-key", garbage},
                      dir.sub("bad.log"));
    CHECK(bad.wait(20s) == 1);
    CHECK_THAT(read_file(dir.sub("bad.log")), Catch::Contains("TLS key " + garbage));
    child_process alone({backline_binary(), "serve", "--listen", "127.0.0.1:0", "--data", dir.sub("data"),
                         "--tls-cert", good.cert},
                        dir.sub("alone.log"));
    CHECK(alone.wait(20s) == 2);
    CHECK_THAT(read_file(dir.sub("alone.log")), Catch::Contains("--tls-key"));
  }
}

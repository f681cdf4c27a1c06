#include "backline/server.hpp"

#include <boost/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "backline/caf_scheduler.hpp"
#include "backline/directory_view.hpp"
#include "backline/file_store.hpp"
#include "backline/inbox.hpp"
#include "backline/journal.hpp"
#include "http/api_routes.hpp"
#include "http/front.hpp"
#include "http/http_server.hpp"
#include "http/slack_events.hpp"
#include "http/web_assets.hpp"
#include "slack/fake_slack.hpp"

namespace backline {

struct server::impl {
  server_config cfg;
  std::shared_ptr<event_store> store;
  caf::actor_system_config caf_cfg;
  std::unique_ptr<caf::actor_system> sys;
  journal_actor journal;
  slack_port_actor slack;
  notifications_actor notifications;
  directory_actor directory;
  poller_actor poller;  // none with --slack-inbound events
  users_actor users;
  inbox::view_keeper_actor view_keeper;  // keeps the directory view close behind the log
  std::shared_ptr<users_view> users_table = std::make_shared<users_view>();
  std::unique_ptr<slack::fake_slack> sandbox;  // the simulated workspace, without a Slack token
  std::unique_ptr<http::http_server> http;
  std::thread http_thread;
  int port = 0;
  bool stopped = false;
};

namespace {

http::http_settings http_settings_of(const server_config& cfg) {
  http::http_settings s;
  s.threads = cfg.http_threads;
  s.max_body_bytes = cfg.max_body_bytes;
  s.read_timeout_s = cfg.read_timeout_s;
  s.write_timeout_s = cfg.read_timeout_s;
  s.keep_alive_timeout_s = cfg.keep_alive_timeout_s;
  s.keep_alive_max = cfg.keep_alive_max;
  s.listen_backlog = cfg.listen_backlog;
  s.max_in_flight = cfg.max_in_flight;
  s.log_requests = cfg.log_requests;
  s.request_log = cfg.request_log;
  s.rate_limit_per_s = cfg.rate_limit;
  s.rate_burst = cfg.rate_burst;
  s.max_waiting_connections = cfg.max_waiting_connections;
  s.tls_cert_file = cfg.tls_cert;
  s.tls_key_file = cfg.tls_key;
  return s;
}

void send_json(httplib::Response& res, int status_code, const boost::json::value& body) {
  res.status = status_code;
  res.set_content(boost::json::serialize(body), "application/json");
}

void register_operational_routes(server::impl& s) {
  auto& routes = s.http->routes();
  auto* sys = s.sys.get();
  auto journal = s.journal;
  auto slack = s.slack;
  auto deadline = std::chrono::milliseconds(s.cfg.request_timeout_ms);
  routes.Get("/healthz", [sys, journal, slack, deadline](const httplib::Request&, httplib::Response& res) {
    auto health = http::ask<reply_status>(*sys, journal, deadline, atoms::health::value);
    if (health && health->ok()) {
      // The log decides the status code; the Slack side is reported beside it
      // (a rejected token keeps messages queued, nothing is lost).
      boost::json::object slack_health{{"status", "unknown"}};
      (void)http::ask_then(  // on failure the Slack side stays "unknown"
        *sys, slack, deadline,
        [&](const reply_status& st, uint64_t queued) {
          slack_health = {{"status", st.ok() ? "ok" : "unhealthy"}, {"queued", queued}};
          if (!st.ok())
            slack_health["reason"] = st.message;
        },
        atoms::health::value);
      send_json(res, 200, {{"status", "ok"}, {"slack", slack_health}});
      return;
    }
    std::string why = health ? health->message : health.error().message();
    send_json(res, 503, {{"status", "unavailable"}, {"reason", "event log: " + why}});
  });
  // Prometheus text; no auth (bind the listener to a private address).
  // /metrics must answer even when the journal does not: its figures are
  // left out then, and backline_journal_up says so.
  auto* front = s.http.get();
  auto stats_deadline = std::min(deadline, std::chrono::milliseconds(1000));
  auto poller = s.poller;
  routes.Get("/metrics", [sys, journal, slack, poller, front, stats_deadline](const httplib::Request&,
                                                                              httplib::Response& res) {
    std::string out;
    front->metrics().render(out);
    auto stats = http::ask<journal_stats>(*sys, journal, stats_deadline, atoms::stats::value);
    http::render_gauge(out, "backline_journal_up", "1 when the journal answered for these figures.", stats ? 1 : 0);
    if (stats)
      http::render_journal_stats(*stats, out);
    http::render_gauge(out, "backline_actors_running", "Actors running in the actor system.",
                       static_cast<double>(sys->registry().running()));
    if (poller)
      if (auto polled = http::ask<std::string>(*sys, poller, stats_deadline, atoms::stats::value)) {
        auto figures = boost::json::parse(*polled).as_object();
        auto number = [&](const char* key) { return static_cast<double>(figures.at(key).to_number<uint64_t>()); };
        http::render_gauge(out, "backline_slack_poll_threads", "Open threads the poller watches.", number("watched"));
        http::render_counter(out, "backline_slack_poll_calls_total", "conversations.replies calls the poller made.",
                             number("calls"));
        http::render_gauge(out, "backline_slack_poll_calls_in_window", "Poller calls in the budget's current window.",
                           number("calls_in_window"));
        http::render_counter(out, "backline_slack_poll_replies_total",
                             "Slack replies the poller found that the events had not brought.", number("replies"));
      }
    (void)http::ask_then(  // on failure the Slack gauges are left out
      *sys, slack, stats_deadline,
      [&](const reply_status& st, uint64_t queued) {
        http::render_gauge(out, "backline_slack_queue_depth", "Thread messages waiting to be posted to Slack.",
                           static_cast<double>(queued));
        http::render_gauge(out, "backline_slack_token_ok", "1 unless Slack rejects the bot token.", st.ok() ? 1 : 0);
      },
      atoms::health::value);
    res.set_content(out, http::metrics_content_type);
  });
}

// On a fresh log, the first admin: its token from BACKLINE_ADMIN_TOKEN, or a
// random one printed once. Runs before any actor, straight on the store.
status bootstrap_admin(event_store& store, const server_config& cfg, users_table& table, std::ostream& log) {
  if (!table.by_id.empty())
    return {};
  std::string token = cfg.admin_token.empty() ? inbox::new_token() : cfg.admin_token;
  user admin{"admin", "Administrator", role::admin, false, inbox::hash_token(token)};
  append_request req;
  req.stream = "user-admin";
  req.expected = expected_version::no_stream();
  req.events.push_back(new_event{"user_created", "system",
                                 boost::json::serialize(boost::json::object{{"id", admin.id},
                                                                            {"name", admin.name},
                                                                            {"role", "admin"},
                                                                            {"inbox_access", false},
                                                                            {"token_hash", admin.token_hash}})});
  if (auto r = store.append(std::move(req)); !r)
    return r.error();
  table.id_by_token_hash[admin.token_hash] = admin.id;
  table.by_id[admin.id] = admin;
  if (cfg.admin_token.empty())
    log << "backline: first admin created; its token (shown once): " << token << "\n";
  else
    log << "backline: first admin created with the token from BACKLINE_ADMIN_TOKEN\n";
  return {};
}

// A log that cannot be read is never repaired behind the operator's back:
// the server refuses to start and says what to run.
status refuse_damaged_log(const status& s, const std::string& data_dir) {
  if (s.code() != errc::corrupt)
    return s;
  return {errc::corrupt, "the event log in " + data_dir + "/log is damaged, so the server will not start "
                           "(nothing was repaired): " + s.message() + "\n"
                           "Run `backline audit verify --data " + data_dir + "` to see what is damaged and where, "
                           "then restore " + data_dir + "/log from a backup."};
}

} // namespace

server::server(std::unique_ptr<impl> p) : impl_(std::move(p)) {}

server::~server() { stop(); }

int server::port() const { return impl_->port; }

result<std::unique_ptr<server>> server::start(const server_config& cfg, std::ostream& log) {
  // A certificate or key that will not load is refused before anything starts.
  if (auto tls = http::check_tls_files(cfg.tls_cert, cfg.tls_key); !tls)
    return tls;
  auto s = std::make_unique<impl>();
  s->cfg = cfg;
  std::error_code ec;
  std::filesystem::create_directories(cfg.data_dir, ec);
  if (ec)
    return status{errc::io_error, "cannot create data directory " + cfg.data_dir + ": " + ec.message()};
  // The log holds personal data and token hashes: the service user alone
  // reads it. A directory others cannot enter keeps every file in it from
  // them, whatever mode RocksDB gave the file.
  std::filesystem::permissions(cfg.data_dir, std::filesystem::perms::owner_all, std::filesystem::perm_options::replace,
                               ec);
  if (ec)
    return status{errc::io_error, "cannot make data directory " + cfg.data_dir + " private: " + ec.message()};
  store_options opts;
  opts.sync = cfg.sync_writes;
  auto store = event_store::open(cfg.data_dir + "/log", opts);
  if (!store)
    return refuse_damaged_log(store.error(), cfg.data_dir);
  s->store = std::shared_ptr<event_store>(std::move(store.value()));
  auto users = inbox::load_users(*s->store);
  if (!users)
    return refuse_damaged_log(users.error(), cfg.data_dir);
  if (auto st = bootstrap_admin(*s->store, cfg, **users, log); !st)
    return st;
  s->users_table->publish(*users);
  // The directory view and the log after it, not the whole log: start-up
  // costs the chats and threads, and the events since the view's position.
  inbox::directory_view_report view_report;
  auto index = inbox::load_directory_index_with_view(*s->store, &view_report);
  if (!index)
    return refuse_damaged_log(index.error(), cfg.data_dir);
  if (!view_report.note.empty())
    log << "backline: " << view_report.note << "; rebuilt from the log\n";
  if (view_report.had_view)
    log << "backline: directory view at position " << view_report.from << ", log replayed to " << view_report.to
        << " (" << view_report.chats << " chats and " << view_report.threads << " threads re-derived)\n";
  else
    log << "backline: directory view built from the whole log (" << view_report.chats << " chats, "
        << view_report.threads << " threads)\n";
  s->caf_cfg.set("logger.console-verbosity", caf::atom("quiet"));
  s->caf_cfg.set("logger.file-verbosity", caf::atom("quiet"));
  choose_caf_scheduler(s->caf_cfg, cfg.actor_threads, cfg.scheduler);
  s->sys = std::make_unique<caf::actor_system>(s->caf_cfg);
  journal_options journal_opts;
  // Storage episodes (disk full, recovered) on stderr, one line each.
  journal_opts.log = [](const std::string& line) { std::cerr << ("backline: " + line + "\n") << std::flush; };
  s->journal = journal::spawn(*s->sys, s->store, journal_opts);
  inbox::view_keeper_options keeper_opts;
  keeper_opts.log = journal_opts.log;
  s->view_keeper = inbox::spawn_view_keeper(*s->sys, s->store, keeper_opts);
  auto files = std::make_shared<file_store>(cfg.data_dir + "/files");
  slack_port_options slack_opts;
  slack_opts.api_url = cfg.slack_api_url;
  slack_opts.token = cfg.slack_token;
  std::string signing_secret = cfg.slack_signing_secret;
  if (cfg.slack_token.empty()) {
    // Sandbox mode: a simulated workspace in-process on a loopback port,
    // reached through the very same Web API client as slack.com.
    slack::fake_slack_config sandbox_cfg;
    sandbox_cfg.bot_token = "xoxb-sandbox-" + inbox::new_token().substr(0, 16);
    sandbox_cfg.signing_secret = inbox::new_token();
    sandbox_cfg.rate_limits = slack::slack_rate_limits();
    sandbox_cfg.adopt_unknown_parents = true;
    s->sandbox = std::make_unique<slack::fake_slack>(sandbox_cfg);
    try {
      s->sandbox->start();
    } catch (const std::exception& e) {
      caf::anon_send_exit(s->journal, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(s->view_keeper, caf::exit_reason::user_shutdown);
      return status{errc::io_error, std::string("cannot start the sandbox Slack workspace: ") + e.what()};
    }
    slack_opts.api_url = s->sandbox->base_url();
    slack_opts.token = sandbox_cfg.bot_token;
    signing_secret = sandbox_cfg.signing_secret;
  }
  slack_opts.min_interval = std::chrono::milliseconds(cfg.slack_min_interval_ms);
  slack_opts.timeout = std::chrono::milliseconds(cfg.slack_timeout_ms);
  slack_opts.callers = cfg.slack_callers;
  s->slack = inbox::spawn_web_slack_port(*s->sys, slack_opts, files);
  s->notifications = inbox::spawn_notifications(*s->sys);
  s->directory = inbox::spawn_directory(*s->sys, s->journal, s->slack, s->notifications, std::move(index.value()));
  if (cfg.slack_inbound != "events") {
    poller_options poll;
    poll.api_url = slack_opts.api_url;
    poll.token = slack_opts.token;
    poll.timeout = slack_opts.timeout;
    poll.budget = cfg.slack_poll_budget;
    poll.page = cfg.slack_poll_page;
    poll.min_interval = std::chrono::milliseconds(cfg.slack_poll_interval_ms);
    poll.files = files;
    poll.max_file_bytes = cfg.max_file_bytes;
    poll.window = std::chrono::milliseconds(cfg.slack_poll_window_ms);
    s->poller = inbox::spawn_poller(*s->sys, poll, s->directory, s->slack);
    caf::anon_send(s->directory, atoms::route::value, caf::actor_cast<caf::actor>(s->poller));
  }
  if (cfg.slack_inbound == "poll")
    signing_secret.clear();  // replies come by polling only: /slack/events is off
  s->users = inbox::spawn_users(*s->sys, s->journal, s->users_table);
  auto settings = http_settings_of(cfg);
  settings.token_known = [table = s->users_table](std::string_view token) {
    return table->current()->id_by_token_hash.count(inbox::hash_token(token)) > 0;
  };
  s->http = std::make_unique<http::http_server>(std::move(settings));
  register_operational_routes(*s);
  http::api_deps deps;
  deps.sys = s->sys.get();
  deps.journal = s->journal;
  deps.directory = s->directory;
  deps.notifications = s->notifications;
  deps.slack = s->slack;
  deps.files = files;
  deps.store = s->store;
  deps.max_file_bytes = cfg.max_file_bytes;
  deps.user_admin = s->users;
  deps.users = s->users_table;
  deps.deadline = std::chrono::milliseconds(cfg.request_timeout_ms);
  deps.relay = std::make_shared<http::answer_relay>(*s->sys);
  deps.sandbox = s->sandbox.get();
  deps.slack_api_url = slack_opts.api_url;
  deps.slack_token = slack_opts.token;
  http::register_api_routes(s->http->routes(), deps);
  http::register_slack_events(s->http->routes(), deps, signing_secret);
  http::register_web_routes(s->http->routes(), std::make_shared<const http::web_assets>(http::embedded_web_files()));
  auto port = s->http->bind(cfg.listen_host, cfg.listen_port);
  if (!port) {
    // Every actor is running by now: stop them all (the actor system waits
    // for each at its end, so one left running, or a handle to one left
    // here, would hang this return).
    deps = http::api_deps{};
    server(std::move(s)).stop();
    return port.error();
  }
  s->port = port.value();
  s->http_thread = std::thread([h = s->http.get()] { h->run(); });
  if (s->sandbox && cfg.slack_inbound != "poll") {
    // The workspace pushes its events to us, as Slack would.
    auto host = cfg.listen_host == "0.0.0.0" || cfg.listen_host == "::" ? std::string("127.0.0.1") : cfg.listen_host;
    if (host.find(':') != std::string::npos)
      host = "[" + host + "]";
    s->sandbox->set_events_url(std::string(s->http->tls() ? "https://" : "http://") + host + ":" +
                               std::to_string(s->port) + "/slack/events");
  }
  if (s->sandbox) {
    log << "backline: Slack: SANDBOX mode (no SLACK_BOT_TOKEN): a simulated workspace at " << s->sandbox->base_url()
        << " with #finance (C0FINANCE), #hr (C0HR), #operations (C0OPS); act as an L2 person with "
           "POST /api/v1/sandbox/slack/replies\n";
  } else {
    log << "backline: Slack: Web API at " << cfg.slack_api_url
        << (signing_secret.empty() ? " (/slack/events is off: no SLACK_SIGNING_SECRET or --slack-inbound poll)" : "")
        << "\n";
  }
  log << "backline: Slack: replies come in by " << cfg.slack_inbound
      << (cfg.slack_inbound != "events" ? " (poller: " + std::to_string(cfg.slack_poll_budget) + " calls per " +
                                                std::to_string(cfg.slack_poll_window_ms) + " ms)" : "")
      << "\n";
  log << "backline: log " << cfg.data_dir << "/log at position " << s->store->head().position
      << (cfg.sync_writes ? "" : " (fsync OFF: benchmark mode)") << "\n";
  log << "backline: listening on " << (s->http->tls() ? "https://" : "http://") << cfg.listen_host << ":" << s->port
      << std::endl;
  if (!cfg.ready_file.empty()) {
    std::ofstream ready(cfg.ready_file);
    ready << cfg.listen_host << ":" << s->port << "\n";
  }
  return std::unique_ptr<server>(new server(std::move(s)));
}

void server::stop() {
  if (!impl_ || impl_->stopped)
    return;
  impl_->stopped = true;
  // 0. Long polls answer now instead of holding step 1 for up to their wait.
  caf::anon_send(impl_->notifications, atoms::flush::value);
  // 1. No new connections; httplib joins its workers, so in-flight requests
  //    finish (their answers come from actors still running).
  if (impl_->sandbox)
    impl_->sandbox->events_enabled(false);  // nothing more pushed at a server going away
  impl_->http->stop();
  if (impl_->http_thread.joinable())
    impl_->http_thread.join();
  // 2. The inbox actors (chats and threads are linked to the directory),
  //    then the journal, which writes what it still holds, then quits.
  {
    caf::scoped_actor self{*impl_->sys};
    if (impl_->poller) {
      self->send_exit(impl_->poller, caf::exit_reason::user_shutdown);
      self->wait_for(impl_->poller);
      impl_->poller = nullptr;
    }
    for (auto a : {caf::actor_cast<caf::actor>(impl_->directory), caf::actor_cast<caf::actor>(impl_->users),
                   caf::actor_cast<caf::actor>(impl_->slack), caf::actor_cast<caf::actor>(impl_->notifications),
                   caf::actor_cast<caf::actor>(impl_->view_keeper)})
      self->send_exit(a, caf::exit_reason::user_shutdown);
    self->wait_for(impl_->directory, impl_->users, impl_->slack, impl_->notifications, impl_->view_keeper);
    self->send_exit(impl_->journal, caf::exit_reason::user_shutdown);
    self->wait_for(impl_->journal);
  }
  // The log is complete now: the view catches up with it, and the memtables
  // go into table files, so the next start has neither log nor WAL to replay.
  // (A failure costs the next start time, nothing else: it says so.)
  if (auto advanced = inbox::advance_directory_view(*impl_->store); !advanced)
    std::cerr << ("backline: directory view not advanced at shutdown: " + advanced.error().message() + "\n");
  if (auto flushed = impl_->store->flush(); !flushed)
    std::cerr << ("backline: memtables not flushed at shutdown: " + flushed.message() + "\n");
  impl_->directory = nullptr;
  impl_->users = nullptr;
  impl_->slack = nullptr;
  impl_->notifications = nullptr;
  impl_->journal = nullptr;
  impl_->view_keeper = nullptr;
  // 3. The routes (they hold actor handles), the actor system, the store.
  impl_->http.reset();
  if (impl_->sandbox)
    impl_->sandbox->stop();
  impl_->sys.reset();
  impl_->store.reset();
}

} // namespace backline

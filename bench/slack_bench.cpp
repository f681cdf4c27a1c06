// slack_bench: the Slack side of backline, against the local Slack fake.
//
// 1. Events: N open threads (100, 1,000, 10,000) in M channels; L2 replies
//    happen in the fake at a fixed rate (open loop, default 1,000/s) and are
//    pushed to backline's /slack/events by 16 concurrent senders, as Slack
//    does. Figures: events/s accepted, and event → inbox-visible latency
//    (from the reply happening in the fake to backline's 200, which it gives
//    only once the reply is durable and in the thread; a sample of threads is
//    then read back over the API to check). Target: p99 < 50 ms at 1,000/s.
// 2. Polling alone (events off): replies posted at once into T threads; the
//    poller must find them all within its budget. Figures: calls in the
//    busiest budget window (never above the budget), and the time until
//    every reply is in, at budgets of 50 and 1 calls per window. The window
//    is a minute in production; here it is shortened (--poll-window-ms) so a
//    run is bounded, and the figures are given in windows.
//
// 3. Outbound pacing: 1,000 channels with 2 open threads each; agents post
//    at 2/s per channel (twice Slack's 1/s, open loop, over the API) for 30 s
//    (--quick: 10 s), against a fake that limits chat.postMessage as Slack
//    does (a token bucket per channel: 1/s, bursts of 3; 429 + Retry-After
//    past it) and backline pacing at its defaults. Figures: posts/s Slack
//    accepted while every queue was building, beside the ceiling (channels x
//    1/s); per channel the busiest 1 s and 10 s (never above the bucket's
//    burst + rate x window); 429s; fairness (min/max per channel, Jain's
//    index); acknowledged (201) -> in Slack p50/p99 (mostly queueing, by
//    design) and the lag behind an ideal pacer fed the same posts; nothing
//    lost or duplicated (by the outbox id in each post's metadata). Run once
//    with the fake answering at once and once answering 100 ms late, as Slack
//    over the internet does (--pace-latency-ms 0,100): backline waits for each
//    answer on one of its --slack-callers threads.
//
//   slack_bench [--threads 100,1000,10000] [--channels 50] [--rate 1000] [--seconds 5]
//               [--poll-threads 100] [--poll-window-ms 1000] [--pace-channels 1000]
//               [--pace-rate 2] [--pace-seconds 30] [--pace-latency-ms 0,100] [--pace-callers N]
//               [--only events,poll,pacing]
//               [--quick] [--backline PATH]
//
// backline runs as a child process with SLACK_BOT_TOKEN / SLACK_API_URL /
// SLACK_SIGNING_SECRET pointing at the fake (in this process). For 1 and 2,
// --slack-min-interval-ms 1 and no limits in the fake, so that setting up
// thousands of thread parents does not wait for Slack's 1 message/s/channel
// pace; 3 measures that pace itself.
// Ends with one JSON line: {"bench":"slack","figures":{…},"target_p99_ms":50}.

#include <httplib.h>

#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>
#include <unordered_map>

#include "backline/malloc_tuning.hpp"
#include "backline/config.hpp"
#include "bench/support/backline_child.hpp"
#include "bench/support/options.hpp"
#include "slack/fake_slack.hpp"

namespace json = boost::json;
namespace slack = backline::slack;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;
using bench::admin_token;
using bench::backline_child;
using bench::bench_error;

namespace {

struct options {
  std::vector<size_t> threads{100, 1000, 10000};
  size_t channels = 50;
  double rate = 1000;
  double seconds = 5;
  size_t poll_threads = 100;
  size_t poll_threads_slow = 20;  // at a budget of 1 per window
  uint32_t poll_window_ms = 1000;
  size_t pace_channels = 1000;
  size_t pace_threads_per_channel = 2;
  double pace_rate = 2;  // posts/s offered per channel: twice Slack's 1/s
  double pace_seconds = 30;
  uint32_t pace_callers = 0;     // --slack-callers for backline; 0 = its default
  uint32_t pace_latency_ms = 0;  // each chat.postMessage answered this late (Slack over the internet: ~100 ms)
  std::vector<size_t> pace_latencies{0, 100};  // one pacing run at each
  std::vector<std::string> sections{"events", "poll", "pacing"};
  std::string backline;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

// A small blocking API client (setup only; nothing here is measured).
struct api {
  std::string host;
  int port;
  json::value call(const std::string& method, const std::string& path, const std::string& token,
                   const json::value& body = nullptr) {
    httplib::Client cli(host, port);
    cli.set_read_timeout(30, 0);
    httplib::Headers h{{"Authorization", "Bearer " + token}};
    auto r = method == "GET" ? cli.Get(path.c_str(), h) : cli.Post(path.c_str(), h, json::serialize(body), "application/json");
    if (!r || r->status >= 300)
      throw bench_error(method + " " + path + " failed: " + (r ? std::to_string(r->status) + " " + r->body : "no answer"));
    return json::parse(r->body);
  }
};

struct open_thread {
  std::string id, channel, parent_ts;
};

// One backline + one fake, with `n` threads across `channels` channels.
struct rig {
  slack::fake_slack fake;
  std::unique_ptr<backline_child> child;
  api client{"127.0.0.1", 0};
  std::string agent;
  std::vector<open_thread> threads;

  size_t channels;

  // paced: the fake limits as Slack does (chat.postMessage 1/s per channel,
  // bursts of 3; the tiers for the rest) and backline paces at its default.
  static slack::fake_slack_config fake_config(size_t channels, bool paced, size_t callers) {
    slack::fake_slack_config c;
    if (paced)
      c.rate_limits = slack::slack_rate_limits();
    c.event_senders = 16;
    c.event_retry_delays = {50ms, 200ms, 1000ms};
    c.events_for_bot_messages = false;  // only the replies are measured
    // httplib holds a worker per open connection: one per backline caller, and some to spare.
    c.worker_threads = std::max<size_t>(64, callers + 32);
    c.workspace.channels.clear();  // only the bench's channels, all with the app in them
    for (size_t i = 0; i < channels; ++i) {
      char id[32];
      std::snprintf(id, sizeof id, "C1B%05zu", i);
      c.workspace.channels.push_back({id, "bench-" + std::to_string(i), true, false, false});
    }
    return c;
  }

  // Slack Web API calls backline makes at once (--slack-callers).
  static size_t callers_of(const options& opt) {
    return opt.pace_callers ? opt.pace_callers : backline::server_config{}.slack_callers;
  }

  rig(const options& opt, const std::filesystem::path& workdir, size_t n, std::vector<std::string> extra_args,
      size_t channel_count = 0, bool paced = false)
      : fake(fake_config(channel_count ? channel_count : opt.channels, paced, callers_of(opt))),
        channels(channel_count ? channel_count : opt.channels) {
    fake.start();
    std::filesystem::create_directories(workdir);
    std::vector<std::string> args{"--http-threads", "96", "--log-requests", "off", "--slack-min-interval-ms",
                                  paced ? "1000" : "1", "--rate-limit", "0"};  // one bot token drives the whole load
    args.insert(args.end(), extra_args.begin(), extra_args.end());
    child = std::make_unique<backline_child>(opt.backline, workdir.string(), args,
                                             std::vector<std::string>{"SLACK_BOT_TOKEN=" + fake.config().bot_token,
                                                                      "SLACK_API_URL=" + fake.base_url(),
                                                                      "SLACK_SIGNING_SECRET=" + fake.config().signing_secret});
    child->wait_ready();
    client = api{child->host(), child->port()};
    fake.set_events_url("http://" + child->host() + ":" + std::to_string(child->port()) + "/slack/events");
    setup(n);
  }
  ~rig() {
    child->stop();
    fake.stop();
  }

  void setup(size_t n) {
    auto t0 = clock_type::now();
    auto token_of = [&](const std::string& id, const std::string& role) {
      auto u = client.call("POST", "/api/v1/users", admin_token,
                           json::object{{"id", id}, {"name", id}, {"role", role}, {"inbox_access", true}});
      return std::string(u.at("token").as_string());
    };
    auto bot = token_of("bench-bot", "bot");
    agent = token_of("bench-agent", "agent");
    size_t chats = std::max<size_t>(1, n / 100);
    std::vector<std::string> chat_ids;
    for (size_t c = 0; c < chats; ++c) {
      auto chat = client.call("POST", "/api/v1/chats", bot, json::object{{"customer", {{"id", "cust"}, {"name", "C"}}}});
      chat_ids.emplace_back(chat.at("id").as_string());
      client.call("POST", "/api/v1/chats/" + chat_ids.back() + "/assign", bot, json::object{{"agent_id", "bench-agent"}});
    }
    // Threads, from 8 clients at once.
    threads.resize(n);
    std::atomic<size_t> next{0};
    std::vector<std::thread> workers;
    std::mutex err_mu;
    std::string error;
    for (int w = 0; w < 8; ++w)
      workers.emplace_back([&] {
        try {
          api mine = client;
          for (size_t i = next++; i < n; i = next++) {
            auto channel = fake.config().workspace.channels[i % channels].id;
            auto t = mine.call("POST", "/api/v1/chats/" + chat_ids[i % chats] + "/threads", agent,
                               json::object{{"channel_id", channel}, {"text", "bench question " + std::to_string(i)}});
            threads[i] = {std::string(t.at("id").as_string()), channel, ""};
          }
        } catch (const std::exception& e) {
          std::lock_guard lk(err_mu);
          error = e.what();
        }
      });
    for (auto& w : workers)
      w.join();
    if (!error.empty())
      throw bench_error(error);
    // Every parent in Slack: their ts, by the outbox metadata's thread id.
    std::map<std::string, std::string> ts_of;
    for (auto deadline = clock_type::now() + 300s; ts_of.size() < n;) {
      if (clock_type::now() > deadline)
        throw bench_error("only " + std::to_string(ts_of.size()) + " of " + std::to_string(n) + " parents reached the fake");
      std::this_thread::sleep_for(100ms);
      ts_of.clear();
      for (const auto& s : fake.sent())
        if (s.method == "chat.postMessage" && s.thread_ts.empty())
          if (auto* meta = s.args.if_contains("metadata"); meta && meta->is_object())
            ts_of[std::string(meta->at("event_payload").at("thread_id").as_string())] = s.ts;
    }
    for (auto& t : threads)
      t.parent_ts = ts_of.at(t.id);
    std::cout << "  setup: " << n << " threads in " << std::min(n, channels) << " channels, parents in Slack, in "
              << std::fixed << std::setprecision(1) << std::chrono::duration<double>(clock_type::now() - t0).count()
              << " s" << std::endl;
  }

  double metric(const std::string& name) {
    httplib::Client cli(child->host(), child->port());
    auto r = cli.Get("/metrics");
    if (!r)
      return -1;
    auto at = r->body.find("\n" + name + " ");
    return at == std::string::npos ? -1 : std::stod(r->body.substr(at + name.size() + 2));
  }
};

struct events_result {
  size_t sent = 0, accepted = 0, failed = 0;
  double offered_per_s = 0, accepted_per_s = 0, p50 = 0, p99 = 0, max = 0;
  size_t checked = 0, visible = 0;
};

events_result run_events(const options& opt, const std::filesystem::path& dir, size_t n) {
  rig r(opt, dir, n, {"--slack-inbound", "events"});
  std::vector<size_t> per_thread(n, 0);
  auto total = static_cast<size_t>(opt.rate * opt.seconds);
  auto start = clock_type::now();
  auto interval = std::chrono::duration<double>(1.0 / opt.rate);
  for (size_t i = 0; i < total; ++i) {
    auto due = start + std::chrono::duration_cast<clock_type::duration>(interval * static_cast<double>(i));
    std::this_thread::sleep_until(due);
    auto& t = r.threads[i % n];
    r.fake.post_reply(t.channel, t.parent_ts, "U0ERIN", "reply " + std::to_string(i));
    ++per_thread[i % n];
  }
  auto offered_s = std::chrono::duration<double>(clock_type::now() - start).count();
  r.fake.wait_events_idle(120s);
  events_result out;
  out.sent = total;
  out.offered_per_s = static_cast<double>(total) / offered_s;
  std::vector<double> lat;
  auto first = clock_type::time_point::max(), last = clock_type::time_point::min();
  for (const auto& d : r.fake.event_deliveries()) {
    if (d.http_status != 200) {
      ++out.failed;
      continue;
    }
    ++out.accepted;
    lat.push_back(std::chrono::duration<double, std::milli>(d.answered - d.happened).count());
    first = std::min(first, d.happened);
    last = std::max(last, d.answered);
  }
  out.accepted_per_s = out.accepted ? static_cast<double>(out.accepted) / std::chrono::duration<double>(last - first).count() : 0;
  out.p50 = percentile(lat, 50);
  out.p99 = percentile(lat, 99);
  out.max = percentile(lat, 100);
  // Inbox-visible: read back a sample of threads over the API.
  std::mt19937 rng(7);
  for (size_t k = 0; k < std::min<size_t>(20, n); ++k) {
    auto i = rng() % n;
    auto list = r.client.call("GET", "/api/v1/threads/" + r.threads[i].id + "/messages", r.agent).at("messages").as_array();
    auto replies = std::count_if(list.begin(), list.end(), [](const json::value& m) { return m.at("direction") == "from_slack"; });
    ++out.checked;
    out.visible += static_cast<size_t>(replies) == per_thread[i] ? 1 : 0;
  }
  return out;
}

struct poll_result {
  size_t threads = 0, replies = 0, found = 0;
  uint32_t budget = 0;
  size_t busiest_window = 0, calls = 0;
  double seconds = 0, windows = 0;
  bool converged = false;
};

poll_result run_poll(const options& opt, const std::filesystem::path& dir, size_t n, uint32_t budget, double limit_s) {
  rig r(opt, dir, n,
        {"--slack-inbound", "poll", "--slack-poll-budget", std::to_string(budget), "--slack-poll-window-ms",
         std::to_string(opt.poll_window_ms), "--slack-poll-interval-ms", std::to_string(opt.poll_window_ms / 4),
         "--slack-poll-page", "15"});
  r.fake.set_events_url("");  // Slack pushes nothing: only the poller finds replies
  poll_result out;
  out.threads = n;
  out.budget = budget;
  const size_t per_thread = 3;
  auto calls_before = r.fake.call_count("conversations.replies");
  auto start = clock_type::now();
  for (size_t i = 0; i < n * per_thread; ++i) {
    auto& t = r.threads[i % n];
    r.fake.post_reply(t.channel, t.parent_ts, "U0HUGO", "polled reply " + std::to_string(i));
  }
  out.replies = n * per_thread;
  auto deadline = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(limit_s));
  auto last_print = start;
  while (clock_type::now() < deadline) {
    auto found = r.metric("backline_slack_poll_replies_total");
    out.found = found < 0 ? 0 : static_cast<size_t>(found);
    if (out.found >= out.replies) {
      out.converged = true;
      break;
    }
    if (clock_type::now() - last_print > 10s) {
      last_print = clock_type::now();
      std::cout << "    … " << out.found << "/" << out.replies << " replies found" << std::endl;
    }
    std::this_thread::sleep_for(20ms);
  }
  out.seconds = std::chrono::duration<double>(clock_type::now() - start).count();
  out.windows = out.seconds * 1000.0 / opt.poll_window_ms;
  out.calls = r.fake.call_count("conversations.replies") - calls_before;
  out.busiest_window = r.fake.busiest_window("conversations.replies", std::chrono::milliseconds(opt.poll_window_ms));
  return out;
}

// 3. Outbound pacing: every channel busy, agents posting faster than Slack
//    takes them, against a fake that limits chat.postMessage as Slack does.
struct pacing_result {
  size_t channels = 0, threads = 0;
  double offered_per_channel = 0, offered_per_s = 0, offer_s = 0;
  size_t offered = 0, acked = 0, api_errors = 0;
  size_t delivered = 0, lost = 0, duplicated = 0, unacked_delivered = 0;
  double window_from_s = 0, window_s = 0, delivered_per_s = 0, ceiling_per_s = 0;
  double allowed_per_s = 0, burst = 0;
  size_t peak_1s = 0, peak_1s_attempts = 0, peak_10s = 0;
  size_t attempts = 0, ratelimited = 0;
  size_t min_per_channel = 0, max_per_channel = 0;
  double jain = 0;
  double p50 = 0, p99 = 0, max = 0;       // acknowledged -> in Slack
  double lag_p50 = 0, lag_p99 = 0;        // behind an ideal pacer at Slack's rate
  double drain_s = 0;
  bool drained = false;
  // Per second of the run: posts acknowledged, posts Slack accepted, 429s.
  std::vector<std::array<size_t, 3>> timeline;
  // Other Web API calls during the run, by method (a lookup before a resend is a timeout's trace).
  std::map<std::string, size_t> other_calls;
};

// The outbox id backline puts in a post's metadata ("" when none).
std::string outbox_id_of(const json::object& args) {
  auto* meta = args.if_contains("metadata");
  if (meta == nullptr)
    return {};
  json::value parsed;
  if (meta->is_string()) {  // a form post carries it as JSON text
    boost::system::error_code ec;
    parsed = json::parse(meta->as_string(), ec);
    if (ec)
      return {};
    meta = &parsed;
  }
  if (!meta->is_object())
    return {};
  auto* payload = meta->as_object().if_contains("event_payload");
  if (payload == nullptr || !payload->is_object())
    return {};
  auto* id = payload->as_object().if_contains("outbox_id");
  return id && id->is_string() ? std::string(id->as_string()) : std::string{};
}

// Most items of a sorted list in any window of `width` seconds.
size_t busiest(const std::vector<double>& at, double width) {
  size_t best = 0;
  for (size_t i = 0, j = 0; j < at.size(); ++j) {
    while (at[j] - at[i] >= width)
      ++i;
    best = std::max(best, j - i + 1);
  }
  return best;
}

// When a perfect token bucket (rate/s, burst) would let sorted arrivals through.
std::vector<double> ideal_departures(const std::vector<double>& arrivals, double rate, double burst) {
  std::vector<double> out;
  double tokens = burst, last = 0, prev = 0;
  for (double a : arrivals) {
    double t = std::max(a, prev);
    tokens = std::min(burst, tokens + (t - last) * rate);
    last = t;
    if (tokens < 1) {
      t += (1 - tokens) / rate;
      tokens = 1;
      last = t;
    }
    tokens -= 1;
    prev = t;
    out.push_back(t);
  }
  return out;
}

pacing_result run_pacing(const options& opt, const std::filesystem::path& dir) {
  const size_t channels = opt.pace_channels;
  const size_t n = channels * opt.pace_threads_per_channel;
  std::vector<std::string> args{"--slack-inbound", "events"};
  if (opt.pace_callers > 0)
    args.insert(args.end(), {"--slack-callers", std::to_string(opt.pace_callers)});
  rig r(opt, dir, n, args, channels, true);
  const auto limit = slack::slack_rate_limits().at("chat.postMessage");
  pacing_result out;
  out.channels = channels;
  out.threads = n;
  out.allowed_per_s = limit.per_second;
  out.burst = limit.burst;
  out.offered_per_channel = opt.pace_rate;
  out.ceiling_per_s = static_cast<double>(channels) * limit.per_second;
  if (opt.pace_latency_ms > 0) {  // taken at once, answered late, as over a real network
    slack::fault_spec slow;
    slow.kind = slack::fault_kind::slow;
    slow.count = std::numeric_limits<int>::max();
    slow.delay = std::chrono::milliseconds(opt.pace_latency_ms);
    r.fake.inject_fault("chat.postMessage", slow);
  }
  // Every channel's bucket full again, in backline and in the fake.
  std::this_thread::sleep_for(std::chrono::duration<double>(limit.burst / limit.per_second + 0.5));

  const double total_rate = opt.pace_rate * static_cast<double>(channels);
  out.offered = static_cast<size_t>(total_rate * opt.pace_seconds);
  std::vector<std::string> ids(out.offered);
  std::vector<clock_type::time_point> acked_at(out.offered);
  std::atomic<size_t> next{0}, errors{0};
  std::mutex err_mu;
  std::string first_error;
  const auto start = clock_type::now();
  std::vector<std::thread> senders;
  for (int w = 0; w < 128; ++w)
    senders.emplace_back([&] {
      httplib::Client cli(r.child->host(), r.child->port());
      cli.set_keep_alive(true);
      cli.set_read_timeout(30, 0);
      httplib::Headers h{{"Authorization", "Bearer " + r.agent}};
      for (size_t i = next++; i < out.offered; i = next++) {
        std::this_thread::sleep_until(start + std::chrono::duration_cast<clock_type::duration>(
                                                  std::chrono::duration<double>(static_cast<double>(i) / total_rate)));
        auto& t = r.threads[i % n];  // message i goes to channel i % channels
        auto res = cli.Post(("/api/v1/threads/" + t.id + "/messages").c_str(), h,
                            json::serialize(json::object{{"text", "paced " + std::to_string(i)}}), "application/json");
        if (!res || res->status != 201) {
          ++errors;
          std::lock_guard lk(err_mu);
          if (first_error.empty())
            first_error = res ? std::to_string(res->status) + " " + res->body : httplib::to_string(res.error());
          continue;
        }
        acked_at[i] = clock_type::now();
        ids[i] = std::string(json::parse(res->body).at("id").as_string());
      }
    });
  for (auto& s : senders)
    s.join();
  const auto offer_end = clock_type::now();
  auto secs = [&](clock_type::time_point t) { return std::chrono::duration<double>(t - start).count(); };
  out.offer_s = secs(offer_end);
  out.api_errors = errors;
  out.acked = out.offered - out.api_errors;
  out.offered_per_s = static_cast<double>(out.acked) / out.offer_s;
  if (!first_error.empty())
    std::cout << "  " << out.api_errors << " posts not acknowledged; the first: " << first_error << std::endl;

  // Drain: every acknowledged post in Slack (or the time limit).
  std::unordered_map<std::string, size_t> index_of;
  for (size_t i = 0; i < ids.size(); ++i)
    if (!ids[i].empty())
      index_of.emplace(ids[i], i);
  const double per_channel = opt.pace_rate * opt.pace_seconds;
  auto drain_limit = offer_end + std::chrono::duration_cast<clock_type::duration>(
                                     std::chrono::duration<double>(per_channel / limit.per_second + 60));
  auto last_print = offer_end;
  while (clock_type::now() < drain_limit) {
    size_t in_slack = 0;
    for (const auto& s : r.fake.sent())
      if (s.method == "chat.postMessage" && !s.thread_ts.empty() && index_of.count(outbox_id_of(s.args)))
        ++in_slack;
    if (in_slack >= index_of.size()) {
      out.drained = true;
      break;
    }
    if (clock_type::now() - last_print > 10s) {
      last_print = clock_type::now();
      std::cout << "    … " << in_slack << "/" << index_of.size() << " posts in Slack" << std::endl;
    }
    std::this_thread::sleep_for(250ms);
  }
  out.drain_s = secs(clock_type::now()) - out.offer_s;

  // What Slack saw: every chat.postMessage call since the start.
  std::unordered_map<std::string, std::vector<double>> accepted_by_channel, attempts_by_channel;
  auto tick = [&](double at) -> std::array<size_t, 3>& {
    auto i = static_cast<size_t>(std::max(0.0, at));
    if (out.timeline.size() <= i)
      out.timeline.resize(i + 1, {0, 0, 0});
    return out.timeline[i];
  };
  for (size_t i = 0; i < out.offered; ++i)
    if (!ids[i].empty())
      ++tick(secs(acked_at[i]))[0];
  std::vector<size_t> copies(out.offered, 0);
  std::vector<double> delivered_at(out.offered, -1);
  for (const auto& c : r.fake.calls()) {
    if (c.at < start)
      continue;
    if (c.method != "chat.postMessage") {
      ++out.other_calls[c.method];
      continue;
    }
    auto channel = c.args.contains("channel") && c.args.at("channel").is_string()
                     ? std::string(c.args.at("channel").as_string()) : std::string{};
    attempts_by_channel[channel].push_back(secs(c.at));
    ++out.attempts;
    auto& second = tick(secs(c.at));
    if (c.http_status == 429 || c.error == "ratelimited" || c.error == "rate_limited") {
      ++out.ratelimited;
      ++second[2];
    }
    if (c.http_status != 200 || !c.error.empty())
      continue;
    ++second[1];
    accepted_by_channel[channel].push_back(secs(c.at));
    auto found = index_of.find(outbox_id_of(c.args));
    if (found == index_of.end()) {
      ++out.unacked_delivered;
      continue;
    }
    if (copies[found->second]++ == 0)
      delivered_at[found->second] = secs(c.at);
  }
  std::vector<double> latency, lag;
  for (size_t i = 0; i < out.offered; ++i) {
    if (ids[i].empty())
      continue;
    if (copies[i] == 0)
      ++out.lost;
    else {
      ++out.delivered;
      out.duplicated += copies[i] - 1;
      latency.push_back(1000.0 * (delivered_at[i] - secs(acked_at[i])));
    }
  }
  out.p50 = percentile(latency, 50);
  out.p99 = percentile(latency, 99);
  out.max = percentile(latency, 100);

  // Per channel: the busiest windows, the share of the busy window, and the
  // lag behind an ideal pacer fed the same acknowledged posts.
  std::unordered_map<std::string, std::vector<double>> arrivals_by_channel;
  for (size_t i = 0; i < out.offered; ++i)
    if (!ids[i].empty())
      arrivals_by_channel[r.threads[i % n].channel].push_back(secs(acked_at[i]));
  // Queues build once the burst is spent: from then on every channel is held to Slack's rate.
  out.window_from_s = std::min(out.offer_s / 2, limit.burst / std::max(0.01, opt.pace_rate - limit.per_second) + 1);
  out.window_s = out.offer_s - out.window_from_s;
  std::vector<double> shares;
  size_t in_window = 0;
  for (const auto& ch : r.fake.config().workspace.channels) {
    auto& acc = accepted_by_channel[ch.id];
    auto& att = attempts_by_channel[ch.id];
    std::sort(acc.begin(), acc.end());
    std::sort(att.begin(), att.end());
    out.peak_1s = std::max(out.peak_1s, busiest(acc, 1.0));
    out.peak_10s = std::max(out.peak_10s, busiest(acc, 10.0));
    out.peak_1s_attempts = std::max(out.peak_1s_attempts, busiest(att, 1.0));
    auto k = static_cast<size_t>(std::count_if(acc.begin(), acc.end(), [&](double t) {
      return t >= out.window_from_s && t < out.offer_s;
    }));
    in_window += k;
    shares.push_back(static_cast<double>(k));
    auto& arr = arrivals_by_channel[ch.id];
    std::sort(arr.begin(), arr.end());
    auto ideal = ideal_departures(arr, limit.per_second, limit.burst);
    std::vector<double> got;
    for (double t : acc)
      got.push_back(t);
    for (size_t j = 0; j < std::min(ideal.size(), got.size()); ++j)
      lag.push_back(1000.0 * (got[j] - ideal[j]));
  }
  out.delivered_per_s = out.window_s > 0 ? static_cast<double>(in_window) / out.window_s : 0;
  if (!shares.empty()) {
    out.min_per_channel = static_cast<size_t>(*std::min_element(shares.begin(), shares.end()));
    out.max_per_channel = static_cast<size_t>(*std::max_element(shares.begin(), shares.end()));
    double sum = 0, sq = 0;
    for (double x : shares) {
      sum += x;
      sq += x * x;
    }
    out.jain = sq > 0 ? sum * sum / (static_cast<double>(shares.size()) * sq) : 0;
  }
  out.lag_p50 = percentile(lag, 50);
  out.lag_p99 = percentile(lag, 99);
  return out;
}

int run(const options& opt) {
  auto base = std::filesystem::temp_directory_path() / ("slack_bench." + std::to_string(::getpid()));
  std::filesystem::create_directories(base);
  std::cout << "slack_bench: backline " << opt.backline << ", machine " << std::thread::hardware_concurrency()
            << " cores\n";
  json::object figures;
  bool target_met = true;
  auto wanted = [&](const std::string& section) {
    return std::find(opt.sections.begin(), opt.sections.end(), section) != opt.sections.end();
  };
  if (wanted("events"))
    std::cout << "\nEvents pushed at " << opt.rate << "/s for " << opt.seconds << " s (16 concurrent senders):\n";
  for (auto n : wanted("events") ? opt.threads : std::vector<size_t>{}) {
    std::cout << "- " << n << " open threads" << std::endl;
    auto e = run_events(opt, base / ("events-" + std::to_string(n)), n);
    std::cout << std::fixed << std::setprecision(1) << "  offered " << e.offered_per_s << "/s, accepted "
              << e.accepted_per_s << "/s (" << e.accepted << " of " << e.sent << ", " << e.failed
              << " non-200 answers retried)\n  event -> inbox-visible: p50 " << e.p50 << " ms, p99 " << e.p99
              << " ms, max " << e.max << " ms (target p99 < 50 ms)\n  read back: " << e.visible << "/" << e.checked
              << " sampled threads hold every reply" << std::endl;
    target_met = target_met && e.p99 < 50 && e.visible == e.checked;
    figures["events_" + std::to_string(n)] = json::object{
      {"offered_per_s", e.offered_per_s}, {"accepted_per_s", e.accepted_per_s}, {"accepted", e.accepted},
      {"sent", e.sent}, {"non_200", e.failed}, {"p50_ms", e.p50}, {"p99_ms", e.p99}, {"max_ms", e.max},
      {"visible_sampled", e.visible}, {"sampled", e.checked}};
  }
  std::vector<std::pair<uint32_t, size_t>> budgets;
  if (wanted("poll")) {
    std::cout << "\nPolling alone (events off), a budget window of " << opt.poll_window_ms
              << " ms standing for Slack's minute, 3 replies per thread, 15 messages per call:\n";
    budgets = {{50, opt.poll_threads}, {1, opt.poll_threads_slow}};
  }
  for (auto [budget, n] : budgets) {
    std::cout << "- budget " << budget << " calls per window, " << n << " threads" << std::endl;
    // At 1 call per window, every thread needs a call: allow 3 windows per thread.
    double limit = std::max(60.0, 3.0 * static_cast<double>(n) / budget * opt.poll_window_ms / 1000.0 + 30);
    auto p = run_poll(opt, base / ("poll-" + std::to_string(budget)), n, budget, limit);
    std::cout << std::fixed << std::setprecision(1) << "  " << p.found << "/" << p.replies << " replies in "
              << p.seconds << " s = " << p.windows << " windows" << (p.converged ? "" : " (DID NOT CONVERGE)")
              << "; calls " << p.calls << ", busiest window " << p.busiest_window << " (budget " << p.budget << ")"
              << std::endl;
    target_met = target_met && p.converged && p.busiest_window <= p.budget;
    figures["poll_budget_" + std::to_string(budget)] = json::object{
      {"threads", p.threads}, {"replies", p.replies}, {"found", p.found}, {"seconds", p.seconds},
      {"windows", p.windows}, {"calls", p.calls}, {"busiest_window_calls", p.busiest_window}, {"budget", p.budget},
      {"window_ms", opt.poll_window_ms}, {"converged", p.converged}};
  }
  for (auto latency : wanted("pacing") ? opt.pace_latencies : std::vector<size_t>{}) {
    auto one = opt;  // this run's: Slack answering `latency` ms late
    one.pace_latency_ms = static_cast<uint32_t>(latency);
    std::cout << "\nOutbound pacing: " << (one.pace_latency_ms ? "each chat.postMessage answered " +
                                             std::to_string(one.pace_latency_ms) + " ms late, " : std::string{})
              << one.pace_channels << " channels, " << one.pace_threads_per_channel
              << " open threads each, agents posting " << one.pace_rate << "/s per channel for " << one.pace_seconds
              << " s (128 senders, open loop); the fake limits chat.postMessage as Slack does (1/s per channel, bursts"
                 " of 3):"
              << std::endl;
    auto p = run_pacing(one, base / ("pacing-" + std::to_string(latency)));
    std::cout << std::fixed << std::setprecision(1) << "  offered " << p.offered_per_s << " posts/s ("
              << p.acked << " acknowledged of " << p.offered << " in " << p.offer_s << " s)\n"
              << "  delivered " << p.delivered_per_s << " posts/s while every queue was building (" << p.window_from_s
              << "-" << p.offer_s << " s) vs ceiling " << p.ceiling_per_s << " (" << p.channels << " channels x "
              << p.allowed_per_s << "/s) = " << std::setprecision(3) << p.delivered_per_s / p.ceiling_per_s
              << std::setprecision(1) << "\n  per channel, posts Slack accepted: busiest 1 s " << p.peak_1s
              << " (Slack's bucket allows " << p.burst + p.allowed_per_s << " = burst " << p.burst << " + 1 s at "
              << p.allowed_per_s << "/s), busiest 10 s " << p.peak_10s << " (allows " << p.burst + 10 * p.allowed_per_s
              << "); calls made, busiest 1 s " << p.peak_1s_attempts << "\n  429s: " << p.ratelimited << " of "
              << p.attempts << " chat.postMessage calls\n  fairness over the busy window: min " << p.min_per_channel
              << " / max " << p.max_per_channel << " posts per channel, Jain's index " << std::setprecision(4) << p.jain
              << std::setprecision(1) << "\n  acknowledged -> in Slack: p50 " << p.p50 << " ms, p99 " << p.p99
              << " ms, max " << p.max << " ms (queueing: posts are offered at " << p.offered_per_channel
              << "x Slack's rate)\n  behind an ideal pacer at Slack's rate fed the same posts: p50 " << p.lag_p50
              << " ms, p99 " << p.lag_p99 << " ms\n  " << p.delivered << "/" << p.acked << " in Slack, " << p.lost
              << (p.drained ? " lost, " : " not in Slack when the drain limit ran out (queued, or lost), ")
              << p.duplicated << " duplicated, " << p.unacked_delivered
              << " unacknowledged in Slack; drained " << p.drain_s << " s after the last post"
              << (p.drained ? "" : " (DID NOT DRAIN)") << std::endl;
    if (!p.other_calls.empty()) {
      std::cout << "  other Web API calls:";
      for (const auto& [method, count] : p.other_calls)
        std::cout << " " << method << " " << count;
      std::cout << std::endl;
    }
    bool ok = p.drained && p.lost == 0 && p.duplicated == 0 && p.api_errors == 0 && p.ratelimited == 0 &&
              p.peak_1s_attempts <= static_cast<size_t>(p.burst + p.allowed_per_s);
    target_met = target_met && ok;
    figures["pacing_" + std::to_string(p.channels) +
            (one.pace_latency_ms ? "_latency_" + std::to_string(one.pace_latency_ms) : std::string{})] = json::object{
      {"slack_latency_ms", one.pace_latency_ms}, {"callers", rig::callers_of(one)},
      {"channels", p.channels}, {"threads", p.threads}, {"offered_per_channel_per_s", p.offered_per_channel},
      {"offered_per_s", p.offered_per_s}, {"offered", p.offered}, {"acked", p.acked}, {"api_errors", p.api_errors},
      {"offer_seconds", p.offer_s}, {"window_from_s", p.window_from_s}, {"delivered_per_s", p.delivered_per_s},
      {"ceiling_per_s", p.ceiling_per_s}, {"allowed_per_channel_per_s", p.allowed_per_s}, {"burst", p.burst},
      {"peak_channel_1s", p.peak_1s}, {"peak_channel_1s_calls", p.peak_1s_attempts}, {"peak_channel_10s", p.peak_10s},
      {"calls", p.attempts}, {"ratelimited_429", p.ratelimited}, {"min_per_channel", p.min_per_channel},
      {"max_per_channel", p.max_per_channel}, {"jain", p.jain}, {"p50_ms", p.p50}, {"p99_ms", p.p99},
      {"max_ms", p.max}, {"lag_p50_ms", p.lag_p50}, {"lag_p99_ms", p.lag_p99}, {"delivered", p.delivered},
      {"lost", p.lost}, {"duplicated", p.duplicated}, {"unacked_delivered", p.unacked_delivered},
      {"drain_seconds", p.drain_s}, {"drained", p.drained}, {"other_calls", [&] {
        json::object o;
        for (const auto& [method, count] : p.other_calls)
          o[method] = count;
        return o;
      }()}, {"timeline", [&] {
        json::array a;
        for (const auto& t : p.timeline)
          a.push_back(json::array{t[0], t[1], t[2]});
        return a;
      }()}};
  }
  std::filesystem::remove_all(base);
  std::cout << "\n" << (target_met ? "targets met" : "TARGET MISSED") << "\n";
  std::cout << json::serialize(json::object{{"bench", "slack"}, {"figures", figures}, {"target_p99_ms", 50},
                                            {"targets_met", target_met}})
            << std::endl;
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  backline::tune_malloc();  // as `backline` runs
  options opt;
  opt.backline = bench::default_backline_path().string();
  try {
    bench::arguments args(argc, argv);
    for (std::string a; args.next(a);) {
      auto value = [&] { return args.value(); };
      if (a == "--threads")
        opt.threads = bench::parse_list(value());
      else if (a == "--channels")
        opt.channels = std::stoul(value());
      else if (a == "--rate")
        opt.rate = std::stod(value());
      else if (a == "--seconds")
        opt.seconds = std::stod(value());
      else if (a == "--poll-threads")
        opt.poll_threads = std::stoul(value());
      else if (a == "--poll-window-ms")
        opt.poll_window_ms = static_cast<uint32_t>(std::stoul(value()));
      else if (a == "--pace-channels")
        opt.pace_channels = std::stoul(value());
      else if (a == "--pace-rate")
        opt.pace_rate = std::stod(value());
      else if (a == "--pace-seconds")
        opt.pace_seconds = std::stod(value());
      else if (a == "--pace-callers")
        opt.pace_callers = static_cast<uint32_t>(std::stoul(value()));
      else if (a == "--pace-latency-ms")
        opt.pace_latencies = bench::parse_list(value());
      else if (a == "--only") {
        opt.sections.clear();
        std::stringstream ss(value());
        for (std::string item; std::getline(ss, item, ',');)
          opt.sections.push_back(item);
      } else if (a == "--backline")
        opt.backline = value();
      else if (a == "--quick") {
        opt.threads = {100, 1000};
        opt.seconds = 3;
        opt.poll_threads = 50;
        opt.poll_threads_slow = 10;
        opt.poll_window_ms = 500;
        opt.pace_seconds = 10;
      } else {
        std::cerr << "usage: slack_bench [--threads 100,1000,10000] [--channels M] [--rate R] [--seconds S]\n"
                     "                   [--poll-threads N] [--poll-window-ms MS] [--pace-channels C]\n"
                     "                   [--pace-rate R] [--pace-seconds S] [--pace-latency-ms MS,MS] [--pace-callers N]\n"
                     "                   [--only events,poll,pacing]\n"
                     "                   [--quick] [--backline PATH]\n";
        return 2;
      }
    }
    return run(opt);
  } catch (const std::exception& e) {
    std::cerr << "slack_bench: " << e.what() << "\n";
    return 1;
  }
}

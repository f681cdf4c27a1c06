// The poller: reconciles open threads with Slack's conversations.replies, so
// that replies the Events API never brought (downtime, a Slack outage, no
// public URL) still arrive. It spends a call budget per window (default 50 a
// minute; it must also work at 1 a minute with 15 messages a call): threads
// with recent activity often, quiet ones less and less often, done ones not
// at all, and the most overdue first so that none starves. What it finds goes to the thread like an event would; the thread
// keeps each Slack message once, by its ts, whichever way it came.
//
// Each thread's watermark is the newest ts the poller itself has read to the
// end; it never moves on what the Events API brought (an event may have
// skipped an older reply), and not before the replies it read are recorded.

#include <deque>
#include <unordered_map>

#include "actors/persist.hpp"
#include "actors/thread_name.hpp"
#include "slack/events.hpp"
#include "slack/format.hpp"
#include "slack/inbound_files.hpp"
#include "slack/web_client.hpp"

namespace json = boost::json;

namespace backline {
namespace {

using clock_type = std::chrono::steady_clock;

// The blocking Web API call, on a detached actor: one conversations.replies
// page. Answers (failure kind, error, retry-after ms, messages JSON, next cursor).
// Files of new replies are downloaded and stored here too (blocking work):
// each such message gains "backline_files" and "backline_file_notes".
using replies_worker = caf::typed_actor<caf::replies_to<atoms::poll, std::string, std::string, std::string, std::string,
                                                        std::string, uint32_t>::with<uint8_t, std::string, uint64_t,
                                                                                     std::string, std::string>>;

struct worker_state {
  worker_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "slack_poll_worker";
  std::unique_ptr<slack::web_client> client;
  poller_options opts;
};

// Brings over the files of the replies newer than `oldest` (see inbound_files).
void store_files(worker_state& st, json::array& messages, const std::string& channel, const std::string& oldest,
                 const std::string& chat_id) {
  if (!st.opts.files)
    return;
  for (auto& m : messages) {
    if (!m.is_object())
      continue;
    auto reply = slack::reply_of_message(m.as_object(), channel);
    if (reply.what != slack::slack_event::kind::reply || reply.files.empty() || !slack::ts_less(oldest, reply.ts))
      continue;
    auto stored = slack::store_inbound_files(*st.client, st.opts.api_url, reply.files, st.opts.max_file_bytes,
                                             *st.opts.files, chat_id);
    m.as_object()["backline_files"] = std::move(stored.files);
    m.as_object()["backline_file_notes"] = std::move(stored.notes);
  }
}

replies_worker::behavior_type worker_behavior(replies_worker::stateful_pointer<worker_state> self,
                                              poller_options opts) {
  name_detached_thread(self, "slack.poll");
  if (auto c = slack::web_client::make({opts.api_url, opts.token, opts.timeout}))
    self->state.client = std::move(c.value());
  self->state.opts = std::move(opts);
  return {
    [self](atoms::poll, const std::string& thread_id, const std::string& channel, const std::string& parent_ts,
           const std::string& oldest, const std::string& cursor,
           uint32_t limit) -> caf::result<uint8_t, std::string, uint64_t, std::string, std::string> {
      if (!self->state.client)
        return {static_cast<uint8_t>(slack::failure_kind::rejected), std::string("the Slack API URL is malformed"),
                uint64_t{0}, std::string("[]"), std::string{}};
      json::object args{{"channel", channel}, {"ts", parent_ts}, {"oldest", oldest}, {"inclusive", false},
                        {"limit", limit}};
      if (!cursor.empty())
        args["cursor"] = cursor;
      auto r = self->state.client->call("conversations.replies", args);
      if (!r.ok())
        return {static_cast<uint8_t>(r.failure), r.error,
                static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(r.retry_after).count()),
                std::string("[]"), std::string{}};
      auto next = slack::next_cursor_of(r.body);
      auto* msgs = r.body.if_contains("messages");
      if (msgs == nullptr || !msgs->is_array())
        return {uint8_t{0}, std::string{}, uint64_t{0}, std::string("[]"), next};
      store_files(self->state, msgs->as_array(), channel, oldest, chat_of_thread(thread_id));
      return {uint8_t{0}, std::string{}, uint64_t{0}, json::serialize(*msgs), next};
    },
  };
}

struct watched_thread {
  std::string channel;
  std::string parent_ts;
  std::string watermark;  // the newest ts read to the end (at first: the parent)
  std::string cursor;     // mid-way through a scan of several pages
  std::string scan_max;   // the newest ts seen in the current scan
  std::chrono::milliseconds interval{0};
  clock_type::time_point due;
  clock_type::time_point last_activity;
};

struct poller_state {
  poller_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "slack_poller";
  poller_options opts;
  replies_worker worker;
  directory_actor directory;
  slack_port_actor slack;
  std::unordered_map<std::string, watched_thread> threads;
  std::deque<clock_type::time_point> calls_in_window;  // when the calls of the last window started
  bool in_flight = false;
  clock_type::time_point paused_until;
  clock_type::time_point tick_at;  // the earliest tick already scheduled (if in the future)
  uint64_t calls = 0, replies = 0, failures = 0;
};

using poller_pointer = poller_actor::stateful_pointer<poller_state>;

void tick(poller_pointer self);

void schedule(poller_pointer self, clock_type::time_point at) {
  auto& st = self->state;
  auto now = clock_type::now();
  if (st.tick_at > now && st.tick_at <= at)
    return;  // an earlier tick will look again
  st.tick_at = at;
  self->delayed_send(self, std::chrono::duration_cast<std::chrono::milliseconds>(at - now) +
                             std::chrono::milliseconds(1),
                     atoms::tick::value);
}

// When the budget allows the next call: fewer than `budget` calls in the
// window, and evenly spread (never two closer than window / budget).
// The window is stretched by 5% (at least 5 ms): Slack counts calls when
// they arrive, and two calls spaced exactly may arrive a little closer.
clock_type::time_point next_slot(poller_state& st, clock_type::time_point now) {
  auto window = st.opts.window + std::max(std::chrono::milliseconds(5), st.opts.window / 20);
  while (!st.calls_in_window.empty() && st.calls_in_window.front() + window <= now)
    st.calls_in_window.pop_front();
  auto at = std::max(now, st.paused_until);
  auto budget = std::max<uint32_t>(1, st.opts.budget);
  if (st.calls_in_window.size() >= budget)
    at = std::max(at, st.calls_in_window.front() + window);
  if (!st.calls_in_window.empty())
    at = std::max(at, st.calls_in_window.back() + window / budget);
  return at;
}

// Records the replies one by one (the author by name, cached by the Slack
// port), then says whether all of them were stored.
void deliver(poller_pointer self, std::string thread_id, std::shared_ptr<std::vector<slack::slack_event>> found,
             std::shared_ptr<std::vector<json::object>> files, size_t i, std::function<void(bool)> done) {
  if (i == found->size()) {
    done(true);
    return;
  }
  std::vector<std::string> ids{(*found)[i].user};
  for (auto& id : slack::mentioned_user_ids((*found)[i].text))
    ids.push_back(id);
  self->request(self->state.slack, caf::infinite, atoms::resolve::value, ids)
    .then(
      [self, thread_id, found, files, i, done, ids](const std::vector<std::string>& names) {
        const auto& e = (*found)[i];
        json::object named;
        for (size_t k = 0; k < ids.size() && k < names.size(); ++k)
          if (!ids[k].empty())
            named[ids[k]] = names[k];
        auto name = names.empty() ? e.user : names[0];
        command cmd;
        cmd.what = verb::slack_reply;
        cmd.who = caller{"slack", "Slack", role::bot, false};
        cmd.thread_id = thread_id;
        cmd.chat_id = chat_of_thread(thread_id);
        json::object body{{"slack_ts", e.ts}, {"user_id", e.user}, {"user_name", name},
                          {"names", std::move(named)}, {"text", e.text}};
        for (auto& kv : (*files)[i])
          body[kv.key()] = kv.value();
        cmd.body = json::serialize(body);
        self->request(self->state.directory, caf::infinite, atoms::command::value, std::move(cmd))
          .then(
            [self, thread_id, found, files, i, done](const api_reply& r) {
              if (r.status >= 500) {
                done(false);
                return;
              }
              if (r.status == 201)  // new to the thread (200: it was there already)
                ++self->state.replies;
              deliver(self, thread_id, found, files, i + 1, done);
            },
            [done](caf::error&) { done(false); });
      },
      [done](caf::error&) { done(false); });
}

void on_page(poller_pointer self, const std::string& thread_id, uint8_t kind_raw, const std::string& error,
             uint64_t retry_ms, const std::string& messages, const std::string& next_cursor) {
  auto& st = self->state;
  auto now = clock_type::now();
  auto finish = [self] {
    self->state.in_flight = false;
    tick(self);
  };
  auto it = st.threads.find(thread_id);
  auto kind = static_cast<slack::failure_kind>(kind_raw);
  if (kind != slack::failure_kind::none) {
    ++st.failures;
    switch (kind) {
      case slack::failure_kind::rate_limited:  // Slack said when: nobody polls sooner
        st.paused_until = now + std::max(std::chrono::milliseconds(retry_ms), std::chrono::milliseconds(1000));
        break;
      case slack::failure_kind::token_bad:
        st.paused_until = now + std::chrono::seconds(30);
        break;
      default:
        if (it != st.threads.end()) {
          auto& t = it->second;
          if (error == "thread_not_found") {  // the parent is gone from Slack: nothing more will come
            st.threads.erase(it);
            break;
          }
          // A channel gone unusable, or a transient failure: later, not never.
          t.interval = kind == slack::failure_kind::transient ? std::max(t.interval, st.opts.min_interval)
                                                              : st.opts.max_interval;
          t.cursor.clear();
          t.scan_max.clear();
          t.due = now + t.interval;
        }
    }
    finish();
    return;
  }
  if (it == st.threads.end()) {  // done meanwhile
    finish();
    return;
  }
  auto found = std::make_shared<std::vector<slack::slack_event>>();
  auto stored_files = std::make_shared<std::vector<json::object>>();  // per found reply: files, file_notes
  boost::system::error_code ec;
  auto parsed = json::parse(messages, ec);
  auto& t = it->second;
  if (!ec && parsed.is_array())
    for (const auto& m : parsed.as_array()) {
      if (!m.is_object())
        continue;
      auto e = slack::reply_of_message(m.as_object(), t.channel);
      auto* ts = m.as_object().if_contains("ts");
      if (ts && ts->is_string() && slack::ts_less(t.scan_max.empty() ? t.watermark : t.scan_max, ts->as_string()))
        t.scan_max = std::string(ts->as_string());
      if (e.what == slack::slack_event::kind::reply && e.thread_ts == t.parent_ts &&
          slack::ts_less(t.watermark, e.ts)) {
        found->push_back(std::move(e));
        stored_files->push_back(json::object{
          {"files", m.as_object().contains("backline_files") ? m.at("backline_files") : json::value(json::array{})},
          {"file_notes",
           m.as_object().contains("backline_file_notes") ? m.at("backline_file_notes") : json::value(json::array{})}});
      }
    }
  auto more = !next_cursor.empty();
  deliver(self, thread_id, found, stored_files, 0, [self, thread_id, found, more, next_cursor, finish](bool stored) {
    auto& st = self->state;
    auto it = st.threads.find(thread_id);
    if (it != st.threads.end()) {
      auto& t = it->second;
      auto now = clock_type::now();
      if (!stored) {  // read it again: nothing moves on before it is recorded
        t.cursor.clear();
        t.scan_max.clear();
        t.due = now + st.opts.min_interval;
      } else if (more) {
        t.cursor = next_cursor;
        t.due = now;  // the rest of the scan first
      } else {
        if (!t.scan_max.empty() && slack::ts_less(t.watermark, t.scan_max))
          t.watermark = t.scan_max;
        t.cursor.clear();
        t.scan_max.clear();
        // Activity brings the next look closer; quiet doubles the wait.
        t.interval = !found->empty() ? st.opts.min_interval
                                     : std::min(st.opts.max_interval, std::max(st.opts.min_interval, t.interval * 2));
        t.due = now + t.interval;
      }
    }
    finish();
  });
}

void tick(poller_pointer self) {
  auto& st = self->state;
  if (st.in_flight || st.threads.empty())
    return;
  auto now = clock_type::now();
  auto slot = next_slot(st, now);
  // Among the threads due, the one most overdue counted in its own
  // intervals: an active thread (short interval) soon outranks a quiet one,
  // yet none starves when the budget is short. Ties: the most recent activity.
  watched_thread* best = nullptr;
  std::string best_id;
  double best_score = -1;
  auto soonest = clock_type::time_point::max();
  for (auto& [id, t] : st.threads) {
    if (t.due > now) {
      soonest = std::min(soonest, t.due);
      continue;
    }
    auto interval = std::max<double>(1, static_cast<double>(t.interval.count()));
    auto score = std::chrono::duration<double, std::milli>(now - t.due).count() / interval;
    if (best == nullptr || score > best_score || (score == best_score && t.last_activity > best->last_activity)) {
      best = &t;
      best_id = id;
      best_score = score;
    }
  }
  if (best == nullptr) {
    schedule(self, std::max(slot, soonest));
    return;
  }
  if (slot > now) {
    schedule(self, slot);
    return;
  }
  st.in_flight = true;
  st.calls_in_window.push_back(now);
  ++st.calls;
  self->request(st.worker, caf::infinite, atoms::poll::value, best_id, best->channel, best->parent_ts, best->watermark,
                best->cursor, st.opts.page)
    .then(
      [self, best_id](uint8_t kind, const std::string& error, uint64_t retry_ms, const std::string& messages,
                      const std::string& next) { on_page(self, best_id, kind, error, retry_ms, messages, next); },
      [self](caf::error&) {
        self->state.in_flight = false;
        ++self->state.failures;
        tick(self);
      });
}

poller_actor::behavior_type poller_behavior(poller_pointer self, poller_options opts, directory_actor directory,
                                            slack_port_actor slack) {
  self->state.opts = opts;
  self->state.directory = std::move(directory);
  self->state.slack = std::move(slack);
  self->state.worker = self->spawn<caf::detached + caf::linked>(worker_behavior, opts);
  return {
    [self](atoms::watch, const std::string& thread, const std::string& channel, const std::string& parent_ts) {
      auto& st = self->state;
      auto now = clock_type::now();
      auto [it, added] = st.threads.try_emplace(thread);
      if (added) {
        auto& t = it->second;
        t.channel = channel;
        t.parent_ts = parent_ts;
        t.watermark = parent_ts;  // everything in the thread is read once
        t.interval = st.opts.min_interval;
        t.due = now + st.opts.min_interval;
        t.last_activity = now;
      }
      tick(self);
    },
    [self](atoms::active, const std::string& thread) {
      auto& st = self->state;
      if (auto it = st.threads.find(thread); it != st.threads.end()) {
        auto now = clock_type::now();
        it->second.last_activity = now;
        it->second.interval = st.opts.min_interval;
        it->second.due = std::min(it->second.due, now + st.opts.min_interval);
        tick(self);
      }
    },
    [self](atoms::unwatch, const std::string& thread) { self->state.threads.erase(thread); },
    [self](atoms::tick) { tick(self); },
    [self](atoms::stats) {
      auto& st = self->state;
      next_slot(st, clock_type::now());  // drops calls older than the window
      return json::serialize(json::object{{"watched", st.threads.size()},
                                          {"calls", st.calls},
                                          {"calls_in_window", st.calls_in_window.size()},
                                          {"replies", st.replies},
                                          {"failures", st.failures}});
    },
  };
}

} // namespace

namespace inbox {

poller_actor spawn_poller(caf::actor_system& sys, poller_options opts, directory_actor directory,
                          slack_port_actor slack) {
  return sys.spawn(poller_behavior, std::move(opts), std::move(directory), std::move(slack));
}

} // namespace inbox
} // namespace backline

// The Slack port over the Web API. The port routes each outbound post to the
// actor of its channel; a channel actor keeps its queue in order per thread,
// the threads taking turns, and sends one post at a time, paced to Slack's
// per-channel rate. The blocking Web API calls run on detached caller actors,
// never on CAF's scheduler; a dispatcher hands each channel's next post to
// whichever caller is free, so all callers serve all channels.

#include <algorithm>
#include <cctype>
#include <deque>
#include <map>
#include <set>
#include <unordered_map>

#include "actors/fair_queue.hpp"
#include "actors/persist.hpp"
#include "actors/thread_name.hpp"
#include "backline/file_store.hpp"
#include "slack/directory.hpp"
#include "slack/format.hpp"
#include "slack/web_client.hpp"

namespace json = boost::json;

namespace backline {
namespace {

using clock_type = std::chrono::steady_clock;

/// What a caller reports for one post: the outcome and, when ok, the ts;
/// for a retryable failure, how long to wait (ms; 0 = back off).
using caller_actor = caf::typed_actor<
  caf::replies_to<atoms::post, outbound_post>::with<reply_status, std::string, uint64_t, uint8_t>,
  // users.info: the display name, or "" when Slack did not say.
  caf::replies_to<atoms::resolve, std::string>::with<std::string>,
  // users.conversations, every page: (status, JSON array of {id, name}).
  caf::replies_to<atoms::list>::with<reply_status, std::string>,
  // usergroups.list and users.list, every page: (status, JSON array of mention candidates).
  caf::replies_to<atoms::mentions>::with<reply_status, std::string>>;

// Who @names in an agent's text are: user groups by handle (usergroups.list)
// and people by name, display name or real name (users.list), lower-cased.
struct workspace_names {
  std::unordered_map<std::string, std::string> group_by_handle;
  std::unordered_map<std::string, std::string> user_by_name;
  clock_type::time_point fetched{};
  bool ever = false;
};

// The names as every caller sees them: replaced whole, never changed.
using names_snapshot = std::shared_ptr<const workspace_names>;

} // namespace
} // namespace backline

// Only ever sent between the Slack port's own actors, in one process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(backline::names_snapshot)

namespace backline {
namespace {

// One keeper of the workspace's names for all callers, so that however many
// callers there are, the names are fetched once (usergroups.list and
// users.list are limited to about 20 calls a minute): a caller asks it for
// the names a post's mentions need and waits; asks queue behind a refresh
// under way and get its result.
using names_actor = caf::typed_actor<
  // The names, refreshed first if the mentions need it.
  caf::replies_to<atoms::mentions, std::vector<mention>>::with<names_snapshot>,
  // A user group's handle by its id ("" when Slack does not know it).
  caf::replies_to<atoms::resolve, std::string>::with<std::string>>;

struct names_state {
  names_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "slack_names";
  std::unique_ptr<slack::web_client> client;
  workspace_names names;
  names_snapshot snapshot = std::make_shared<const workspace_names>();
};

struct caller_state {
  caller_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "slack_caller";
  std::unique_ptr<slack::web_client> client;
  std::shared_ptr<file_store> files;
  names_actor names;  // the shared keeper
  names_snapshot known = std::make_shared<const workspace_names>();  // the last names it had
  // Files uploaded for a post whose files.completeUploadExternal got no
  // answer (message id -> file ids): the retry looks for them in Slack, or
  // completes these same files, instead of uploading them again. (A retry
  // may go to another caller: that one reads the durable note in `files`.)
  std::unordered_map<std::string, std::vector<std::string>> completing;
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Refreshes the names when a post mentions someone by name: every 5 minutes,
// or after 30 s when a name was not found (someone new joined). A failed
// lookup leaves the old names: the message goes out anyway, the unknown
// @name stays as text.
bool mentions_by_name(const std::vector<mention>& mentions) {
  return std::any_of(mentions.begin(), mentions.end(), [](const mention& m) { return m.kind == "name"; });
}

void refresh_names(names_state& st, const std::vector<mention>& mentions) {
  if (!mentions_by_name(mentions) || !st.client)
    return;
  auto& n = st.names;
  auto age = clock_type::now() - n.fetched;
  bool unknown = std::any_of(mentions.begin(), mentions.end(), [&](const mention& m) {
    auto h = lower(m.handle);
    return m.kind == "name" && !n.group_by_handle.count(h) && !n.user_by_name.count(h);
  });
  if (n.ever && age < std::chrono::minutes(5) && !(unknown && age > std::chrono::seconds(30)))
    return;
  n.fetched = clock_type::now();
  workspace_names fresh;
  auto groups = st.client->call("usergroups.list", {{"include_disabled", false}});
  if (!groups.ok())
    return;
  if (auto* list = groups.body.if_contains("usergroups"); list && list->is_array())
    for (const auto& g : list->as_array())
      if (g.is_object() && g.as_object().contains("handle") && g.as_object().contains("id"))
        fresh.group_by_handle[lower(g.at("handle").as_string())] = std::string(g.at("id").as_string());
  std::string cursor;
  for (int page = 0; page < 50; ++page) {
    json::object args{{"limit", 200}};
    if (!cursor.empty())
      args["cursor"] = cursor;
    auto users = st.client->call("users.list", args);
    if (!users.ok())
      return;
    if (auto* members = users.body.if_contains("members"); members && members->is_array())
      for (const auto& m : members->as_array()) {
        if (!m.is_object() || !m.as_object().contains("id"))
          continue;
        auto& u = m.as_object();
        if (auto* deleted = u.if_contains("deleted"); deleted && deleted->is_bool() && deleted->as_bool())
          continue;
        auto id = std::string(u.at("id").as_string());
        auto add = [&](const json::value* v) {
          if (v && v->is_string() && !v->as_string().empty())
            fresh.user_by_name.try_emplace(lower(v->as_string()), id);
        };
        add(u.if_contains("name"));
        if (auto* profile = u.if_contains("profile"); profile && profile->is_object()) {
          add(profile->as_object().if_contains("display_name"));
          add(profile->as_object().if_contains("real_name"));
        }
        add(u.if_contains("real_name"));
      }
    cursor = slack::next_cursor_of(users.body);
    if (cursor.empty())
      break;
  }
  fresh.fetched = n.fetched;
  fresh.ever = true;
  n = std::move(fresh);
  st.snapshot = std::make_shared<const workspace_names>(n);
}

// A user group's handle by its id (usergroups.list, refreshed as names are);
// "" when Slack does not know it.
std::string group_handle(names_state& st, const std::string& id) {
  auto& n = st.names;
  auto find = [&]() -> std::string {
    for (const auto& [handle, gid] : n.group_by_handle)
      if (gid == id)
        return handle;
    return {};
  };
  auto age = clock_type::now() - n.fetched;
  if (auto h = find(); !h.empty() && age < std::chrono::minutes(5))
    return h;
  if (st.client && (!n.ever || age > std::chrono::seconds(30))) {
    auto groups = st.client->call("usergroups.list", {{"include_disabled", true}});
    if (groups.ok()) {
      if (auto* list = groups.body.if_contains("usergroups"); list && list->is_array())
        for (const auto& g : list->as_array())
          if (g.is_object() && g.as_object().contains("handle") && g.as_object().contains("id"))
            n.group_by_handle[lower(g.at("handle").as_string())] = std::string(g.at("id").as_string());
      st.snapshot = std::make_shared<const workspace_names>(n);
    }
  }
  return find();
}

names_actor::behavior_type names_behavior(names_actor::stateful_pointer<names_state> self, slack_port_options opts) {
  name_detached_thread(self, "slack.names");
  if (auto client = slack::web_client::make({opts.api_url, opts.token, opts.timeout}))
    self->state.client = std::move(client.value());
  return {
    [self](atoms::mentions, const std::vector<mention>& mentions) {
      refresh_names(self->state, mentions);
      return self->state.snapshot;
    },
    [self](atoms::resolve, const std::string& group_id) { return group_handle(self->state, group_id); },
  };
}

// The names a post's mentions need, from the keeper (a blocking ask: callers
// run detached, on their own threads). On no answer, the last names known.
const workspace_names& names_for(caller_actor::stateful_pointer<caller_state> self, const outbound_post& p) {
  auto& st = self->state;
  if (!mentions_by_name(p.mentions))
    return *st.known;
  caf::scoped_actor ask{self->system()};
  // A refresh is a few calls of at most the client's timeout each.
  ask->request(st.names, std::chrono::seconds(60), atoms::mentions::value, p.mentions)
    .receive([&](const names_snapshot& names) { st.known = names; }, [](const caf::error&) {});
  return *st.known;
}

slack::directory_lookup lookup_of(const workspace_names& n) {
  slack::directory_lookup d;
  d.usergroup_id = [&n](std::string_view handle) -> std::optional<std::string> {
    if (auto i = n.group_by_handle.find(lower(handle)); i != n.group_by_handle.end())
      return i->second;
    return std::nullopt;
  };
  d.user_id = [&n](std::string_view name) -> std::optional<std::string> {
    if (auto i = n.user_by_name.find(lower(name)); i != n.user_by_name.end())
      return i->second;
    return std::nullopt;
  };
  return d;
}

// Posts one message: text (split into parts past Slack's limit) or files
// with the text as their comment, so text and files are one Slack message.
// Returns the outcome, the ts of the (first) message, and the failure kind.
// Finds a message we already posted by the outbox id in its Slack metadata:
// in the thread for a reply, in the channel's recent history for a parent.
// Returns its ts, "" when Slack does not have it, or the failed call.
std::pair<std::string, slack::call_result> find_posted(caller_state& st, const outbound_post& p,
                                                      const std::vector<std::string>& file_ids = {}) {
  std::string cursor;
  for (int page = 0; page < 20; ++page) {
    json::object args{{"channel", p.channel_id}, {"include_all_metadata", true}, {"limit", 200}};
    if (!p.thread_ts.empty())
      args["ts"] = p.thread_ts;
    if (!cursor.empty())
      args["cursor"] = cursor;
    auto r = st.client->call(p.thread_ts.empty() ? "conversations.history" : "conversations.replies", args);
    if (!r.ok())
      return {std::string{}, r};
    if (auto* msgs = r.body.if_contains("messages"); msgs && msgs->is_array())
      for (const auto& m : msgs->as_array()) {
        if (!file_ids.empty() && m.is_object())  // a message with files: found by one of its files
          if (auto* fs = m.as_object().if_contains("files"); fs && fs->is_array())
            for (const auto& f : fs->as_array())
              if (auto* id = f.is_object() ? f.as_object().if_contains("id") : nullptr; id && id->is_string())
                if (std::find(file_ids.begin(), file_ids.end(), id->as_string()) != file_ids.end())
                  return {std::string(m.at("ts").as_string()), {}};
        auto* meta = m.is_object() ? m.as_object().if_contains("metadata") : nullptr;
        if (meta == nullptr || !meta->is_object())
          continue;
        auto* payload = meta->as_object().if_contains("event_payload");
        if (payload && payload->is_object()) {
          auto* id = payload->as_object().if_contains("outbox_id");
          if (id && id->is_string() && id->as_string() == p.message_id)
            return {std::string(m.at("ts").as_string()), {}};
        }
      }
    cursor = slack::next_cursor_of(r.body);
    if (cursor.empty() || p.thread_ts.empty())  // a parent is among the recent messages or not at all
      break;
  }
  return {std::string{}, {}};
}

std::tuple<reply_status, std::string, uint64_t, uint8_t> post_once(caller_actor::stateful_pointer<caller_state> self,
                                                                   const outbound_post& p) {
  auto& st = self->state;
  auto fail = [](const slack::call_result& r) {
    auto wait = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(r.retry_after).count());
    return std::make_tuple(reply_status{errc::unavailable, r.error}, std::string{}, wait,
                           static_cast<uint8_t>(r.failure));
  };
  if (!p.reaction.empty()) {
    auto r = st.client->call("reactions.add", {{"channel", p.channel_id}, {"timestamp", p.thread_ts}, {"name", p.reaction}});
    if (!r.ok() && r.error != "already_reacted")
      return fail(r);
    return {reply_status{}, p.thread_ts, 0, 0};
  }
  if (p.recheck && p.files.empty()) {
    // The last attempt may have reached Slack: never post it twice.
    auto [ts, failed] = find_posted(st, p);
    if (!failed.ok())
      return fail(failed);
    if (!ts.empty())
      return {reply_status{}, ts, 0, 0};
  }
  auto text = slack::to_slack_text(p.text, lookup_of(names_for(self, p)));
  json::object metadata{{"event_type", "backline_outbox"},
                        {"event_payload", json::object{{"outbox_id", p.message_id}, {"thread_id", p.thread_id}}}};
  if (!p.files.empty()) {
    json::array uploaded;
    auto pending = st.completing.find(p.message_id);
    if (pending == st.completing.end())  // after a restart: the durable note, if any
      if (auto noted = st.files->uploaded(p.message_id); !noted.empty())
        pending = st.completing.emplace(p.message_id, std::move(noted)).first;
    if (pending != st.completing.end()) {
      // An earlier attempt uploaded these files and may have shared them.
      auto [ts, failed] = find_posted(st, p, pending->second);
      if (!failed.ok())
        return fail(failed);
      if (!ts.empty()) {
        st.completing.erase(pending);
        return {reply_status{}, ts, 0, 0};
      }
      for (size_t i = 0; i < pending->second.size() && i < p.files.size(); ++i)
        uploaded.push_back(json::object{{"id", pending->second[i]}, {"title", p.files[i].name}});
    }
    for (size_t i = uploaded.size(); i < p.files.size(); ++i) {
      const auto& f = p.files[i];
      auto stored = st.files->get(f.id);
      if (!stored)
        return {reply_status{errc::not_found, "file " + f.id + " is gone"}, {}, 0,
                static_cast<uint8_t>(slack::failure_kind::rejected)};
      auto url = st.client->call("files.getUploadURLExternal",
                                 {{"filename", f.name}, {"length", stored->bytes.size()}});
      if (!url.ok())
        return fail(url);
      auto up = st.client->upload(std::string(url.body.at("upload_url").as_string()), stored->bytes, f.mimetype);
      if (!up.ok())
        return fail(up);
      uploaded.push_back(json::object{{"id", url.body.at("file_id")}, {"title", f.name}});
    }
    json::object args{{"files", uploaded}, {"channel_id", p.channel_id}, {"initial_comment", text}};
    if (!p.thread_ts.empty())
      args["thread_ts"] = p.thread_ts;
    std::vector<std::string> ids;
    for (const auto& u : uploaded)
      ids.emplace_back(u.at("id").as_string());
    // Durably noted before Slack shares them: a crash from here on finds
    // the message by its files instead of sending it twice.
    if (auto noted = st.files->put_uploaded(p.message_id, ids); !noted) {
      slack::call_result later;
      later.failure = slack::failure_kind::transient;
      later.error = noted.message();
      return fail(later);
    }
    auto done = st.client->call("files.completeUploadExternal", args);
    if (!done.ok()) {
      if (done.failure == slack::failure_kind::transient)
        st.completing[p.message_id] = std::move(ids);  // it may have gone through
      else if (done.error == "file_not_found" && st.completing.count(p.message_id)) {
        slack::call_result later;  // Slack shares files asynchronously: look again later
        later.failure = slack::failure_kind::transient;
        later.error = "the files are completed but not yet shown in the thread";
        return fail(later);
      }
      else
        st.completing.erase(p.message_id);
      return fail(done);
    }
    st.completing.erase(p.message_id);
    return {reply_status{}, std::string{}, 0, 0};
  }
  std::string first_ts;
  for (const auto& part : slack::split_for_slack(text.empty() ? std::string(" ") : text)) {
    json::object args{{"channel", p.channel_id}, {"text", part}, {"unfurl_links", false}, {"metadata", metadata}};
    if (!p.thread_ts.empty())
      args["thread_ts"] = p.thread_ts;
    else if (!first_ts.empty())
      args["thread_ts"] = first_ts;  // the rest of a long parent goes into its thread
    auto r = st.client->call("chat.postMessage", args);
    if (!r.ok())
      return fail(r);
    if (first_ts.empty())
      first_ts = std::string(r.body.at("ts").as_string());
  }
  return {reply_status{}, first_ts, 0, 0};
}

// Every page of a listing method: the arrays under `key`, joined. At most 50 pages.
std::pair<json::array, slack::call_result> every_page(caller_state& st, std::string_view method, json::object args,
                                                      std::string_view key) {
  json::array out;
  std::string cursor;
  for (int page = 0; page < 50; ++page) {
    if (!cursor.empty())
      args["cursor"] = cursor;
    auto r = st.client->call(method, args);
    if (!r.ok())
      return {json::array{}, r};
    if (auto* items = r.body.if_contains(key); items && items->is_array())
      for (auto& item : items->as_array())
        out.push_back(item);
    cursor = slack::next_cursor_of(r.body);
    if (cursor.empty())
      break;
  }
  return {std::move(out), {}};
}

caller_actor::behavior_type caller_behavior(caller_actor::stateful_pointer<caller_state> self,
                                            slack_port_options opts, std::shared_ptr<file_store> files,
                                            names_actor names) {
  name_detached_thread(self, "slack.call");
  self->state.names = std::move(names);
  auto client = slack::web_client::make({opts.api_url, opts.token, opts.timeout});
  if (client)
    self->state.client = std::move(client.value());
  self->state.files = std::move(files);
  return {
    [self](atoms::post, const outbound_post& p) -> caf::result<reply_status, std::string, uint64_t, uint8_t> {
      if (!self->state.client)
        return {reply_status{errc::invalid_argument, "the Slack API URL is malformed"}, std::string{}, uint64_t{0},
                static_cast<uint8_t>(slack::failure_kind::rejected)};
      auto [st, ts, wait, kind] = post_once(self, p);
      return {st, ts, wait, kind};
    },
    [self](atoms::resolve, const std::string& user_id) -> caf::result<std::string> {
      if (!self->state.client)
        return std::string{};
      if (!user_id.empty() && user_id.front() == 'S')  // a user group: its handle, from the keeper of names
        return self->delegate(self->state.names, atoms::resolve::value, user_id);
      auto r = self->state.client->call("users.info", {{"user", user_id}});
      if (!r.ok() || !r.body.contains("user") || !r.body.at("user").is_object())
        return std::string{};
      auto& u = r.body.at("user").as_object();
      if (auto* profile = u.if_contains("profile"); profile && profile->is_object())
        for (auto key : {"display_name", "real_name"})
          if (auto* v = profile->as_object().if_contains(key); v && v->is_string() && !v->as_string().empty())
            return std::string(v->as_string());
      if (auto* v = u.if_contains("real_name"); v && v->is_string() && !v->as_string().empty())
        return std::string(v->as_string());
      return std::string{};
    },
    [self](atoms::list) -> caf::result<reply_status, std::string> {
      if (!self->state.client)
        return {reply_status{errc::invalid_argument, "the Slack API URL is malformed"}, std::string{}};
      json::array out;
      std::string cursor;
      for (int page = 0; page < 50; ++page) {
        json::object args{{"types", "public_channel,private_channel"}, {"exclude_archived", true}, {"limit", 999}};
        if (!cursor.empty())
          args["cursor"] = cursor;
        auto r = self->state.client->call("users.conversations", args);
        if (!r.ok())
          return {reply_status{errc::unavailable, "Slack: " + r.error}, std::string{}};
        if (auto* chans = r.body.if_contains("channels"); chans && chans->is_array())
          for (const auto& c : chans->as_array())
            if (c.is_object() && c.as_object().contains("id"))
              out.push_back(json::object{{"id", c.at("id")}, {"name", c.as_object().contains("name") ? c.at("name") : json::value("")}});
        cursor = slack::next_cursor_of(r.body);
        if (cursor.empty())
          break;
      }
      return {reply_status{}, json::serialize(out)};
    },
    [self](atoms::mentions) -> caf::result<reply_status, std::string> {
      if (!self->state.client)
        return {reply_status{errc::invalid_argument, "the Slack API URL is malformed"}, std::string{}};
      auto [groups, failed_groups] = every_page(self->state, "usergroups.list", {}, "usergroups");
      if (!failed_groups.ok())
        return {reply_status{errc::unavailable, "Slack: usergroups.list: " + failed_groups.error}, std::string{}};
      auto [members, failed_users] = every_page(self->state, "users.list", {{"limit", 200}}, "members");
      if (!failed_users.ok())
        return {reply_status{errc::unavailable, "Slack: users.list: " + failed_users.error}, std::string{}};
      return {reply_status{}, json::serialize(slack::to_json(slack::mention_candidates(groups, members)))};
    },
  };
}

// -- the dispatcher: each post to whichever caller is free -------------------

using dispatcher_actor =
  caf::typed_actor<caf::replies_to<atoms::post, outbound_post>::with<reply_status, std::string, uint64_t, uint8_t>>;

struct waiting_post {
  outbound_post post;
  caf::typed_response_promise<reply_status, std::string, uint64_t, uint8_t> promise;
};

struct dispatcher_state {
  dispatcher_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "slack_dispatcher";
  std::vector<caller_actor> idle;  // the last one freed is taken first: its connection and caches are warm
  std::deque<waiting_post> waiting;  // at most one per channel (a channel sends one post at a time): in turn
};

void dispatch(dispatcher_actor::stateful_pointer<dispatcher_state> self) {
  auto& st = self->state;
  while (!st.idle.empty() && !st.waiting.empty()) {
    auto caller = std::move(st.idle.back());
    st.idle.pop_back();
    auto next = std::move(st.waiting.front());
    st.waiting.pop_front();
    auto rp = next.promise;
    auto freed = [self, caller] {  // the caller takes the next post waiting
      self->state.idle.push_back(caller);
      dispatch(self);
    };
    self->request(caller, caf::infinite, atoms::post::value, std::move(next.post))
      .then(
        [rp, freed](const reply_status& status, const std::string& ts, uint64_t wait, uint8_t kind) mutable {
          rp.deliver(status, ts, wait, kind);
          freed();
        },
        [rp, freed](caf::error& e) mutable {
          rp.deliver(std::move(e));
          freed();
        });
  }
}

dispatcher_actor::behavior_type dispatcher_behavior(dispatcher_actor::stateful_pointer<dispatcher_state> self,
                                                    std::vector<caller_actor> callers) {
  self->state.idle = std::move(callers);
  return {
    [self](atoms::post, outbound_post& p) -> caf::result<reply_status, std::string, uint64_t, uint8_t> {
      auto rp = self->make_response_promise<reply_status, std::string, uint64_t, uint8_t>();
      self->state.waiting.push_back({std::move(p), rp});
      dispatch(self);
      return rp;
    },
  };
}

// -- one actor per channel ---------------------------------------------------

struct queued_post {
  outbound_post post;
  caf::typed_response_promise<reply_status, std::string> promise;
};

struct channel_state {
  channel_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "slack_channel";
  slack_port_options opts;
  dispatcher_actor dispatcher;  // hands the post to a free caller
  slack_port_actor port;      // told of the queue's length and the token's state
  std::string channel_id;
  bool token_rejected = false;
  fair_queue<queued_post> queue;  // in order per thread, threads taking turns
  bool sending = false;
  double tokens = 0;                  // the pacing bucket
  clock_type::time_point refilled;
  std::chrono::milliseconds backoff{0};
  // What the port last heard of this channel, and when (see report).
  uint64_t reported_queued = 0;
  bool reported_rejected = false;
  clock_type::time_point reported_at{};
  bool report_due = false;  // a delayed report is on its way
};

using channel_actor = caf::typed_actor<caf::replies_to<atoms::post, outbound_post>::with<reply_status, std::string>,
                                       caf::reacts_to<atoms::flush>,
                                       caf::reacts_to<atoms::notify>>;  // a delayed report is due
using channel_pointer = channel_actor::stateful_pointer<channel_state>;

void send_next(channel_pointer self);

// A busy channel's length changes with every post: the port hears it at
// most every report_interval (a message to the port per post cost as much as
// the post's own hop). What health says at once: the queue emptied or
// filled, the token rejected or taken again.
constexpr auto report_interval = std::chrono::milliseconds(100);

void report(channel_pointer self) {
  auto& st = self->state;
  if (!st.port)
    return;
  const auto queued = static_cast<uint64_t>(st.queue.size());
  if (queued == st.reported_queued && st.token_rejected == st.reported_rejected)
    return;
  const bool health_changes = (queued == 0) != (st.reported_queued == 0) || st.token_rejected != st.reported_rejected;
  const auto now = clock_type::now();
  if (!health_changes && now - st.reported_at < report_interval) {
    if (!st.report_due) {
      st.report_due = true;
      self->delayed_send(self, report_interval, atoms::notify::value);
    }
    return;
  }
  st.reported_queued = queued;
  st.reported_rejected = st.token_rejected;
  st.reported_at = now;
  self->send(st.port, atoms::notify::value, st.channel_id, queued, st.token_rejected);
}

void retry_later(channel_pointer self, std::chrono::milliseconds wait) {
  self->state.sending = true;  // nothing else goes out meanwhile: order is kept
  self->delayed_send(self, wait, atoms::flush::value);
}

void send_next(channel_pointer self) {
  auto& st = self->state;
  if (st.sending || st.queue.empty())
    return;
  // Token bucket: min_interval per post sustained, `burst` at once. Slack
  // keeps its own bucket per channel, counting from when each post reached
  // it, somewhere between our send and its answer (a post may wait behind
  // another channel's at the caller, or on the network). Ours refills only
  // from the answer on (see the reply below), so it is never fuller than
  // Slack's and a post never goes out before Slack has a token for it.
  auto now = clock_type::now();
  auto interval = std::max<double>(1, static_cast<double>(st.opts.min_interval.count()));
  st.tokens = std::min<double>(st.opts.burst,
                               st.tokens + std::chrono::duration<double, std::milli>(now - st.refilled).count() / interval);
  st.refilled = now;
  if (st.tokens < 1) {
    auto wait = std::chrono::milliseconds(static_cast<int64_t>((1 - st.tokens) * interval) + 1);
    retry_later(self, wait);
    return;
  }
  st.tokens -= 1;
  st.sending = true;
  self->request(st.dispatcher, caf::infinite, atoms::post::value, st.queue.front().post)
    .then(
      [self](const reply_status& status, const std::string& ts, uint64_t wait_ms, uint8_t kind_raw) {
        auto& st = self->state;
        st.sending = false;
        st.refilled = clock_type::now();  // no refill while the call was on its way: Slack may have taken it just now
        auto kind = static_cast<slack::failure_kind>(kind_raw);
        st.token_rejected = kind == slack::failure_kind::token_bad;
        if (status.ok()) {
          st.backoff = std::chrono::milliseconds(0);
          auto done = st.queue.pop_front();
          report(self);  // before the answer: whoever hears back sees the port's health (emptied, token) as it now is
          done.promise.deliver(reply_status{}, ts);
          send_next(self);
          return;
        }
        report(self);
        switch (kind) {
          case slack::failure_kind::rate_limited:  // Slack said when: never sooner
            retry_later(self, std::chrono::milliseconds(std::max<uint64_t>(wait_ms, 1000)));
            return;
          case slack::failure_kind::transient:
            // A timeout or a cut connection may hide a post Slack accepted.
            st.queue.front().post.recheck = true;
            [[fallthrough]];
          case slack::failure_kind::token_bad:  // keep everything queued until the token works
            st.backoff = std::min(st.opts.max_backoff, std::max(std::chrono::milliseconds(500), st.backoff * 2));
            retry_later(self, st.backoff);
            return;
          case slack::failure_kind::channel_unusable: {
            // This channel only: its queued messages fail visibly, with the reason.
            auto reason = reply_status{errc::unavailable, "Slack channel unusable: " + status.message};
            auto failed = st.queue.take_all();
            report(self);
            for (auto& q : failed)
              q.promise.deliver(reason, std::string{});
            return;
          }
          default:
            auto refused = st.queue.pop_front();
            report(self);
            refused.promise.deliver(reply_status{errc::invalid_argument, "Slack refused the message: " + status.message},
                                    std::string{});
            send_next(self);
        }
      },
      [self](caf::error&) {
        self->state.sending = false;
        self->state.refilled = clock_type::now();
        retry_later(self, std::chrono::milliseconds(1000));
      });
}

channel_actor::behavior_type channel_behavior(channel_pointer self, slack_port_options opts,
                                              dispatcher_actor dispatcher, slack_port_actor port,
                                              std::string channel_id) {
  self->state.opts = opts;
  self->state.dispatcher = std::move(dispatcher);
  self->state.port = std::move(port);
  self->state.channel_id = std::move(channel_id);
  self->state.tokens = opts.burst;
  self->state.refilled = clock_type::now();
  return {
    [self](atoms::post, outbound_post& p) -> caf::result<reply_status, std::string> {
      auto rp = self->make_response_promise<reply_status, std::string>();
      auto thread = p.thread_id;
      self->state.queue.push(thread, {std::move(p), rp});
      report(self);
      send_next(self);
      return rp;
    },
    [self](atoms::flush) {
      self->state.sending = false;
      send_next(self);
    },
    [self](atoms::notify) {
      self->state.report_due = false;
      report(self);
    },
  };
}

// -- the port: routes posts to their channel ---------------------------------

struct port_state {
  port_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "slack_port";
  slack_port_options opts;
  std::vector<caller_actor> callers;
  dispatcher_actor dispatcher;  // posts go to whichever caller is free
  std::unordered_map<std::string, channel_actor> channels;
  std::unordered_map<std::string, std::string> user_names;  // users.info answers, kept
  std::map<std::string, std::string> known_channels;         // id -> name, every channel ever listed
  std::unordered_map<std::string, std::pair<uint64_t, bool>> queues;  // channel -> (queued, token rejected)
  std::string mentions;                 // the last mention candidates (JSON), "" before the first
  clock_type::time_point mentions_at;   // when they were fetched
};

// Slack's user and user group listings are Tier 2 (about 20 calls a minute):
// the @-suggestions are fetched at most once a minute.
constexpr auto mentions_max_age = std::chrono::seconds(60);

slack_port_actor::behavior_type port_behavior(slack_port_actor::stateful_pointer<port_state> self,
                                              slack_port_options opts, std::shared_ptr<file_store> files) {
  self->state.opts = opts;
  auto names = self->spawn<caf::detached + caf::linked>(names_behavior, opts);
  for (size_t i = 0; i < std::max<size_t>(1, opts.callers); ++i)
    self->state.callers.push_back(self->spawn<caf::detached + caf::linked>(caller_behavior, opts, files, names));
  self->state.dispatcher = self->spawn<caf::linked>(dispatcher_behavior, self->state.callers);
  // The actor of a channel, spawned at its first post.
  auto channel_of = [self](const std::string& channel_id) {
    auto& st = self->state;
    auto i = st.channels.find(channel_id);
    if (i == st.channels.end())
      i = st.channels
            .emplace(channel_id, self->spawn<caf::linked>(channel_behavior, st.opts, st.dispatcher,
                                                           caf::actor_cast<slack_port_actor>(self), channel_id))
            .first;
    return i->second;
  };
  return {
    [self, channel_of](atoms::post, outbound_post& p) -> caf::result<reply_status, std::string> {
      return self->delegate(channel_of(p.channel_id), atoms::post::value, std::move(p));
    },
    [channel_of](atoms::route, const std::string& channel_id) {
      return caf::actor_cast<slack_channel_actor>(channel_of(channel_id));
    },
    // This port keeps no copy of what it sent (it used to keep every post,
    // for as long as the server ran): what reached Slack is in the log
    // (slack_delivered) and in Slack. The in-memory port keeps its record.
    [](atoms::sent_log) { return std::vector<outbound_post>{}; },
    [self](atoms::notify, const std::string& channel, uint64_t queued, bool token_rejected) {
      self->state.queues[channel] = {queued, token_rejected};
    },
    [self](atoms::health) -> caf::result<reply_status, uint64_t> {
      uint64_t queued = 0;
      bool rejected = false;
      for (auto& [channel, q] : self->state.queues) {
        queued += q.first;
        rejected = rejected || q.second;
      }
      if (rejected)
        return {reply_status{errc::unauthenticated, "Slack rejects the bot token; messages stay queued"}, queued};
      return {reply_status{}, queued};
    },
    // The "To" list: the channels the app is in now; a channel listed before
    // that Slack no longer gives (archived, app removed) stays, unavailable.
    [self](atoms::list) -> caf::result<reply_status, std::string> {
      auto rp = self->make_response_promise<reply_status, std::string>();
      self->request(self->state.callers.front(), caf::infinite, atoms::list::value)
        .then(
          [self, rp](const reply_status& st, const std::string& body) mutable {
            if (!st.ok()) {
              rp.deliver(st, std::string{});
              return;
            }
            std::set<std::string> now;
            json::array out;
            auto listed = json::parse(body);  // kept alive: the loop reads into it
            for (auto& c : listed.as_array()) {
              auto id = std::string(c.at("id").as_string());
              now.insert(id);
              self->state.known_channels[id] = std::string(c.at("name").as_string());
              out.push_back(json::object{{"id", id}, {"name", c.at("name")}, {"available", true}});
            }
            for (auto& [id, name] : self->state.known_channels)
              if (!now.count(id))
                out.push_back(json::object{{"id", id}, {"name", name}, {"available", false},
                                           {"reason", "Slack no longer offers this channel to the app "
                                                      "(archived, or the app was removed)"}});
            rp.deliver(reply_status{}, json::serialize(out));
          },
          [rp](caf::error& e) mutable { rp.deliver(reply_status{errc::unavailable, caf::to_string(e)}, std::string{}); });
      return rp;
    },
    [self](atoms::mentions) -> caf::result<reply_status, std::string> {
      auto& st = self->state;
      if (!st.mentions.empty() && clock_type::now() - st.mentions_at < mentions_max_age)
        return {reply_status{}, st.mentions};
      auto rp = self->make_response_promise<reply_status, std::string>();
      self->request(st.callers.back(), caf::infinite, atoms::mentions::value)
        .then(
          [self, rp](const reply_status& status, const std::string& body) mutable {
            if (status.ok()) {
              self->state.mentions = body;
              self->state.mentions_at = clock_type::now();
            }
            rp.deliver(status, body);
          },
          [rp](caf::error& e) mutable { rp.deliver(reply_status{errc::unavailable, caf::to_string(e)}, std::string{}); });
      return rp;
    },
    [self](atoms::resolve, const std::vector<std::string>& user_ids) -> caf::result<std::vector<std::string>> {
      // Cached names at once; the others from users.info, all asked together.
      struct pending {
        std::vector<std::string> names;
        size_t waiting = 0;
        caf::typed_response_promise<std::vector<std::string>> rp;
      };
      auto out = std::make_shared<pending>();
      out->names = user_ids;
      std::unordered_map<std::string, std::vector<size_t>> missing;
      for (size_t i = 0; i < user_ids.size(); ++i) {
        if (user_ids[i].empty())
          continue;
        if (auto hit = self->state.user_names.find(user_ids[i]); hit != self->state.user_names.end())
          out->names[i] = hit->second;
        else
          missing[user_ids[i]].push_back(i);
      }
      if (missing.empty())
        return out->names;
      out->rp = self->make_response_promise<std::vector<std::string>>();
      out->waiting = missing.size();
      for (auto& [id, slots] : missing) {
        auto& caller = self->state.callers[std::hash<std::string>{}(id) % self->state.callers.size()];
        auto one_done = [out] {
          if (--out->waiting == 0)
            out->rp.deliver(out->names);
        };
        self->request(caller, caf::infinite, atoms::resolve::value, id)
          .then(
            [self, out, id = id, slots = slots, one_done](const std::string& name) {
              if (!name.empty()) {
                self->state.user_names[id] = name;
                for (auto i : slots)
                  out->names[i] = name;
              }
              one_done();
            },
            [one_done](caf::error&) { one_done(); });
      }
      return out->rp;
    },
  };
}

} // namespace

namespace inbox {

slack_port_actor spawn_web_slack_port(caf::actor_system& sys, slack_port_options opts,
                                      std::shared_ptr<file_store> files) {
  return sys.spawn(port_behavior, std::move(opts), std::move(files));
}

} // namespace inbox
} // namespace backline

// `backline audit rebuild`: the global log replayed, event by event, into
// fresh state with the domain's apply functions, compared with what the
// server's actors would load from the same store.

#include <algorithm>
#include <map>
#include <set>

#include "backline/audit.hpp"
#include "backline/directory_view.hpp"
#include "backline/domain.hpp"
#include "backline/inbox.hpp"

namespace json = boost::json;

namespace backline::audit {
namespace {

template <class T>
std::string shown(const T& v) {
  if constexpr (std::is_same_v<T, bool>)
    return v ? "true" : "false";
  else if constexpr (std::is_arithmetic_v<T>)
    return std::to_string(v);
  else {
    std::string out = "\"";  // appended, not "\"" + …: GCC 12 warns wrongly (-Wrestrict) on that at -O3
    out.append(v).push_back('"');
    return out;
  }
}

std::string joined(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i)
    out += (i ? ", " : "") + items[i];
  return out + "]";
}

/// Adds "<what> <field>: the log replayed gives X, the actors would load Y" when they differ.
template <class T>
void compare(std::vector<std::string>& out, const std::string& what, const char* field, const T& replayed,
             const T& loaded) {
  if (!(replayed == loaded))
    out.push_back(what + " " + field + ": the log replayed gives " + shown(replayed) + ", the actors would load "
                  + shown(loaded));
}

/// The directory as its stored view gives it, against the directory from the whole log.
void compare_view(std::vector<std::string>& out, const inbox::directory_index& full, const inbox::directory_index& viewed) {
  const std::string what = "directory view:";
  std::set<std::string> ids;
  for (const auto& [id, e] : full.chats)
    ids.insert(id);
  for (const auto& [id, e] : viewed.chats)
    ids.insert(id);
  for (const auto& id : ids) {
    auto f = full.chats.find(id);
    auto v = viewed.chats.find(id);
    if (f == full.chats.end() || v == viewed.chats.end()) {
      out.push_back(what + " chat " + id + (f == full.chats.end() ? " is in the view, not in the log" : " is in the log, not in the view"));
      continue;
    }
    compare(out, what + " chat " + id, "resolved", f->second.resolved, v->second.resolved);
    compare(out, what + " chat " + id, "agent", f->second.agent_id, v->second.agent_id);
    compare(out, what + " chat " + id, "listing", f->second.json, v->second.json);
  }
  auto keys = [](const auto& m) {
    std::vector<std::string> k;
    for (const auto& [key, value] : m)
      k.push_back(key);
    std::sort(k.begin(), k.end());
    return k;
  };
  if (full.thread_by_slack != viewed.thread_by_slack)
    out.push_back(what + " threads by Slack ts: the log replayed gives " + joined(keys(full.thread_by_slack)) +
                  ", the view " + joined(keys(viewed.thread_by_slack)));
  if (full.open_in_slack != viewed.open_in_slack)
    out.push_back(what + " threads open in Slack: the log replayed gives " + joined(keys(full.open_in_slack)) +
                  ", the view " + joined(keys(viewed.open_in_slack)));
  if (full.threads_to_deliver != viewed.threads_to_deliver)
    out.push_back(what + " threads to deliver: the log replayed gives " + joined(full.threads_to_deliver) +
                  ", the view " + joined(viewed.threads_to_deliver));
}

} // namespace

std::vector<std::string> diff_chat(const chat_state& replayed, const chat_state& loaded) {
  std::vector<std::string> out;
  const auto what = "chat " + (replayed.id.empty() ? loaded.id : replayed.id);
  compare(out, what, "exists", replayed.exists, loaded.exists);
  compare(out, what, "status resolved", replayed.resolved, loaded.resolved);
  compare(out, what, "agent", replayed.agent_id, loaded.agent_id);
  compare(out, what, "customer", replayed.customer_id, loaded.customer_id);
  compare(out, what, "previous chat", replayed.previous_chat_id, loaded.previous_chat_id);
  compare(out, what, "threads", joined(replayed.thread_ids), joined(loaded.thread_ids));
  compare(out, what, "successor chats", joined(replayed.successor_chat_ids), joined(loaded.successor_chat_ids));
  compare(out, what, "messages", replayed.messages.size(), loaded.messages.size());
  compare(out, what, "version", replayed.version, loaded.version);
  return out;
}

std::vector<std::string> diff_thread(const thread_state& replayed, const thread_state& loaded) {
  std::vector<std::string> out;
  const auto what = "thread " + (replayed.id.empty() ? loaded.id : replayed.id);
  compare(out, what, "exists", replayed.exists, loaded.exists);
  compare(out, what, "chat", replayed.chat_id, loaded.chat_id);
  compare(out, what, "channel", replayed.channel_id, loaded.channel_id);
  compare(out, what, "status done", replayed.done, loaded.done);
  compare(out, what, "unread", replayed.unread, loaded.unread);
  compare(out, what, "Slack ts", replayed.slack_ts, loaded.slack_ts);
  compare(out, what, "pending deliveries", has_pending_delivery(replayed), has_pending_delivery(loaded));
  compare(out, what, "messages", replayed.messages.size(), loaded.messages.size());
  compare(out, what, "version", replayed.version, loaded.version);
  const size_t common = std::min(replayed.messages.size(), loaded.messages.size());
  for (size_t i = 0; i < common; ++i) {
    const auto& a = replayed.messages[i];
    const auto& b = loaded.messages[i];
    const auto m = what + " message " + std::to_string(i + 1) + " (" + a.id + ")";
    compare(out, m, "id", a.id, b.id);
    compare(out, m, "direction", a.direction, b.direction);
    compare(out, m, "delivery", a.delivery, b.delivery);
    compare(out, m, "delivery error", a.delivery_error, b.delivery_error);
    compare(out, m, "Slack ts", a.slack_ts, b.slack_ts);
    compare(out, m, "deleted", a.deleted, b.deleted);
    compare(out, m, "late", a.late, b.late);
    compare(out, m, "edited at", a.edited_at, b.edited_at);
  }
  return out;
}

result<rebuild_report> rebuild_and_compare(const event_store& store, const progress_fn& progress) {
  rebuild_report report;
  // 1. The log replayed in its global order into fresh state.
  std::map<std::string, chat_state> chats;
  std::map<std::string, thread_state> threads;
  std::map<std::string, user> users;
  status failure;
  const uint64_t total = store.head().position;
  log_scan_options opts;
  opts.threads = 2;
  auto st = scan_global_log(store, opts, [&](std::vector<indexed_record>& entries) {
    for (const auto& entry : entries) {
      const auto where = "position " + std::to_string(entry.position) + ": ";
      if (!entry.problem.empty()) {
        failure = {errc::corrupt, entry.problem};
        return false;
      }
      if (!entry.found) {
        failure = {errc::corrupt, where + "the global index points to stream " + entry.stream + " seq "
                                    + std::to_string(entry.seq) + ", which is not stored"};
        return false;
      }
      auto e = decode_event(entry.bytes);
      if (!e) {
        failure = {errc::corrupt, where + e.error().message()};
        return false;
      }
      const auto& s = e->stream;
      if (s.rfind("chat-", 0) == 0)
        apply_chat_event(chats[s.substr(5)], *e);
      else if (s.rfind("thread-", 0) == 0)
        apply_thread_event(threads[s.substr(7)], *e);
      else if (auto u = user_from_event(*e))
        users[u->id] = std::move(*u);
      ++report.events;
    }
    if (progress)
      progress("replay", report.events, total);
    return true;
  });
  if (!st)
    return st;
  if (!failure)
    return failure;
  report.chats = chats.size();
  report.threads = threads.size();
  report.users = users.size();
  auto& diffs = report.differences;

  // 2. What the server loads at start: the users table and the directory.
  auto table = inbox::load_users(store);
  if (!table)
    return table.error();
  std::set<std::string> user_ids;
  for (const auto& [id, u] : users)
    user_ids.insert(id);
  for (const auto& [id, u] : (*table)->by_id)
    user_ids.insert(id);
  for (const auto& id : user_ids) {
    auto r = users.find(id);
    auto l = (*table)->by_id.find(id);
    if (r == users.end() || l == (*table)->by_id.end()) {
      diffs.push_back("user " + id + (r == users.end() ? ": the actors would load it, the log replayed has no such user"
                                                        : ": the log has it, the actors would not load it"));
      continue;
    }
    compare(diffs, "user " + id, "name", r->second.name, l->second.name);
    compare(diffs, "user " + id, "role", std::string(to_string(r->second.kind)), std::string(to_string(l->second.kind)));
    compare(diffs, "user " + id, "inbox access", r->second.inbox_access, l->second.inbox_access);
    compare(diffs, "user " + id, "token hash", r->second.token_hash, l->second.token_hash);
  }

  auto index = inbox::load_directory_index(store);
  if (!index)
    return index.error();
  // The directory view the server starts from (the view advanced over the
  // log after it, as a start does) must give the directory what the whole
  // log gives it.
  auto viewed = inbox::directory_index_through_view(store);
  if (!viewed && viewed.error().code() != errc::corrupt)
    return viewed.error();
  if (!viewed)
    diffs.push_back(viewed.error().message() + " (the server rebuilds it from the log at its next start)");
  else if (*viewed)
    compare_view(diffs, *index, **viewed);
  std::set<std::string> chat_ids;
  for (const auto& [id, c] : chats)
    if (c.exists)
      chat_ids.insert(id);
  for (const auto& [id, entry] : index->chats)
    chat_ids.insert(id);
  const std::set<std::string> to_deliver(index->threads_to_deliver.begin(), index->threads_to_deliver.end());
  std::set<std::string> thread_ids;
  uint64_t loaded = 0;
  for (const auto& id : chat_ids) {
    auto r = chats.find(id);
    auto entry = index->chats.find(id);
    if (r == chats.end() || !r->second.exists) {
      diffs.push_back("chat " + id + ": the directory would load it, the log replayed has no such chat");
      continue;
    }
    const chat_state& replayed = r->second;
    if (entry == index->chats.end()) {
      diffs.push_back("chat " + id + ": the log has it, the directory would not load it");
    } else {
      compare(diffs, "chat " + id, "in the directory: resolved", replayed.resolved, entry->second.resolved);
      compare(diffs, "chat " + id, "in the directory: agent", replayed.agent_id, entry->second.agent_id);
      compare(diffs, "chat " + id, "in the directory: listing", json::serialize(chat_json(replayed)),
              entry->second.json);
    }
    // 3. What the chat's actor loads when it is activated.
    auto events = store.read_stream("chat-" + id);
    if (!events)
      return events.error();
    auto d = diff_chat(replayed, chat_from_events(*events));
    diffs.insert(diffs.end(), d.begin(), d.end());
    thread_ids.insert(replayed.thread_ids.begin(), replayed.thread_ids.end());
    if (progress && ++loaded % 1024 == 0)
      progress("load", loaded, chat_ids.size());
  }
  for (const auto& [id, t] : threads)
    thread_ids.insert(id);
  for (const auto& id : thread_ids) {
    auto r = threads.find(id);
    // 4. What the thread's actor loads when it is activated.
    auto events = store.read_stream("thread-" + id);
    if (!events)
      return events.error();
    const thread_state live = thread_from_events(*events);
    const thread_state none;
    const thread_state& replayed = r == threads.end() ? none : r->second;
    auto d = diff_thread(replayed, live);
    diffs.insert(diffs.end(), d.begin(), d.end());
    // The directory wakes threads with pending deliveries, and finds threads by their Slack ts.
    if (!chats.count(chat_of_thread(id)))
      continue;  // a thread of no chat is not loaded through the directory
    compare(diffs, "thread " + id, "woken at start-up to deliver", has_pending_delivery(replayed),
            static_cast<bool>(to_deliver.count(id)));
    if (!replayed.slack_ts.empty()) {
      auto i = index->thread_by_slack.find(replayed.channel_id + "|" + replayed.slack_ts);
      compare(diffs, "thread " + id, "found by its Slack ts", std::string("yes"),
              std::string(i != index->thread_by_slack.end() && i->second == id ? "yes" : "no"));
    }
  }
  return report;
}

} // namespace backline::audit

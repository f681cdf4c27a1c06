// The directory view (include/backline/directory_view.hpp): its entries, the
// pure update, the reads and writes on the store, and the actor that keeps it
// advanced while the server runs.

#include "backline/directory_view.hpp"

#include <boost/json.hpp>

#include <cstring>
#include <set>

#include "actors/persist.hpp"
#include "actors/thread_name.hpp"
#include "backline/log_scan.hpp"

namespace json = boost::json;

namespace backline {
namespace {

constexpr std::string_view chat_stream_prefix = "chat-";
constexpr std::string_view thread_stream_prefix = "thread-";
// Entry keys inside the view: "c|" + chat stream, "t|" + thread stream.
constexpr std::string_view chat_key_tag = "c|";
constexpr std::string_view thread_key_tag = "t|";
// The first byte of an encoded entry: its kind and format.
constexpr char chat_entry_format = 'C';
constexpr char thread_entry_format = 'T';
// Entries per write while storing a large change (the last write records the position).
constexpr size_t entries_per_write = 20000;

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// -- a small length-prefixed codec: strings as u32 (little-endian) + bytes --

void put_u32(std::string& out, uint32_t v) {
  char b[4];
  for (int i = 0; i < 4; ++i)
    b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(b, 4);
}

void put_str(std::string& out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out.append(s);
}

struct reader {
  std::string_view in;
  bool ok = true;

  uint32_t u32() {
    if (in.size() < 4) {
      ok = false;
      return 0;
    }
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i)
      v = (v << 8) | static_cast<unsigned char>(in[static_cast<size_t>(i)]);
    in.remove_prefix(4);
    return v;
  }
  std::string str() {
    const uint32_t n = u32();
    if (!ok || in.size() < n) {
      ok = false;
      return {};
    }
    std::string s(in.substr(0, n));
    in.remove_prefix(n);
    return s;
  }
  bool flag() {
    if (in.empty() || (in[0] != '0' && in[0] != '1')) {
      ok = false;
      return false;
    }
    const bool v = in[0] == '1';
    in.remove_prefix(1);
    return v;
  }
  bool format(char f) {
    if (in.empty() || in[0] != f)
      return ok = false;
    in.remove_prefix(1);
    return true;
  }
};

status bad_entry(std::string_view what) {
  return {errc::corrupt, "directory view: a " + std::string(what) + " entry is malformed"};
}

/// Reads every stream in `names` whole and derives its entry into `change`;
/// a thread with a fold in `folds` is read from its fold on.
status rederive(const event_store& store, const std::set<std::string>& chats, const std::set<std::string>& threads,
                directory_view_change& change, inbox::thread_view_folds* folds = nullptr) {
  for (const auto& s : chats) {
    auto events = store.read_stream(s);
    if (!events)
      return events.error();
    change.chats[s] = inbox::chat_view_entry_of(*events);
  }
  for (const auto& s : threads) {
    if (folds != nullptr) {
      if (folds->by_stream.size() >= folds->max_threads && !folds->by_stream.count(s))
        folds->by_stream.clear();
      auto& fold = folds->by_stream[s];
      auto events = store.read_stream(s, fold.seq + 1);
      if (!events) {
        folds->by_stream.erase(s);
        return events.error();
      }
      for (const auto& e : *events)
        inbox::apply_thread_view_event(fold, e);
      change.threads[s] = fold.entry;
      continue;
    }
    auto events = store.read_stream(s);
    if (!events)
      return events.error();
    change.threads[s] = inbox::thread_view_entry_of(*events);
  }
  return status::ok();
}

// -- the keeper ----------------------------------------------------------------

struct view_keeper_state {
  view_keeper_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "view_keeper";
  std::shared_ptr<event_store> store;
  inbox::view_keeper_options opts;
  std::optional<uint64_t> position;  // what the stored view covers (nullopt: not read yet)
  inbox::thread_view_folds folds;    // threads as far as the keeper has read them
  std::chrono::steady_clock::time_point last_advance;
  bool failing = false;  // a failure was reported: report the next only after a success
};

using view_keeper_pointer = inbox::view_keeper_actor::stateful_pointer<view_keeper_state>;

void keeper_tick(view_keeper_pointer self) {
  auto& st = self->state;
  auto fail = [&](const status& s) {
    if (!st.failing && st.opts.log)
      st.opts.log("directory view: cannot advance it (start-up will replay more of the log): " + s.message());
    st.failing = true;
    st.position.reset();  // read it again next time
  };
  if (!st.position) {
    auto p = st.store->view_position(inbox::directory_view_name);
    if (!p)
      return fail(p.error());
    st.position = p->value_or(0);
  }
  const uint64_t head = st.store->head().position;
  if (head <= *st.position)
    return;
  const auto now = std::chrono::steady_clock::now();
  if (head - *st.position < st.opts.max_events && now - st.last_advance < st.opts.max_age)
    return;
  auto change = inbox::directory_view_change_since(*st.store, *st.position, &st.folds);
  if (!change)
    return fail(change.error());
  if (auto s = inbox::write_directory_view_change(*st.store, *change); !s)
    return fail(s);
  st.position = change->position;
  st.last_advance = now;
  st.failing = false;
}

inbox::view_keeper_actor::behavior_type view_keeper_behavior(view_keeper_pointer self,
                                                             std::shared_ptr<event_store> store,
                                                             inbox::view_keeper_options opts) {
  name_detached_thread(self, "directory.view");
  self->state.store = std::move(store);
  self->state.opts = std::move(opts);
  self->state.last_advance = std::chrono::steady_clock::now();
  self->delayed_send(self, self->state.opts.tick, atoms::tick::value);
  return {
    [self](atoms::tick) {
      keeper_tick(self);
      self->delayed_send(self, self->state.opts.tick, atoms::tick::value);
    },
  };
}

} // namespace

namespace inbox {

std::optional<chat_view_entry> chat_view_entry_of(const std::vector<event_record>& chat_events) {
  const chat_state c = chat_from_events(chat_events);
  if (!c.exists)
    return std::nullopt;
  return chat_view_entry{c.id, c.resolved, c.agent_id, json::serialize(chat_json(c)), c.thread_ids};
}

thread_view_entry thread_view_entry_of(const std::vector<event_record>& thread_events) {
  const thread_state t = thread_from_events(thread_events);
  return thread_view_entry{t.id, t.channel_id, t.slack_ts, t.done, has_pending_delivery(t)};
}

// As apply_thread_event does to what the entry shows (tests hold the two to
// the same entries): only the events that change it are parsed.
void apply_thread_view_event(thread_view_fold& fold, const event_record& e) {
  fold.seq = e.seq;
  const bool relevant = e.type == "thread_created" || e.type == "thread_message_sent" || e.type == "thread_done" ||
                        e.type == "slack_delivered" || e.type == "slack_delivery_failed";
  if (!relevant)
    return;
  boost::system::error_code ec;
  auto v = json::parse(e.payload, ec);
  const json::object empty;
  const auto& p = !ec && v.is_object() ? v.as_object() : empty;
  auto str = [&p](std::string_view key) { return detail::field(p, key); };
  auto& entry = fold.entry;
  if (e.type == "thread_created") {
    entry.id = str("id");
    entry.channel_id = str("channel_id");
    fold.pending.insert(str("message_id"));
  } else if (e.type == "thread_message_sent") {
    fold.pending.insert(str("id"));
  } else if (e.type == "thread_done") {
    entry.done = true;
    if (auto closing = str("closing_id"); !closing.empty())
      fold.pending.insert(std::move(closing));
  } else if (e.type == "slack_delivered") {
    fold.pending.erase(str("message_id"));
    if (entry.slack_ts.empty())
      entry.slack_ts = str("slack_ts");
  } else {
    fold.pending.erase(str("message_id"));
  }
  entry.pending = !fold.pending.empty();
}

void apply_view_change(directory_view& view, directory_view_change change) {
  for (auto& [stream, entry] : change.chats) {
    if (entry)
      view.chats[stream] = std::move(*entry);
    else
      view.chats.erase(stream);
  }
  for (auto& [stream, entry] : change.threads)
    view.threads[stream] = std::move(entry);
  view.position = std::max(view.position, change.position);
}

directory_index index_of_view(const directory_view& view) {
  // As load_directory_index: chats in stream order (a later stream naming
  // the same chat id wins), each chat's threads in the order it opened them.
  directory_index index;
  for (const auto& [stream, c] : view.chats) {
    index.chats[c.id] = chat_index_entry{c.resolved, c.agent_id, c.json};
    for (const auto& thread_id : c.thread_ids) {
      auto i = view.threads.find(std::string(thread_stream_prefix) + thread_id);
      if (i == view.threads.end())
        continue;  // no such stream: it would replay to nothing
      const auto& t = i->second;
      if (!t.slack_ts.empty())
        index.thread_by_slack[t.channel_id + "|" + t.slack_ts] = t.id;
      if (!t.slack_ts.empty() && !t.done)
        index.open_in_slack[t.id] = {t.channel_id, t.slack_ts};
      if (t.pending)
        index.threads_to_deliver.push_back(t.id);
    }
  }
  return index;
}

std::string encode_view_entry(const chat_view_entry& e) {
  std::string out(1, chat_entry_format);
  put_str(out, e.id);
  out.push_back(e.resolved ? '1' : '0');
  put_str(out, e.agent_id);
  put_str(out, e.json);
  put_u32(out, static_cast<uint32_t>(e.thread_ids.size()));
  for (const auto& t : e.thread_ids)
    put_str(out, t);
  return out;
}

std::string encode_view_entry(const thread_view_entry& e) {
  std::string out(1, thread_entry_format);
  put_str(out, e.id);
  put_str(out, e.channel_id);
  put_str(out, e.slack_ts);
  out.push_back(e.done ? '1' : '0');
  out.push_back(e.pending ? '1' : '0');
  return out;
}

result<chat_view_entry> decode_chat_view_entry(std::string_view bytes) {
  reader r{bytes};
  chat_view_entry e;
  r.format(chat_entry_format);
  e.id = r.str();
  e.resolved = r.flag();
  e.agent_id = r.str();
  e.json = r.str();
  const uint32_t n = r.u32();
  if (!r.ok || n > r.in.size() / 4)  // each id takes at least its 4-byte length
    return bad_entry("chat");
  e.thread_ids.reserve(n);
  for (uint32_t i = 0; i < n && r.ok; ++i)
    e.thread_ids.push_back(r.str());
  if (!r.ok || !r.in.empty())
    return bad_entry("chat");
  return e;
}

result<thread_view_entry> decode_thread_view_entry(std::string_view bytes) {
  reader r{bytes};
  thread_view_entry e;
  r.format(thread_entry_format);
  e.id = r.str();
  e.channel_id = r.str();
  e.slack_ts = r.str();
  e.done = r.flag();
  e.pending = r.flag();
  if (!r.ok || !r.in.empty())
    return bad_entry("thread");
  return e;
}

result<directory_view_change> directory_view_change_since(const event_store& store, uint64_t position,
                                                          thread_view_folds* folds) {
  directory_view_change change;
  change.position = store.head().position;
  if (change.position <= position) {
    change.position = position;
    return change;
  }
  std::set<std::string> chats, threads;
  status problem = status::ok();
  auto st = scan_global_index(
    store, 65536,
    [&](std::vector<indexed_record>& entries) {
      for (auto& e : entries) {
        if (!e.problem.empty()) {
          problem = status{errc::corrupt, e.problem};
          return false;
        }
        if (starts_with(e.stream, chat_stream_prefix))
          chats.insert(std::move(e.stream));
        else if (starts_with(e.stream, thread_stream_prefix))
          threads.insert(std::move(e.stream));
      }
      return true;
    },
    position + 1, change.position + 1);
  if (!st)
    return st;
  if (!problem)
    return problem;
  if (auto s = rederive(store, chats, threads, change, folds); !s)
    return s;
  return change;
}

result<directory_view_change> full_directory_view_change(const event_store& store) {
  directory_view_change change;
  change.position = store.head().position;  // before the streams are read: entries may only be newer
  auto chats = store.list_streams(std::string(chat_stream_prefix));
  if (!chats)
    return chats.error();
  auto threads = store.list_streams(std::string(thread_stream_prefix));
  if (!threads)
    return threads.error();
  if (auto s = rederive(store, std::set<std::string>(chats->begin(), chats->end()),
                        std::set<std::string>(threads->begin(), threads->end()), change);
      !s)
    return s;
  return change;
}

result<std::optional<directory_view>> read_directory_view(const event_store& store) {
  directory_view view;
  status problem = status::ok();
  auto position = store.read_view(directory_view_name, [&](std::string_view key, std::string_view value) {
    if (!problem)
      return;
    if (starts_with(key, chat_key_tag)) {
      auto e = decode_chat_view_entry(value);
      if (!e)
        problem = e.error();
      else
        view.chats.emplace_hint(view.chats.end(), std::string(key.substr(chat_key_tag.size())), std::move(*e));
    } else if (starts_with(key, thread_key_tag)) {
      auto e = decode_thread_view_entry(value);
      if (!e)
        problem = e.error();
      else
        view.threads.emplace_hint(view.threads.end(), std::string(key.substr(thread_key_tag.size())), std::move(*e));
    } else {
      problem = status{errc::corrupt, "directory view: an entry has an unknown key"};
    }
  });
  if (!position)
    return position.error();
  if (!problem)
    return problem;
  if (!*position)
    return std::optional<directory_view>{};
  view.position = **position;
  return std::optional<directory_view>{std::move(view)};
}

status write_directory_view_change(event_store& store, const directory_view_change& change) {
  // In pieces, the position last: a crash between pieces leaves entries newer
  // than the recorded position, which the next advance re-derives anyway.
  std::vector<event_store::view_write> writes;
  auto flush = [&](bool last) {
    auto s = store.put_view(directory_view_name, writes, last ? std::optional<uint64_t>(change.position) : std::nullopt);
    writes.clear();
    return s;
  };
  for (const auto& [stream, entry] : change.chats) {
    writes.push_back({std::string(chat_key_tag) + stream,
                      entry ? std::optional<std::string>(encode_view_entry(*entry)) : std::nullopt});
    if (writes.size() >= entries_per_write)
      if (auto s = flush(false); !s)
        return s;
  }
  for (const auto& [stream, entry] : change.threads) {
    writes.push_back({std::string(thread_key_tag) + stream, encode_view_entry(entry)});
    if (writes.size() >= entries_per_write)
      if (auto s = flush(false); !s)
        return s;
  }
  return flush(true);
}

result<directory_index> load_directory_index_with_view(event_store& store, directory_view_report* report) {
  directory_view_report local;
  auto& rep = report ? *report : local;
  rep = {};
  std::optional<directory_view> view;
  auto stored = read_directory_view(store);
  if (!stored) {
    // Derived data only: a damaged view is rebuilt from the log, never trusted.
    if (stored.error().code() != errc::corrupt)
      return stored.error();
    rep.note = stored.error().message();
  } else if (*stored && (*stored)->position > store.head().position) {
    rep.note = "directory view: it covers position " + std::to_string((*stored)->position) +
               ", beyond the log's head " + std::to_string(store.head().position);
  } else {
    view = std::move(*stored);
  }
  if (view) {
    rep.had_view = true;
    rep.from = view->position;
  } else {
    if (!rep.note.empty())
      if (auto s = store.drop_view(directory_view_name); !s)
        return s;
    view.emplace();
  }
  auto change = rep.had_view ? directory_view_change_since(store, view->position) : full_directory_view_change(store);
  if (!change)
    return change.error();
  rep.to = change->position;
  rep.chats = change->chats.size();
  rep.threads = change->threads.size();
  if (change->position != view->position || !rep.had_view)
    if (auto s = write_directory_view_change(store, *change); !s)
      return s;
  apply_view_change(*view, std::move(*change));
  return index_of_view(*view);
}

result<std::optional<directory_index>> directory_index_through_view(const event_store& store) {
  auto view = read_directory_view(store);
  if (!view)
    return view.error();
  if (!*view)
    return std::optional<directory_index>{};
  auto change = directory_view_change_since(store, (*view)->position);
  if (!change)
    return change.error();
  apply_view_change(**view, std::move(*change));
  return std::optional<directory_index>{index_of_view(**view)};
}

result<uint64_t> advance_directory_view(event_store& store) {
  auto position = store.view_position(directory_view_name);
  if (!position)
    return position.error();
  auto change = *position ? directory_view_change_since(store, **position) : full_directory_view_change(store);
  if (!change)
    return change.error();
  if (*position && change->position == **position)
    return change->position;
  if (auto s = write_directory_view_change(store, *change); !s)
    return s;
  return change->position;
}

view_keeper_actor spawn_view_keeper(caf::actor_system& sys, std::shared_ptr<event_store> store,
                                    view_keeper_options opts) {
  return sys.spawn<caf::detached>(view_keeper_behavior, std::move(store), std::move(opts));
}

} // namespace inbox
} // namespace backline

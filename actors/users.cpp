// The users actor: the only writer of user-<id> streams. After each change
// it publishes a new immutable users_table, which the HTTP front reads to
// authenticate without a round trip.

#include "actors/persist.hpp"

namespace json = boost::json;

namespace backline {
namespace {

struct users_state {
  users_state() = default;  // not an aggregate: CAF would build it from the self pointer
  static inline const char* name = "users";
  journal_actor journal;
  std::shared_ptr<users_view> view;
};

api_reply create_user(users_actor::stateful_pointer<users_state> self, const caller& who, const std::string& body,
                      const std::string& key, caf::typed_response_promise<api_reply> rp) {
  if (who.kind != role::admin)
    return error_reply(403, "forbidden", "only admins manage users");
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object())
    return error_reply(400, "invalid_json", "the body must be a JSON object");
  auto& o = v.as_object();
  auto id = detail::field(o, "id");
  auto name = detail::field(o, "name");
  auto kind = role_from(detail::field(o, "role"));
  if (id.empty() || id.size() > 64 || id.find_first_of("|/ \t\n") != std::string::npos)
    return error_reply(400, "invalid_field", "id: a non-empty string of at most 64 characters without '/', '|' or spaces");
  if (name.empty())
    return error_reply(400, "invalid_field", "name: a non-empty string");
  if (!kind)
    return error_reply(400, "invalid_field", "role: one of admin, agent, bot");
  bool inbox_access = false;
  if (auto* ia = o.if_contains("inbox_access")) {
    if (!ia->is_bool())
      return error_reply(400, "invalid_field", "inbox_access: a boolean");
    inbox_access = ia->as_bool();
  }
  auto table = self->state.view->current();
  if (table->by_id.count(id))
    return error_reply(409, "conflict", "user " + id + " already exists");
  auto token = inbox::new_token();
  user u{id, name, *kind, inbox_access, inbox::hash_token(token)};
  json::object payload{{"id", u.id}, {"name", u.name}, {"role", to_string(u.kind)},
                       {"inbox_access", u.inbox_access}, {"token_hash", u.token_hash}};
  json::object answer{{"id", u.id}, {"name", u.name}, {"role", to_string(u.kind)}, {"inbox_access", inbox_access}};
  // The token is shown once; the stored idempotent answer never holds it.
  auto stored = json_reply(201, json::object(answer.begin(), answer.end()));
  answer["token"] = token;
  auto req = detail::one_event("user-" + id, expected_version::no_stream(), "user_created", who.id, payload, detail::scoped_key(who, key));
  auto reply = json_reply(201, answer);
  req.idempotency_result = detail::encode_reply(stored);
  self->request(self->state.journal, caf::infinite, atoms::append::value, std::move(req))
    .await(
      [self, rp, reply, u](append_reply& r) mutable {
        if (!r.status.ok()) {
          rp.deliver(detail::storage_error(r.status));
          return;
        }
        if (r.value.duplicate) {
          rp.deliver(detail::decode_reply(r.value.stored_result));
          return;
        }
        auto next = std::make_shared<users_table>(*self->state.view->current());
        next->id_by_token_hash[u.token_hash] = u.id;
        next->by_id[u.id] = u;
        self->state.view->publish(std::move(next));
        rp.deliver(reply);
      },
      [rp](caf::error&) mutable { rp.deliver(error_reply(503, "unavailable", "the event log did not answer")); });
  return {0, {}};
}

users_actor::behavior_type users_behavior(users_actor::stateful_pointer<users_state> self, journal_actor journal,
                                          std::shared_ptr<users_view> view) {
  self->state.journal = std::move(journal);
  self->state.view = std::move(view);
  return {
    [self](atoms::create, const caller& who, const std::string& body,
           const std::string& key) -> caf::result<api_reply> {
      auto rp = self->make_response_promise<api_reply>();
      auto immediate = create_user(self, who, body, key, rp);
      if (immediate.status != 0)
        rp.deliver(immediate);
      return rp;
    },
  };
}

/// Stamps for published users tables, from one counter for every view, so
/// that a stamp names one table and a thread's cache needs nothing else.
std::atomic<uint64_t> next_users_stamp{1};

} // namespace

users_view::users_view() : stamp_(next_users_stamp.fetch_add(1)) {}

std::shared_ptr<const users_table> users_view::current() const {
  struct cached {
    uint64_t stamp = 0;
    std::shared_ptr<const users_table> table;
  };
  thread_local cached mine;
  // The table is stored before its stamp, and loaded after it: a cache whose
  // stamp is the view's holds that table or a newer one.
  auto now = stamp_.load(std::memory_order_acquire);
  if (mine.stamp != now) {
    std::lock_guard lock(mu_);
    mine.table = table_;
    mine.stamp = now;
  }
  return mine.table;
}

void users_view::publish(std::shared_ptr<const users_table> t) {
  {
    std::lock_guard lock(mu_);
    table_ = std::move(t);
  }
  stamp_.store(next_users_stamp.fetch_add(1), std::memory_order_release);
}

namespace inbox {

users_actor spawn_users(caf::actor_system& sys, journal_actor journal, std::shared_ptr<users_view> view) {
  return sys.spawn(users_behavior, std::move(journal), std::move(view));
}

result<std::shared_ptr<users_table>> load_users(const event_store& store) {
  auto table = std::make_shared<users_table>();
  auto streams = store.list_streams("user-");
  if (!streams)
    return streams.error();
  for (const auto& s : *streams) {
    auto events = store.read_stream(s);
    if (!events)
      return events.error();
    for (const auto& e : *events) {
      if (e.type != "user_created")
        continue;
      auto u = user_from_event(e);
      if (!u)
        return status{errc::corrupt, "user event " + s + " is not a JSON object"};
      table->id_by_token_hash[u->token_hash] = u->id;
      table->by_id[u->id] = std::move(*u);
    }
  }
  return table;
}

} // namespace inbox
} // namespace backline

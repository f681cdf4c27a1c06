#include "http/api_routes.hpp"

#include "slack/fake_slack.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <optional>

#include "actors/persist.hpp"
#include "backline/audit.hpp"
#include "http/front.hpp"
#include "http/rate_limit.hpp"
#include "http/request_parsing.hpp"
#include "http/request_log.hpp"
#include "slack/fake_slack.hpp"

namespace json = boost::json;

namespace backline::http {
namespace {

/// Raster images a browser shows as pictures, never as documents.
bool shown_inline(std::string_view mimetype) {
  for (std::string_view t : {"image/png", "image/jpeg", "image/gif", "image/webp"})
    if (mimetype == t)
      return true;
  return false;
}

/// A file name inside Content-Disposition's quotes: no quote, backslash or control character.
std::string quoted_file_name(std::string_view name) {
  std::string out;
  for (char c : name)
    out += c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '_' : c;
  return out;
}

void write(httplib::Response& res, const api_reply& r) {
  res.status = r.status;
  res.set_content(r.body, "application/json");
  if (r.status == 503 || r.status == 429)
    res.set_header("Retry-After", "1");
}

/// The caller of a request, from its bearer token; nullopt answers 401.
/// Every token is hashed before the lookup, so a bad token costs what a good one does.
std::optional<caller> authenticate(const api_deps& d, const httplib::Request& req, httplib::Response& res) {
  std::string token(bearer_token_of(header_value(req, "Authorization")));  // the scheme in any case (RFC 9110)
  auto hash = inbox::hash_token(token);
  auto table = d.users->current();
  auto i = table->id_by_token_hash.find(hash);
  if (token.empty() || i == table->id_by_token_hash.end()) {
    write(res, error_reply(401, "unauthenticated", token.empty() ? "missing bearer token" : "unknown token"));
    return std::nullopt;
  }
  note_request_user(i->second);  // the caller's id for the request log line
  return caller_of(table->by_id.at(i->second));
}

/// The first answer to a key, from the journal's answer to idem_get; nullopt
/// when it holds none or could not say (the command then goes ahead, and the
/// journal decides).
std::optional<api_reply> first_answer_in(caf::type_erased_tuple& found) {
  if (found.match_elements<reply_status, bool, std::string>() && found.get_as<reply_status>(0).ok()
      && found.get_as<bool>(1))
    return detail::decode_reply(found.get_as<std::string>(2));
  return std::nullopt;
}

/// Answers a repeated Idempotency-Key from its stored first answer. True when answered.
bool replay_idempotent(const api_deps& d, const caller& who, const std::string& key, httplib::Response& res) {
  if (key.empty())
    return false;
  bool answered = false;
  (void)ask_then(  // no stored answer known: the command goes ahead and the journal decides
    *d.sys, d.journal, d.deadline,
    [&](const reply_status& st, bool found, const std::string& stored) {
      if (st.ok() && found) {
        write(res, detail::decode_reply(stored));
        answered = true;
      }
    },
    atoms::idem_get::value, detail::scoped_key(who, key));
  return answered;
}

template <class Handle, class... Ts>
void ask_and_write(const api_deps& d, httplib::Response& res, const Handle& dest, Ts&&... xs) {
  auto r = ask<api_reply>(*d.sys, dest, d.deadline, std::forward<Ts>(xs)...);
  if (r)
    write(res, *r);
  else
    write(res, busy_reply(r.error().message()));
}

/// Like ask_and_write, but the answer is written by the actors' side when
/// the request can wait for it that way (see answer_later): the worker goes
/// back to its connection at once.
template <class Handle, class... Ts>
void ask_and_answer(const api_deps& d, const httplib::Request& req, httplib::Response& res, const Handle& dest,
                    Ts&&... xs) {
  if (d.relay)
    if (auto later = answer_later(req, res, d.deadline)) {
      d.relay->ask(dest, std::move(later), std::forward<Ts>(xs)...);
      return;
    }
  ask_and_write(d, res, dest, std::forward<Ts>(xs)...);
}

/// Like ask_and_answer for a request with an Idempotency-Key: the first
/// answer to the key, if the journal holds one, else the command's. With the
/// relay, neither waits on the worker: the journal's answer goes on to the
/// command from the journal's thread.
template <class Handle, class... Ts>
void ask_and_answer_keyed(const api_deps& d, const httplib::Request& req, httplib::Response& res, const caller& who,
                          const std::string& key, const Handle& dest, Ts&&... xs) {
  if (key.empty())
    return ask_and_answer(d, req, res, dest, std::forward<Ts>(xs)...);
  auto later = d.relay ? answer_later(req, res, d.deadline) : nullptr;
  if (!later) {
    if (!replay_idempotent(d, who, key, res))
      ask_and_write(d, res, dest, std::forward<Ts>(xs)...);
    return;
  }
  auto* relay = d.relay.get();  // lives as long as the routes, and runs no continuation once it is gone
  auto command = caf::make_message(std::forward<Ts>(xs)...);
  relay->ask_continuing(
    d.journal, later,
    [relay, dest, later, command](caf::type_erased_tuple& found) mutable {
      if (auto first = first_answer_in(found)) {
        later->complete(first->status, std::move(first->body));
        return;
      }
      // No stored answer known: the command goes ahead and the journal decides.
      relay->ask(dest, later, std::move(command));
    },
    atoms::idem_get::value, detail::scoped_key(who, key));
}

/// Answers a request that the checks refused and that has an Idempotency-Key:
/// with the first answer to the key if the journal holds one (a retry gets
/// its first answer whatever its body says), else with the refusal. With the
/// relay the worker does not wait for the journal, as for a valid request.
void refuse_keyed(const api_deps& d, const httplib::Request& req, httplib::Response& res, const caller& who,
                  const std::string& key, const api_reply& refusal) {
  auto later = d.relay ? answer_later(req, res, d.deadline) : nullptr;
  if (!later) {
    if (!replay_idempotent(d, who, key, res))
      write(res, refusal);
    return;
  }
  d.relay->ask_continuing(
    d.journal, later,
    [later, refusal](caf::type_erased_tuple& found) {
      auto first = first_answer_in(found);
      const api_reply& answer = first ? *first : refusal;
      later->complete(answer.status, answer.body);
    },
    atoms::idem_get::value, detail::scoped_key(who, key));
}

/// Stores a multipart form's files durably (before the command that names
/// them) and lists them in the body; false when it answered an error (and
/// removed the files it had stored).
bool store_files(const api_deps& d, const multipart_form& form, const std::string& chat_id, json::object& body,
                 std::vector<std::string>& stored, httplib::Response& res) {
  json::array files;
  for (const auto* part : form.files) {
    auto ref = d.files->put(part->filename, part->content_type, part->content, chat_id);
    if (!ref) {
      for (const auto& id : stored)
        d.files->remove(id);
      stored.clear();
      if (ref.error().code() == errc::no_space)
        write(res, error_reply(503, "storage_full", "the disk is full: the file was not stored; " + ref.error().message()));
      else
        write(res, error_reply(503, "unavailable", "cannot store the file: " + ref.error().message()));
      return false;
    }
    stored.push_back(ref->id);
    files.push_back(json::object{{"id", ref->id}, {"name", ref->name}, {"mimetype", ref->mimetype},
                                 {"size", ref->size}});
  }
  body["files"] = std::move(files);
  return true;
}

void command_route(httplib::Server& s, const api_deps& d, const char* method, const char* pattern, verb what,
                   bool by_thread) {
  auto handler = [d, what, by_thread](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(d, req, res);
    if (!who)
      return;
    command cmd;
    cmd.what = what;
    cmd.who = *who;
    if (by_thread) {
      cmd.thread_id = req.matches[1];
      cmd.chat_id = chat_of_thread(cmd.thread_id);
    } else {
      cmd.chat_id = req.matches[1];
    }
    std::vector<std::string> stored_files;  // of this request, named by its command
    // A repeated Idempotency-Key gets its first answer, whatever this
    // request says. Without files (and with the relay) the journal is asked
    // after the checks: on the way to the command, or to the refusal.
    bool key_later = false;
    auto refuse = [&](const api_reply& refusal) {
      if (key_later)
        refuse_keyed(d, req, res, *who, cmd.idempotency_key, refusal);
      else
        write(res, refusal);
    };
    if (req.method == "POST" || req.method == "PUT") {
      cmd.idempotency_key = header_value(req, "Idempotency-Key");
      bool with_files = is_multipart(req) && (what == verb::thread_post || what == verb::thread_create);
      key_later = d.relay && !with_files && !cmd.idempotency_key.empty();
      if (!key_later && replay_idempotent(d, *who, cmd.idempotency_key, res))
        return;
      if (with_files || !required_fields(what).empty() || !req.body.empty()) {
        // A multipart form's files are checked with it, and stored only once the whole request is valid.
        std::optional<multipart_form> form;
        if (with_files) {
          auto f = multipart_form_of(req.files, d.max_file_bytes);
          if (!f)
            return write(res, f.refusal());
          form = std::move(*f);
        }
        auto body = form ? parsed<json::object>(form->fields) : parse_json_object(req.body);
        if (!body)
          return refuse(body.refusal());
        auto table = d.users->current();
        auto is_agent = [&table](std::string_view id) {
          auto agent = table->by_id.find(std::string(id));
          return agent != table->by_id.end() && agent->second.kind == role::agent;
        };
        auto checked = checked_command_body(what, who->kind, std::move(*body), form ? form->files.size() : 0, is_agent);
        if (!checked)
          return refuse(checked.refusal());
        if (form && !store_files(d, *form, cmd.chat_id, *checked, stored_files, res))
          return;
        cmd.body = json::serialize(*checked);
      }
    }
    if (stored_files.empty()) {
      auto key = cmd.idempotency_key;
      return ask_and_answer_keyed(d, req, res, *who, key_later ? key : std::string{}, d.directory,
                                  atoms::command::value, std::move(cmd));
    }
    ask_and_write(d, res, d.directory, atoms::command::value, std::move(cmd));
    // A command refused for sure (4xx, or the log refused it: storage_full)
    // names its files nowhere: they go. After a timeout it may yet be stored.
    if (!stored_files.empty()
        && ((res.status >= 400 && res.status < 500)
            || (res.status == 503 && res.body.find("\"storage_full\"") != std::string::npos)))
      for (const auto& id : stored_files)
        d.files->remove(id);
  };
  std::string m = method;
  if (m == "GET")
    s.Get(pattern, handler);
  else if (m == "PUT")
    s.Put(pattern, handler);
  else if (m == "DELETE")
    s.Delete(pattern, handler);
  else
    s.Post(pattern, handler);
}

} // namespace

void register_api_routes(httplib::Server& s, const api_deps& d) {
  // cpp-httplib tries a method's routes in the order they were added, one
  // std::regex_match each, until one matches: the busiest route, posting a
  // thread message, is first. (No two patterns here match the same path, so
  // the order changes nothing else.)
  command_route(s, d, "POST", R"(/api/v1/threads/([^/]+)/messages)", verb::thread_post, true);
  s.Get("/api/v1/me", [d](const httplib::Request& req, httplib::Response& res) {
    if (auto who = authenticate(d, req, res))
      write(res, json_reply(200, json::object{{"id", who->id}, {"name", who->name}, {"role", to_string(who->kind)},
                                              {"inbox_access", who->inbox_access}}));
  });
  // Who is who: an admin sees every user; agents and the bot see the agents
  // (the targets of assign and transfer). Never a token or its hash.
  s.Get("/api/v1/users", [d](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(d, req, res);
    if (!who)
      return;
    auto table = d.users->current();
    std::vector<const user*> shown;
    for (const auto& [id, u] : table->by_id)
      if (who->kind == role::admin || u.kind == role::agent)
        shown.push_back(&u);
    std::sort(shown.begin(), shown.end(), [](const user* a, const user* b) { return a->id < b->id; });
    json::array list;
    for (const auto* u : shown)
      list.push_back(json::object{{"id", u->id}, {"name", u->name}, {"role", to_string(u->kind)},
                                  {"inbox_access", u->inbox_access}});
    write(res, json_reply(200, json::object{{"users", std::move(list)}}));
  });
  s.Post("/api/v1/users", [d](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(d, req, res);
    if (!who)
      return;
    auto body = user_create_body(req.body);
    if (!body)
      return write(res, body.refusal());
    auto key = std::string(header_value(req, "Idempotency-Key"));
    if (replay_idempotent(d, *who, key, res))
      return;
    ask_and_write(d, res, d.user_admin, atoms::create::value, *who, std::move(*body), key);
  });
  s.Post("/api/v1/chats", [d](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(d, req, res);
    if (!who)
      return;
    auto body = chat_create_body(req.body);
    if (!body)
      return write(res, body.refusal());
    auto key = std::string(header_value(req, "Idempotency-Key"));
    ask_and_answer_keyed(d, req, res, *who, key, d.directory, atoms::create::value, *who, std::move(*body), key);
  });
  s.Get("/api/v1/chats", [d](const httplib::Request& req, httplib::Response& res) {
    if (auto who = authenticate(d, req, res))
      ask_and_answer(d, req, res, d.directory, atoms::list::value, *who, req.get_param_value("view"));
  });
  command_route(s, d, "GET", R"(/api/v1/chats/([^/]+))", verb::chat_get, false);
  command_route(s, d, "POST", R"(/api/v1/chats/([^/]+)/assign)", verb::chat_assign, false);
  command_route(s, d, "POST", R"(/api/v1/chats/([^/]+)/transfer)", verb::chat_transfer, false);
  command_route(s, d, "POST", R"(/api/v1/chats/([^/]+)/resolve)", verb::chat_resolve, false);
  command_route(s, d, "POST", R"(/api/v1/chats/([^/]+)/reopen)", verb::chat_reopen, false);
  command_route(s, d, "GET", R"(/api/v1/chats/([^/]+)/messages)", verb::chat_messages, false);
  command_route(s, d, "POST", R"(/api/v1/chats/([^/]+)/messages)", verb::chat_message_post, false);
  command_route(s, d, "GET", R"(/api/v1/chats/([^/]+)/threads)", verb::thread_list, false);
  command_route(s, d, "POST", R"(/api/v1/chats/([^/]+)/threads)", verb::thread_create, false);
  command_route(s, d, "GET", R"(/api/v1/threads/([^/]+))", verb::thread_get, true);
  command_route(s, d, "GET", R"(/api/v1/threads/([^/]+)/messages)", verb::thread_messages, true);
  command_route(s, d, "POST", R"(/api/v1/threads/([^/]+)/done)", verb::thread_done, true);
  command_route(s, d, "PUT", R"(/api/v1/chats/([^/]+)/focus)", verb::chat_focus, false);
  command_route(s, d, "DELETE", R"(/api/v1/chats/([^/]+)/focus)", verb::chat_unfocus, false);

  // The "To" list of a new thread: the Slack channels the app is in.
  s.Get("/api/v1/slack/channels", [d](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(d, req, res);
    if (!who)
      return;
    if (who->kind == role::bot) {
      write(res, error_reply(403, "forbidden", "the bot role never sees internal threads"));
      return;
    }
    api_reply out = error_reply(504, "slack_timeout", "Slack did not answer in time");
    (void)ask_then(  // on failure `out` stays the timeout answer
      *d.sys, d.slack, d.deadline * 2,
      [&](const reply_status& st, const std::string& channels) {
        out = st.ok() ? api_reply{200, "{\"channels\":" + channels +
                                         ",\"sandbox\":" + (d.sandbox != nullptr ? "true" : "false") + "}"}
                      : error_reply(502, "slack_failed", st.message);
      },
      atoms::list::value);
    write(res, out);
  });

  // The composer's @-suggestions: @here and @channel, then the
  // workspace's user groups and people (from Slack, fetched at most once a minute).
  s.Get("/api/v1/slack/mentions", [d](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(d, req, res);
    if (!who)
      return;
    if (who->kind == role::bot) {
      write(res, error_reply(403, "forbidden", "the bot role never sees internal threads"));
      return;
    }
    api_reply out = error_reply(504, "slack_timeout", "Slack did not answer in time");
    (void)ask_then(  // on failure `out` stays the timeout answer
      *d.sys, d.slack, d.deadline * 2,
      [&](const reply_status& st, const std::string& found) {
        if (!st.ok()) {
          out = error_reply(502, "slack_failed", st.message);
          return;
        }
        json::array list{
          json::object{{"kind", "special"}, {"handle", "here"}, {"name", "everyone active in the channel"}},
          json::object{{"kind", "special"}, {"handle", "channel"}, {"name", "everyone in the channel"}}};
        boost::system::error_code ec;
        auto parsed = json::parse(found, ec);
        if (!ec && parsed.is_array())
          for (auto& m : parsed.as_array())
            list.push_back(m);
        out = json_reply(200, json::object{{"mentions", std::move(list)}});
      },
      atoms::mentions::value);
    write(res, out);
  });

  // A file of a thread message: to whoever may read the chat's threads.
  s.Get(R"(/api/v1/files/([^/]+))", [d](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(d, req, res);
    if (!who)
      return;
    auto file = d.files->get(std::string(req.matches[1]));
    if (!file) {
      write(res, error_reply(404, "not_found", file.error().message()));
      return;
    }
    command cmd;
    cmd.what = verb::file_access;
    cmd.who = *who;
    cmd.chat_id = file->chat_id;
    auto verdict = ask<api_reply>(*d.sys, d.directory, d.deadline, atoms::command::value, std::move(cmd));
    if (!verdict || verdict->status != 204) {
      write(res, verdict ? *verdict : error_reply(503, "unavailable", "the chat did not answer"));
      return;
    }
    // Only images a browser shows as pictures open inline; anything that
    // could run script (SVG, HTML, XML, PDF...) downloads, and the sandbox
    // CSP keeps it from running even if opened. Authorized content is not
    // kept by the browser once access is lost: no-store.
    res.set_header("Content-Disposition", std::string(shown_inline(file->ref.mimetype) ? "inline" : "attachment") +
                                            "; filename=\"" + quoted_file_name(file->ref.name) + "\"");
    res.set_header("Content-Security-Policy", "sandbox; default-src 'none'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("Cache-Control", "no-store");
    res.set_content(std::move(file->bytes), file->ref.mimetype);
  });

  // Audit timelines (admins): what happened to a chat (with its threads and
  // the chats that reopened it) or to a thread, in log order, with who did it.
  auto audit_route = [d](bool chat) {
    return [d, chat](const httplib::Request& req, httplib::Response& res) {
      auto who = authenticate(d, req, res);
      if (!who)
        return;
      if (who->kind != role::admin) {
        write(res, error_reply(403, "forbidden", "audit timelines are for admins"));
        return;
      }
      const std::string id = req.matches[1];
      auto entries = chat ? audit::chat_timeline(*d.store, id) : audit::thread_timeline(*d.store, id);
      if (!entries) {
        const auto code = entries.error().code();
        write(res, code == errc::not_found ? error_reply(404, "not_found", entries.error().message())
                   : code == errc::corrupt ? error_reply(500, "corrupt", entries.error().message())
                                           : error_reply(503, "unavailable", entries.error().message()));
        return;
      }
      json::array events;
      for (const auto& t : *entries)
        events.push_back(audit::timeline_json(t));
      write(res, json_reply(200, json::object{{chat ? "chat_id" : "thread_id", id}, {"events", std::move(events)}}));
    };
  };
  s.Get(R"(/api/v1/audit/chats/([^/]+))", audit_route(true));
  s.Get(R"(/api/v1/audit/threads/([^/]+))", audit_route(false));

  // Long poll: answers at once when something is pending, else after `wait` seconds (≤ 30).
  s.Get("/api/v1/notifications", [d](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(d, req, res);
    if (!who)
      return;
    if (who->kind != role::agent) {
      write(res, error_reply(403, "forbidden", "notifications are for agents"));
      return;
    }
    auto param = [&req](const char* name) {
      return req.has_param(name) ? std::optional<std::string>(req.get_param_value(name)) : std::nullopt;
    };
    auto query = notifications_query_of(param("after"), param("wait"));
    if (!query)
      return write(res, query.refusal());
    auto [after, wait_ms] = *query;
    auto r = ask<api_reply>(*d.sys, d.notifications, std::chrono::milliseconds(wait_ms) + d.deadline,
                            atoms::poll::value, who->id, after, wait_ms);
    write(res, r ? *r : error_reply(503, "unavailable", "notifications did not answer"));
  });

  // Sandbox: a person (or a test) acts as an L2 user replying in a thread.
  // Sandbox mode: a person acts as an L2 user. The reply goes into the
  // simulated workspace, which pushes it to /slack/events as Slack would; it
  // is also recorded at once so the caller sees it (the pushed event then
  // finds it there: a reply reaches its thread once, by its Slack ts).
  s.Post("/api/v1/sandbox/slack/replies", [d](const httplib::Request& req, httplib::Response& res) {
    auto who = authenticate(d, req, res);
    if (!who)
      return;
    if (d.sandbox == nullptr) {
      write(res, error_reply(404, "not_found", "not in sandbox mode: replies come from Slack itself"));
      return;
    }
    auto reply = sandbox_reply_of(req.body);
    if (!reply)
      return write(res, reply.refusal());
    const auto& [channel, thread_ts, user_name, text] = *reply;
    auto thread = ask<std::string>(*d.sys, d.directory, d.deadline, atoms::resolve::value, channel, thread_ts);
    if (!thread || thread->empty()) {
      write(res, error_reply(404, "not_found", "no thread with that channel_id and thread_ts"));
      return;
    }
    std::string user_id, ts, shown_name;
    try {
      user_id = d.sandbox->person_named(user_name);
      // The name Slack shows for that person, as the pushed event's lookup
      // finds it: whichever of the two records the reply, it reads the same.
      shown_name = d.sandbox->display_name_of(user_id);
      ts = d.sandbox->post_reply(channel, thread_ts, user_id, text);
    } catch (const std::exception& e) {
      write(res, error_reply(409, "slack_refused", std::string("the sandbox workspace refused the reply: ") + e.what()));
      return;
    }
    command cmd;
    cmd.what = verb::slack_reply;
    cmd.who = caller{"slack", "Slack", role::bot, false};
    cmd.thread_id = *thread;
    cmd.chat_id = chat_of_thread(*thread);
    cmd.body = json::serialize(json::object{{"slack_ts", ts}, {"user_id", user_id}, {"user_name", shown_name},
                                            {"text", text}});
    auto r = ask<api_reply>(*d.sys, d.directory, d.deadline, atoms::command::value, std::move(cmd));
    if (!r) {  // it is in the workspace; its event will still bring it
      write(res, json_reply(202, json::object{{"ts", ts}}));
      return;
    }
    boost::system::error_code ec;
    auto thread_now = json::parse(r->body, ec);
    if (r->status < 300 && !ec && thread_now.is_object()) {
      thread_now.as_object()["ts"] = ts;  // the reply's Slack ts, beside the thread as it now is
      write(res, json_reply(201, thread_now));
      return;
    }
    write(res, *r);
  });
}

} // namespace backline::http

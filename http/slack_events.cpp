#include "http/slack_events.hpp"

#include <boost/json.hpp>

#include "actors/persist.hpp"
#include "http/front.hpp"
#include "slack/events.hpp"
#include "slack/format.hpp"
#include "slack/inbound_files.hpp"

namespace json = boost::json;

namespace backline::http {
namespace {

void answer(httplib::Response& res, const api_reply& r) {
  res.status = r.status;
  res.set_content(r.body, "application/json");
}

} // namespace

void register_slack_events(httplib::Server& server, const api_deps& d, std::string secret) {
  server.Post("/slack/events", [d, secret](const httplib::Request& req, httplib::Response& res) {
    if (secret.empty()) {
      answer(res, error_reply(404, "not_found", "the Events API is not configured (SLACK_SIGNING_SECRET)"));
      return;
    }
    auto verified = slack::verify_request(secret, req.get_header_value("X-Slack-Request-Timestamp"),
                                          req.get_header_value("X-Slack-Signature"), req.body);
    if (!verified) {
      answer(res, error_reply(401, "unauthenticated", verified.message()));
      return;
    }
    auto event = slack::parse_event(req.body);
    if (!event) {
      answer(res, error_reply(400, "invalid_json", event.error().message()));
      return;
    }
    using kind = slack::slack_event::kind;
    if (event->what == kind::url_verification) {
      answer(res, json_reply(200, json::object{{"challenge", event->challenge}}));
      return;
    }
    if (event->what == kind::ignored) {
      answer(res, api_reply{200, "{}"});
      return;
    }
    auto thread = ask<std::string>(*d.sys, d.directory, d.deadline, atoms::resolve::value, event->channel,
                                   event->thread_ts);
    if (!thread) {
      answer(res, error_reply(503, "unavailable", "the directory did not answer"));  // Slack retries
      return;
    }
    if (thread->empty()) {
      answer(res, api_reply{200, "{}"});  // not one of our threads
      return;
    }
    command cmd;
    cmd.what = event->what == kind::reply ? verb::slack_reply
             : event->what == kind::edited ? verb::slack_edit
                                           : verb::slack_delete;
    cmd.who = caller{"slack", "Slack", role::bot, false};
    cmd.thread_id = *thread;
    cmd.chat_id = chat_of_thread(*thread);
    cmd.idempotency_key = event->event_id.empty() ? std::string{} : "event|" + event->event_id;
    // The author and the people mentioned by name, not raw member ids
    // (Slack must hear back within 3 s: a slow users.info leaves the ids).
    std::vector<std::string> ids{event->user};
    for (auto& id : slack::mentioned_user_ids(event->text))
      ids.push_back(id);
    auto names = ask<std::vector<std::string>>(*d.sys, d.slack, std::chrono::milliseconds(1000), atoms::resolve::value,
                                               ids);
    if (!names || names->size() != ids.size())
      names = ids;
    json::object named;
    for (size_t i = 0; i < ids.size(); ++i)
      if (!ids[i].empty())
        named[ids[i]] = (*names)[i];
    json::object body{{"slack_ts", event->ts},
                      {"user_id", event->user},
                      {"user_name", (*names)[0]},
                      {"names", std::move(named)},
                      {"text", event->text}};
    if (!event->files.empty() && d.files) {
      // Slack's file hosts, with the bot token, within the size limit.
      if (auto client = slack::web_client::make({d.slack_api_url, d.slack_token, std::chrono::milliseconds(2000)})) {
        auto stored = slack::store_inbound_files(**client, d.slack_api_url, event->files, d.max_file_bytes, *d.files,
                                                 cmd.chat_id);
        body["files"] = std::move(stored.files);
        body["file_notes"] = std::move(stored.notes);
      }
    }
    cmd.body = json::serialize(body);
    auto r = ask<api_reply>(*d.sys, d.directory, d.deadline, atoms::command::value, std::move(cmd));
    if (!r || r->status >= 500) {
      answer(res, error_reply(503, "unavailable", "the event could not be stored yet"));  // Slack retries
      return;
    }
    answer(res, api_reply{200, "{}"});  // stored, or nothing to do: Slack need not retry
  });
}

} // namespace backline::http

#pragma once
// POST /slack/events: Slack's Events API. The signature is checked before
// anything else is read; replies, edits and deletes in a known thread go to
// its thread actor, which keeps each Slack message once (by ts, and by the
// event id as an idempotency key, so Slack's retries change nothing).

#include <httplib.h>

#include <string>

#include "http/api_routes.hpp"

namespace backline::http {

void register_slack_events(httplib::Server& server, const api_deps& deps, std::string signing_secret);

} // namespace backline::http

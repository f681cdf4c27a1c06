#pragma once
// Files attached to Slack replies: downloaded with the bot token, only from
// Slack's own file hosts, within a size limit, and stored for the chat's
// threads so GET /api/v1/files/{id} serves them (images preview inline).
// Blocking: call it from an HTTP worker or a detached actor only.

#include <boost/json.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "backline/file_store.hpp"
#include "slack/events.hpp"
#include "slack/web_client.hpp"

namespace backline::slack {

struct stored_inbound {
  boost::json::array files;        // [{id, name, mimetype, size}] stored for the chat
  boost::json::array notes;        // ["report.pdf was not downloaded: …"], one per file left out
};

/// Downloads and stores each file; a file from anywhere but Slack's hosts (or
/// the configured API's host, for the sandbox and tests), too large, or
/// failing to download is left out with a note saying why.
stored_inbound store_inbound_files(web_client& client, std::string_view api_url, const std::vector<inbound_file>& files,
                                   size_t max_bytes, file_store& store, std::string_view chat_id);

} // namespace backline::slack

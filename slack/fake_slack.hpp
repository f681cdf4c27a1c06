#pragma once
// fake_slack: a local, faithful fake of the Slack Web API subset backline uses
// (see /work/shared/slack.md), plus Slack's Events API push and file hosting.
//
// It is a real HTTP server on a loopback port, so the very same Slack client
// code talks to it in tests and in sandbox mode (no Slack token configured).
// Tests and people drive "the other side" (L2 people replying, editing,
// channels being archived, Slack misbehaving) through the control surface:
// the C++ methods below, or the same operations over HTTP as JSON under
// /control/* (for Node tests and curl). The control surface has no auth: it
// listens on loopback only and is a test double, never a production endpoint.
//
//   fake_slack slack;                      // sandbox workspace, port 0
//   slack.start();
//   client.base_url = slack.base_url();    // "http://127.0.0.1:PORT/api/"
//   auto ts = slack.post_reply("C0FINANCE", parent_ts, "U0ERIN", "paid");
//
// HTTP routes besides /api/<method> (POST form/JSON/multipart, or GET):
//   POST /upload/<file_id>            the bytes for files.getUploadURLExternal's upload_url
//   GET  /files-pri/<file_id>/…       url_private(_download); needs the bearer token
//   POST /control/<op>  JSON in, {"ok":true,…} or HTTP 400 {"ok":false,"error"} out:
//     post_message {channel,user,text,files?}   post_reply {channel,thread_ts,user,text,files?,broadcast?}
//     add_file_reply {…as post_reply, files required}   (files: [{name, content | content_base64, mimetype?, title?}])
//     edit_message {channel,ts,text}   delete_message {channel,ts}   add_reaction {channel,ts,user,name}
//     archive_channel / unarchive_channel / remove_app / invite_app {channel}
//     revoke_token {}   restore_token {}
//     inject_fault {method,kind,count?,retry_after?,delay_ms?,error?}   clear_faults {}
//     rate_limit {method,per_second,burst} | {slack_defaults:true} | {off:true}
//     events_url {url}   events_enabled {enabled}   duplicate_next_events {count}   delay_events {ms}
//     verify_events_url {} → {verified}   wait_events_idle {timeout_ms?} → {idle}
//   GET (or POST) /control/sent | calls | deliveries | thread?channel=&ts=   read back
//
// Its state sits behind one mutex: it is a sandbox, not backline domain state.
//
// Where Slack's behaviour is not pinned down, the fake picks one reading and
// says so (see fake_slack_config): conversations.replies puts the parent first
// on the first page even when oldest/latest exclude it; files.completeUploadExternal
// does not report the message ts (Slack shares files asynchronously).

#include <boost/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "slack/signature.hpp"

namespace backline::slack {

// --- the workspace ------------------------------------------------------------

struct fake_channel {
  std::string id;    // "C0FINANCE"
  std::string name;  // "finance" (no '#')
  bool is_member = true;   // is the bot (the app) in it
  bool archived = false;
  bool is_private = false;  // private: the bot cannot see it unless a member
};

struct fake_user {
  std::string id;  // "U0ERIN"
  std::string name;
  std::string real_name;
  std::string display_name;
  bool is_bot = false;
};

struct fake_usergroup {
  std::string id;      // "S0FIN"
  std::string handle;  // "finance-team"
  std::string name;
  std::vector<std::string> users = {};  // returned with include_users=true
  bool disabled = false;                // listed only with include_disabled=true
};

struct fake_workspace {
  std::vector<fake_channel> channels;
  std::vector<fake_user> users;
  std::vector<fake_usergroup> usergroups;
};

/// The default workspace: #finance (C0FINANCE), #hr (C0HR), #operations
/// (C0OPS) with the bot in them; #general (C0GENERAL) without the bot; users
/// U0ERIN erin, U0HUGO hugo, U0OPAL opal; user groups S0FIN @finance-team,
/// S0HR @hr-team, S0OPS @ops-team.
fake_workspace sandbox_workspace();

/// Per (method, channel) token bucket: `per_second` sustained, `burst` at once.
struct rate_limit {
  double per_second = 1.0;
  double burst = 1.0;
};

/// Slack-like limits: chat.postMessage 1/s per channel (burst 3), Tier 2
/// (20/min) users.conversations, users.list and usergroups.list, Tier 3 (50/min) the other
/// reads and writes, Tier 4 (100/min) users.info and the file methods.
std::map<std::string, rate_limit> slack_rate_limits();

struct fake_slack_config {
  std::string bot_token = "xoxb-fake";
  std::string signing_secret = "fake-signing-secret";
  std::string team_id = "T0BACKLINE";
  std::string team_name = "backline sandbox";
  std::string bot_user_id = "U0BACKLINE";  // the app's bot user
  std::string bot_id = "B0BACKLINE";       // bot_id on the app's messages
  std::string app_id = "A0BACKLINE";
  fake_workspace workspace = sandbox_workspace();

  std::string host = "127.0.0.1";
  int port = 0;  // 0 = an ephemeral port
  std::size_t worker_threads = 16;  // httplib holds one per connection

  /// Message ts are "<seconds>.<6 digits>", unique and increasing: the wall
  /// clock's microseconds, stepped past the last ts issued, so a new fake
  /// issues no ts an earlier one did. This fixes the seconds instead, and the
  /// digits count from 000001 (deterministic ts).
  std::optional<std::int64_t> fixed_clock_seconds;

  /// conversations.replies: default and largest `limit`.
  std::size_t replies_default_limit = 10;
  std::size_t replies_max_limit = 1000;
  /// Slack returns the parent as the first message even when oldest/latest
  /// exclude it (observed behaviour); false = the parent passes the filter
  /// like any other message. Either way only the first page carries it.
  bool replies_always_include_parent = true;

  /// Slack answers files.completeUploadExternal before the file is shared
  /// (sharing is asynchronous), so `shares` is usually empty. true = include
  /// files[].shares with the message ts.
  bool complete_upload_reports_shares = false;

  /// Slack also delivers the app's own messages (with bot_id) as events.
  bool events_for_bot_messages = true;
  /// Events delivered at once (Slack sends concurrently; 1 keeps them in order).
  std::size_t event_senders = 1;
  /// Slack wants a 2xx within 3 s; later counts as a timeout.
  std::chrono::milliseconds event_timeout{3000};
  /// Delay before retry 1, 2, 3 (Slack: at once, ~1 min, ~5 min). Tests use ms.
  std::vector<std::chrono::milliseconds> event_retry_delays{
      std::chrono::milliseconds(0), std::chrono::minutes(1), std::chrono::minutes(5)};

  /// Sandbox mode: the workspace lives in memory while backline's log
  /// survives restarts, so a thread ts it does not know is taken as a
  /// placeholder parent of the app's instead of thread_not_found.
  bool adopt_unknown_parents = false;

  /// Rate limits per method; empty = off (see slack_rate_limits()).
  std::map<std::string, rate_limit> rate_limits;
};

/// A file a (fake) person attaches to a message.
struct fake_file {
  std::string name;     // "invoice.pdf"
  std::string content;  // the bytes
  std::string mimetype = {};  // guessed from the name when empty
  std::string title = {};     // the name when empty
};

/// How an injected fault answers the next calls of a method.
enum class fault_kind {
  ratelimit,     // HTTP 429, Retry-After, {"ok":false,"error":"ratelimited"}; not executed
  server_error,  // HTTP 500; not executed
  slow,          // executed, then answered normally after `delay`
  drop,          // executed, then the connection is cut mid-answer (no usable reply)
  error,         // HTTP 200 {"ok":false,"error":<error>}; not executed
};

/// "ratelimit", "server_error", "slow", "drop", "error"; throws on others.
fault_kind parse_fault_kind(std::string_view s);

struct fault_spec {
  fault_kind kind = fault_kind::ratelimit;
  int count = 1;        // applies to the next `count` calls of the method
  int retry_after = 1;  // seconds, for ratelimit
  std::chrono::milliseconds delay{0};  // for slow
  std::string error = "internal_error";  // for error ("rate_limited", "missing_scope", …)
};

/// Something the app did to the workspace (successful writes only).
struct sent_item {
  std::string method;  // chat.postMessage, chat.update, chat.delete, reactions.add,
                       // upload (bytes POSTed to an upload_url), files.completeUploadExternal
  std::string channel;
  std::string ts;        // the message concerned (for an upload: empty)
  std::string thread_ts;
  std::string text;      // text / initial_comment / reaction name / upload bytes
  boost::json::object args;  // the request's parameters as received
};

/// Every Web API call, failed or not (e.g. to check a poller's call budget).
struct api_call {
  std::string method;
  int http_status = 200;
  std::string error;  // "" when ok
  boost::json::object args;
  std::chrono::steady_clock::time_point at{};  // when it came in
};

/// One attempt to push an event to the events URL.
struct event_delivery {
  std::string event_id;
  int retry_num = 0;         // 0 = first attempt
  std::string retry_reason;  // "" on the first attempt
  int http_status = 0;       // 0 = no HTTP answer
  std::string body;          // the signed raw body
  std::chrono::steady_clock::time_point happened{};  // when the message or change happened
  std::chrono::steady_clock::time_point answered{};  // when this attempt got its answer (or none)
};

/// Thrown by the control surface: `what()` is a Slack-like error code
/// (channel_not_found, message_not_found, thread_not_found, user_not_found,
/// is_archived, invalid_arguments).
class fake_slack_error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class fake_slack {
public:
  explicit fake_slack(fake_slack_config config = {});
  ~fake_slack();  // stops
  fake_slack(const fake_slack&) = delete;
  fake_slack& operator=(const fake_slack&) = delete;

  static fake_workspace sandbox_workspace() { return backline::slack::sandbox_workspace(); }

  /// Binds and serves in a background thread (and starts event delivery).
  /// Throws std::runtime_error when the port cannot be bound. Start once:
  /// after stop(), make a new fake.
  void start();
  /// Stops serving and drops undelivered events. Idempotent.
  void stop();

  int port() const;
  std::string base_url() const;     // "http://127.0.0.1:PORT/api/"
  std::string server_url() const;   // "http://127.0.0.1:PORT" (control: + "/control/…")
  const fake_slack_config& config() const;

  // --- people on the Slack side (each pushes a message event) ---
  /// A top-level message by a person; answers its ts.
  std::string post_message(const std::string& channel, const std::string& user_id,
                           const std::string& text, std::vector<fake_file> files = {});
  /// A reply in the thread `thread_ts` (a parent's ts); `broadcast` = "also
  /// send to channel" (subtype thread_broadcast). With files: subtype file_share.
  std::string post_reply(const std::string& channel, const std::string& thread_ts,
                         const std::string& user_id, const std::string& text,
                         std::vector<fake_file> files = {}, bool broadcast = false);
  std::string add_file_reply(const std::string& channel, const std::string& thread_ts,
                             const std::string& user_id, fake_file file,
                             const std::string& text = "");
  /// Edits any message (message_changed event; `edited` on the message).
  void edit_message(const std::string& channel, const std::string& ts, const std::string& new_text);
  /// Deletes any message (message_deleted event). A parent with replies
  /// becomes a tombstone, as in Slack.
  void delete_message(const std::string& channel, const std::string& ts);
  void add_reaction(const std::string& channel, const std::string& ts,
                    const std::string& user_id, const std::string& name);

  // --- the workspace changing under the app ---
  void archive_channel(const std::string& channel);
  void unarchive_channel(const std::string& channel);
  /// The app is removed from the channel: not_in_channel (public) or
  /// channel_not_found (private) from then on, and no more events from it.
  void remove_app(const std::string& channel);
  void invite_app(const std::string& channel);
  void add_channel(fake_channel channel);
  void add_user(fake_user user);
  /// The id of the person with this name (name, display or real name, any
  /// case); someone new joins the workspace under it when nobody has it.
  std::string person_named(const std::string& name);
  /// The name Slack shows for a person (profile display_name, else
  /// real_name, else name), as users.info gives it; "" for an unknown id.
  std::string display_name_of(const std::string& user_id) const;
  /// The bot token stops working: token_revoked.
  void revoke_token();
  void restore_token();

  // --- Slack misbehaving ---
  void inject_fault(const std::string& method, fault_spec fault);
  void inject_fault(const std::string& method, fault_kind kind, int count = 1, int retry_after = 1,
                    std::chrono::milliseconds delay = std::chrono::milliseconds(0));
  void clear_faults();
  /// Turns a method's rate limit on (or replaces it); buckets start full.
  void set_rate_limit(const std::string& method, rate_limit limit);
  void set_rate_limits(std::map<std::string, rate_limit> limits);  // empty = off

  // --- Events API push ---
  /// Where events go (e.g. "http://127.0.0.1:8080/slack/events"); "" = nowhere.
  void set_events_url(const std::string& url);
  /// false: events are silently lost (subscription off, Slack outage).
  void events_enabled(bool on);
  /// The next n events are delivered twice (same event_id, no retry headers).
  void duplicate_next_events(int n);
  /// Each delivery waits this long first.
  void delay_events(std::chrono::milliseconds delay);
  /// Sends a url_verification challenge; true when the receiver echoes it.
  bool verify_events_url();
  /// Waits until no event is queued or in flight; false on timeout.
  bool wait_events_idle(std::chrono::milliseconds timeout = std::chrono::seconds(10));
  std::vector<event_delivery> event_deliveries() const;

  // --- reading back ---
  std::vector<sent_item> sent() const;
  std::vector<api_call> calls() const;
  std::size_t call_count(const std::string& method) const;
  /// The most calls of `method` in any stretch of `window` (how a call budget
  /// per window is checked). Calls cross loopback with some jitter, more on a
  /// loaded machine: backline's poller keeps a margin of 5% (at least 5 ms).
  std::size_t busiest_window(const std::string& method, std::chrono::milliseconds window) const;
  /// A message as conversations.replies shows it (with metadata), if present.
  std::optional<boost::json::object> message(const std::string& channel, const std::string& ts) const;
  /// Parent then replies, as conversations.replies shows them (with metadata).
  std::vector<boost::json::object> thread(const std::string& channel, const std::string& thread_ts) const;
  /// The bytes of a file (uploaded by the app or attached by a person).
  std::optional<std::string> file_content(const std::string& file_id) const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

}  // namespace backline::slack

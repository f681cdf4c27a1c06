#pragma once
// The inbox actors' interfaces: the directory finds or activates one actor
// per chat; a chat actor owns its stream and its threads' actors; a thread
// actor owns its stream; the Slack port takes outbound posts.

#include <atomic>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "backline/journal.hpp"
#include "backline/messages.hpp"

namespace backline {

/// Commands on one chat or one of its threads.
using chat_actor = caf::typed_actor<caf::replies_to<atoms::command, command>::with<api_reply>>;

/// The thread actor: the same commands, checked first for who may do what
/// by its chat actor, or by the directory once the chat has activated it.
using thread_actor = caf::typed_actor<caf::replies_to<atoms::command, command>::with<api_reply>>;

/// Where one Slack channel's posts go, in order: answers the Slack ts once posted.
using slack_channel_actor = caf::typed_actor<caf::replies_to<atoms::post, outbound_post>::with<reply_status, std::string>>;

/// Where outbound thread messages go (Slack in production; a recorder in
/// tests). Answers the Slack ts once posted.
using slack_port_actor = caf::typed_actor<
  caf::replies_to<atoms::post, outbound_post>::with<reply_status, std::string>,
  // The actor that posts to this channel id (thread actors post there directly).
  caf::replies_to<atoms::route, std::string>::with<slack_channel_actor>,
  // What the in-memory port recorded (tests); the Slack port keeps no copy: empty.
  caf::replies_to<atoms::sent_log>::with<std::vector<outbound_post>>,
  // Slack users' display names (users.info, cached), in order; the id when unknown.
  caf::replies_to<atoms::resolve, std::vector<std::string>>::with<std::vector<std::string>>,
  // The channels for the "To" list, as the API's JSON array: (status, JSON).
  caf::replies_to<atoms::list>::with<reply_status, std::string>,
  // Who can be @mentioned besides @here and @channel: the workspace's user groups and
  // users, as a JSON array of {"kind":"usergroup"|"user","id","handle","name"}: (status, JSON).
  caf::replies_to<atoms::mentions>::with<reply_status, std::string>,
  // Health of the Slack side: ok, or why not (a rejected token); messages queued.
  caf::replies_to<atoms::health>::with<reply_status, uint64_t>,
  // Internal: a channel reports its queue (channel id, queued, token rejected?).
  caf::reacts_to<atoms::notify, std::string, uint64_t, bool>>;

/// Notifications for agents: which chat each agent has open (focus), what
/// is pending for them, and the long polls waiting for it.
using notifications_actor = caf::typed_actor<
  // agent id, chat id, focused?
  caf::reacts_to<atoms::focus, std::string, std::string, bool>,
  // agent id, chat id, thread id, unread: kept only while the agent has that chat open.
  caf::reacts_to<atoms::notify, std::string, std::string, std::string, uint64_t>,
  // agent id, after cursor, wait ms: answered at once if something is pending, else within wait.
  caf::replies_to<atoms::poll, std::string, uint64_t, uint32_t>::with<api_reply>,
  // Internal: a poll's wait is over (agent id, poll number).
  caf::reacts_to<atoms::poll_end, std::string, uint64_t>,
  // The server is stopping: every waiting poll is answered now, and later ones at once.
  caf::reacts_to<atoms::flush>>;

/// The poller: finds the Slack replies the Events API did not bring, with
/// conversations.replies, inside a call budget (see poller_options).
using poller_actor = caf::typed_actor<
  // Watch an open thread: thread id, channel id, parent ts.
  caf::reacts_to<atoms::watch, std::string, std::string, std::string>,
  // Something happened in the thread (a reply, an agent's message): poll it soon.
  caf::reacts_to<atoms::active, std::string>,
  // The thread is done: no more polling.
  caf::reacts_to<atoms::unwatch, std::string>,
  // Internal: time to see whether a call is due.
  caf::reacts_to<atoms::tick>,
  // Figures, as JSON: {"watched","calls","calls_in_window","replies" (new ones recorded),"failures"}.
  caf::replies_to<atoms::stats>::with<std::string>>;

/// The directory: creates chats, routes commands to chat actors (activating
/// them from the log) and thread commands straight to the thread actors its
/// chats activated, and keeps the chat index that lists serve.
using directory_actor = caf::typed_actor<
  caf::replies_to<atoms::command, command>::with<api_reply>,
  // Create a chat (the bot): caller, body {"customer":{id,name},"text"?}, idempotency key.
  caf::replies_to<atoms::create, caller, std::string, std::string>::with<api_reply>,
  // List chats: caller, view (mine | active | resolved).
  caf::replies_to<atoms::list, caller, std::string>::with<api_reply>,
  // A chat actor reports its current JSON: chat id, status, agent id, JSON.
  caf::reacts_to<atoms::indexed, std::string, bool, std::string, std::string>,
  // A chat actor activated one of its threads: thread id, its actor.
  caf::reacts_to<atoms::spawned, std::string, thread_actor>,
  // A thread reports where it lives in Slack: channel id, parent ts, thread id.
  caf::reacts_to<atoms::slack_tsix, std::string, std::string, std::string>,
  // Which thread is Slack's (channel id, thread ts)? "" when none.
  caf::replies_to<atoms::resolve, std::string, std::string>::with<std::string>,
  // From threads, for the poller: activity in a thread; a thread is done.
  caf::reacts_to<atoms::active, std::string>,
  caf::reacts_to<atoms::unwatch, std::string>,
  // Tell this poller (a poller_actor) about open threads from now on.
  caf::reacts_to<atoms::route, caf::actor>>;

/// Users: immutable snapshots published for the HTTP front to authenticate
/// against without a round trip; the users actor is the only writer.
struct users_table {
  std::unordered_map<std::string, user> by_id;
  std::unordered_map<std::string, std::string> id_by_token_hash;
};

class users_view {
public:
  users_view();
  /// The newest published table. Each thread keeps the one it last loaded
  /// and only checks a stamp: every HTTP worker authenticates every request,
  /// and a shared load (libstdc++'s atomic<shared_ptr> spins on a lock bit)
  /// left workers spinning behind one preempted while holding it: 2% of the
  /// server's CPU at 64 connections.
  std::shared_ptr<const users_table> current() const;
  void publish(std::shared_ptr<const users_table> t);

private:
  mutable std::mutex mu_;
  std::shared_ptr<const users_table> table_ = std::make_shared<users_table>();  // guarded by mu_
  std::atomic<uint64_t> stamp_;  // unique across views: a thread's cache is keyed by it alone
};

using users_actor = caf::typed_actor<
  // Create a user (admin): caller, body {"id","name","role","inbox_access"?}, idempotency key.
  caf::replies_to<atoms::create, caller, std::string, std::string>::with<api_reply>>;

/// The chat index entry the directory keeps per chat.
struct chat_index_entry {
  bool resolved = false;
  std::string agent_id;
  std::string json;
};

class file_store;

/// How the Web API Slack port paces and retries (every field says its default).
struct slack_port_options {
  std::string api_url = "https://slack.com/api/";  // SLACK_API_URL
  std::string token;                               // SLACK_BOT_TOKEN
  std::chrono::milliseconds timeout{10000};        // per Web API call
  std::chrono::milliseconds min_interval{1000};    // per channel: about 1 message a second
  int burst = 3;                                   // posts a quiet channel may send at once
  std::chrono::milliseconds max_backoff{30000};    // longest wait after 5xx / timeouts
  size_t callers = 128;                            // threads making blocking Web API calls, shared by every channel
};

/// How the poller spends its budget (every field says its default).
struct poller_options {
  std::string api_url = "https://slack.com/api/";  // SLACK_API_URL
  std::string token;                               // SLACK_BOT_TOKEN
  std::chrono::milliseconds timeout{10000};        // per Web API call
  uint32_t budget = 50;                            // conversations.replies calls per window (SLACK_POLL_BUDGET)
  std::chrono::milliseconds window{60000};         // the budget's window: a minute
  uint32_t page = 15;                              // messages per call (SLACK_POLL_PAGE)
  std::chrono::milliseconds min_interval{5000};    // an active thread is polled again this soon
  std::chrono::milliseconds max_interval{600000};  // a quiet thread, at least this often
  std::shared_ptr<file_store> files;               // where files of found replies are stored (none: left out)
  size_t max_file_bytes = 10u << 20;               // larger files are left out, with a note
};

namespace inbox {

/// Hex SHA-256 of a token, and a new random 256-bit token.
std::string hash_token(std::string_view token);
std::string new_token();
/// A new random id with a prefix, e.g. "ch-3f9a…".
std::string new_id(std::string_view prefix);

slack_port_actor spawn_memory_slack_port(caf::actor_system& sys);

/// The Slack port over the Web API: one actor per Slack channel posts in
/// order, paced, retrying rate limits and transient failures; a channel Slack
/// rejects fails its messages with the reason (the others carry on).
slack_port_actor spawn_web_slack_port(caf::actor_system& sys, slack_port_options opts,
                                      std::shared_ptr<file_store> files);

/// What the directory starts from: the chat index and where threads live in Slack.
struct directory_index {
  std::unordered_map<std::string, chat_index_entry> chats;
  std::unordered_map<std::string, std::string> thread_by_slack;  // "channel|ts" -> thread id
  std::vector<std::string> threads_to_deliver;  // threads with messages not yet in Slack
  std::unordered_map<std::string, std::pair<std::string, std::string>> open_in_slack;  // open thread -> (channel, ts)
};

directory_actor spawn_directory(caf::actor_system& sys, journal_actor journal, slack_port_actor slack,
                                notifications_actor notifications, directory_index index);

notifications_actor spawn_notifications(caf::actor_system& sys);

/// The poller; found replies go to the directory as slack_reply commands.
poller_actor spawn_poller(caf::actor_system& sys, poller_options opts, directory_actor directory,
                          slack_port_actor slack);

users_actor spawn_users(caf::actor_system& sys, journal_actor journal, std::shared_ptr<users_view> view);

/// Loads what the directory and the users actor start from (run before the
/// actors, off CAF's threads).
result<directory_index> load_directory_index(const event_store& store);
result<std::shared_ptr<users_table>> load_users(const event_store& store);

} // namespace inbox
} // namespace backline

#pragma once
// Files attached to thread messages: bytes and metadata on disk under the
// data directory, written and fsynced before the message that names them.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "backline/domain.hpp"
#include "backline/status.hpp"

namespace backline {

struct stored_file {
  file_ref ref;
  std::string chat_id;  // whose threads may read it
  std::string bytes;
};

class file_store {
public:
  /// Files live in dir (created if missing).
  explicit file_store(std::string dir);

  /// Stores a file for a chat's threads; returns its reference (a new id).
  result<file_ref> put(std::string_view name, std::string_view mimetype, std::string_view bytes,
                       std::string_view chat_id);
  /// Removes a stored file and its metadata (its message was refused, so
  /// nothing names it). Nothing when there is no such file.
  void remove(std::string_view id);
  /// The file with its metadata; errc::not_found for an unknown id.
  result<stored_file> get(std::string_view id) const;

  /// The Slack file ids uploaded for an outbound message (by its outbox id),
  /// written durably before Slack is asked to share them, so that after a
  /// crash the message is looked for by its files instead of sent again.
  status put_uploaded(std::string_view message_id, const std::vector<std::string>& slack_file_ids);
  /// Those ids; empty when none were noted.
  std::vector<std::string> uploaded(std::string_view message_id) const;

private:
  std::string dir_;
};

/// A file name safe to show and to put in a header: no path, no control
/// characters or quotes, at most 200 bytes ("file" when nothing is left).
std::string safe_file_name(std::string_view name);

} // namespace backline

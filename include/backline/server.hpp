#pragma once
// `backline serve`: the event store, the journal and the HTTP front wired
// together. main() only parses options, starts a server and waits for a
// signal; tests start one in-process on an ephemeral port the same way.

#include <memory>
#include <ostream>

#include "backline/config.hpp"
#include "backline/status.hpp"

namespace backline {

class server {
public:
  /// Opens the log, spawns the actors, binds and starts serving in the
  /// background. Progress lines go to `log`.
  static result<std::unique_ptr<server>> start(const server_config& cfg, std::ostream& log);
  ~server();

  /// The port the HTTP API listens on.
  int port() const;
  /// Stops cleanly: no new connections, in-flight requests finish, the
  /// journal writes what it holds, the log is closed. Idempotent.
  void stop();

  struct impl;

private:
  explicit server(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

} // namespace backline

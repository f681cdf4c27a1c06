#pragma once
// Prometheus metrics of the HTTP front, and the text format for /metrics.
//
// Hand-written on purpose. Debian bookworm does ship a C++ client,
// prometheus-cpp 1.0.1 (prometheus-cpp-dev), but it does not fit here:
// Histogram::Observe takes a mutex on every observation and Family::Add a
// mutex on every label lookup, both on the path of every request; its -dev
// package drags in civetweb and libcurl (its own HTTP server and push client)
// that we do not need; and the journal's figures are snapshots of counters and
// bucket vectors kept by the journal actor, which its model (counters that
// only increment) cannot take as they are. What we need is small: counters and
// histograms keyed by a few labels, updated with atomics and rendered as text.
//
// Hot path: observe() hashes the labels, finds the series in a fixed-size
// open-addressing table of atomic pointers (a series is created once, by
// compare-and-swap, and never removed), then does relaxed atomic adds. No
// mutex. A full table sends further series to one overflow series labelled
// route="other", so memory and cardinality stay bounded whatever clients send.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backline/messages.hpp"

namespace backline::http {

/// The route label of a request path: the segment after /chats/, /threads/,
/// /files/ or /users/ becomes {id}, so "/api/v1/threads/c1.t2/messages" is
/// "/api/v1/threads/{id}/messages"; the page's files are "/assets/{file}". Overlong paths
/// become "other".
std::string route_pattern(std::string_view path);

/// Upper bounds (seconds) of backline_http_request_duration_seconds; +Inf follows.
inline constexpr std::array<double, 13> duration_bounds_s = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                             0.1,    0.25,  0.5,    1,     2.5,   5};

namespace metrics_detail {

/// A fixed-size, insert-only, lock-free table of series keyed by a label string.
template <class Series>
class series_table {
public:
  explicit series_table(size_t capacity) : slots_(capacity) {}
  ~series_table() {
    for (auto& slot : slots_)
      delete slot.load(std::memory_order_acquire);
  }
  series_table(const series_table&) = delete;
  series_table& operator=(const series_table&) = delete;

  /// The series of `key`, created by make() on first sight; nullptr when full.
  template <class Make>
  Series* find_or_add(const std::string& key, Make make) {
    const size_t n = slots_.size();
    const size_t h = std::hash<std::string>{}(key);
    for (size_t i = 0; i < n; ++i) {
      auto& slot = slots_[(h + i) % n];
      Series* s = slot.load(std::memory_order_acquire);
      if (s == nullptr) {
        std::unique_ptr<Series> fresh = make();
        if (slot.compare_exchange_strong(s, fresh.get(), std::memory_order_acq_rel, std::memory_order_acquire))
          return fresh.release();
        // Another thread filled the slot first: s is its series now.
      }
      if (s->key == key)
        return s;
    }
    return nullptr;
  }

  /// The series of `key` if it exists (never creates one).
  Series* find(const std::string& key) const {
    const size_t n = slots_.size();
    const size_t h = std::hash<std::string>{}(key);
    for (size_t i = 0; i < n; ++i) {
      Series* s = slots_[(h + i) % n].load(std::memory_order_acquire);
      if (s == nullptr)
        return nullptr;
      if (s->key == key)
        return s;
    }
    return nullptr;
  }

  /// Every series, in no particular order.
  std::vector<const Series*> all() const {
    std::vector<const Series*> out;
    for (auto& slot : slots_)
      if (const Series* s = slot.load(std::memory_order_acquire))
        out.push_back(s);
    return out;
  }

private:
  std::vector<std::atomic<Series*>> slots_;
};

struct request_series {
  std::string key;  // route \0 method \0 status
  std::string route, method;
  int status = 0;
  std::atomic<uint64_t> count{0};
};

struct duration_series {
  std::string key;  // route \0 method
  std::string route, method;
  std::array<std::atomic<uint64_t>, duration_bounds_s.size() + 1> buckets{};  // not cumulative; last is +Inf
  std::atomic<uint64_t> sum_ns{0};
};

struct known_route {
  std::string key;
};

} // namespace metrics_detail

/// The HTTP front's figures. One per http_server; every member is safe to use
/// from any thread.
class http_metrics {
public:
  http_metrics();

  /// Counts one answered request under its route label and times it.
  void observe(const std::string& route, std::string_view method, int status, std::chrono::nanoseconds took);

  /// Remembers that a handler answered this route label, so that answers given
  /// before routing (413, 503 overloaded) may use it too (see label_for).
  void note_handled(const std::string& route);
  /// The label for an answer no handler gave: the route when a handler has
  /// answered it before, else "unmatched" (so unknown paths cannot add series).
  std::string label_for_unhandled(const std::string& route) const;

  std::atomic<int64_t> in_flight{0};      // requests past their headers, not yet answered
  std::atomic<int64_t> api_in_flight{0};  // of those, the ones admission control counts
  std::atomic<uint64_t> overloaded{0};    // answered 503 by admission control
  std::atomic<uint64_t> read_timeouts{0}; // connections dropped for a late request (or TLS handshake)
  std::atomic<uint64_t> rate_limited{0};  // answered 429 by the per-caller limits
  std::atomic<int64_t> connections_waiting{0};  // accepted, waiting for a worker
  std::atomic<uint64_t> connections_shed{0};    // refused at once: too many were waiting
  std::atomic<uint64_t> idle_closed{0};   // idle connections closed to give their worker to a waiting one
  size_t max_in_flight = 0;               // the admission limit, shown as a gauge

  /// Appends the HTTP families in the Prometheus text format 0.0.4.
  void render(std::string& out) const;

private:
  metrics_detail::series_table<metrics_detail::request_series> requests_;
  metrics_detail::series_table<metrics_detail::duration_series> durations_;
  metrics_detail::series_table<metrics_detail::known_route> known_routes_;
  metrics_detail::request_series request_overflow_;
  metrics_detail::duration_series duration_overflow_;
};

/// Appends the journal's figures (batches, requests, events, failures, batch
/// size and durable-write latency histograms) in the Prometheus text format.
void render_journal_stats(const journal_stats& stats, std::string& out);

/// Appends one gauge family with a single unlabelled sample.
void render_gauge(std::string& out, std::string_view name, std::string_view help, double value);
/// Appends one counter family with a single unlabelled sample.
void render_counter(std::string& out, std::string_view name, std::string_view help, double value);

/// The Prometheus content type of /metrics.
inline constexpr const char* metrics_content_type = "text/plain; version=0.0.4; charset=utf-8";

} // namespace backline::http

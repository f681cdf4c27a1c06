#include "http/metrics.hpp"

#include <algorithm>
#include <charconv>
#include <tuple>

namespace backline::http {
namespace {

using metrics_detail::duration_series;
using metrics_detail::known_route;
using metrics_detail::request_series;

// Series per table. The routes of the API times their methods and statuses
// stay well under these; past them, counts go to the overflow series.
constexpr size_t max_request_series = 1024;
constexpr size_t max_duration_series = 256;
constexpr size_t max_known_routes = 256;
constexpr size_t max_route_length = 200;

bool takes_id(std::string_view segment) {
  return segment == "chats" || segment == "threads" || segment == "files" || segment == "users";
}

void append_number(std::string& out, double v) {
  // Shortest round-trip digits in fixed notation: "0.0005", not "5e-04"
  // (bucket bounds are label values, compared as text across scrapes).
  char buf[400];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  out.append(buf, ec == std::errc{} ? end : buf);
}

void append_number(std::string& out, uint64_t v) { out += std::to_string(v); }

// A label value with \, " and newline escaped, as the text format requires.
void append_label_value(std::string& out, std::string_view v) {
  out += '"';
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  out += '"';
}

void append_family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out.append("# TYPE ").append(name).append(" ").append(type).append("\n");
}

template <class Number>  // uint64_t or double (see append_number)
void append_sample(std::string& out, std::string_view name, std::string_view labels, Number value) {
  out.append(name);
  if (!labels.empty())
    out.append("{").append(labels).append("}");
  out += ' ';
  append_number(out, value);
  out += '\n';
}

std::string route_method_labels(std::string_view route, std::string_view method) {
  std::string l = "route=";
  append_label_value(l, route);
  l += ",method=";
  append_label_value(l, method);
  return l;
}

// One histogram from non-cumulative bucket counts (the last is +Inf).
void append_histogram(std::string& out, std::string_view name, const std::string& labels,
                      const std::vector<std::string>& bounds, const std::vector<uint64_t>& buckets, double sum) {
  uint64_t cumulative = 0;
  std::string bucket_name = std::string(name) + "_bucket";
  for (size_t i = 0; i < buckets.size(); ++i) {
    cumulative += buckets[i];
    std::string l = labels.empty() ? std::string{} : labels + ",";
    l += "le=\"" + (i < bounds.size() ? bounds[i] : std::string("+Inf")) + "\"";
    append_sample(out, bucket_name, l, cumulative);
  }
  append_sample(out, std::string(name) + "_sum", labels, sum);
  append_sample(out, std::string(name) + "_count", labels, cumulative);
}

std::vector<std::string> bound_labels(const double* bounds, size_t n) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    std::string s;
    append_number(s, bounds[i]);
    out.push_back(s);
  }
  return out;
}

} // namespace

std::string route_pattern(std::string_view path) {
  if (path.size() > max_route_length)
    return "other";
  // The page's files: one label, whatever name is asked for.
  if (path.rfind("/assets/", 0) == 0)
    return "/assets/{file}";
  std::string out;
  out.reserve(path.size());
  bool next_is_id = false;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      out += '/';
      ++i;
      continue;
    }
    size_t end = path.find('/', i);
    if (end == std::string_view::npos)
      end = path.size();
    auto segment = path.substr(i, end - i);
    if (next_is_id) {
      out += "{id}";
      next_is_id = false;
    } else {
      out.append(segment);
      next_is_id = takes_id(segment);
    }
    i = end;
  }
  return out;
}

http_metrics::http_metrics()
  : requests_(max_request_series), durations_(max_duration_series), known_routes_(max_known_routes) {
  request_overflow_.route = "other";
  request_overflow_.method = "other";
  duration_overflow_.route = "other";
  duration_overflow_.method = "other";
}

void http_metrics::observe(const std::string& route, std::string_view method, int status,
                           std::chrono::nanoseconds took) {
  std::string key = route;
  key += '\0';
  key.append(method);
  const size_t route_method_size = key.size();
  key += '\0';
  key += std::to_string(status);

  auto* r = requests_.find_or_add(key, [&] {
    auto s = std::make_unique<request_series>();
    s->key = key;
    s->route = route;
    s->method = std::string(method);
    s->status = status;
    return s;
  });
  (r ? r : &request_overflow_)->count.fetch_add(1, std::memory_order_relaxed);

  key.resize(route_method_size);
  auto* d = durations_.find_or_add(key, [&] {
    auto s = std::make_unique<duration_series>();
    s->key = key;
    s->route = route;
    s->method = std::string(method);
    return s;
  });
  if (d == nullptr)
    d = &duration_overflow_;
  const double seconds = std::chrono::duration<double>(took).count();
  size_t b = 0;
  while (b < duration_bounds_s.size() && seconds > duration_bounds_s[b])
    ++b;
  d->buckets[b].fetch_add(1, std::memory_order_relaxed);
  d->sum_ns.fetch_add(static_cast<uint64_t>(std::max<int64_t>(0, took.count())), std::memory_order_relaxed);
}

void http_metrics::note_handled(const std::string& route) {
  if (known_routes_.find(route) != nullptr)
    return;
  known_routes_.find_or_add(route, [&] {
    auto s = std::make_unique<known_route>();
    s->key = route;
    return s;
  });
}

std::string http_metrics::label_for_unhandled(const std::string& route) const {
  return known_routes_.find(route) != nullptr ? route : std::string("unmatched");
}

void http_metrics::render(std::string& out) const {
  auto requests = requests_.all();
  if (request_overflow_.count.load(std::memory_order_relaxed) > 0)
    requests.push_back(&request_overflow_);
  std::sort(requests.begin(), requests.end(), [](auto* a, auto* b) {
    return std::tie(a->route, a->method, a->status) < std::tie(b->route, b->method, b->status);
  });
  append_family(out, "backline_http_requests_total", "counter",
                "HTTP requests answered, by route pattern, method and status.");
  for (auto* r : requests) {
    std::string l = route_method_labels(r->route, r->method) + ",status=\"" + std::to_string(r->status) + "\"";
    append_sample(out, "backline_http_requests_total", l, r->count.load(std::memory_order_relaxed));
  }

  auto durations = durations_.all();
  uint64_t overflow_count = 0;
  for (auto& b : duration_overflow_.buckets)
    overflow_count += b.load(std::memory_order_relaxed);
  if (overflow_count > 0)
    durations.push_back(&duration_overflow_);
  std::sort(durations.begin(), durations.end(),
            [](auto* a, auto* b) { return std::tie(a->route, a->method) < std::tie(b->route, b->method); });
  append_family(out, "backline_http_request_duration_seconds", "histogram",
                "Time from a request's first byte to its answer written, by route pattern and method.");
  static const auto bounds = bound_labels(duration_bounds_s.data(), duration_bounds_s.size());
  for (auto* d : durations) {
    std::vector<uint64_t> buckets;
    for (auto& b : d->buckets)
      buckets.push_back(b.load(std::memory_order_relaxed));
    append_histogram(out, "backline_http_request_duration_seconds", route_method_labels(d->route, d->method), bounds,
                     buckets, static_cast<double>(d->sum_ns.load(std::memory_order_relaxed)) / 1e9);
  }

  append_family(out, "backline_http_in_flight", "gauge", "HTTP requests being served now (past their headers).");
  append_sample(out, "backline_http_in_flight", "",
                static_cast<double>(in_flight.load(std::memory_order_relaxed)));
  append_family(out, "backline_http_api_in_flight", "gauge",
                "/api/v1 requests counted by admission control now (long polls excluded).");
  append_sample(out, "backline_http_api_in_flight", "",
                static_cast<double>(api_in_flight.load(std::memory_order_relaxed)));
  append_family(out, "backline_http_max_in_flight", "gauge",
                "The admission limit: more /api/v1 requests at once are answered 503.");
  append_sample(out, "backline_http_max_in_flight", "", static_cast<double>(max_in_flight));
  append_family(out, "backline_http_overloaded_total", "counter",
                "Requests answered 503 overloaded by admission control.");
  append_sample(out, "backline_http_overloaded_total", "", overloaded.load(std::memory_order_relaxed));
  append_family(out, "backline_http_read_timeouts_total", "counter",
                "Connections dropped because a request did not arrive in time (slow clients).");
  append_sample(out, "backline_http_read_timeouts_total", "", read_timeouts.load(std::memory_order_relaxed));
  append_family(out, "backline_http_rate_limited_total", "counter",
                "Requests answered 429 rate_limited: their caller (token, else address) was past its limit.");
  append_sample(out, "backline_http_rate_limited_total", "", rate_limited.load(std::memory_order_relaxed));
  append_family(out, "backline_http_connections_waiting", "gauge",
                "Connections accepted and waiting for a free HTTP worker.");
  append_sample(out, "backline_http_connections_waiting", "",
                static_cast<double>(connections_waiting.load(std::memory_order_relaxed)));
  append_family(out, "backline_http_connections_shed_total", "counter",
                "Connections refused at once (503 overloaded) because too many were waiting for a worker.");
  append_sample(out, "backline_http_connections_shed_total", "", connections_shed.load(std::memory_order_relaxed));
  append_family(out, "backline_http_idle_closed_total", "counter",
                "Idle connections closed so their worker could serve a waiting one.");
  append_sample(out, "backline_http_idle_closed_total", "", idle_closed.load(std::memory_order_relaxed));
}

void render_journal_stats(const journal_stats& s, std::string& out) {
  append_family(out, "backline_journal_batches_total", "counter", "Synced batches the journal wrote.");
  append_sample(out, "backline_journal_batches_total", "", s.batches);
  append_family(out, "backline_journal_syncs_total", "counter",
                "Fsyncs of the write-ahead log (each covers every batch written before it).");
  append_sample(out, "backline_journal_syncs_total", "", s.syncs);
  append_family(out, "backline_journal_requests_total", "counter", "Append requests the journal took into batches.");
  append_sample(out, "backline_journal_requests_total", "", s.requests);
  append_family(out, "backline_journal_events_total", "counter", "Events the journal made durable.");
  append_sample(out, "backline_journal_events_total", "", s.events);
  append_family(out, "backline_journal_failed_requests_total", "counter", "Append requests answered with an error.");
  append_sample(out, "backline_journal_failed_requests_total", "", s.failed_requests);
  append_family(out, "backline_journal_largest_batch", "gauge", "Requests in the largest batch so far.");
  append_sample(out, "backline_journal_largest_batch", "", static_cast<double>(s.largest_batch));

  // The bucket bounds are the journal's (actors/journal.cpp, documented on
  // journal_stats): requests per batch ≤1,≤4,≤16,≤64,≤256,>256 and write
  // latency ≤0.5,≤1,≤2,≤5,≤10,≤50 ms,>50. A vector of another length means
  // the journal changed its buckets: the histogram is left out rather than
  // mislabelled.
  static const double batch_bounds[] = {1, 4, 16, 64, 256};
  static const double write_bounds_s[] = {0.0005, 0.001, 0.002, 0.005, 0.01, 0.05};
  if (s.batch_size_buckets.size() == std::size(batch_bounds) + 1) {
    append_family(out, "backline_journal_batch_size", "histogram", "Append requests per synced batch.");
    // Every request is in exactly one batch, so the sum of batch sizes is the request count.
    append_histogram(out, "backline_journal_batch_size", "", bound_labels(batch_bounds, std::size(batch_bounds)),
                     s.batch_size_buckets, static_cast<double>(s.requests));
  }
  if (s.write_micros_buckets.size() == std::size(write_bounds_s) + 1) {
    append_family(out, "backline_journal_write_duration_seconds", "histogram",
                  "Durable-write latency: from a batch's write to its fsync answered.");
    append_histogram(out, "backline_journal_write_duration_seconds", "",
                     bound_labels(write_bounds_s, std::size(write_bounds_s)), s.write_micros_buckets,
                     static_cast<double>(s.write_micros) / 1e6);
  }
}

void render_gauge(std::string& out, std::string_view name, std::string_view help, double value) {
  append_family(out, name, "gauge", help);
  append_sample(out, name, "", value);
}

void render_counter(std::string& out, std::string_view name, std::string_view help, double value) {
  append_family(out, name, "counter", help);
  append_sample(out, name, "", value);
}

} // namespace backline::http

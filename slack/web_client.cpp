#include "slack/web_client.hpp"

#include <cstdlib>

#include <httplib.h>

#include <mutex>

#include "slack/events.hpp"

namespace json = boost::json;

namespace backline::slack {

const char* to_string(failure_kind k) noexcept {
  switch (k) {
    case failure_kind::none: return "none";
    case failure_kind::rate_limited: return "rate_limited";
    case failure_kind::transient: return "transient";
    case failure_kind::channel_unusable: return "channel_unusable";
    case failure_kind::token_bad: return "token_bad";
    case failure_kind::rejected: return "rejected";
  }
  return "rejected";
}

failure_kind classify_error(std::string_view e) noexcept {
  if (e == "ratelimited" || e == "rate_limited")
    return failure_kind::rate_limited;
  if (e == "channel_not_found" || e == "not_in_channel" || e == "is_archived")
    return failure_kind::channel_unusable;
  if (e == "invalid_auth" || e == "not_authed" || e == "token_revoked" || e == "account_inactive" ||
      e == "missing_scope" || e == "token_expired")
    return failure_kind::token_bad;
  if (e == "internal_error" || e == "fatal_error" || e == "service_unavailable" || e == "request_timeout")
    return failure_kind::transient;
  return failure_kind::rejected;
}

result<base_url_parts> split_base_url(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || (url.substr(0, scheme_end) != "http" && url.substr(0, scheme_end) != "https"))
    return status{errc::invalid_argument, "the Slack API URL must start with http:// or https://"};
  auto path_start = url.find('/', scheme_end + 3);
  base_url_parts parts;
  parts.origin = std::string(url.substr(0, path_start));
  parts.path = path_start == std::string_view::npos ? "/" : std::string(url.substr(path_start));
  if (parts.origin.size() <= scheme_end + 3)
    return status{errc::invalid_argument, "the Slack API URL has no host"};
  if (parts.path.back() != '/')
    parts.path.push_back('/');
  return parts;
}

// Connect, read and write timeouts to the millisecond (a whole-second
// setter would turn 300 ms into 0).
static void apply_timeouts(httplib::Client& cli, std::chrono::milliseconds t) {
  auto s = static_cast<time_t>(t.count() / 1000);
  auto us = static_cast<time_t>((t.count() % 1000) * 1000);
  cli.set_connection_timeout(s, us);
  cli.set_read_timeout(s, us);
  cli.set_write_timeout(s, us);
}

struct web_client::impl {
  client_options opts;
  base_url_parts base;
  // httplib::Client keeps one connection alive; one caller at a time uses it.
  std::mutex mu;
  std::unique_ptr<httplib::Client> cli;

  httplib::Client& client() {
    if (!cli) {
      cli = std::make_unique<httplib::Client>(base.origin);
      apply_timeouts(*cli, opts.timeout);
      cli->set_keep_alive(true);
      cli->set_tcp_nodelay(true);
    }
    return *cli;
  }
};

namespace {

call_result from_response(const httplib::Result& r) {
  call_result out;
  if (!r) {
    out.failure = failure_kind::transient;
    out.error = "no answer from Slack (" + httplib::to_string(r.error()) + ")";
    return out;
  }
  out.http_status = r->status;
  if (r->status == 429) {
    out.failure = failure_kind::rate_limited;
    out.error = "ratelimited";
    auto after = r->get_header_value("Retry-After");
    out.retry_after = std::chrono::seconds(after.empty() ? 1 : std::max(1, std::atoi(after.c_str())));
    return out;
  }
  if (r->status >= 500) {
    out.failure = failure_kind::transient;
    out.error = "Slack answered HTTP " + std::to_string(r->status);
    return out;
  }
  boost::system::error_code ec;
  auto v = json::parse(r->body, ec);
  if (ec || !v.is_object()) {
    out.failure = r->status == 200 ? failure_kind::transient : failure_kind::rejected;
    out.error = "Slack answered HTTP " + std::to_string(r->status) + " without a JSON object";
    return out;
  }
  out.body = std::move(v.as_object());
  auto* ok = out.body.if_contains("ok");
  if (ok != nullptr && ok->is_bool() && ok->as_bool())
    return out;
  auto* err = out.body.if_contains("error");
  out.error = err != nullptr && err->is_string() ? std::string(err->as_string()) : "unknown_error";
  out.failure = classify_error(out.error);
  if (out.failure == failure_kind::rate_limited)
    out.retry_after = std::chrono::seconds(1);
  return out;
}

} // namespace

web_client::web_client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
web_client::~web_client() = default;

result<std::unique_ptr<web_client>> web_client::make(const client_options& opts) {
  auto base = split_base_url(opts.base_url);
  if (!base)
    return base.error();
  auto p = std::make_unique<impl>();
  p->opts = opts;
  p->base = std::move(base.value());
  return std::unique_ptr<web_client>(new web_client(std::move(p)));
}

call_result web_client::call(std::string_view method, const json::object& args) {
  std::lock_guard lock(impl_->mu);
  auto& cli = impl_->client();
  httplib::Headers headers{{"Authorization", "Bearer " + impl_->opts.token}};
  auto path = impl_->base.path + std::string(method);
  return from_response(cli.Post(path.c_str(), headers, json::serialize(args), "application/json; charset=utf-8"));
}

call_result web_client::upload(const std::string& upload_url, std::string_view bytes, std::string_view mimetype) {
  auto base = split_base_url(upload_url);
  call_result out;
  if (!base) {
    out.failure = failure_kind::rejected;
    out.error = "the upload URL is malformed";
    return out;
  }
  httplib::Client cli(base->origin);
  apply_timeouts(cli, impl_->opts.timeout);
  auto path = base->path.substr(0, base->path.size() - 1);  // split_base_url added a '/'
  auto r = cli.Post(path.c_str(), std::string(bytes), std::string(mimetype).c_str());
  if (!r || r->status >= 300) {
    out.failure = r && r->status < 500 ? failure_kind::rejected : failure_kind::transient;
    out.error = r ? "upload answered HTTP " + std::to_string(r->status) : "no answer to the upload";
    out.http_status = r ? r->status : 0;
  }
  return out;
}

std::string next_cursor_of(const json::object& body) {
  if (auto* rm = body.if_contains("response_metadata"); rm && rm->is_object())
    if (auto* c = rm->as_object().if_contains("next_cursor"); c && c->is_string())
      return std::string(c->as_string());
  return {};
}

result<downloaded_file> web_client::download(const std::string& url, size_t max_bytes) {
  auto where = parse_file_url(url);  // the parse may_download_from checked
  if (!where)
    return status{errc::invalid_argument, "the file URL is malformed"};
  httplib::Client cli(where->origin());
  apply_timeouts(cli, impl_->opts.timeout);
  cli.set_follow_location(false);  // a redirect could point the token anywhere
  httplib::Headers headers{{"Authorization", "Bearer " + impl_->opts.token}};
  const auto& path = where->target;
  downloaded_file out;
  bool too_large = false;
  auto r = cli.Get(
    path.c_str(), headers,
    [&](const httplib::Response& head) {
      auto length = head.get_header_value("Content-Length");
      too_large = !length.empty() && std::strtoull(length.c_str(), nullptr, 10) > max_bytes;
      return !too_large;
    },
    [&](const char* data, size_t n) {
      if (out.bytes.size() + n > max_bytes) {
        too_large = true;
        return false;
      }
      out.bytes.append(data, n);
      return true;
    });
  if (too_large)
    return status{errc::invalid_argument, "the file is larger than " + std::to_string(max_bytes) + " bytes"};
  if (!r)
    return status{errc::unavailable, "no answer from the file host (" + httplib::to_string(r.error()) + ")"};
  if (r->status != 200)
    return status{r->status >= 500 ? errc::unavailable : errc::not_found,
                  "the file host answered HTTP " + std::to_string(r->status)};
  out.content_type = r->get_header_value("Content-Type");
  return out;
}

} // namespace backline::slack


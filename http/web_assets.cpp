#include "http/web_assets.hpp"

#include <boost/json.hpp>

#include "backline/sha256.hpp"
#include "http/framing.hpp"

namespace backline::http {
namespace {

constexpr std::string_view index_name = "index.html";
constexpr std::string_view assets_prefix = "/assets/";

// Nothing but this origin; images also from blob: (files fetched with the
// bearer token) and data: (none today, harmless for images).
constexpr std::string_view content_security_policy =
  "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "
  "form-action 'self'; frame-ancestors 'none'";

std::string sha256_hex16(std::string_view bytes) {
  auto md = sha256(bytes);
  return hex_of(md.data(), 8);
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}


void add_common_headers(web_answer& a) {
  a.headers.emplace_back("X-Content-Type-Options", "nosniff");
  a.headers.emplace_back("Referrer-Policy", "no-referrer");
  a.headers.emplace_back("Content-Security-Policy", std::string(content_security_policy));
}

web_answer not_found(std::string_view path) {
  web_answer a;
  a.status = 404;
  a.content_type = "application/json";
  a.body = boost::json::serialize(boost::json::object{
    {"error", boost::json::object{{"code", "not_found"}, {"message", "no such page file: " + std::string(path)}}}});
  a.headers.emplace_back("Cache-Control", "no-cache");
  add_common_headers(a);
  return a;
}

} // namespace

std::string_view content_type_of(std::string_view name) noexcept {
  auto dot = name.rfind('.');
  auto ext = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
  if (ext == "html")
    return "text/html; charset=utf-8";
  if (ext == "js" || ext == "mjs")
    return "text/javascript; charset=utf-8";
  if (ext == "css")
    return "text/css; charset=utf-8";
  if (ext == "svg")
    return "image/svg+xml";
  if (ext == "png")
    return "image/png";
  if (ext == "ico")
    return "image/x-icon";
  if (ext == "json")
    return "application/json";
  if (ext == "txt")
    return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

bool etag_matches(std::string_view header, std::string_view etag) noexcept {
  auto opaque = [](std::string_view tag) {
    tag = trim_ows(tag);
    if (tag.substr(0, 2) == "W/")
      tag.remove_prefix(2);
    return tag;
  };
  auto mine = opaque(etag);
  while (!header.empty()) {
    auto comma = header.find(',');
    auto one = trim_ows(header.substr(0, comma));
    if (one == "*" || (!one.empty() && opaque(one) == mine))
      return true;
    if (comma == std::string_view::npos)
      break;
    header.remove_prefix(comma + 1);
  }
  return false;
}

web_assets::web_assets(std::span<const web_file> files) {
  for (const auto& f : files) {
    asset a;
    a.content_type = content_type_of(f.name);
    a.body = std::string(f.bytes);
    assets_.emplace(std::string(f.name), std::move(a));
  }
  for (auto& [name, a] : assets_)
    if (name != index_name)
      a.version = sha256_hex16(a.body);
  // The page asks for each file by a URL that changes with its content.
  if (auto index = assets_.find(index_name); index != assets_.end()) {
    for (const auto& [name, a] : assets_)
      if (name != index_name) {
        auto url = std::string(assets_prefix) + name;
        replace_all(index->second.body, url + "\"", url + "?v=" + a.version + "\"");
      }
    index->second.version = sha256_hex16(index->second.body);
  }
  for (auto& [name, a] : assets_)
    a.etag = "\"" + a.version + "\"";
}

std::string web_assets::version_of(std::string_view name) const {
  auto i = assets_.find(name);
  return i == assets_.end() ? std::string{} : i->second.version;
}

web_answer web_assets::serve(std::string_view path, std::string_view version, std::string_view if_none_match) const {
  std::string_view name;
  bool is_page = path == "/";
  if (is_page)
    name = index_name;
  else if (path.substr(0, assets_prefix.size()) == assets_prefix)
    name = path.substr(assets_prefix.size());
  else
    return not_found(path);
  // index.html is the page itself: at "/", never under /assets/.
  if (name.empty() || (!is_page && name == index_name))
    return not_found(path);
  auto i = assets_.find(name);
  if (i == assets_.end())
    return not_found(path);
  const auto& a = i->second;
  web_answer out;
  out.headers.emplace_back("ETag", a.etag);
  out.headers.emplace_back("Cache-Control", !is_page && version == a.version
                                              ? "public, max-age=31536000, immutable"
                                              : "no-cache");
  add_common_headers(out);
  if (is_page)
    out.headers.emplace_back("X-Frame-Options", "DENY");
  out.content_type = a.content_type;
  if (!if_none_match.empty() && etag_matches(if_none_match, a.etag)) {
    out.status = 304;
    return out;
  }
  out.body = a.body;
  return out;
}

void register_web_routes(httplib::Server& server, std::shared_ptr<const web_assets> assets) {
  auto handler = [assets](const httplib::Request& req, httplib::Response& res) {
    auto answer = assets->serve(req.path, req.get_param_value("v"), req.get_header_value("If-None-Match"));
    res.status = answer.status;
    for (auto& [name, value] : answer.headers)
      res.set_header(name, value);
    if (answer.status == 304)
      return;  // no body, no Content-Type needed
    res.set_content(std::move(answer.body), answer.content_type);
  };
  server.Get("/", handler);
  server.Get(R"(/assets/[^/]+)", handler);
}

} // namespace backline::http

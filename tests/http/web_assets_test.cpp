// The agent inbox page's files: content types, ETags and caching as pure
// functions over made-up files, then the embedded page served by a real server.

#include <httplib.h>

#include <catch2/catch.hpp>

#include <regex>
#include <sstream>

#include "backline/server.hpp"
#include "http/web_assets.hpp"
#include "support/temp_dir.hpp"

using namespace backline;
using namespace backline::http;

namespace {

const web_file test_files[] = {
  {"index.html", R"(<link href="/assets/app.css"><script src="/assets/app.js"></script>)"},
  {"app.js", "console.log(1)"},
  {"app.css", "body{}"},
  {"logo.svg", "<svg/>"},
};

std::string header(const web_answer& a, std::string_view name) {
  for (const auto& [n, v] : a.headers)
    if (n == name)
      return v;
  return {};
}

} // namespace

TEST_CASE("page files: the content type follows the extension") {
  CHECK(content_type_of("index.html") == "text/html; charset=utf-8");
  CHECK(content_type_of("app.js") == "text/javascript; charset=utf-8");
  CHECK(content_type_of("app.css") == "text/css; charset=utf-8");
  CHECK(content_type_of("favicon.svg") == "image/svg+xml");
  CHECK(content_type_of("x.png") == "image/png");
  CHECK(content_type_of("README") == "application/octet-stream");
  CHECK(content_type_of("archive.tar.gz") == "application/octet-stream");
}

TEST_CASE("page files: If-None-Match matches by list, weak validator or star") {
  CHECK(etag_matches(R"("abc")", R"("abc")"));
  CHECK(etag_matches(R"(W/"abc")", R"("abc")"));
  CHECK(etag_matches(R"("x", "abc")", R"("abc")"));
  CHECK(etag_matches(R"(  "x" ,W/"abc" )", R"("abc")"));
  CHECK(etag_matches("*", R"("abc")"));
  CHECK_FALSE(etag_matches(R"("abcd")", R"("abc")"));
  CHECK_FALSE(etag_matches(R"("ab")", R"("abc")"));
  CHECK_FALSE(etag_matches("", R"("abc")"));
  CHECK_FALSE(etag_matches(",,", R"("abc")"));
}

TEST_CASE("page files: / is revalidated each time and names each file by its content hash") {
  web_assets assets(test_files);
  auto page = assets.serve("/", "", "");
  CHECK(page.status == 200);
  CHECK(page.content_type == "text/html; charset=utf-8");
  CHECK(header(page, "Cache-Control") == "no-cache");
  CHECK(header(page, "X-Content-Type-Options") == "nosniff");
  CHECK_THAT(header(page, "Content-Security-Policy"), Catch::Contains("default-src 'self'"));
  auto js = assets.version_of("app.js");
  auto css = assets.version_of("app.css");
  REQUIRE(js.size() == 16);
  REQUIRE(css.size() == 16);
  CHECK_THAT(page.body, Catch::Contains("/assets/app.js?v=" + js + "\"") &&
                          Catch::Contains("/assets/app.css?v=" + css + "\""));
  CHECK(header(page, "ETag") == "\"" + assets.version_of("index.html") + "\"");

  // The hashed URL never changes content: cached for a year.
  auto hashed = assets.serve("/assets/app.js", js, "");
  CHECK(hashed.status == 200);
  CHECK(hashed.body == "console.log(1)");
  CHECK(hashed.content_type == "text/javascript; charset=utf-8");
  CHECK(header(hashed, "Cache-Control") == "public, max-age=31536000, immutable");
  CHECK(header(hashed, "ETag") == "\"" + js + "\"");
  // Without its hash, or with an old one, it is revalidated.
  CHECK(header(assets.serve("/assets/app.js", "", ""), "Cache-Control") == "no-cache");
  CHECK(header(assets.serve("/assets/app.js", "0123456789abcdef", ""), "Cache-Control") == "no-cache");
  // A file the page does not name is served too (an import, an icon).
  CHECK(assets.serve("/assets/logo.svg", "", "").content_type == "image/svg+xml");
}

TEST_CASE("page files: a matching If-None-Match is 304 without a body, unknown files are 404") {
  web_assets assets(test_files);
  auto etag = header(assets.serve("/assets/app.css", "", ""), "ETag");
  auto same = assets.serve("/assets/app.css", "", etag);
  CHECK(same.status == 304);
  CHECK(same.body.empty());
  CHECK(header(same, "ETag") == etag);
  CHECK(assets.serve("/assets/app.css", "", R"("other")").status == 200);
  auto page_etag = header(assets.serve("/", "", ""), "ETag");
  CHECK(assets.serve("/", "", "W/" + page_etag).status == 304);

  for (auto path : {"/assets/nope.js", "/assets/", "/assets/index.html", "/index.html", "/elsewhere"}) {
    auto missing = assets.serve(path, "", "");
    CHECK(missing.status == 404);
    CHECK_THAT(missing.body, Catch::Contains("\"code\":\"not_found\""));
  }
}

TEST_CASE("the embedded page: / and every file it names are served with their types, 304 when unchanged") {
  backline::testing::temp_dir dir;
  server_config cfg;
  cfg.listen_port = 0;
  cfg.data_dir = dir.path();
  cfg.http_threads = 4;
  cfg.log_requests = false;
  std::ostringstream log;
  auto srv = server::start(cfg, log);
  REQUIRE(srv);
  httplib::Client cli("127.0.0.1", (*srv)->port());

  auto page = cli.Get("/");
  REQUIRE(page);
  CHECK(page->status == 200);
  CHECK(page->get_header_value("Content-Type") == "text/html; charset=utf-8");
  CHECK(page->get_header_value("Cache-Control") == "no-cache");
  CHECK_THAT(page->body, Catch::Contains("<title>backline</title>"));
  auto etag = page->get_header_value("ETag");
  REQUIRE_FALSE(etag.empty());
  auto again = cli.Get("/", {{"If-None-Match", etag}});
  REQUIRE(again);
  CHECK(again->status == 304);
  CHECK(again->body.empty());

  // Every file the page names, by its hashed URL.
  std::regex asset_url(R"re("(/assets/([^"?]+)\?v=([0-9a-f]{16}))")re");
  size_t files = 0;
  bool saw_js = false, saw_css = false;
  for (std::sregex_iterator i(page->body.begin(), page->body.end(), asset_url), end; i != end; ++i) {
    ++files;
    auto name = (*i)[2].str();
    auto res = cli.Get((*i)[1].str().c_str());
    REQUIRE(res);
    INFO(name);
    CHECK(res->status == 200);
    CHECK_FALSE(res->body.empty());
    CHECK(res->get_header_value("Content-Type") == std::string(content_type_of(name)));
    CHECK(res->get_header_value("Cache-Control") == "public, max-age=31536000, immutable");
    CHECK(res->get_header_value("ETag") == "\"" + (*i)[3].str() + "\"");
    saw_js = saw_js || name.ends_with(".js");
    saw_css = saw_css || name.ends_with(".css");
  }
  CHECK(files >= 2);
  CHECK(saw_js);
  CHECK(saw_css);

  auto head = cli.Head("/");
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->body.empty());
  auto missing = cli.Get("/assets/missing.js");
  REQUIRE(missing);
  CHECK(missing->status == 404);
  (*srv)->stop();
}

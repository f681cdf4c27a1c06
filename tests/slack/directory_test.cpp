// Who can be @mentioned: the pure reading of Slack's listings, then the web
// port fetching them from the local Slack fake (at most once a minute).

#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include "backline/file_store.hpp"
#include "backline/inbox.hpp"
#include "slack/directory.hpp"
#include "slack/fake_slack.hpp"
#include "support/temp_dir.hpp"

namespace json = boost::json;
using namespace backline;
using namespace std::chrono_literals;

TEST_CASE("mention candidates: enabled groups then people, sorted by handle, no bots or deleted users", "[slack]") {
  auto groups = json::parse(R"([
    {"id":"S2","handle":"ops-team","name":"Operations","date_delete":0},
    {"id":"S1","handle":"finance-team","name":"Finance"},
    {"id":"S3","handle":"old-team","name":"Gone","date_delete":1700000000},
    {"id":"S4","name":"no handle"},
    "not an object"])").as_array();
  auto members = json::parse(R"([
    {"id":"U2","name":"hugo","real_name":"Hugo Real","profile":{"display_name":"","real_name":"Hugo R."}},
    {"id":"U1","name":"erin","profile":{"display_name":"Erin","real_name":"Erin Smith"}},
    {"id":"U3","name":"robot","is_bot":true},
    {"id":"USLACKBOT","name":"slackbot"},
    {"id":"U4","name":"left","deleted":true},
    {"id":"U5","name":"plain"},
    {"name":"no id"}])").as_array();
  auto list = slack::mention_candidates(groups, members);
  REQUIRE(list.size() == 5);
  CHECK(list[0].kind == "usergroup");
  CHECK(list[0].handle == "finance-team");
  CHECK(list[0].id == "S1");
  CHECK(list[0].name == "Finance");
  CHECK(list[1].handle == "ops-team");
  CHECK(list[2].kind == "user");
  CHECK(list[2].handle == "erin");
  CHECK(list[2].name == "Erin");     // the display name first
  CHECK(list[3].handle == "hugo");
  CHECK(list[3].name == "Hugo R.");  // else the profile's real name
  CHECK(list[4].handle == "plain");
  CHECK(list[4].name == "plain");    // else the handle itself
  auto as_json = slack::to_json(list);
  CHECK(json::serialize(as_json.at(0)) == R"({"kind":"usergroup","id":"S1","handle":"finance-team","name":"Finance"})");
  CHECK(slack::mention_candidates({}, {}).empty());
}

TEST_CASE("the web port lists the fake workspace's groups and people for @-suggestions, once a minute", "[slack]") {
  backline::testing::temp_dir dir;
  slack::fake_slack fake;
  fake.start();
  caf::actor_system_config cfg;
  cfg.set("logger.console-verbosity", caf::atom("quiet"));
  auto sys = std::make_unique<caf::actor_system>(cfg);
  slack_port_options opts;
  opts.api_url = fake.base_url();
  opts.token = fake.config().bot_token;
  opts.timeout = 2000ms;
  auto port = inbox::spawn_web_slack_port(*sys, opts, std::make_shared<file_store>(dir.sub("files")));
  auto ask = [&] {
    caf::scoped_actor self{*sys};
    std::pair<reply_status, std::string> out{reply_status{errc::timeout, "no answer"}, ""};
    self->request(port, 10s, atoms::mentions::value)
      .receive([&](const reply_status& st, const std::string& body) { out = {st, body}; }, [](caf::error&) {});
    return out;
  };
  auto [status, body] = ask();
  REQUIRE(status.ok());
  auto list = json::parse(body).as_array();
  std::vector<std::string> handles;
  for (auto& m : list)
    handles.push_back(std::string(m.at("handle").as_string()));
  // sandbox_workspace(): three groups, three people (and no bot user listed).
  CHECK(handles == std::vector<std::string>{"finance-team", "hr-team", "ops-team", "erin", "hugo", "opal"});
  auto calls_before = fake.calls().size();
  auto [again, same] = ask();
  CHECK(again.ok());
  CHECK(same == body);
  CHECK(fake.calls().size() == calls_before);  // answered from what was fetched
  caf::anon_send_exit(port, caf::exit_reason::user_shutdown);
  port = nullptr;
  sys.reset();
  fake.stop();
}

// The workspace's people and user groups as the agent's @-suggestions see
// them: pure functions over Slack's answers (usergroups.list, users.list).
#pragma once

#include <boost/json.hpp>

#include <string>
#include <vector>

namespace backline::slack {

struct mention_candidate {
  std::string kind;    // usergroup | user
  std::string id;      // S… or U…
  std::string handle;  // what follows '@': a group's handle, a user's name
  std::string name;    // a group's name; a user's display name, else real name, else name
};

/// The @-suggestions from usergroups.list's `usergroups` and users.list's
/// `members`: enabled groups, then people (deleted users, bots and Slackbot
/// left out), each kind sorted by handle. Entries without an id or handle
/// are skipped; anything not shaped like Slack's answer is ignored.
std::vector<mention_candidate> mention_candidates(const boost::json::array& usergroups,
                                                  const boost::json::array& members);

/// The candidates as the API's JSON array of {"kind","id","handle","name"}.
boost::json::array to_json(const std::vector<mention_candidate>& candidates);

} // namespace backline::slack

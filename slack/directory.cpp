#include "slack/directory.hpp"

#include <algorithm>

namespace json = boost::json;

namespace backline::slack {
namespace {

std::string text_of(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string{};
}

bool flag_of(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v != nullptr && v->is_bool() && v->as_bool();
}

// usergroups.list sets date_delete (seconds) on a disabled group, 0 otherwise.
bool disabled(const json::object& group) {
  auto* v = group.if_contains("date_delete");
  return v != nullptr && ((v->is_int64() && v->as_int64() != 0) || (v->is_uint64() && v->as_uint64() != 0));
}

void sort_by_handle(std::vector<mention_candidate>& list) {
  std::stable_sort(list.begin(), list.end(),
                   [](const mention_candidate& a, const mention_candidate& b) { return a.handle < b.handle; });
}

} // namespace

std::vector<mention_candidate> mention_candidates(const json::array& usergroups, const json::array& members) {
  std::vector<mention_candidate> groups, people;
  for (const auto& g : usergroups) {
    if (!g.is_object() || disabled(g.as_object()))
      continue;
    const auto& o = g.as_object();
    mention_candidate c{"usergroup", text_of(o, "id"), text_of(o, "handle"), text_of(o, "name")};
    if (!c.id.empty() && !c.handle.empty())
      groups.push_back(std::move(c));
  }
  for (const auto& u : members) {
    if (!u.is_object())
      continue;
    const auto& o = u.as_object();
    auto id = text_of(o, "id");
    if (flag_of(o, "deleted") || flag_of(o, "is_bot") || id == "USLACKBOT")
      continue;
    std::string shown;
    if (auto* p = o.if_contains("profile"); p != nullptr && p->is_object())
      for (auto key : {"display_name", "real_name"})
        if (shown.empty())
          shown = text_of(p->as_object(), key);
    if (shown.empty())
      shown = text_of(o, "real_name");
    mention_candidate c{"user", id, text_of(o, "name"), shown};
    if (c.name.empty())
      c.name = c.handle;
    if (!c.id.empty() && !c.handle.empty())
      people.push_back(std::move(c));
  }
  sort_by_handle(groups);
  sort_by_handle(people);
  groups.insert(groups.end(), people.begin(), people.end());
  return groups;
}

json::array to_json(const std::vector<mention_candidate>& candidates) {
  json::array out;
  for (const auto& c : candidates)
    out.push_back(json::object{{"kind", c.kind}, {"id", c.id}, {"handle", c.handle}, {"name", c.name}});
  return out;
}

} // namespace backline::slack

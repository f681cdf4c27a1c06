#include "slack/inbound_files.hpp"

namespace json = boost::json;

namespace backline::slack {

stored_inbound store_inbound_files(web_client& client, std::string_view api_url, const std::vector<inbound_file>& files,
                                   size_t max_bytes, file_store& store, std::string_view chat_id) {
  stored_inbound out;
  for (const auto& f : files) {
    auto name = safe_file_name(f.name);
    auto left_out = [&](const std::string& why) { out.notes.emplace_back(name + " was not downloaded: " + why); };
    if (!may_download_from(f.url, api_url)) {
      left_out("it is not on Slack's file hosts");
      continue;
    }
    if (f.size > max_bytes) {
      left_out("it is larger than " + std::to_string(max_bytes) + " bytes");
      continue;
    }
    auto got = client.download(f.url, max_bytes);
    if (!got) {
      left_out(got.error().message());
      continue;
    }
    auto type = !f.mimetype.empty() ? f.mimetype : got->content_type;
    if (auto semi = type.find(';'); semi != std::string::npos)
      type.resize(semi);
    if (type.empty())
      type = "application/octet-stream";
    auto ref = store.put(name, type, got->bytes, chat_id);
    if (!ref) {
      left_out(ref.error().message());
      continue;
    }
    out.files.push_back(json::object{{"id", ref->id}, {"name", ref->name}, {"mimetype", ref->mimetype},
                                     {"size", ref->size}});
  }
  return out;
}

} // namespace backline::slack

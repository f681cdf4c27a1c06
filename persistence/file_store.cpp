#include "backline/file_store.hpp"

#include <boost/json.hpp>
#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <cstring>
#include <fstream>

#include "backline/inbox.hpp"

namespace backline {
namespace {

// Writes a whole file durably: to a temporary name, fsync, rename, fsync
// the directory, so a crash leaves the old state or the new, never half.
status write_durably(const std::string& dir, const std::string& name, std::string_view bytes) {
  auto tmp = dir + "/." + name + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
  if (fd < 0) {
    auto err = errno;
    return {err == ENOSPC ? errc::no_space : errc::io_error, "cannot create " + tmp + ": " + std::strerror(err)};
  }
  size_t done = 0;
  while (done < bytes.size()) {
    auto n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      auto err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return {err == ENOSPC ? errc::no_space : errc::io_error, "cannot write " + tmp + ": " + std::strerror(err)};
    }
    done += static_cast<size_t>(n);
  }
  bool synced = ::fsync(fd) == 0;
  auto err = synced ? 0 : errno;
  ::close(fd);
  if (!synced || std::rename(tmp.c_str(), (dir + "/" + name).c_str()) != 0) {
    if (synced)
      err = errno;
    ::unlink(tmp.c_str());
    return {err == ENOSPC ? errc::no_space : errc::io_error,
            "cannot store " + name + " in " + dir + ": " + std::strerror(err)};
  }
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

bool valid_id(std::string_view id) {
  if (id.size() < 3 || id.size() > 40 || id.substr(0, 2) != "f-")
    return false;
  for (char c : id.substr(2))
    if (!std::isxdigit(static_cast<unsigned char>(c)))
      return false;
  return true;
}

} // namespace

std::string safe_file_name(std::string_view name) {
  auto slash = name.find_last_of("/\\");
  if (slash != std::string_view::npos)
    name = name.substr(slash + 1);
  std::string out;
  for (unsigned char c : name)
    if (c >= 0x20 && c != 0x7f && c != '"' && c != '\\' && out.size() < 200)
      out.push_back(static_cast<char>(c));
  if (out.empty() || out == "." || out == "..")
    out = "file";
  return out;
}

file_store::file_store(std::string dir) : dir_(std::move(dir)) {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
}

result<file_ref> file_store::put(std::string_view name, std::string_view mimetype, std::string_view bytes,
                                 std::string_view chat_id) {
  file_ref ref{inbox::new_id("f-"), safe_file_name(name),
               mimetype.empty() ? std::string("application/octet-stream") : std::string(mimetype), bytes.size()};
  if (auto s = write_durably(dir_, ref.id, bytes); !s)
    return s;
  auto meta = boost::json::serialize(boost::json::object{
    {"name", ref.name}, {"mimetype", ref.mimetype}, {"size", ref.size}, {"chat_id", chat_id}});
  if (auto s = write_durably(dir_, ref.id + ".meta", meta); !s) {
    remove(ref.id);  // no data file without its metadata
    return s;
  }
  return ref;
}

void file_store::remove(std::string_view id) {
  if (!valid_id(id))
    return;
  ::unlink((dir_ + "/" + std::string(id) + ".meta").c_str());
  ::unlink((dir_ + "/" + std::string(id)).c_str());
}

result<stored_file> file_store::get(std::string_view id) const {
  if (!valid_id(id))
    return status{errc::not_found, "no file " + std::string(id)};
  std::ifstream meta_in(dir_ + "/" + std::string(id) + ".meta", std::ios::binary);
  std::ifstream data_in(dir_ + "/" + std::string(id), std::ios::binary);
  if (!meta_in || !data_in)
    return status{errc::not_found, "no file " + std::string(id)};
  std::string meta((std::istreambuf_iterator<char>(meta_in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  auto v = boost::json::parse(meta, ec);
  if (ec || !v.is_object())
    return status{errc::corrupt, "the metadata of file " + std::string(id) + " is unreadable"};
  auto& o = v.as_object();
  stored_file f;
  f.ref.id = std::string(id);
  f.ref.name = o.contains("name") && o.at("name").is_string() ? std::string(o.at("name").as_string()) : "file";
  f.ref.mimetype = o.contains("mimetype") && o.at("mimetype").is_string() ? std::string(o.at("mimetype").as_string())
                                                                          : "application/octet-stream";
  f.chat_id = o.contains("chat_id") && o.at("chat_id").is_string() ? std::string(o.at("chat_id").as_string()) : "";
  f.bytes.assign(std::istreambuf_iterator<char>(data_in), std::istreambuf_iterator<char>());
  f.ref.size = f.bytes.size();
  return f;
}

namespace {

// Outbox ids are "m-<hex>"; a note's file name takes letters, digits, '-',
// '_' and '.' (not first), and nothing that could leave the directory.
bool valid_message_id(std::string_view id) {
  if (id.empty() || id.size() > 100 || id.front() == '.')
    return false;
  for (char c : id)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.')
      return false;
  return true;
}

} // namespace

status file_store::put_uploaded(std::string_view message_id, const std::vector<std::string>& slack_file_ids) {
  if (!valid_message_id(message_id))
    return {errc::invalid_argument, "not an outbox id: " + std::string(message_id)};
  auto dir = dir_ + "/uploads";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  boost::json::array ids;
  for (const auto& id : slack_file_ids)
    ids.emplace_back(id);
  return write_durably(dir, std::string(message_id) + ".json", boost::json::serialize(ids));
}

std::vector<std::string> file_store::uploaded(std::string_view message_id) const {
  std::vector<std::string> out;
  if (!valid_message_id(message_id))
    return out;
  std::ifstream in(dir_ + "/uploads/" + std::string(message_id) + ".json", std::ios::binary);
  if (!in)
    return out;
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  boost::system::error_code ec;
  auto v = boost::json::parse(text, ec);
  if (!ec && v.is_array())
    for (const auto& id : v.as_array())
      if (id.is_string())
        out.emplace_back(id.as_string());
  return out;
}

} // namespace backline

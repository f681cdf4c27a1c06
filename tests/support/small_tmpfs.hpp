#pragma once
// A small tmpfs for storage-fault tests (a disk that fills up): mounted at a
// fresh directory, unmounted when it goes out of scope. Mounting needs root
// (CI runs as root); when it is refused, mounted() is false and error() says
// why, and the test says it skipped.

#include <sys/mount.h>
#include <sys/statvfs.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

namespace backline::testing {

class small_tmpfs {
public:
  small_tmpfs(const std::string& where, const std::string& size) : path_(where) {
    std::filesystem::create_directories(path_);
    if (::mount("tmpfs", path_.c_str(), "tmpfs", 0, ("size=" + size).c_str()) != 0)
      error_ = std::strerror(errno);
    else
      mounted_ = true;
  }
  ~small_tmpfs() {
    if (mounted_)
      ::umount2(path_.c_str(), MNT_DETACH);
  }
  small_tmpfs(const small_tmpfs&) = delete;
  small_tmpfs& operator=(const small_tmpfs&) = delete;

  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  const std::string& path() const { return path_; }

  /// Fills the file system with `file` but for about `leave` bytes.
  void fill_leaving(const std::string& file, uintmax_t leave) const {
    std::FILE* f = std::fopen(file.c_str(), "wb");
    if (f == nullptr)
      return;
    std::setvbuf(f, nullptr, _IONBF, 0);
    std::string chunk(4096, '\0');
    while (std::fwrite(chunk.data(), 1, chunk.size(), f) == chunk.size()) {
    }
    std::fclose(f);
    auto size = std::filesystem::file_size(file);
    std::filesystem::resize_file(file, size > leave ? size - leave : 0);
  }

private:
  std::string path_, error_;
  bool mounted_ = false;
};

} // namespace backline::testing

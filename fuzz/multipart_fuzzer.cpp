// Multipart thread messages: a request with any Content-Type and body goes
// through cpp-httplib's request parser (as `backline serve` runs it) into
// the handler's form reading and checks (http/request_parsing). Nothing may
// crash or throw; every accepted file is within the size limit and every
// answer is one the API documents.
//
// Input: the Content-Type header value up to the first '\n', then the body.
// cpp-httplib is a shared library built without coverage instrumentation:
// the fuzzer is guided by our code's coverage, and the seeds carry the rest.

#include "fuzz/fuzz_check.hpp"
#include "http/request_parsing.hpp"

#include <string>

namespace json = boost::json;
using namespace backline;
using namespace backline::http;

namespace {

constexpr size_t max_file_bytes = 64;

/// Bytes in, bytes out: one request read from memory, the answer kept.
class memory_stream final : public httplib::Stream {
public:
  explicit memory_stream(std::string request) : in_(std::move(request)) {}
  bool is_readable() const override { return true; }
  bool is_writable() const override { return true; }
  ssize_t read(char* ptr, size_t size) override {
    size = std::min(size, in_.size() - off_);
    std::copy_n(in_.data() + off_, size, ptr);
    off_ += size;
    return static_cast<ssize_t>(size);
  }
  ssize_t write(const char* ptr, size_t size) override {
    out_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 40000;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = "127.0.0.1";
    port = 8080;
  }
  socket_t socket() const override { return 0; }
  const std::string& written() const { return out_; }

private:
  std::string in_;
  size_t off_ = 0;
  std::string out_;
};

class fuzzed_server : public httplib::Server {
public:
  fuzzed_server() {
    // The handler of POST …/threads/{id}/messages up to storing the files.
    Post(R"(/api/v1/threads/([^/]+)/messages)", [](const httplib::Request& req, httplib::Response& res) {
      handled = true;
      if (!req.is_multipart_form_data()) {
        res.status = 415;
        return;
      }
      auto form = multipart_form_of(req.files, max_file_bytes);
      if (!form) {
        // Too many parts or files, or a part whose name could not be read
        // (400); else a file too large (413) or one without a file name (400),
        // whichever comes first.
        const bool too_many = req.files.size() > max_form_parts || req.files.count("files") > max_files_per_message;
        bool unnamed_file = false;
        for (auto [f, end] = req.files.equal_range("files"); f != end; ++f)
          unnamed_file = unnamed_file || f->second.filename.empty();
        if (too_many || req.files.count("") > 0)
          FUZZ_CHECK(form.refusal().status == 400);
        else
          FUZZ_CHECK(form.refusal().status == 413 || (unnamed_file && form.refusal().status == 400));
        res.status = form.refusal().status;
        return;
      }
      size_t parts = req.files.count("files");
      FUZZ_CHECK(form->files.size() == parts);
      FUZZ_CHECK(req.files.count("") == 0);
      for (const auto* f : form->files)
        FUZZ_CHECK(f->content.size() <= max_file_bytes && !f->filename.empty());
      auto checked = checked_command_body(verb::thread_post, role::agent, form->fields, form->files.size(), {});
      if (!checked) {
        FUZZ_CHECK(checked.refusal().status == 400);
        res.status = 400;
        return;
      }
      // A message is text or files, or both.
      auto* text = checked->if_contains("text");
      FUZZ_CHECK(!form->files.empty() || (text && text->is_string() && !text->as_string().empty()));
      res.status = 201;
    });
  }
  int serve(memory_stream& strm) {
    handled = false;
    bool closed = false;
    process_request(strm, true, closed, nullptr);
    return handled ? 1 : 0;
  }
  static inline bool handled = false;
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static fuzzed_server server;
  auto rest = backline::fuzz::bytes_of(data, size);
  std::string content_type(backline::fuzz::take_until(rest, '\n'));
  for (char& c : content_type)
    if (c == '\r')
      c = ' ';
  std::string request = "POST /api/v1/threads/ch-1-t1/messages HTTP/1.1\r\nHost: fuzz\r\nContent-Type: " +
                        content_type + "\r\nContent-Length: " + std::to_string(rest.size()) + "\r\n\r\n";
  request.append(rest);
  memory_stream strm(std::move(request));
  server.serve(strm);
  // Whatever happened, one answer went out, with a status line.
  FUZZ_CHECK(strm.written().rfind("HTTP/1.1 ", 0) == 0);
  return 0;
}

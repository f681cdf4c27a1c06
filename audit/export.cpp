// `backline audit export`: the log as JSON Lines, for an auditor to check
// with a script of their own (tools/verify_export.mjs is one).

#include <ostream>

#include "backline/audit.hpp"

namespace json = boost::json;

namespace backline::audit {

result<export_report> export_log(const event_store& store, uint64_t from_position, std::ostream& out,
                                 const progress_fn& progress) {
  const auto head = store.head();
  if (from_position == 0)
    return status{errc::invalid_argument, "--from: positions start at 1"};
  if (from_position > std::max<uint64_t>(head.position, 1))
    return status{errc::invalid_argument, "--from " + std::to_string(from_position) + " is past the log's head (position "
                                            + std::to_string(head.position) + ")"};
  export_report report;
  report.from_position = from_position;
  std::string prev_hash;  // of the first exported event: where the script's chain starts
  bool header_written = false;
  auto write_header = [&] {
    out << json::serialize(json::object{{"format", "backline-audit-export"},
                                        {"version", 1},
                                        {"from_position", from_position},
                                        {"prev_hash", prev_hash}})
        << '\n';
    header_written = true;
  };

  status failure;
  uint64_t next = from_position;
  log_scan_options opts;
  opts.from_position = from_position;
  opts.threads = 2;
  std::string line;
  auto st = scan_global_log(store, opts, [&](std::vector<indexed_record>& entries) {
    for (const auto& entry : entries) {
      const auto where = "position " + std::to_string(next) + ": ";
      if (!entry.problem.empty()) {
        failure = {errc::corrupt, where + entry.problem};
        return false;
      }
      if (entry.position != next) {
        failure = {errc::corrupt, where + "missing from the global index (the next entry is position "
                                    + std::to_string(entry.position) + ")"};
        return false;
      }
      if (!entry.found) {
        failure = {errc::corrupt, where + "the global index points to stream " + entry.stream + " seq "
                                    + std::to_string(entry.seq) + ", which is not stored"};
        return false;
      }
      // Decoded and encoded again, so each line is one canonical JSON object
      // (the record's hash covers its fields, not its bytes). A record whose
      // hash does not match is exported as it is: finding that is the
      // auditor's check.
      auto e = decode_event(entry.bytes);
      if (!e) {
        failure = {errc::corrupt, where + "the record of stream " + entry.stream + " seq " + std::to_string(entry.seq)
                                    + " cannot be exported: " + e.error().message()};
        return false;
      }
      if (!header_written) {
        prev_hash = e->prev_hash;
        write_header();
      }
      line = encode_event(*e);
      line.push_back('\n');
      out.write(line.data(), static_cast<std::streamsize>(line.size()));
      report.head_position = e->position;
      report.head_hash = e->hash;
      ++report.events;
      ++next;
    }
    if (progress)
      progress("export", report.events, head.position - from_position + 1);
    return static_cast<bool>(out);
  });
  if (!st)
    return st;
  if (!failure)
    return failure;
  if (!out)
    return status{errc::io_error, "cannot write the export"};
  if (!header_written)
    write_header();  // an empty log: a header and a footer
  out << json::serialize(json::object{{"head", {{"position", report.head_position}, {"hash", report.head_hash}}},
                                      {"events", report.events}})
      << '\n';
  out.flush();
  if (!out)
    return status{errc::io_error, "cannot write the export"};
  return report;
}

} // namespace backline::audit

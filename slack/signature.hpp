#pragma once
// Slack request signing (Events API): what the events endpoint verifies and
// the local fake signs with.

#include <string>
#include <string_view>

namespace backline::slack {

/// Slack's request signature for the Events API: "v0=" + hex(HMAC-SHA256(
/// secret, "v0:" + timestamp + ":" + body)) — the value of X-Slack-Signature.
std::string slack_signature(const std::string& secret, const std::string& timestamp,
                            const std::string& body);

/// Compares two signatures in constant time (for equal lengths; a length
/// mismatch answers false at once, which leaks nothing useful).
bool signatures_equal(std::string_view a, std::string_view b);

} // namespace backline::slack

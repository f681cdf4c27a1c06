#pragma once
// SHA-256 from OpenSSL, for everything backline hashes: the log's hash chain,
// bearer tokens, rate-limit keys, the page's asset names, Slack signatures.

#include <openssl/evp.h>

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace backline {

/// SHA-256 fetched from OpenSSL's default provider once. EVP_sha256() makes
/// each digest look the algorithm up again under a lock: about half the cost
/// of hashing a bearer token, which every API request does.
const EVP_MD* sha256_md();

/// The digest of `bytes` (a context per thread, so nothing is allocated).
/// Throws std::runtime_error if libcrypto fails, which a working one does not.
std::array<unsigned char, 32> sha256(std::string_view bytes);

/// Lowercase hex of n bytes.
std::string hex_of(const unsigned char* bytes, size_t n);

} // namespace backline

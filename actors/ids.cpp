// Tokens and ids: random bytes from OpenSSL, hashes with SHA-256.

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "backline/inbox.hpp"

namespace backline::inbox {
namespace {

std::string hex(const unsigned char* p, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[p[i] >> 4];
    out[2 * i + 1] = digits[p[i] & 15];
  }
  return out;
}

std::string random_hex(size_t bytes) {
  unsigned char buf[32];
  if (bytes > sizeof buf || RAND_bytes(buf, static_cast<int>(bytes)) != 1)
    throw std::runtime_error("no random bytes from OpenSSL");
  return hex(buf, bytes);
}

} // namespace

std::string hash_token(std::string_view token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(token.data(), token.size(), md, &len, EVP_sha256(), nullptr);
  return hex(md, len);
}

std::string new_token() { return "bl_" + random_hex(32); }

std::string new_id(std::string_view prefix) { return std::string(prefix) + random_hex(8); }

} // namespace backline::inbox

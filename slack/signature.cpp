#include "slack/signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "backline/sha256.hpp"

namespace backline::slack {

std::string slack_signature(const std::string& secret, const std::string& timestamp,
                            const std::string& body) {
  const std::string base = "v0:" + timestamp + ":" + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(sha256_md(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(base.data()), base.size(), mac, &mac_len);
  return "v0=" + hex_of(mac, mac_len);
}

bool signatures_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace backline::slack

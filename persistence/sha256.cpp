#include "backline/sha256.hpp"

#include <memory>
#include <stdexcept>

namespace backline {
namespace {

struct md_ctx_deleter {
  void operator()(EVP_MD_CTX* ctx) const noexcept { EVP_MD_CTX_free(ctx); }
};

} // namespace

const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md != nullptr ? md : EVP_sha256();
}

std::array<unsigned char, 32> sha256(std::string_view bytes) {
  thread_local std::unique_ptr<EVP_MD_CTX, md_ctx_deleter> ctx{EVP_MD_CTX_new()};
  std::array<unsigned char, 32> md{};
  unsigned int len = 0;
  const bool ok = ctx && EVP_DigestInit_ex(ctx.get(), sha256_md(), nullptr) == 1
                  && EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) == 1
                  && EVP_DigestFinal_ex(ctx.get(), md.data(), &len) == 1 && len == md.size();
  if (!ok)
    throw std::runtime_error("SHA-256 failed in libcrypto");
  return md;
}

std::string hex_of(const unsigned char* bytes, size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (size_t i = 0; i < n; ++i) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  return out;
}

} // namespace backline

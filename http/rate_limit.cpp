#include "http/rate_limit.hpp"

#include <openssl/rand.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>

#include "backline/sha256.hpp"

namespace backline::http {

using steady = std::chrono::steady_clock;

token_bucket full_bucket(const rate_limit& limit, steady::time_point now) { return {limit.burst, now}; }

namespace {

double refilled(const token_bucket& b, const rate_limit& limit, steady::time_point now) {
  double elapsed = now > b.updated ? std::chrono::duration<double>(now - b.updated).count() : 0.0;
  return std::min(limit.burst, b.tokens + elapsed * limit.per_second);
}

} // namespace

take_result take_token(const token_bucket& bucket, const rate_limit& limit, steady::time_point now) {
  take_result r;
  if (!limit.on()) {
    r.bucket = bucket;
    r.allowed = true;
    return r;
  }
  r.bucket.tokens = refilled(bucket, limit, now);
  r.bucket.updated = std::max(now, bucket.updated);
  if (r.bucket.tokens >= 1.0) {
    r.bucket.tokens -= 1.0;
    r.allowed = true;
    return r;
  }
  // Refused: nothing taken; the wait until one whole token is there.
  double wait_s = (1.0 - r.bucket.tokens) / limit.per_second;
  auto whole = static_cast<long long>(std::ceil(wait_s - 1e-9));
  r.retry_after = std::chrono::seconds(std::max<long long>(whole, 1));
  return r;
}

bool bucket_is_full(const token_bucket& bucket, const rate_limit& limit, steady::time_point now) {
  return refilled(bucket, limit, now) >= limit.burst;
}

rate_limiter::rate_limiter(rate_limit limit, size_t max_keys) : limit_(limit), shards_(16) {
  max_per_shard_ = std::max<size_t>(max_keys / shards_.size(), 1);
  unsigned char salt[16];
  if (RAND_bytes(salt, sizeof salt) != 1) {
    // Without randomness the digests are still one-way; only unsalted.
    std::memset(salt, 0, sizeof salt);
  }
  salt_.assign(reinterpret_cast<const char*>(salt), sizeof salt);
}

uint64_t rate_limiter::key_of(std::string_view bearer_token, std::string_view client_ip) const {
  // Distinct prefixes: a token can never share a bucket with an address.
  std::string input = salt_;
  input += bearer_token.empty() ? 'a' : 't';
  input += bearer_token.empty() ? client_ip : bearer_token;
  auto digest = sha256(input);
  OPENSSL_cleanse(input.data(), input.size());
  uint64_t key = 0;
  std::memcpy(&key, digest.data(), sizeof key);
  return key;
}

take_result rate_limiter::take(uint64_t key, steady::time_point now) {
  auto& s = shards_[key % shards_.size()];
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.buckets.find(key);
  if (it == s.buckets.end()) {
    if (s.buckets.size() >= max_per_shard_)
      make_room(s, now);
    it = s.buckets.emplace(key, full_bucket(limit_, now)).first;
  }
  auto r = take_token(it->second, limit_, now);
  it->second = r.bucket;
  return r;
}

bool rate_limiter::empty(uint64_t key, steady::time_point now) const {
  auto& s = shards_[key % shards_.size()];
  std::lock_guard<std::mutex> lock(s.mutex);
  auto it = s.buckets.find(key);
  return it != s.buckets.end() && !take_token(it->second, limit_, now).allowed;
}

void rate_limiter::note_authenticated(uint64_t key) {
  auto& s = shards_[key % shards_.size()];
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.authenticated.size() >= max_per_shard_)
    s.authenticated.clear();
  s.authenticated.insert(key);
}

bool rate_limiter::authenticated_before(uint64_t key) const {
  auto& s = shards_[key % shards_.size()];
  std::lock_guard<std::mutex> lock(s.mutex);
  return s.authenticated.count(key) != 0;
}

rate_limit failed_authentication_limit(const rate_limit& per_caller) {
  if (!per_caller.on())
    return per_caller;
  return rate_limit{per_caller.per_second / 4, std::max(1.0, per_caller.burst / 4)};
}

// Forgets every key whose bucket has refilled (nothing is lost: a fresh
// bucket is full too); when none has, the one idle longest.
void rate_limiter::make_room(shard& s, steady::time_point now) {
  std::erase_if(s.buckets, [&](const auto& kv) { return bucket_is_full(kv.second, limit_, now); });
  if (s.buckets.size() < max_per_shard_)
    return;
  auto oldest = std::min_element(s.buckets.begin(), s.buckets.end(),
                                 [](const auto& a, const auto& b) { return a.second.updated < b.second.updated; });
  if (oldest != s.buckets.end())
    s.buckets.erase(oldest);
}

size_t rate_limiter::keys() const {
  size_t n = 0;
  for (const auto& s : shards_) {
    std::lock_guard<std::mutex> lock(s.mutex);
    n += s.buckets.size();
  }
  return n;
}

std::string_view bearer_token_of(std::string_view authorization) {
  constexpr std::string_view scheme = "Bearer ";
  if (authorization.size() <= scheme.size())
    return {};
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(scheme[i])))
      return {};
  auto token = authorization.substr(scheme.size());
  while (!token.empty() && token.front() == ' ')
    token.remove_prefix(1);
  return token;
}

} // namespace backline::http

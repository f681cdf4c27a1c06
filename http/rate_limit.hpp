#pragma once
// Per-caller request limits of the HTTP front: a token bucket per key (the
// bearer token, or the client's address for requests without one), so one
// runaway client gets 429 with Retry-After while the others are served.
//
// The rule (take_token) is a pure function over a bucket's state; the
// rate_limiter keeps the buckets in a sharded, mutex-protected map of bounded
// size. Keys are salted SHA-256 digests (64 bits of them): a token is never
// stored, only its digest.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace backline::http {

/// A key's allowance: `per_second` requests a second on average, up to
/// `burst` at once. per_second 0 turns limits off.
struct rate_limit {
  double per_second = 0;
  double burst = 0;
  bool on() const { return per_second > 0 && burst >= 1; }
};

/// One key's bucket: the tokens it held at `updated`.
struct token_bucket {
  double tokens = 0;
  std::chrono::steady_clock::time_point updated;
};

/// A fresh key's bucket: full.
token_bucket full_bucket(const rate_limit& limit, std::chrono::steady_clock::time_point now);

struct take_result {
  token_bucket bucket;          // the bucket after this request
  bool allowed = false;         // a token was taken
  std::chrono::seconds retry_after{0};  // refused: whole seconds until a token is there (at least 1)
};

/// The rule: the bucket refills at per_second up to burst since `updated`;
/// a request takes one token, or is refused when less than one is there.
take_result take_token(const token_bucket& bucket, const rate_limit& limit,
                       std::chrono::steady_clock::time_point now);

/// Whether a bucket refilled to full by `now` (its key may be forgotten:
/// a fresh bucket is the same).
bool bucket_is_full(const token_bucket& bucket, const rate_limit& limit, std::chrono::steady_clock::time_point now);

/// The buckets of every key, safe to use from any thread.
class rate_limiter {
public:
  /// At most max_keys buckets are kept (idle ones are forgotten first).
  explicit rate_limiter(rate_limit limit, size_t max_keys = 1u << 16);

  bool on() const { return limit_.on(); }

  /// The key of a request: its bearer token if it has one, else its client
  /// address. Only a salted digest is kept.
  uint64_t key_of(std::string_view bearer_token, std::string_view client_ip) const;

  /// Takes a token from `key`'s bucket.
  take_result take(uint64_t key, std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

  /// Whether `key`'s bucket holds less than one token now (nothing is taken);
  /// a key without a bucket is not empty.
  bool empty(uint64_t key, std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) const;

  /// Remembers that `key` (a token's) authenticated a request; at most
  /// max_keys are remembered, and forgetting one only costs it the benefit
  /// of the doubt while its address is over its failed-authentication limit.
  void note_authenticated(uint64_t key);
  bool authenticated_before(uint64_t key) const;

  /// Buckets held now (for tests).
  size_t keys() const;

private:
  struct shard {
    mutable std::mutex mutex;
    std::unordered_map<uint64_t, token_bucket> buckets;
    std::unordered_set<uint64_t> authenticated;
  };
  void make_room(shard& s, std::chrono::steady_clock::time_point now);

  rate_limit limit_;
  size_t max_per_shard_;
  std::string salt_;
  std::vector<shard> shards_;
};

/// The allowance of failed authentications (401s) per client address: a
/// quarter of the per-caller limit. Without it a client rotating random
/// tokens would get a fresh, full bucket with each one.
rate_limit failed_authentication_limit(const rate_limit& per_caller);

/// The bearer token of an Authorization header value ("" when there is none):
/// a view into `authorization`, which must outlive it.
std::string_view bearer_token_of(std::string_view authorization);

} // namespace backline::http

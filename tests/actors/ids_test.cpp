#include "backline/inbox.hpp"

#include <catch2/catch.hpp>

#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace backline;

TEST_CASE("ids: the prefix and 16 hex digits, never the same twice, across threads and refills of the pool") {
  const std::regex shape("m-[0-9a-f]{16}");
  std::vector<std::vector<std::string>> made(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < made.size(); ++i)
    threads.emplace_back([&made, i] {
      for (int k = 0; k < 5000; ++k)  // 8 bytes each: a 256-byte pool runs out every 32
        made[i].push_back(inbox::new_id("m-"));
    });
  for (auto& t : threads)
    t.join();
  std::set<std::string> seen;
  for (const auto& ids : made)
    for (const auto& id : ids) {
      REQUIRE(std::regex_match(id, shape));
      seen.insert(id);
    }
  CHECK(seen.size() == 4 * 5000);
}

TEST_CASE("tokens: bl_ and 64 hex digits, hashed as the hex SHA-256 of the token") {
  auto t = inbox::new_token();
  CHECK(std::regex_match(t, std::regex("bl_[0-9a-f]{64}")));
  CHECK(inbox::new_token() != t);
  CHECK(inbox::hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(inbox::hash_token(t) != inbox::hash_token(inbox::new_token()));
}

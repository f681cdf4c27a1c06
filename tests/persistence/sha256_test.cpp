#include "backline/sha256.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <thread>
#include <vector>

using namespace backline;

namespace {
std::string hex_sha256(std::string_view bytes) {
  auto md = sha256(bytes);
  return hex_of(md.data(), md.size());
}
} // namespace

TEST_CASE("sha256 gives the standard digests (FIPS 180-2 vectors), on any thread") {
  CHECK(hex_sha256("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex_sha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex_sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")
        == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // One context per thread: digests on other threads at once agree.
  std::vector<std::string> got(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&got, i] {
      for (int k = 0; k < 1000; ++k)
        got[i] = hex_sha256("abc");
    });
  for (auto& t : threads)
    t.join();
  for (const auto& g : got)
    CHECK(g == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("hex_of writes two lowercase digits a byte") {
  const unsigned char bytes[] = {0x00, 0x0f, 0xa0, 0xff};
  CHECK(hex_of(bytes, 4) == "000fa0ff");
  CHECK(hex_of(bytes, 0).empty());
}

#include "backline/inbox.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <memory>
#include <thread>

using namespace backline;

namespace {

std::shared_ptr<users_table> table_with(const std::string& id) {
  auto t = std::make_shared<users_table>();
  t->by_id[id] = user{id, id, role::agent, true, "hash-" + id};
  t->id_by_token_hash["hash-" + id] = id;
  return t;
}

} // namespace

TEST_CASE("users view: a thread sees each view's own newest table, not the one it read last") {
  users_view a, b;
  a.publish(table_with("alice"));
  b.publish(table_with("bob"));
  // One thread reads both: what it kept from a must not answer for b.
  CHECK(a.current()->by_id.count("alice") == 1);
  CHECK(b.current()->by_id.count("bob") == 1);
  CHECK(b.current()->by_id.count("alice") == 0);
  a.publish(table_with("carol"));
  CHECK(a.current()->by_id.count("carol") == 1);
  CHECK(a.current()->by_id.count("alice") == 0);
  CHECK(b.current()->by_id.count("bob") == 1);
  // A view made where another was freed starts from its own empty table.
  auto c = std::make_unique<users_view>();
  c->publish(table_with("dave"));
  CHECK(c->current()->by_id.count("dave") == 1);
  c.reset();
  users_view d;
  CHECK(d.current()->by_id.empty());
}

TEST_CASE("users view: a table published on one thread is seen by readers on others") {
  users_view v;
  std::atomic<bool> seen{false};
  bool first_ok = false;
  std::thread reader([&] {  // Catch's assertions stay on the test's thread
    auto first = v.current();
    first_ok = first->by_id.empty() || first->by_id.count("erin") == 1;
    while (!seen)
      seen = v.current()->by_id.count("erin") == 1;
  });
  v.publish(table_with("erin"));
  reader.join();
  CHECK(first_ok);
  CHECK(seen);
}

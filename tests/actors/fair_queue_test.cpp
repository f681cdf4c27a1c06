// A channel's queue: in order within a thread, threads taking turns.

#include <catch2/catch.hpp>

#include "actors/fair_queue.hpp"

using backline::fair_queue;

TEST_CASE("fair queue: each thread in order, the threads taking turns, the head kept until popped") {
  fair_queue<std::string> q;
  for (int i = 1; i <= 4; ++i)
    q.push("busy", "busy-" + std::to_string(i));
  q.push("quiet", "quiet-1");
  q.push("other", "other-1");
  q.push("other", "other-2");
  CHECK(q.size() == 7);
  CHECK(q.front() == "busy-1");
  CHECK(q.front() == "busy-1");  // a retry finds the same head
  std::vector<std::string> order;
  while (!q.empty())
    order.push_back(q.pop_front());
  CHECK(order == std::vector<std::string>{"busy-1", "quiet-1", "other-1", "busy-2", "other-2", "busy-3", "busy-4"});
  q.push("a", "a-1");
  q.push("b", "b-1");
  q.push("a", "a-2");
  CHECK(q.take_all() == std::vector<std::string>{"a-1", "b-1", "a-2"});
  CHECK(q.empty());
}

#pragma once
// The queue of one Slack channel's posts: in order within each thread, the
// threads taking turns, so one busy thread cannot hold the others back.
// The head stays the head until it is popped (a retried post keeps its place).

#include <cstddef>
#include <deque>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace backline {

template <class T>
class fair_queue {
public:
  /// Queues `item` behind the earlier items of the same `thread`.
  void push(const std::string& thread, T item) {
    auto& q = by_thread_[thread];
    if (q.empty())
      turns_.push_back(thread);
    q.push_back(std::move(item));
    ++size_;
  }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  /// The item whose turn it is (the queue must not be empty).
  T& front() { return by_thread_.at(turns_.front()).front(); }
  /// Takes the head; its thread, if it has more, goes to the back of the turns.
  T pop_front() {
    auto thread = turns_.front();
    turns_.pop_front();
    auto& q = by_thread_.at(thread);
    T item = std::move(q.front());
    q.pop_front();
    --size_;
    if (q.empty())
      by_thread_.erase(thread);
    else
      turns_.push_back(std::move(thread));
    return item;
  }
  /// Everything, in turn order, leaving the queue empty.
  std::vector<T> take_all() {
    std::vector<T> out;
    while (!empty())
      out.push_back(pop_front());
    return out;
  }

private:
  std::unordered_map<std::string, std::deque<T>> by_thread_;
  std::deque<std::string> turns_;  // threads with items, whose turn comes first first
  size_t size_ = 0;
};

} // namespace backline

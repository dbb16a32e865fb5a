// Splitting the native kernels' work over the thread pool, and shape helpers.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "thread_pool.h"

namespace mllm {

constexpr int64_t kGrain = 1 << 15;  // elements per task for element-wise work
constexpr int64_t kRowBlock = 256;   // rows per partial sum in sums over rows (fixed: results must not depend on the thread count)

// Runs fn(begin, end) over [0, n) in chunks on the pool when n is large.
template <typename Fn>
inline void chunked(int64_t n, int64_t grain, Fn fn) {
  const int threads = thread_count();
  if (n <= grain || threads == 1) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t tasks = std::min<int64_t>((n + grain - 1) / grain, threads * 4);
  const int64_t per = (n + tasks - 1) / tasks;
  parallel_for(static_cast<std::size_t>(tasks), [&](std::size_t t) {
    const int64_t begin = static_cast<int64_t>(t) * per;
    const int64_t end = std::min<int64_t>(n, begin + per);
    if (begin < end) fn(begin, end);
  });
}

inline int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

}  // namespace mllm

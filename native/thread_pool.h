// A small persistent thread pool for the native kernels.
//
// Workers sleep on a condition variable between jobs (no busy waiting, so a
// process that shares the cores does not turn a step into a spin-lock storm),
// and tasks are handed out through an atomic counter, so a worker that loses
// its core to another process simply takes fewer tasks.
#pragma once
#include <cstddef>
#include <functional>

namespace mllm {

// Number of threads used by parallel_for (the caller counts as one).
int thread_count();
// Changes the number of threads (1 = run everything on the caller).
void set_thread_count(int n);
// Runs fn(i) for i in [0, n), on up to thread_count() threads; returns when all are done.
void parallel_for(std::size_t n, const std::function<void(std::size_t)>& fn);

}  // namespace mllm

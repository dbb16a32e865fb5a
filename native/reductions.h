// Reduction kernels of the native backend, float32. The kinds (Reduce) are generated from src/engine/native/op_codes.ts.
#pragma once
#include <cstdint>

#include "op_codes.h"

namespace mllm {

// Reductions over the last axis of [rows, cols] → out[rows].
void reduce_rows(Reduce kind, const float* x, float* out, int64_t rows, int64_t cols);
// Reductions over the first axis of [rows, cols] (e.g. a bias gradient) → out[cols].
void reduce_cols(Reduce kind, const float* x, float* out, int64_t rows, int64_t cols);
// out[segments, inner] = Σ over i with ids[i] = s of x[i, inner]; ids outside [0, segments) are dropped.
void unsorted_segment_sum(const float* x, const int32_t* ids, int64_t count, int64_t inner, int64_t segments, float* out);

}  // namespace mllm

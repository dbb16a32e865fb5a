// Data-movement kernels of the native backend, float32, row-major.
#pragma once
#include <cstdint>
#include <vector>

namespace mllm {

// out = x transposed by perm (rank ≤ 8).
void transpose(const float* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& perm, float* out);
// out[outer, i, inner] = x[outer, indices[i], inner]; x is [outer, axisSize, inner].
void gather(const float* x, int64_t outer, int64_t axisSize, int64_t inner, const int32_t* indices, int64_t count, float* out);

}  // namespace mllm

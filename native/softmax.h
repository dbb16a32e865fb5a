// Softmax kernels of the native backend over the last axis of [rows, cols], float32.
#pragma once
#include <cstdint>

namespace mllm {

// Softmax over the last axis of [rows, cols].
void softmax_rows(const float* x, float* out, int64_t rows, int64_t cols);
// y = softmax(x·scale + mask) over the last axis of [rows, cols]; mask (optional) is [maskRows, cols], row r uses mask row r % maskRows.
void scaled_masked_softmax(const float* x, const float* mask, int64_t mask_rows, float scale, float* y, int64_t rows, int64_t cols);
// Its backward: dx = scale · y · (dy − Σ dy·y) per row.
void scaled_softmax_backward(const float* y, const float* dy, float scale, float* dx, int64_t rows, int64_t cols);

}  // namespace mllm

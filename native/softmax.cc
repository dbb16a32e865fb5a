// Softmax kernels over the last axis: plain, scaled and masked (attention), and the backward.
#include "softmax.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "parallel.h"
#include "simd.h"

namespace mllm {

void softmax_rows(const float* x, float* out, int64_t rows, int64_t cols) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* in = x + r * cols;
      float* o = out + r * cols;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < cols; ++c) max = std::max(max, in[c]);
      if (o != in) std::memcpy(o, in, cols * sizeof(float));
      const float sum = exp_shift_sum(o, cols, max);
      const float inv = 1.0f / sum;
      for (int64_t c = 0; c < cols; ++c) o[c] *= inv;
    }
  });
}

void scaled_masked_softmax(const float* x, const float* mask, int64_t mask_rows, float scale, float* y, int64_t rows, int64_t cols) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* in = x + r * cols;
      const float* m = mask ? mask + (r % mask_rows) * cols : nullptr;
      float* o = y + r * cols;
      float max = -std::numeric_limits<float>::infinity();
      for (int64_t c = 0; c < cols; ++c) {
        o[c] = in[c] * scale + (m ? m[c] : 0.0f);
        max = std::max(max, o[c]);
      }
      const float sum = exp_shift_sum(o, cols, max);
      const float inv = 1.0f / sum;
      for (int64_t c = 0; c < cols; ++c) o[c] *= inv;
    }
  });
}

void scaled_softmax_backward(const float* y, const float* dy, float scale, float* dx, int64_t rows, int64_t cols) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* yr = y + r * cols;
      const float* g = dy + r * cols;
      float dot = 0.0f;
      for (int64_t c = 0; c < cols; ++c) dot += g[c] * yr[c];
      float* o = dx + r * cols;
      for (int64_t c = 0; c < cols; ++c) o[c] = scale * yr[c] * (g[c] - dot);
    }
  });
}

}  // namespace mllm

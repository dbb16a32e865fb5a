// Normalisation kernels over the last axis: LayerNorm and RMSNorm, forward and backward.
#include "norms.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "parallel.h"

namespace mllm {
namespace {

// Σ x[c] and Σ x[c]² over a row, in 16 independent lanes (the compiler keeps them in vector registers),
// added pairwise at the end.
inline float lane_total(const float* lanes) {
  float half[8];
  for (int k = 0; k < 8; ++k) half[k] = lanes[k] + lanes[k + 8];
  return ((half[0] + half[4]) + (half[1] + half[5])) + ((half[2] + half[6]) + (half[3] + half[7]));
}

inline float row_sum(const float* in, int64_t D) {
  float lanes[16] = {};
  int64_t c = 0;
  for (; c + 16 <= D; c += 16)
    for (int k = 0; k < 16; ++k) lanes[k] += in[c + k];
  float sum = lane_total(lanes);
  for (; c < D; ++c) sum += in[c];
  return sum;
}

inline float row_centered_squares(const float* in, int64_t D, float m) {
  float lanes[16] = {};
  int64_t c = 0;
  for (; c + 16 <= D; c += 16)
    for (int k = 0; k < 16; ++k) {
      const float d = in[c + k] - m;
      lanes[k] += d * d;
    }
  float sum = lane_total(lanes);
  for (; c < D; ++c) sum += (in[c] - m) * (in[c] - m);
  return sum;
}

}  // namespace

void layer_norm_forward(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t D, float eps, float* y, float* mean, float* rstd) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* in = x + r * D;
      const float m = row_sum(in, D) / static_cast<float>(D);
      const float inv = 1.0f / std::sqrt(row_centered_squares(in, D, m) / static_cast<float>(D) + eps);
      mean[r] = m;
      rstd[r] = inv;
      float* o = y + r * D;
      for (int64_t c = 0; c < D; ++c) o[c] = (in[c] - m) * inv * gamma[c] + beta[c];
    }
  });
}

void layer_norm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd, int64_t rows, int64_t D, float* dx,
                         float* dgamma, float* dbeta) {
  // dx = rstd · (g − mean(g) − x̂ · mean(g · x̂)), g = dy · gamma, x̂ = (x − mean) · rstd.
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* g_in = dy + r * D;
      const float* in = x + r * D;
      const float m = mean[r], inv = rstd[r];
      float lanes_g[16] = {}, lanes_gx[16] = {};
      int64_t c = 0;
      for (; c + 16 <= D; c += 16)
        for (int k = 0; k < 16; ++k) {
          const float g = g_in[c + k] * gamma[c + k];
          lanes_g[k] += g;
          lanes_gx[k] += g * (in[c + k] - m) * inv;
        }
      float sum_g = lane_total(lanes_g), sum_gx = lane_total(lanes_gx);
      for (; c < D; ++c) {
        const float g = g_in[c] * gamma[c];
        sum_g += g;
        sum_gx += g * (in[c] - m) * inv;
      }
      const float mean_g = sum_g / static_cast<float>(D), mean_gx = sum_gx / static_cast<float>(D);
      float* o = dx + r * D;
      for (int64_t c = 0; c < D; ++c) {
        const float xhat = (in[c] - m) * inv;
        o[c] = inv * (g_in[c] * gamma[c] - mean_g - xhat * mean_gx);
      }
    }
  });
  // dgamma, dbeta: each task sums a block of kRowBlock rows into its own partials, added in block order
  // (the same blocks for any number of threads).
  const int64_t per = kRowBlock;
  const int64_t tasks = std::max<int64_t>(1, (rows + per - 1) / per);
  std::vector<float> partial(static_cast<size_t>(tasks * 2 * D), 0.0f);
  auto block = [&](std::size_t t) {
    float* pg = partial.data() + t * 2 * D;
    float* pb = pg + D;
    const int64_t begin = static_cast<int64_t>(t) * per, end = std::min<int64_t>(rows, begin + per);
    for (int64_t r = begin; r < end; ++r) {
      const float* g_in = dy + r * D;
      const float* in = x + r * D;
      const float m = mean[r], inv = rstd[r];
      for (int64_t c = 0; c < D; ++c) {
        pg[c] += g_in[c] * (in[c] - m) * inv;
        pb[c] += g_in[c];
      }
    }
  };
  if (tasks == 1) block(0);
  else parallel_for(static_cast<std::size_t>(tasks), block);
  for (int64_t c = 0; c < D; ++c) dgamma[c] = dbeta[c] = 0.0f;
  for (int64_t t = 0; t < tasks; ++t)
    for (int64_t c = 0; c < D; ++c) {
      dgamma[c] += partial[t * 2 * D + c];
      dbeta[c] += partial[t * 2 * D + D + c];
    }
}

void rms_norm_forward(const float* x, const float* weight, int64_t rows, int64_t D, float eps, float* y, float* rstd) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* in = x + r * D;
      double sq = 0.0;
      for (int64_t c = 0; c < D; ++c) sq += static_cast<double>(in[c]) * in[c];
      const float inv = 1.0f / std::sqrt(static_cast<float>(sq / D) + eps);
      rstd[r] = inv;
      float* o = y + r * D;
      for (int64_t c = 0; c < D; ++c) o[c] = in[c] * inv * weight[c];
    }
  });
}

void rms_norm_backward(const float* dy, const float* x, const float* weight, const float* rstd, int64_t rows, int64_t D, float* dx, float* dweight) {
  // dx = rstd · (g − x̂ · mean(g · x̂)), g = dy · weight, x̂ = x · rstd.
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(D, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* g_in = dy + r * D;
      const float* in = x + r * D;
      const float inv = rstd[r];
      double sum = 0.0;
      for (int64_t c = 0; c < D; ++c) sum += static_cast<double>(g_in[c] * weight[c]) * (in[c] * inv);
      const float mean_gx = static_cast<float>(sum / D);
      float* o = dx + r * D;
      for (int64_t c = 0; c < D; ++c) o[c] = inv * (g_in[c] * weight[c] - in[c] * inv * mean_gx);
    }
  });
  chunked(D, 64, [&](int64_t s, int64_t e) {
    for (int64_t c = s; c < e; ++c) dweight[c] = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      const float* g_in = dy + r * D;
      const float* in = x + r * D;
      const float inv = rstd[r];
      for (int64_t c = s; c < e; ++c) dweight[c] += g_in[c] * in[c] * inv;
    }
  });
}

}  // namespace mllm

// Reductions: sum, mean, max and min over the last or the first axis, and unsorted segment sums.
#include "reductions.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "parallel.h"

namespace mllm {

void reduce_rows(Reduce kind, const float* x, float* out, int64_t rows, int64_t cols) {
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      const float* in = x + r * cols;
      if (kind == Reduce::Max || kind == Reduce::Min) {
        float v = in[0];
        for (int64_t c = 1; c < cols; ++c) {
          if (std::isnan(in[c])) { v = in[c]; break; }
          v = kind == Reduce::Max ? std::max(v, in[c]) : std::min(v, in[c]);
        }
        out[r] = v;
      } else {
        // Pairwise-friendly: eight partial sums, as a vectorised loop would keep.
        float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8)
          for (int k = 0; k < 8; ++k) part[k] += in[c + k];
        float sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
        for (; c < cols; ++c) sum += in[c];
        out[r] = kind == Reduce::Mean ? sum / static_cast<float>(cols) : sum;
      }
    }
  });
}

void reduce_cols(Reduce kind, const float* x, float* out, int64_t rows, int64_t cols) {
  if ((kind == Reduce::Sum || kind == Reduce::Mean) && rows >= 2 * kRowBlock) {
    // Sums (bias gradients: [B·T, N] → [N]): each task streams a contiguous block of kRowBlock rows into
    // its own partial sums, then the partials are added in block order. The blocks depend on the shape
    // only, so the result is the same for any number of threads.
    const int64_t per = kRowBlock;
    const int64_t tasks = (rows + per - 1) / per;
    std::vector<float> partial(static_cast<size_t>(tasks * cols), 0.0f);
    parallel_for(static_cast<std::size_t>(tasks), [&](std::size_t t) {
      float* acc = partial.data() + t * cols;
      const int64_t begin = static_cast<int64_t>(t) * per, end = std::min<int64_t>(rows, begin + per);
      for (int64_t r = begin; r < end; ++r) {
        const float* in = x + r * cols;
        for (int64_t c = 0; c < cols; ++c) acc[c] += in[c];
      }
    });
    for (int64_t c = 0; c < cols; ++c) out[c] = 0.0f;
    for (int64_t t = 0; t < tasks; ++t)
      for (int64_t c = 0; c < cols; ++c) out[c] += partial[t * cols + c];
    if (kind == Reduce::Mean)
      for (int64_t c = 0; c < cols; ++c) out[c] /= static_cast<float>(rows);
    return;
  }
  // Parallel over column ranges; each task streams the rows once.
  chunked(cols, 64, [&](int64_t s, int64_t e) {
    if (kind == Reduce::Max || kind == Reduce::Min) {
      for (int64_t c = s; c < e; ++c) out[c] = x[c];
      for (int64_t r = 1; r < rows; ++r) {
        const float* in = x + r * cols;
        for (int64_t c = s; c < e; ++c) {
          const float v = in[c];
          if (std::isnan(v) || std::isnan(out[c])) out[c] = std::numeric_limits<float>::quiet_NaN();
          else out[c] = kind == Reduce::Max ? std::max(out[c], v) : std::min(out[c], v);
        }
      }
      return;
    }
    for (int64_t c = s; c < e; ++c) out[c] = 0.0f;
    for (int64_t r = 0; r < rows; ++r) {
      const float* in = x + r * cols;
      for (int64_t c = s; c < e; ++c) out[c] += in[c];
    }
    if (kind == Reduce::Mean)
      for (int64_t c = s; c < e; ++c) out[c] /= static_cast<float>(rows);
  });
}

void unsorted_segment_sum(const float* x, const int32_t* ids, int64_t count, int64_t inner, int64_t segments, float* out) {
  std::fill(out, out + segments * inner, 0.0f);
  // Parallel over the inner dimension: each task owns a column range, so no two tasks write one value.
  chunked(inner, std::max<int64_t>(16, kGrain / std::max<int64_t>(count, 1)), [&](int64_t s, int64_t e) {
    for (int64_t i = 0; i < count; ++i) {
      const int64_t segment = ids[i];
      if (segment < 0 || segment >= segments) continue;
      const float* src = x + i * inner;
      float* dst = out + segment * inner;
      for (int64_t c = s; c < e; ++c) dst[c] += src[c];
    }
  });
}

}  // namespace mllm

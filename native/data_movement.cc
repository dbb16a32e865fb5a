// Data movement: transpose and gather.
#include "data_movement.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "parallel.h"

namespace mllm {

void transpose(const float* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& perm, float* out) {
  const size_t rank = shape.size();
  std::vector<int64_t> inStrides(rank, 1);
  for (size_t i = rank - 1; i-- > 0;) inStrides[i] = inStrides[i + 1] * shape[i + 1];
  std::vector<int64_t> outShape(rank), strideOfOutAxis(rank);
  for (size_t i = 0; i < rank; ++i) {
    outShape[i] = shape[perm[i]];
    strideOfOutAxis[i] = inStrides[perm[i]];
  }
  const int64_t n = product(shape);
  const int64_t inner = rank ? outShape[rank - 1] : 1;
  const int64_t innerStride = rank ? strideOfOutAxis[rank - 1] : 1;
  const int64_t rows = inner ? n / inner : 0;
  chunked(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)), [&](int64_t s, int64_t e) {
    for (int64_t r = s; r < e; ++r) {
      int64_t rest = r, off = 0;
      for (size_t axis = rank - 1; axis-- > 0;) {
        off += (rest % outShape[axis]) * strideOfOutAxis[axis];
        rest /= outShape[axis];
      }
      float* o = out + r * inner;
      if (innerStride == 1) {
        std::memcpy(o, x + off, inner * sizeof(float));
      } else {
        for (int64_t c = 0; c < inner; ++c) o[c] = x[off + c * innerStride];
      }
    }
  });
}

void gather(const float* x, int64_t outer, int64_t axisSize, int64_t inner, const int32_t* indices, int64_t count, float* out) {
  chunked(outer * count, std::max<int64_t>(1, kGrain / std::max<int64_t>(inner, 1)), [&](int64_t s, int64_t e) {
    for (int64_t t = s; t < e; ++t) {
      const int64_t o = t / count, i = t % count;
      const int64_t index = indices[i];
      float* dst = out + t * inner;
      if (index < 0 || index >= axisSize) {
        std::fill(dst, dst + inner, 0.0f);  // as tfjs's cpu backend: out-of-range gathers give zeros
      } else {
        std::memcpy(dst, x + (o * axisSize + index) * inner, inner * sizeof(float));
      }
    }
  });
}

}  // namespace mllm

// Matrix products with a 4-bit blockwise-quantized weight, dequantized panel by panel (see the header).
#include "quantized_matmul.h"

#include <algorithm>
#include <vector>

#include "gemm.h"
#include "parallel.h"

namespace mllm {

namespace {

// Values of W dequantized at a time (1 MiB of floats), whatever the size of the weight: whole rows (forward)
// or columns (gradient) of W, at least one. Few panels matter: each is one parallel GEMM (a barrier of the
// thread pool, slow on a loaded machine), and the dequantization itself runs on the calling thread.
constexpr int64_t kPanelValues = int64_t{1} << 18;

// The float32 constant of block b (two roundings with double quantization, as the tfjs composite does).
inline float block_constant(const Quantized4bitWeight& w, int64_t b) {
  if (w.absmax) return w.absmax[b];
  const float scaled = w.nested_code[w.absmax_codes[b]] * w.nested_absmax[b / w.nested_block_size];
  return scaled + w.offset;
}

// Element i of the flattened W.
inline float element(const Quantized4bitWeight& w, int64_t i, float constant) {
  const uint8_t byte = w.packed[i >> 1];
  const uint8_t q = (i & 1) ? (byte & 15) : (byte >> 4);
  return w.code[q] * constant;
}

// W[r0:r1, :] → panel [r1 − r0, in], row-major.
void dequantize_rows(const Quantized4bitWeight& w, int64_t r0, int64_t r1, float* panel) {
  const int64_t in = w.in_features;
  const int64_t s = 0;
  const int64_t e = (r1 - r0) * in;
  {
    const int64_t base = r0 * in;
    for (int64_t i = s; i < e;) {
      const int64_t flat = base + i;
      const int64_t block = flat / w.block_size;
      const int64_t end = std::min(e, (block + 1) * w.block_size - base);
      const float constant = block_constant(w, block);
      for (; i < end; ++i) panel[i] = element(w, base + i, constant);
    }
  }
}

// W[:, c0:c1] → panel [out, c1 − c0], row-major.
void dequantize_columns(const Quantized4bitWeight& w, int64_t c0, int64_t c1, float* panel) {
  const int64_t in = w.in_features;
  const int64_t width = c1 - c0;
  for (int64_t row = 0; row < w.out_features; ++row) {
    {
      const int64_t k0 = 0;
      const int64_t k1 = width;
      for (int64_t k = k0; k < k1;) {
        const int64_t flat = row * in + c0 + k;
        const int64_t block = flat / w.block_size;
        const int64_t end = std::min(k1, k + (block + 1) * w.block_size - flat);
        const float constant = block_constant(w, block);
        for (; k < end; ++k) panel[row * width + k] = element(w, row * in + c0 + k, constant);
      }
    }
  }
}

// out[:, c0:c0 + width] = part [rows, width].
void scatter_columns(const float* part, int64_t rows, int64_t width, float* out, int64_t out_cols, int64_t c0) {
  for (int64_t r = 0; r < rows; ++r) std::copy(part + r * width, part + (r + 1) * width, out + r * out_cols + c0);
}

}  // namespace

void quantized_matmul_xwt(const float* x, int64_t rows, const Quantized4bitWeight& w, float* y) {
  const int64_t in = w.in_features;
  const int64_t out = w.out_features;
  const int64_t step = std::min(out, std::max<int64_t>(1, kPanelValues / in));  // rows per panel
  std::vector<float> panel(step * in);
  std::vector<float> part(rows * step);
  for (int64_t r0 = 0; r0 < out; r0 += step) {
    const int64_t r1 = std::min(out, r0 + step);
    dequantize_rows(w, r0, r1, panel.data());
    // [rows, in] · [r1 − r0, in]ᵀ → [rows, r1 − r0]
    sgemm_batched({1, rows, r1 - r0, in, x, panel.data(), part.data(), false, true, 0, 0, 0});
    scatter_columns(part.data(), rows, r1 - r0, y, out, r0);
  }
}

void quantized_matmul_xw(const float* dy, int64_t rows, const Quantized4bitWeight& w, float* dx) {
  const int64_t in = w.in_features;
  const int64_t out = w.out_features;
  const int64_t step = std::min(in, std::max<int64_t>(1, kPanelValues / out));  // columns per panel
  std::vector<float> panel(out * step);
  std::vector<float> part(rows * step);
  for (int64_t c0 = 0; c0 < in; c0 += step) {
    const int64_t c1 = std::min(in, c0 + step);
    dequantize_columns(w, c0, c1, panel.data());
    // [rows, out] · [out, c1 − c0] → [rows, c1 − c0]
    sgemm_batched({1, rows, c1 - c0, out, dy, panel.data(), part.data(), false, false, 0, 0, 0});
    scatter_columns(part.data(), rows, c1 - c0, dx, in, c0);
  }
}

}  // namespace mllm

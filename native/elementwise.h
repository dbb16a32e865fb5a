// Element-wise kernels of the native backend, float32. Shapes are row-major; broadcasting follows NumPy
// (shapes aligned on the right). The op codes (Binary, Unary) are generated from src/engine/native/op_codes.ts.
#pragma once
#include <cstdint>
#include <vector>

#include "op_codes.h"

namespace mllm {

// out[outShape] = a[aShape] op b[bShape] (both broadcast to outShape). GeluTanhGrad: a = x, b = dy → dy · d/dx gelu_tanh(x).
void binary(Binary op, const float* a, const std::vector<int64_t>& aShape, const float* b, const std::vector<int64_t>& bShape, float* out,
            const std::vector<int64_t>& outShape);
void unary(Unary op, const float* x, float* out, int64_t n);

}  // namespace mllm

// Normalisation kernels of the native backend over the last axis of [rows, D], float32.
#pragma once
#include <cstdint>

namespace mllm {

// Layer normalisation: y = (x − mean)·rstd·gamma + beta; saves mean and rstd per row.
void layer_norm_forward(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t D, float eps, float* y, float* mean, float* rstd);
// Its backward: dx, and dgamma/dbeta summed over rows.
void layer_norm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd, int64_t rows, int64_t D, float* dx,
                         float* dgamma, float* dbeta);

// RMS normalisation: y = x·rstd·weight, rstd = 1/√(mean(x²) + eps); saves rstd.
void rms_norm_forward(const float* x, const float* weight, int64_t rows, int64_t D, float eps, float* y, float* rstd);
// Its backward: dx, and dweight summed over rows.
void rms_norm_backward(const float* dy, const float* x, const float* weight, const float* rstd, int64_t rows, int64_t D, float* dx, float* dweight);

}  // namespace mllm

// Element-wise, reduction and data-movement kernels of the native backend, float32.
// Shapes are row-major; broadcasting follows NumPy (shapes aligned on the right).
#pragma once
#include <cstdint>
#include <vector>

namespace mllm {

// GeluTanhGrad: a = x, b = dy → dy · d/dx gelu_tanh(x).
enum class Binary { Add, Sub, Mul, Div, Maximum, Minimum, SquaredDifference, Pow, GeluTanhGrad };
enum class Unary { Exp, Log, Sqrt, Rsqrt, Tanh, Sigmoid, Relu, Neg, Abs, Square, GeluTanh, Reciprocal };

// out[outShape] = a[aShape] op b[bShape] (both broadcast to outShape).
void binary(Binary op, const float* a, const std::vector<int64_t>& aShape, const float* b, const std::vector<int64_t>& bShape, float* out,
            const std::vector<int64_t>& outShape);
void unary(Unary op, const float* x, float* out, int64_t n);
// Softmax over the last axis of [rows, cols].
void softmax_rows(const float* x, float* out, int64_t rows, int64_t cols);
// Reductions over the last axis of [rows, cols]: 0 sum, 1 mean, 2 max, 3 min.
void reduce_rows(int kind, const float* x, float* out, int64_t rows, int64_t cols);
// Reductions over the first axis of [rows, cols] (e.g. a bias gradient): out[cols].
void reduce_cols(int kind, const float* x, float* out, int64_t rows, int64_t cols);
// out = x transposed by perm (rank ≤ 8).
void transpose(const float* x, const std::vector<int64_t>& shape, const std::vector<int64_t>& perm, float* out);
// out[outer, i, inner] = x[outer, indices[i], inner]; x is [outer, axisSize, inner].
void gather(const float* x, int64_t outer, int64_t axisSize, int64_t inner, const int32_t* indices, int64_t count, float* out);
// out[segments, inner] = Σ over i with ids[i] = s of x[i, inner]; ids outside [0, segments) are dropped.
void unsorted_segment_sum(const float* x, const int32_t* ids, int64_t count, int64_t inner, int64_t segments, float* out);

// Layer normalisation over the last axis of [rows, D]: y = (x − mean)·rstd·gamma + beta; saves mean and rstd per row.
void layer_norm_forward(const float* x, const float* gamma, const float* beta, int64_t rows, int64_t D, float eps, float* y, float* mean, float* rstd);
// Its backward: dx, and dgamma/dbeta summed over rows.
void layer_norm_backward(const float* dy, const float* x, const float* gamma, const float* mean, const float* rstd, int64_t rows, int64_t D, float* dx,
                         float* dgamma, float* dbeta);

// y = softmax(x·scale + mask) over the last axis of [rows, cols]; mask (optional) is [maskRows, cols], row r uses mask row r % maskRows.
void scaled_masked_softmax(const float* x, const float* mask, int64_t mask_rows, float scale, float* y, int64_t rows, int64_t cols);
// Its backward: dx = scale · y · (dy − Σ dy·y) per row.
void scaled_softmax_backward(const float* y, const float* dy, float scale, float* dx, int64_t rows, int64_t cols);

// RMS normalisation over the last axis of [rows, D]: y = x·rstd·weight, rstd = 1/√(mean(x²) + eps); saves rstd.
void rms_norm_forward(const float* x, const float* weight, int64_t rows, int64_t D, float eps, float* y, float* rstd);
// Its backward: dx, and dweight summed over rows.
void rms_norm_backward(const float* dy, const float* x, const float* weight, const float* rstd, int64_t rows, int64_t D, float* dx, float* dweight);

// One AdamW step over n values (decoupled weight decay; weightDecay 0 is Adam):
// m' = β1·m + (1−β1)·g; v' = β2·v + (1−β2)·g²; p' = p − lr·(m'/bc1 / (√(v'/bc2) + eps) + wd·p).
void adamw_update(const float* p, const float* g, const float* m, const float* v, int64_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                  float bias_correction1, float bias_correction2, float* p_out, float* m_out, float* v_out);

}  // namespace mllm

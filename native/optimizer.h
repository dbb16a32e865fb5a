// Optimizer kernels of the native backend, float32.
#pragma once
#include <cstdint>

namespace mllm {

// One AdamW step over n values (decoupled weight decay; weightDecay 0 is Adam):
// m' = β1·m + (1−β1)·g; v' = β2·v + (1−β2)·g²; p' = p − lr·(m'/bc1 / (√(v'/bc2) + eps) + wd·p).
void adamw_update(const float* p, const float* g, const float* m, const float* v, int64_t n, float lr, float beta1, float beta2, float eps, float weight_decay,
                  float bias_correction1, float bias_correction2, float* p_out, float* m_out, float* v_out);

}  // namespace mllm

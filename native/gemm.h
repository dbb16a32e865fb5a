// Single-precision matrix multiplication for the native backend.
//
// C[b] = op(A[b]) · op(B[b]) for b in [0, batch), row-major, where op is an
// optional transpose. Batch broadcasting: a batch stride of 0 reuses one matrix.
// A blocked algorithm after Goto & van de Geijn ("Anatomy of High-Performance
// Matrix Multiplication", 2008) and BLIS: B is packed into panels of NR columns,
// A into panels of MR rows, and a register-blocked micro-kernel computes MR×NR
// tiles: 12×32 with AVX-512 when the CPU has it, 6×16 with AVX2/FMA, portable
// C++ otherwise (MLLM_GEMM_KERNEL=portable|avx2|avx512 chooses). The AVX-512 and
// AVX2 kernels accumulate each output in the same order with FMAs, so they give
// the same bits.
#pragma once
#include <cstdint>

namespace mllm {

struct GemmArgs {
  int64_t batch, M, N, K;
  const float* A;
  const float* B;
  float* C;
  bool transA, transB;
  // Elements between consecutive matrices of the batch (0 broadcasts one matrix).
  int64_t strideA, strideB, strideC;
};

void sgemm_batched(const GemmArgs& args);
// Which micro-kernel runs: "avx512f", "avx2-fma" or "portable".
const char* gemm_kernel_name();

}  // namespace mllm

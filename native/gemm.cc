#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "thread_pool.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define MLLM_X86 1
#endif

namespace mllm {
namespace {

// Tile sizes are per micro-kernel (template parameters MR × NR): 6×16 for AVX2 and portable C++,
// 12×32 for AVX-512. The blocking around them is shared:
constexpr int KC = 256;  // depth of a packed block (A and B panels stay in L2)
constexpr int MC = 96;   // rows of A per packed block (a multiple of every MR)
constexpr int NC = 2048; // columns of B per packed block (a multiple of every NR)

// Element (i, k) of op(A) and (k, j) of op(B), row-major storage.
inline float at_a(const float* A, int64_t M, int64_t K, bool trans, int64_t i, int64_t k) {
  return trans ? A[k * M + i] : A[i * K + k];
}
inline float at_b(const float* B, int64_t K, int64_t N, bool trans, int64_t k, int64_t j) {
  return trans ? B[j * K + k] : B[k * N + j];
}

// Packs rows [i0, i0+mc) × depth [k0, k0+kc) of op(A) into MR-row panels: panel p holds, for each k, MR values.
template <int MR>
void pack_a(const float* A, int64_t M, int64_t K, bool trans, int64_t i0, int64_t mc, int64_t k0, int64_t kc, float* out) {
  for (int64_t p = 0; p < mc; p += MR) {
    const int64_t rows = std::min<int64_t>(MR, mc - p);
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t r = 0; r < rows; ++r) out[r] = at_a(A, M, K, trans, i0 + p + r, k0 + k);
      for (int64_t r = rows; r < MR; ++r) out[r] = 0.0f;
      out += MR;
    }
  }
}

// Packs depth [k0, k0+kc) × columns [j0, j0+nc) of op(B) into NR-column panels.
template <int NR>
void pack_b(const float* B, int64_t K, int64_t N, bool trans, int64_t k0, int64_t kc, int64_t j0, int64_t nc, float* out) {
  for (int64_t p = 0; p < nc; p += NR) {
    const int64_t cols = std::min<int64_t>(NR, nc - p);
    if (!trans && cols == NR) {
      for (int64_t k = 0; k < kc; ++k) {
        std::memcpy(out, B + (k0 + k) * N + j0 + p, NR * sizeof(float));
        out += NR;
      }
      continue;
    }
    for (int64_t k = 0; k < kc; ++k) {
      for (int64_t c = 0; c < cols; ++c) out[c] = at_b(B, K, N, trans, k0 + k, j0 + p + c);
      for (int64_t c = cols; c < NR; ++c) out[c] = 0.0f;
      out += NR;
    }
  }
}

constexpr int MR_AVX2 = 6, NR_AVX2 = 16;

// tile (MR×NR, row stride ldc) = Σ_k a[k][r] · b[k][c], or += with accumulate (portable micro-kernel)
template <int MR, int NR>
void micro_portable(int64_t kc, const float* a, const float* b, float* tile, int64_t ldc, bool accumulate) {
  float acc[MR][NR] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int r = 0; r < MR; ++r) {
      const float av = a[r];
      for (int c = 0; c < NR; ++c) acc[r][c] += av * b[c];
    }
    a += MR;
    b += NR;
  }
  for (int r = 0; r < MR; ++r)
    for (int c = 0; c < NR; ++c) tile[r * ldc + c] = accumulate ? tile[r * ldc + c] + acc[r][c] : acc[r][c];
}

#ifdef MLLM_X86
// tile (MR×NR, row stride ldc) = Σ_k a[k][r]·b[k][c], or += with accumulate.
__attribute__((target("avx2,fma"))) void micro_avx2(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  constexpr int MR = MR_AVX2, NR = NR_AVX2;
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps();
  __m256 c10 = _mm256_setzero_ps(), c11 = _mm256_setzero_ps();
  __m256 c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps();
  __m256 c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps();
  __m256 c40 = _mm256_setzero_ps(), c41 = _mm256_setzero_ps();
  __m256 c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    __m256 av = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    av = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(av, b0, c10);
    c11 = _mm256_fmadd_ps(av, b1, c11);
    av = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(av, b0, c20);
    c21 = _mm256_fmadd_ps(av, b1, c21);
    av = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(av, b0, c30);
    c31 = _mm256_fmadd_ps(av, b1, c31);
    av = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(av, b0, c40);
    c41 = _mm256_fmadd_ps(av, b1, c41);
    av = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(av, b0, c50);
    c51 = _mm256_fmadd_ps(av, b1, c51);
    a += MR;
    b += NR;
  }
  const __m256 rows[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}, {c40, c41}, {c50, c51}};
  for (int r = 0; r < MR; ++r) {
    float* row = c + r * ldc;
    if (accumulate) {
      _mm256_storeu_ps(row, _mm256_add_ps(_mm256_loadu_ps(row), rows[r][0]));
      _mm256_storeu_ps(row + 8, _mm256_add_ps(_mm256_loadu_ps(row + 8), rows[r][1]));
    } else {
      _mm256_storeu_ps(row, rows[r][0]);
      _mm256_storeu_ps(row + 8, rows[r][1]);
    }
  }
}

bool has_avx2_fma() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

constexpr int MR_AVX512 = 12, NR_AVX512 = 32;

// The same with AVX-512: a 12×32 tile in 24 zmm accumulators (of 32), each broadcast of A feeding two FMAs.
// Per k: two loads of B, twelve broadcasts, 24 FMAs of 16 lanes (half the instructions per flop of AVX2).
__attribute__((target("avx512f"))) void micro_avx512(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  constexpr int MR = MR_AVX512, NR = NR_AVX512;
  __m512 acc[MR][2];
  for (int r = 0; r < MR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b);
    const __m512 b1 = _mm512_loadu_ps(b + 16);
    for (int r = 0; r < MR; ++r) {  // fully unrolled by the compiler (MR is a constant)
      const __m512 av = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
    a += MR;
    b += NR;
  }
  for (int r = 0; r < MR; ++r) {
    float* row = c + r * ldc;
    if (accumulate) {
      _mm512_storeu_ps(row, _mm512_add_ps(_mm512_loadu_ps(row), acc[r][0]));
      _mm512_storeu_ps(row + 16, _mm512_add_ps(_mm512_loadu_ps(row + 16), acc[r][1]));
    } else {
      _mm512_storeu_ps(row, acc[r][0]);
      _mm512_storeu_ps(row + 16, acc[r][1]);
    }
  }
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f");
  return yes;
}
#endif

using Micro = void (*)(int64_t, const float*, const float*, float*, int64_t, bool);

enum class Kernel { Portable, Avx2, Avx512 };

// The micro-kernel: the widest the CPU runs, unless MLLM_GEMM_KERNEL names one (portable, avx2, avx512;
// tests force portable on AVX machines too). A named kernel the CPU lacks falls back to the best it has.
Kernel chosen_kernel() {
  static const Kernel kernel = [] {
    const char* env = std::getenv("MLLM_GEMM_KERNEL");
    const std::string wanted = env ? env : "";
#ifdef MLLM_X86
    if (wanted == "portable") return Kernel::Portable;
    if (has_avx512() && (wanted.empty() || wanted == "avx512")) return Kernel::Avx512;
    if (has_avx2_fma()) return Kernel::Avx2;
#endif
    return Kernel::Portable;
  }();
  return kernel;
}

// The block C[i_begin:i_end, j_begin:j_end] of one matrix product, single-threaded.
template <int MR, int NR, Micro micro>
void gemm_block(int64_t M, int64_t N, int64_t K, const float* A, bool transA, const float* B, bool transB, float* C, int64_t i_begin, int64_t i_end,
                int64_t j_begin, int64_t j_end) {
  thread_local std::vector<float> packed_a, packed_b;
  alignas(64) float tile[MR * NR];
  if (K == 0) {
    for (int64_t i = i_begin; i < i_end; ++i) std::fill(C + i * N + j_begin, C + i * N + j_end, 0.0f);
    return;
  }
  for (int64_t j0 = j_begin; j0 < j_end; j0 += NC) {
    const int64_t nc = std::min<int64_t>(NC, j_end - j0);
    const int64_t nc_padded = (nc + NR - 1) / NR * NR;
    for (int64_t k0 = 0; k0 < K; k0 += KC) {
      const int64_t kc = std::min<int64_t>(KC, K - k0);
      packed_b.resize(static_cast<size_t>(kc * nc_padded));
      pack_b<NR>(B, K, N, transB, k0, kc, j0, nc, packed_b.data());
      const bool first = k0 == 0;
      for (int64_t i0 = i_begin; i0 < i_end; i0 += MC) {
        const int64_t mc = std::min<int64_t>(MC, i_end - i0);
        const int64_t mc_padded = (mc + MR - 1) / MR * MR;
        packed_a.resize(static_cast<size_t>(kc * mc_padded));
        pack_a<MR>(A, M, K, transA, i0, mc, k0, kc, packed_a.data());
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const float* bp = packed_b.data() + (jr / NR) * kc * NR;
          const int64_t cols = std::min<int64_t>(NR, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const float* ap = packed_a.data() + (ir / MR) * kc * MR;
            const int64_t rows = std::min<int64_t>(MR, mc - ir);
            float* c_tile = C + (i0 + ir) * N + j0 + jr;
            if (rows == MR && cols == NR) {
              micro(kc, ap, bp, c_tile, N, !first);  // full tile: straight into C
              continue;
            }
            micro(kc, ap, bp, tile, NR, false);  // edge tile: through a buffer
            for (int64_t r = 0; r < rows; ++r) {
              float* c = c_tile + r * N;
              const float* t = tile + r * NR;
              if (first) {
                std::memcpy(c, t, cols * sizeof(float));
              } else {
                for (int64_t x = 0; x < cols; ++x) c[x] += t[x];
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace

const char* gemm_kernel_name() {
  switch (chosen_kernel()) {
    case Kernel::Avx512: return "avx512f";
    case Kernel::Avx2: return "avx2-fma";
    default: return "portable";
  }
}

template <int MR, int NR, Micro micro>
void sgemm_batched_with(const GemmArgs& g) {
  if (g.batch <= 0 || g.M <= 0 || g.N <= 0) return;
  const int threads = thread_count();
  const double flops = 2.0 * g.batch * g.M * g.N * g.K;
  // Split each product into a grid of blocks so that every thread has work. A block packs its rows of
  // A and its columns of B, so splitting rows repeats B's packing and splitting columns repeats A's:
  // split along the dimension whose repeated operand is smaller. Small products run inline.
  int64_t row_chunks = 1, col_chunks = 1;
  if (flops > 2e5 && threads > 1 && g.batch < threads) {
    const int64_t wanted = (threads + g.batch - 1) / g.batch;
    if (g.M >= g.N) row_chunks = std::min<int64_t>(wanted, (g.M + MR - 1) / MR);
    else col_chunks = std::min<int64_t>(wanted, (g.N + NR - 1) / NR);
  }
  const int64_t rows_per_chunk = ((g.M + row_chunks - 1) / row_chunks + MR - 1) / MR * MR;
  const int64_t cols_per_chunk = ((g.N + col_chunks - 1) / col_chunks + NR - 1) / NR * NR;
  row_chunks = (g.M + rows_per_chunk - 1) / rows_per_chunk;
  col_chunks = (g.N + cols_per_chunk - 1) / cols_per_chunk;
  const int64_t per_matrix = row_chunks * col_chunks;
  const int64_t tasks = g.batch * per_matrix;
  auto task = [&](std::size_t t) {
    const int64_t b = static_cast<int64_t>(t) / per_matrix;
    const int64_t block = static_cast<int64_t>(t) % per_matrix;
    const int64_t i_begin = (block / col_chunks) * rows_per_chunk;
    const int64_t j_begin = (block % col_chunks) * cols_per_chunk;
    gemm_block<MR, NR, micro>(g.M, g.N, g.K, g.A + b * g.strideA, g.transA, g.B + b * g.strideB, g.transB, g.C + b * g.strideC, i_begin,
               std::min<int64_t>(g.M, i_begin + rows_per_chunk), j_begin, std::min<int64_t>(g.N, j_begin + cols_per_chunk));
  };
  if (flops <= 2e5 || threads == 1) {
    for (int64_t t = 0; t < tasks; ++t) task(static_cast<std::size_t>(t));
  } else {
    parallel_for(static_cast<std::size_t>(tasks), task);
  }
}

void sgemm_batched(const GemmArgs& g) {
  switch (chosen_kernel()) {
#ifdef MLLM_X86
    case Kernel::Avx512: return sgemm_batched_with<MR_AVX512, NR_AVX512, micro_avx512>(g);
    case Kernel::Avx2: return sgemm_batched_with<MR_AVX2, NR_AVX2, micro_avx2>(g);
#endif
    default: return sgemm_batched_with<MR_AVX2, NR_AVX2, micro_portable<MR_AVX2, NR_AVX2>>(g);
  }
}

}  // namespace mllm

// Vector helpers shared by the native kernels: AVX2 detection and a vectorised e^x.
#pragma once
#include <cmath>
#include <cstdint>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define MLLM_X86 1
#endif

namespace mllm {

#ifdef MLLM_X86
inline bool has_avx2() {
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return yes;
}

// e^x for 8 floats: Cephes' expf (as in avx_mathfun): x = n·ln2 + r, a degree-5 polynomial for e^r, 2^n
// from the exponent bits; about 1 ulp. Inputs below −87.3 give exactly 0 (masked attention scores).
__attribute__((target("avx2,fma"))) inline __m256 exp8(__m256 x) {
  const __m256 tiny = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654f), _CMP_LT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.33654f));
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.0f)));
  const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvttps_epi32(fx), _mm256_set1_epi32(127)), 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(exponent));
  return _mm256_andnot_ps(tiny, y);
}

// o[c] = exp(o[c] − max) for c in [0, n); returns the sum.
__attribute__((target("avx2,fma"))) inline float exp_shift_sum_avx2(float* o, int64_t n, float max) {
  __m256 acc = _mm256_setzero_ps();
  const __m256 m = _mm256_set1_ps(max);
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(o + c), m));
    _mm256_storeu_ps(o + c, e);
    acc = _mm256_add_ps(acc, e);
  }
  alignas(32) float part[8];
  _mm256_store_ps(part, acc);
  float sum = ((part[0] + part[1]) + (part[2] + part[3])) + ((part[4] + part[5]) + (part[6] + part[7]));
  for (; c < n; ++c) sum += (o[c] = std::exp(o[c] - max));
  return sum;
}
#endif

// o[c] = exp(o[c] − max); returns Σ o[c].
inline float exp_shift_sum(float* o, int64_t n, float max) {
#ifdef MLLM_X86
  if (has_avx2()) return exp_shift_sum_avx2(o, n, max);
#endif
  float sum = 0.0f;
  for (int64_t c = 0; c < n; ++c) sum += (o[c] = std::exp(o[c] - max));
  return sum;
}

}  // namespace mllm

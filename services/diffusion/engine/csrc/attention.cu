// Chunk attention over [context | chunk] in CUDA C++: the same contract as triton_attention.py
// (context keys all visible, chunk keys frame-causal, ragged lengths, fp32 accumulation), written as a plain
// per-row online softmax so a build without Triton still has a native path. It is a reference-grade kernel, not a
// tuned one: one warp per query row, keys streamed one at a time, no shared-memory tiling. Compiled in tests with
// `nvcc -c`; never run here (no GPU on the developers' machines or CI).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace {

constexpr int kWarp = 32;
constexpr int kMaxHeadDim = 256;
constexpr int kPerLane = kMaxHeadDim / kWarp;  // head_dim elements each lane owns

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_float<__half>(float x) { return __float2half(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

__device__ __forceinline__ float warp_sum(float x) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) x += __shfl_xor_sync(0xffffffffu, x, offset);
  return x;
}

// Strides in elements, [batch, head, token, dim] order, so strided views need no copy.
struct Strides4 {
  int64_t b, h, n, d;
};

struct RowState {
  float max_score;  // running max (log2 domain)
  float sum;        // running softmax denominator
  float acc[kPerLane];
};

template <typename T>
__device__ void fold_key(RowState& row, const float (&q)[kPerLane], const T* k, const T* v, Strides4 ks, Strides4 vs,
                         int head_dim, float qk_scale_log2) {
  const int lane = threadIdx.x % kWarp;
  float partial = 0.f;
  for (int i = 0; i < kPerLane; ++i) {
    const int d = lane + i * kWarp;
    if (d < head_dim) partial += q[i] * to_float(k[d * ks.d]);
  }
  const float score = warp_sum(partial) * qk_scale_log2;
  const float new_max = fmaxf(row.max_score, score);
  const float alpha = exp2f(row.max_score - new_max);  // rescales what was summed under the old max
  const float p = exp2f(score - new_max);
  row.sum = row.sum * alpha + p;
  for (int i = 0; i < kPerLane; ++i) {
    const int d = lane + i * kWarp;
    if (d < head_dim) row.acc[i] = row.acc[i] * alpha + p * to_float(v[d * vs.d]);
  }
  row.max_score = new_max;
}

template <typename T>
__global__ void chunk_attention_kernel(const T* __restrict__ q, const T* __restrict__ k_ctx,
                                       const T* __restrict__ v_ctx, const T* __restrict__ k_chunk,
                                       const T* __restrict__ v_chunk, T* __restrict__ out, Strides4 qs, Strides4 kcs,
                                       Strides4 vcs, Strides4 kxs, Strides4 vxs, Strides4 os, int heads, int num_ctx,
                                       int num_chunk, int tokens_per_frame, int head_dim, float qk_scale_log2) {
  const int warps_per_block = blockDim.x / kWarp;
  const int query = blockIdx.x * warps_per_block + threadIdx.x / kWarp;
  if (query >= num_chunk) return;  // whole warp leaves together: shuffles stay full-mask
  const int b = blockIdx.y / heads, h = blockIdx.y % heads;
  const int lane = threadIdx.x % kWarp;

  float q_row[kPerLane];
  const T* q_ptr = q + b * qs.b + h * qs.h + query * qs.n;
  for (int i = 0; i < kPerLane; ++i) {
    const int d = lane + i * kWarp;
    q_row[i] = d < head_dim ? to_float(q_ptr[d * qs.d]) : 0.f;
  }
  RowState row{-1.0e30f, 0.f, {}};

  const T* kc = k_ctx + b * kcs.b + h * kcs.h;
  const T* vc = v_ctx + b * vcs.b + h * vcs.h;
  for (int key = 0; key < num_ctx; ++key)
    fold_key(row, q_row, kc + key * kcs.n, vc + key * vcs.n, kcs, vcs, head_dim, qk_scale_log2);

  // Frame-causal: every key of frames <= this query's frame, own frame included in full.
  const int visible_end = min((query / tokens_per_frame + 1) * tokens_per_frame, num_chunk);
  const T* kx = k_chunk + b * kxs.b + h * kxs.h;
  const T* vx = v_chunk + b * vxs.b + h * vxs.h;
  for (int key = 0; key < visible_end; ++key)
    fold_key(row, q_row, kx + key * kxs.n, vx + key * vxs.n, kxs, vxs, head_dim, qk_scale_log2);

  T* o_ptr = out + b * os.b + h * os.h + query * os.n;
  for (int i = 0; i < kPerLane; ++i) {
    const int d = lane + i * kWarp;
    if (d < head_dim) o_ptr[d * os.d] = from_float<T>(row.acc[i] / row.sum);
  }
}

template <typename T>
cudaError_t launch(const void* q, const void* k_ctx, const void* v_ctx, const void* k_chunk, const void* v_chunk,
                   void* out, const int64_t* strides, int batch, int heads, int num_ctx, int num_chunk,
                   int tokens_per_frame, int head_dim, float scale, cudaStream_t stream) {
  if (head_dim < 1 || head_dim > kMaxHeadDim || tokens_per_frame < 1 || num_chunk < 1 || num_ctx < 0)
    return cudaErrorInvalidValue;
  auto stride = [strides](int tensor) {
    const int64_t* s = strides + 4 * tensor;
    return Strides4{s[0], s[1], s[2], s[3]};
  };
  constexpr int kWarpsPerBlock = 4;
  const dim3 grid((num_chunk + kWarpsPerBlock - 1) / kWarpsPerBlock, batch * heads);
  chunk_attention_kernel<T><<<grid, kWarpsPerBlock * kWarp, 0, stream>>>(
      static_cast<const T*>(q), static_cast<const T*>(k_ctx), static_cast<const T*>(v_ctx),
      static_cast<const T*>(k_chunk), static_cast<const T*>(v_chunk), static_cast<T*>(out), stride(0), stride(1),
      stride(2), stride(3), stride(4), stride(5), heads, num_ctx, num_chunk, tokens_per_frame, head_dim,
      scale * 1.4426950408889634f);
  return cudaGetLastError();
}

}  // namespace

// dtype: 0 fp32, 1 fp16, 2 bf16. strides: 6 tensors (q, k_ctx, v_ctx, k_chunk, v_chunk, out) x 4, in elements.
extern "C" cudaError_t sd_chunk_attention(int dtype, const void* q, const void* k_ctx, const void* v_ctx,
                                          const void* k_chunk, const void* v_chunk, void* out,
                                          const int64_t* strides, int batch, int heads, int num_ctx, int num_chunk,
                                          int tokens_per_frame, int head_dim, float scale, cudaStream_t stream) {
  switch (dtype) {
    case 0:
      return launch<float>(q, k_ctx, v_ctx, k_chunk, v_chunk, out, strides, batch, heads, num_ctx, num_chunk,
                           tokens_per_frame, head_dim, scale, stream);
    case 1:
      return launch<__half>(q, k_ctx, v_ctx, k_chunk, v_chunk, out, strides, batch, heads, num_ctx, num_chunk,
                            tokens_per_frame, head_dim, scale, stream);
    case 2:
      return launch<__nv_bfloat16>(q, k_ctx, v_ctx, k_chunk, v_chunk, out, strides, batch, heads, num_ctx,
                                   num_chunk, tokens_per_frame, head_dim, scale, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

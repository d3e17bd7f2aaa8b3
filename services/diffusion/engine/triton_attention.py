"""Triton kernel for chunk attention over [context | chunk] (FlashAttention-style online softmax).

Why a kernel: the reference path concatenates context and chunk keys and materialises a [queries, keys] score
matrix and mask every denoising step. This kernel streams keys block by block straight from the two tensors (the
cache view and the chunk, never concatenated), keeps a running max / running sum per query row and rescales its fp32
accumulator as the max grows, so memory stays O(block) whatever the cache length.

Masking: context keys are all visible; chunk keys are visible to a query when the key's frame is not after the
query's frame (frame-granularity causality, see attention.chunk_attention). Lengths need not be multiples of the
block sizes: every load and score is masked by the true context / chunk length, and the chunk loop stops at the end
of the last frame the block's queries can see.

On CPU it runs only under Triton's interpreter: set TRITON_INTERPRET=1 before this module is imported (triton.jit
picks interpreter or compiler when it decorates). Tests do that; production uses it on CUDA tensors.
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

LOG2_E = 1.4426950408889634


@triton.jit
def _load_rows(base, rows, row_valid, stride_n, offs_d, d_valid, stride_d):
    """[rows, BLOCK_D] tile of a [N, D] slice; rows past the true length and padded dims read as 0."""
    return tl.load(base + rows[:, None] * stride_n + offs_d[None, :] * stride_d,
                   mask=row_valid[:, None] & d_valid[None, :], other=0.0)


@triton.jit
def _attend_to_keys(q, m_i, l_i, acc, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd, num_keys, loop_end,
                    query_frame, tokens_per_frame, offs_d, d_valid, qk_scale, BLOCK_N: tl.constexpr,
                    FRAME_CAUSAL: tl.constexpr, DOT_PRECISION: tl.constexpr):
    """Fold keys [0, loop_end) of one [N, D] key/value slice, BLOCK_N at a time, into every query row's running
    (max, sum, accumulator). Keys >= num_keys are masked; FRAME_CAUSAL hides keys of frames after the query's."""
    offs_n = tl.arange(0, BLOCK_N)
    for start_n in range(0, loop_end, BLOCK_N):
        offs_key = start_n + offs_n
        key_valid = offs_key < num_keys
        k = _load_rows(k_base, offs_key, key_valid, stride_kn, offs_d, d_valid, stride_kd)
        v = _load_rows(v_base, offs_key, key_valid, stride_vn, offs_d, d_valid, stride_vd)
        visible = key_valid[None, :]
        if FRAME_CAUSAL:
            visible = visible & ((offs_key // tokens_per_frame)[None, :] <= query_frame[:, None])
        scores = tl.dot(q, tl.trans(k), input_precision=DOT_PRECISION) * qk_scale  # log2 domain
        scores = tl.where(visible, scores, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(scores, 1))
        alpha = tl.math.exp2(m_i - m_new)  # rescales what was accumulated under the old max
        p = tl.math.exp2(scores - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=DOT_PRECISION)
        m_i = m_new
    return m_i, l_i, acc


@triton.jit
def _chunk_attention_kernel(
    Q, K_CTX, V_CTX, K_CHUNK, V_CHUNK, OUT,
    stride_qb, stride_qh, stride_qn, stride_qd,
    stride_kcb, stride_kch, stride_kcn, stride_kcd,
    stride_vcb, stride_vch, stride_vcn, stride_vcd,
    stride_kxb, stride_kxh, stride_kxn, stride_kxd,
    stride_vxb, stride_vxh, stride_vxn, stride_vxd,
    stride_ob, stride_oh, stride_on, stride_od,
    num_heads, num_ctx, num_chunk, tokens_per_frame, qk_scale,
    HEAD_DIM: tl.constexpr, BLOCK_D: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    block_m = tl.program_id(0)
    batch_head = tl.program_id(1)
    b = batch_head // num_heads
    h = batch_head % num_heads

    offs_m = block_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    d_valid = offs_d < HEAD_DIM
    q_valid = offs_m < num_chunk
    q = _load_rows(Q + b * stride_qb + h * stride_qh, offs_m, q_valid, stride_qn, offs_d, d_valid, stride_qd)

    # Finite start for the max: a row with no visible key in a block then yields p = 0, never NaN.
    m_i = tl.full([BLOCK_M], -1.0e30, dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    query_frame = offs_m // tokens_per_frame
    # Context (sinks + cache): every key visible, ragged tail masked.
    m_i, l_i, acc = _attend_to_keys(
        q, m_i, l_i, acc, K_CTX + b * stride_kcb + h * stride_kch, V_CTX + b * stride_vcb + h * stride_vch,
        stride_kcn, stride_kcd, stride_vcn, stride_vcd, num_ctx, num_ctx, query_frame, tokens_per_frame,
        offs_d, d_valid, qk_scale, BLOCK_N, False, DOT_PRECISION)
    # Chunk: frame-causal. Keys past the last frame any query of this block can see are never loaded.
    last_query = tl.minimum(block_m * BLOCK_M + BLOCK_M, num_chunk) - 1
    chunk_end = tl.minimum((last_query // tokens_per_frame + 1) * tokens_per_frame, num_chunk)
    m_i, l_i, acc = _attend_to_keys(
        q, m_i, l_i, acc, K_CHUNK + b * stride_kxb + h * stride_kxh, V_CHUNK + b * stride_vxb + h * stride_vxh,
        stride_kxn, stride_kxd, stride_vxn, stride_vxd, num_chunk, chunk_end, query_frame, tokens_per_frame,
        offs_d, d_valid, qk_scale, BLOCK_N, True, DOT_PRECISION)

    l_i = tl.where(l_i == 0.0, 1.0, l_i)  # only padded query rows can have an empty sum
    out = acc / l_i[:, None]
    tl.store(OUT + b * stride_ob + h * stride_oh + offs_m[:, None] * stride_on + offs_d[None, :] * stride_od,
             out.to(OUT.dtype.element_ty), mask=q_valid[:, None] & d_valid[None, :])


def _is_interpreted(kernel: object) -> bool:
    return not isinstance(kernel, triton.runtime.JITFunction)


def triton_chunk_attention(q: torch.Tensor, k_ctx: torch.Tensor, v_ctx: torch.Tensor, k_chunk: torch.Tensor,
                           v_chunk: torch.Tensor, tokens_per_frame: int, scale: float | None = None,
                           block_m: int | None = None, block_n: int | None = None) -> torch.Tensor:
    """Launch the kernel. Shapes [B, H, N, D]; q, k_chunk, v_chunk share N (whole frames), context may be empty.
    Validation of shapes is done by attention.chunk_attention; this checks only what the kernel itself needs."""
    interpreted = _is_interpreted(_chunk_attention_kernel)
    if not q.is_cuda and not interpreted:
        raise RuntimeError("the Triton attention kernel runs CPU tensors only under Triton's interpreter: set "
                           "TRITON_INTERPRET=1 before importing services.diffusion.engine.triton_attention, "
                           "or use backend='sdpa'")
    tensors = (q, k_ctx, v_ctx, k_chunk, v_chunk)
    if len({t.dtype for t in tensors}) != 1 or len({t.device for t in tensors}) != 1:
        raise ValueError("q, k_ctx, v_ctx, k_chunk, v_chunk must share dtype and device")
    batch, heads, num_chunk, head_dim = q.shape
    num_ctx = k_ctx.shape[2]
    if num_ctx == 0:  # never dereferenced (the context loop runs zero times), but must be a valid pointer
        k_ctx, v_ctx = k_chunk, v_chunk
    if scale is None:
        scale = 1.0 / math.sqrt(head_dim)
    block_d = max(16, triton.next_power_of_2(head_dim))
    # tl.dot needs blocks >= 16. Small blocks keep the interpreter's per-block numpy work cheap.
    block_m = block_m or (64 if q.is_cuda else 32)
    block_n = block_n or (64 if q.is_cuda and block_d <= 64 else 32)
    # fp32 inputs: exact fp32 products (TF32 would cost ~1e-3 relative error); fp16/bf16 use the default.
    dot_precision = "ieee" if q.dtype == torch.float32 else None
    out = torch.empty_like(q)
    grid = (triton.cdiv(num_chunk, block_m), batch * heads)
    _chunk_attention_kernel[grid](
        q, k_ctx, v_ctx, k_chunk, v_chunk, out,
        *q.stride(), *k_ctx.stride(), *v_ctx.stride(), *k_chunk.stride(), *v_chunk.stride(), *out.stride(),
        heads, num_ctx, num_chunk, tokens_per_frame, scale * LOG2_E,
        HEAD_DIM=head_dim, BLOCK_D=block_d, BLOCK_M=block_m, BLOCK_N=block_n, DOT_PRECISION=dot_precision,
    )
    return out

"""Self-attention of the current chunk over [sinks | cache | chunk], with a reference path and a kernel path.

Causality is at FRAME granularity: a token of chunk frame f sees every context token and every token of chunk
frames <= f, including later tokens of its own frame. A frame is denoised as a whole image, so its tokens must see
each other both ways; only later frames are hidden (the stream is causal in time, not in raster order).

Backends: "sdpa" is the reference (torch scaled_dot_product_attention with an explicit boolean mask; the CPU
fallback); "triton" is the online-softmax kernel in triton_attention; "auto" picks triton for CUDA tensors when
triton is installed, sdpa otherwise.
"""

from __future__ import annotations

import importlib.util
import math
from typing import Literal

import torch
import torch.nn.functional as F

from services.diffusion.engine.kv_cache import RollingKVCache
from services.diffusion.engine.rope import DEFAULT_THETA, rope_video

Backend = Literal["auto", "sdpa", "triton"]


def frame_causal_mask(num_ctx: int, num_chunk: int, tokens_per_frame: int,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """Boolean [num_chunk, num_ctx + num_chunk], True where a chunk query may attend to a key of [context | chunk]."""
    query_frame = torch.arange(num_chunk, device=device) // tokens_per_frame
    key_index = torch.arange(num_ctx + num_chunk, device=device)
    # Context keys get frame -1 so every query sees them.
    key_frame = torch.where(key_index < num_ctx, -1, (key_index - num_ctx) // tokens_per_frame)
    return key_frame[None, :] <= query_frame[:, None]


def _check_shapes(q: torch.Tensor, k_ctx: torch.Tensor, v_ctx: torch.Tensor, k_chunk: torch.Tensor,
                  v_chunk: torch.Tensor, tokens_per_frame: int) -> None:
    if q.dim() != 4 or q.shape != k_chunk.shape or q.shape != v_chunk.shape:
        raise ValueError(f"q, k_chunk, v_chunk must all be [B, H, N, D], got {tuple(q.shape)}, "
                         f"{tuple(k_chunk.shape)}, {tuple(v_chunk.shape)}")
    batch, heads, num_chunk, head_dim = q.shape
    if k_ctx.shape != v_ctx.shape or k_ctx.dim() != 4 or (k_ctx.shape[0], k_ctx.shape[1], k_ctx.shape[3]) != (
            batch, heads, head_dim):
        raise ValueError(f"k_ctx, v_ctx must be [{batch}, {heads}, N_ctx, {head_dim}], got {tuple(k_ctx.shape)}, "
                         f"{tuple(v_ctx.shape)}")
    if tokens_per_frame < 1 or num_chunk == 0 or num_chunk % tokens_per_frame:
        raise ValueError(f"the chunk must be one or more whole frames: {num_chunk} tokens, "
                         f"tokens_per_frame={tokens_per_frame}")


def triton_available() -> bool:
    return importlib.util.find_spec("triton") is not None


def resolve_backend(backend: Backend, q: torch.Tensor) -> Literal["sdpa", "triton"]:
    if backend == "auto":
        return "triton" if q.is_cuda and triton_available() else "sdpa"
    if backend not in ("sdpa", "triton"):
        raise ValueError(f"unknown attention backend {backend!r}: expected 'auto', 'sdpa' or 'triton'")
    return backend


def chunk_attention(q: torch.Tensor, k_ctx: torch.Tensor | None, v_ctx: torch.Tensor | None, k_chunk: torch.Tensor,
                    v_chunk: torch.Tensor, tokens_per_frame: int, backend: Backend = "auto",
                    scale: float | None = None) -> torch.Tensor:
    """Attention of chunk queries q [B, H, N, D] over context keys/values [B, H, N_ctx, D] (None or N_ctx = 0 for
    none) and the chunk's own keys/values [B, H, N, D], frame-causal within the chunk. Keys already rotated."""
    if k_ctx is None or v_ctx is None:
        k_ctx = v_ctx = k_chunk[:, :, :0]
    _check_shapes(q, k_ctx, v_ctx, k_chunk, v_chunk, tokens_per_frame)
    if resolve_backend(backend, q) == "triton":
        from services.diffusion.engine.triton_attention import triton_chunk_attention  # imports triton

        return triton_chunk_attention(q, k_ctx, v_ctx, k_chunk, v_chunk, tokens_per_frame, scale=scale)
    mask = frame_causal_mask(k_ctx.shape[2], q.shape[2], tokens_per_frame, q.device)
    keys = torch.cat((k_ctx, k_chunk), dim=2)
    values = torch.cat((v_ctx, v_chunk), dim=2)
    return F.scaled_dot_product_attention(q, keys, values, attn_mask=mask,
                                          scale=scale if scale is not None else 1.0 / math.sqrt(q.shape[-1]))


def cached_chunk_attention(cache: RollingKVCache, q: torch.Tensor, k_chunk: torch.Tensor, v_chunk: torch.Tensor,
                           height: int, width: int, backend: Backend = "auto",
                           theta: float = DEFAULT_THETA) -> torch.Tensor:
    """Chunk attention over the rolling cache with refreshed positions: cached frames are at temporal positions
    0..n-1 (sinks first), the chunk's frames at n, n+1, ... . q, k_chunk, v_chunk are UN-rotated
    [B, H, frames·height·width, D]. Does not append: the caller commits the chunk's keys with cache.append once
    its last denoising step has run."""
    tokens_per_frame = height * width
    if tokens_per_frame != cache.tokens_per_frame:
        raise ValueError(f"{height}x{width} latents per frame, but the cache holds {cache.tokens_per_frame} tokens "
                         f"per frame")
    if q.shape[2] % tokens_per_frame:
        raise ValueError(f"the chunk must be whole frames of {tokens_per_frame} tokens, got {q.shape[2]}")
    k_ctx, v_ctx, ctx_positions = cache.view(ordered=False)  # slot order is fine: context keys are unmasked
    n_ctx_frames = ctx_positions.numel()
    chunk_positions = torch.arange(n_ctx_frames, n_ctx_frames + q.shape[2] // tokens_per_frame, device=q.device)
    return chunk_attention(
        rope_video(q, chunk_positions, height, width, theta),
        rope_video(k_ctx, ctx_positions, height, width, theta),
        v_ctx,
        rope_video(k_chunk, chunk_positions, height, width, theta),
        v_chunk,
        tokens_per_frame,
        backend=backend,
    )

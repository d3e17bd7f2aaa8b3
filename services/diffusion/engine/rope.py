"""3D rotary position embedding (RoPE) for latent video tokens.

A video token has three coordinates: frame (t), row (h), column (w). Like Wan2.1, the head dimension is split into
three bands, each rotated by one coordinate, so q·k after rotation depends only on the *differences* of the three
coordinates (what the rolling KV cache relies on when it refreshes positions). Split for head_dim D (Wan2.1's):
h and w get 2·(D//6) channels each, t gets the rest, D − 4·(D//6) (D=64 → t 24, h 20, w 20). Time gets the largest
band because temporal consistency is what a streaming repaint is judged on.

Channel pairs are adjacent (2i, 2i+1), as in Wan2.1's complex view, so checkpoints of that family line up.
Angles are computed in float64 (positions × inverse frequencies lose precision in fp32 for large positions) and
the rotation runs in (at least) fp32 before casting back to the input dtype.
"""

from __future__ import annotations

import functools

import torch

DEFAULT_THETA = 10000.0


def axis_dims(head_dim: int) -> tuple[int, int, int]:
    """Channels of (t, h, w) bands for a head dimension; each band is even so it splits into rotation pairs."""
    if head_dim % 2 or head_dim < 6:
        raise ValueError(f"3D RoPE needs an even head_dim >= 6, got {head_dim}")
    spatial = 2 * (head_dim // 6)
    return head_dim - 2 * spatial, spatial, spatial


def _inverse_frequencies(band: int, theta: float, device: torch.device) -> torch.Tensor:
    return theta ** (-torch.arange(0, band, 2, dtype=torch.float64, device=device) / band)


def rope_angles(t_pos: torch.Tensor, h_pos: torch.Tensor, w_pos: torch.Tensor, head_dim: int,
                theta: float = DEFAULT_THETA) -> torch.Tensor:
    """Rotation angles [N, head_dim/2] in float64 for tokens at (t_pos, h_pos, w_pos), each of shape [N]."""
    if not (t_pos.shape == h_pos.shape == w_pos.shape) or t_pos.dim() != 1:
        raise ValueError(f"positions must be three 1-D tensors of equal length, got {t_pos.shape}, {h_pos.shape}, "
                         f"{w_pos.shape}")
    bands = axis_dims(head_dim)
    device = t_pos.device
    return torch.cat([pos.to(torch.float64)[:, None] * _inverse_frequencies(band, theta, device)[None, :]
                      for pos, band in zip((t_pos, h_pos, w_pos), bands)], dim=1)


def rope_3d(x: torch.Tensor, t_pos: torch.Tensor, h_pos: torch.Tensor, w_pos: torch.Tensor,
            theta: float = DEFAULT_THETA) -> torch.Tensor:
    """Rotate q or k of shape [B, H, N, D] by the 3D positions of its N tokens (each position tensor is [N])."""
    if x.dim() != 4:
        raise ValueError(f"expected [B, H, N, D], got shape {tuple(x.shape)}")
    n_tokens, head_dim = x.shape[2], x.shape[3]
    if t_pos.shape[0] != n_tokens:
        raise ValueError(f"{t_pos.shape[0]} positions for {n_tokens} tokens")
    angles = rope_angles(t_pos.to(x.device), h_pos.to(x.device), w_pos.to(x.device), head_dim, theta)
    compute_dtype = torch.promote_types(x.dtype, torch.float32)  # fp32 for half inputs, fp64 stays fp64
    cos, sin = angles.cos().to(compute_dtype), angles.sin().to(compute_dtype)
    pairs = x.to(compute_dtype).unflatten(-1, (head_dim // 2, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2).to(x.dtype)


def video_positions(frame_positions: torch.Tensor, height: int, width: int
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(t, h, w) positions of every token of the given frames, tokens ordered frame-major then row-major."""
    device = frame_positions.device
    tokens_per_frame = height * width
    t_pos = frame_positions.to(torch.int64).repeat_interleave(tokens_per_frame)
    rows = torch.arange(height, device=device).repeat_interleave(width)
    cols = torch.arange(width, device=device).repeat(height)
    n_frames = frame_positions.numel()
    return t_pos, rows.repeat(n_frames), cols.repeat(n_frames)


CACHE_TABLES = True  # bench/diffusion_bench.py turns it off to measure the engine as it was before


def rope_video(x: torch.Tensor, frame_positions: torch.Tensor, height: int, width: int,
               theta: float = DEFAULT_THETA) -> torch.Tensor:
    """rope_3d for tokens laid out as whole frames of height × width latents at the given frame positions.

    The cos/sin tables depend only on the positions and the layout, which a stream repeats every frame (positions
    are refreshed to 0..n-1), so they are computed once per layout: on a CPU their float64 trigonometry was ~40 % of
    the small model's DiT time. Traced/exported graphs compute them in the graph (positions are an input there)."""
    if (not CACHE_TABLES or x.dim() != 4 or torch.jit.is_tracing() or torch.onnx.is_in_onnx_export()
            or frame_positions.dim() != 1):
        return rope_3d(x, *video_positions(frame_positions, height, width), theta=theta)
    n_tokens, head_dim = x.shape[2], x.shape[3]
    if frame_positions.numel() * height * width != n_tokens:
        raise ValueError(f"{frame_positions.numel() * height * width} positions for {n_tokens} tokens")
    compute_dtype = torch.promote_types(x.dtype, torch.float32)
    cos, sin = _rope_tables(tuple(int(p) for p in frame_positions.tolist()), height, width, head_dim, float(theta),
                            compute_dtype, x.device)
    pairs = x.to(compute_dtype).unflatten(-1, (head_dim // 2, 2))
    even, odd = pairs[..., 0], pairs[..., 1]
    rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)
    return rotated.flatten(-2).to(x.dtype)


@functools.lru_cache(maxsize=64)
def _rope_tables(frame_positions: tuple[int, ...], height: int, width: int, head_dim: int, theta: float,
                 dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    positions = video_positions(torch.tensor(frame_positions, dtype=torch.int64, device=device), height, width)
    angles = rope_angles(*positions, head_dim, theta)
    return angles.cos().to(dtype), angles.sin().to(dtype)

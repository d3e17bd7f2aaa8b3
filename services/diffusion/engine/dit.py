"""The causal DiT: predicts the flow-matching velocity of a chunk of latent frames, reading earlier frames only
through a rolling KV cache.

Why this shape: it is Wan2.1's transformer (patchify conv, sinusoidal timestep MLP, adaLN modulation with a learned
per-block table, RMS-normed q/k, 3D RoPE, GELU MLP, modulated head), so Wan2.1-style checkpoints map onto it
(weights.py), minus text cross-attention: the style conditions through adaLN instead (a learned table of styles plus
an optional external vector, both added to the timestep embedding before the modulation projection). A repaint has
the input frame to follow; what it needs from conditioning is "which look", which adaLN carries at no token cost.

Tokens: latents [B, F, C, h, w] -> patches (1, p, p) -> [B, F, T, dim] with T = (h/p)(w/p), frame-major then
row-major, which is the order rope.video_positions assumes.

Attention is causal at frame granularity (attention.py). Entry points:
  forward_chunk  streaming: the chunk attends to [cache | chunk]; the cache's frames sit at refreshed temporal
                 positions 0..n-1 and the chunk continues at n (kv_cache.py). write_cache=True appends the chunk's
                 un-rotated keys/values to every layer's cache after that layer has read it.
  forward_full   no cache: all given frames at once. Without sink/window it is plain frame-causal attention at
                 positions 0..F-1. With sink_frames/window_frames it reproduces streaming exactly: each chunk of
                 frames sees the frames a RollingKVCache would hold at that point, at the same refreshed positions
                 (a loop over chunks; for tests and training).
  forward_items  stream batch: several independent items (different streams, or different denoising steps of one
                 stream), each with its own t and cache, in ONE batched forward (see sampler.py).
  forward_explicit  the cache as tensors in and out (context K/V and positions in, the chunk's K/V out): the
                 stateless step that export_onnx.py exports.

Cache policy (what the caches hold): keys/values of CLEAN frames. After a chunk's last denoising step the sampler
re-runs the denoised latent once at t = config.context_timestep (0) with write_cache=True (StreamDiffusionV2 /
Self-Forcing style). The denoising steps themselves only read. The cost is one extra forward per chunk (batched with
the other streams' steps in stream-batch mode); the gain is a context that does not carry step-dependent noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from services.diffusion.engine.attention import cached_chunk_attention, chunk_attention
from services.diffusion.engine.config import DiffusionConfig
from services.diffusion.engine.kv_cache import RollingKVCache
from services.diffusion.engine.rope import rope_video

# attend(layer, q, k, v) -> attention output; q, k, v un-rotated [B, heads, N, head_dim]
Attend = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def timestep_features(t: torch.Tensor, freq_dim: int) -> torch.Tensor:
    """Wan2.1's sinusoid: [..., freq_dim] = [cos(t w_i), sin(t w_i)], w_i = 10000^(-i/half), computed in float64."""
    half = freq_dim // 2
    freqs = 10000.0 ** (-torch.arange(half, dtype=torch.float64, device=t.device) / half)
    angles = t.to(torch.float64)[..., None] * freqs
    return torch.cat((angles.cos(), angles.sin()), dim=-1)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        return (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class TimestepEmbedding(nn.Module):
    def __init__(self, freq_dim: int, dim: int) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.fc1, self.fc2 = nn.Linear(freq_dim, dim), nn.Linear(dim, dim)

    def forward(self, t_scaled: torch.Tensor) -> torch.Tensor:
        features = timestep_features(t_scaled, self.freq_dim).to(self.fc1.weight.dtype)
        return self.fc2(F.silu(self.fc1(features)))


class StyleEmbedding(nn.Module):
    """A learned vector per style, plus an optional external vector (e.g. a pooled prompt embedding) through an MLP
    shaped like Wan's text_embedding so its weights can seed it."""

    def __init__(self, num_styles: int, text_dim: int, dim: int) -> None:
        super().__init__()
        self.table = nn.Embedding(num_styles, dim)
        self.vector_fc1, self.vector_fc2 = nn.Linear(text_dim, dim), nn.Linear(dim, dim)

    def forward(self, style: torch.Tensor, vector: torch.Tensor | None) -> torch.Tensor:
        e = self.table(style)  # (B, dim)
        if vector is not None:
            e = e + self.vector_fc2(F.gelu(self.vector_fc1(vector.to(e.dtype)), approximate="tanh"))
        return e


class SelfAttention(nn.Module):
    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        dim = config.dim
        self.heads = config.heads
        self.to_q, self.to_k, self.to_v, self.to_out = (nn.Linear(dim, dim) for _ in range(4))
        self.q_norm = RMSNorm(dim, config.eps) if config.qk_norm else nn.Identity()
        self.k_norm = RMSNorm(dim, config.eps) if config.qk_norm else nn.Identity()

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [B, N, dim] -> un-rotated q, k, v [B, heads, N, head_dim]."""
        def split(y: torch.Tensor) -> torch.Tensor:
            return y.unflatten(-1, (self.heads, -1)).transpose(1, 2)

        return split(self.q_norm(self.to_q(x))), split(self.k_norm(self.to_k(x))), split(self.to_v(x))


class MLP(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class DiTBlock(nn.Module):
    """adaLN-Zero block: shift/scale/gate for attention and MLP from (learned table + conditioning)."""

    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(config.dim, eps=config.eps, elementwise_affine=False)
        self.attn = SelfAttention(config)
        self.norm2 = nn.LayerNorm(config.dim, eps=config.eps, elementwise_affine=False)
        self.mlp = MLP(config.dim, config.ffn_dim)
        self.modulation = nn.Parameter(torch.zeros(1, 6, config.dim))

    def forward(self, x: torch.Tensor, e6: torch.Tensor, attend: Callable) -> torch.Tensor:
        # x (B, F, T, dim); e6 (B, F, 6, dim): per-frame conditioning, broadcast over the frame's tokens
        shift1, scale1, gate1, shift2, scale2, gate2 = (self.modulation + e6).unsqueeze(3).unbind(2)
        h = self.norm1(x) * (1 + scale1) + shift1
        q, k, v = self.attn.project(h.flatten(1, 2))
        a = attend(q, k, v).transpose(1, 2).flatten(2)  # (B, F*T, dim)
        x = x + self.attn.to_out(a).view_as(x) * gate1
        return x + self.mlp(self.norm2(x) * (1 + scale2) + shift2) * gate2


class FinalLayer(nn.Module):
    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.dim, eps=config.eps, elementwise_affine=False)
        self.linear = nn.Linear(config.dim, math.prod(config.patch_size) * config.latent_channels)
        self.modulation = nn.Parameter(torch.zeros(1, 2, config.dim))

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        shift, scale = (self.modulation + e.unsqueeze(2)).unsqueeze(3).unbind(2)  # each (B, F, 1, dim)
        return self.linear(self.norm(x) * (1 + scale) + shift)


@dataclass
class StreamItem:
    """One entry of a stream-batch forward: a chunk of one stream (or several streams advancing together, as the
    cache's batch) at its own flow time, with its own cache (None: no context)."""

    latents: torch.Tensor  # (b, F, C, h, w)
    t: torch.Tensor | float  # scalar or (b,)
    style: torch.Tensor | int  # scalar or (b,) style index
    cache: list[RollingKVCache] | None = None  # one per block, batch b
    write_cache: bool = False
    style_vector: torch.Tensor | None = None  # (b, text_dim)


class CausalDiT(nn.Module):
    def __init__(self, config: DiffusionConfig) -> None:
        super().__init__()
        self.config = config.validate()
        self.patch_embed = nn.Conv3d(config.latent_channels, config.dim, kernel_size=config.patch_size,
                                     stride=config.patch_size)
        self.time_embed = TimestepEmbedding(config.freq_dim, config.dim)
        self.time_modulation = nn.Linear(config.dim, 6 * config.dim)  # applied to silu(e), as Wan's time_projection
        self.style_embed = StyleEmbedding(config.num_styles, config.text_dim, config.dim)
        self.blocks = nn.ModuleList(DiTBlock(config) for _ in range(config.depth))
        self.final = FinalLayer(config)
        self.init_weights()

    def init_weights(self) -> None:
        """Xavier linears; adaLN-Zero: modulation tables, the modulation projection and the output layer start at
        zero, so every block starts as the identity and the model predicts zero velocity."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.xavier_uniform_(self.patch_embed.weight.flatten(1))
        assert self.patch_embed.bias is not None, "Conv3d built with its default bias=True"
        nn.init.zeros_(self.patch_embed.bias)
        for linear in (self.time_embed.fc1, self.time_embed.fc2):
            nn.init.normal_(linear.weight, std=0.02)
        nn.init.normal_(self.style_embed.table.weight, std=0.02)
        for tensor in (self.time_modulation.weight, self.time_modulation.bias, self.final.linear.weight,
                       self.final.linear.bias, self.final.modulation):
            nn.init.zeros_(tensor)
        for block in self.blocks:
            assert isinstance(block, DiTBlock), "blocks holds only DiTBlocks"
            nn.init.zeros_(block.modulation)

    # --- pieces shared by every entry point ---

    def new_cache(self, batch: int = 1, dtype: torch.dtype | None = None,
                  device: torch.device | str | None = None, latent_hw: tuple[int, int] | None = None
                  ) -> list[RollingKVCache]:
        """One RollingKVCache per block for `batch` streams of latents latent_hw (default: the config's size)."""
        c = self.config
        h, w = latent_hw or (c.latent_size, c.latent_size)
        tokens = (h // c.patch_size[1]) * (w // c.patch_size[2])
        weight = self.patch_embed.weight
        return [RollingKVCache(batch, c.heads, c.head_dim, tokens, c.sink_frames, c.window_frames,
                               dtype or weight.dtype, device or weight.device) for _ in self.blocks]

    def _embed(self, latents: torch.Tensor) -> tuple[torch.Tensor, int, int]:
        c = self.config
        if latents.dim() != 5 or latents.shape[2] != c.latent_channels:
            raise ValueError(f"expected latents [B, F, {c.latent_channels}, h, w], got {tuple(latents.shape)}")
        if latents.shape[3] % c.patch_size[1] or latents.shape[4] % c.patch_size[2]:
            raise ValueError(f"latent height/width {tuple(latents.shape[3:])} must be multiples of the patch "
                             f"{c.patch_size[1:]}")
        x = self.patch_embed(latents.transpose(1, 2))  # (B, dim, F, hp, wp)
        hp, wp = x.shape[3], x.shape[4]
        return x.permute(0, 2, 3, 4, 1).flatten(2, 3), hp, wp  # (B, F, T, dim)

    def _condition(self, t, style, style_vector, batch: int, frames: int, device: torch.device
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-frame conditioning e (B, F, dim) for the head and e6 (B, F, 6, dim) for the blocks."""
        t = torch.as_tensor(t, dtype=torch.float32, device=device)
        t = t.reshape(-1, 1) if t.dim() == 1 else t  # (B,) -> (B, 1); () and (B, F) broadcast as they are
        t = t.expand(batch, frames)
        style = torch.as_tensor(style, dtype=torch.long, device=device).reshape(-1).expand(batch)
        e = self.time_embed(t * self.config.timestep_scale)  # (B, F, dim)
        e = e + self.style_embed(style, style_vector).unsqueeze(1)
        e6 = self.time_modulation(F.silu(e)).unflatten(-1, (6, self.config.dim))
        return e, e6

    def _unpatchify(self, out: torch.Tensor, hp: int, wp: int) -> torch.Tensor:
        # out (B, F, T, ph*pw*C), per-token channel order (ph, pw, C) as Wan's head
        _, ph, pw = self.config.patch_size
        x = out.unflatten(2, (hp, wp)).unflatten(-1, (ph, pw, self.config.latent_channels))  # (B,F,hp,wp,ph,pw,C)
        return x.permute(0, 1, 6, 2, 4, 3, 5).flatten(5, 6).flatten(3, 4)  # (B, F, C, hp*ph, wp*pw)

    def _run(self, latents: torch.Tensor, e: torch.Tensor, e6: torch.Tensor,
             make_attend: Callable[[int, int], Attend]) -> torch.Tensor:
        x, hp, wp = self._embed(latents)
        attend = make_attend(hp, wp)
        for layer, block in enumerate(self.blocks):
            x = block(x, e6, lambda q, k, v, layer=layer: attend(layer, q, k, v))
        return self._unpatchify(self.final(x, e), hp, wp)

    def _rope(self, x: torch.Tensor, frame_positions: torch.Tensor, hp: int, wp: int) -> torch.Tensor:
        return rope_video(x, frame_positions, hp, wp, self.config.rope_theta)

    def _attend_alone(self, q, k, v, hp: int, wp: int) -> torch.Tensor:
        """Frame-causal attention of a chunk with no context, frames at positions 0..F-1."""
        positions = torch.arange(q.shape[2] // (hp * wp), device=q.device)
        return chunk_attention(self._rope(q, positions, hp, wp), None, None, self._rope(k, positions, hp, wp), v,
                               hp * wp, backend=self.config.attention_backend)

    # --- entry points ---

    def forward_chunk(self, latents_chunk: torch.Tensor, t, style, cache: list[RollingKVCache] | None = None,
                      write_cache: bool = False, style_vector: torch.Tensor | None = None) -> torch.Tensor:
        """Velocity [B, F, C, h, w] of a chunk at flow time t ((), (B,) or (B, F)) attending to the cache (batch B,
        one per block) and itself; write_cache appends the chunk's keys/values to the cache."""
        batch, frames = latents_chunk.shape[:2]
        if cache is not None:
            self._check_cache(cache, batch)
        elif write_cache:
            raise ValueError("write_cache=True needs a cache")
        e, e6 = self._condition(t, style, style_vector, batch, frames, latents_chunk.device)

        def make_attend(hp: int, wp: int) -> Attend:
            def attend(layer: int, q, k, v):
                if cache is None:
                    return self._attend_alone(q, k, v, hp, wp)
                out = cached_chunk_attention(cache[layer], q, k, v, hp, wp, self.config.attention_backend,
                                             self.config.rope_theta)
                if write_cache:
                    cache[layer].append(k, v)
                return out
            return attend

        return self._run(latents_chunk, e, e6, make_attend)

    def forward_full(self, latents_frames: torch.Tensor, t, style, style_vector: torch.Tensor | None = None,
                     sink_frames: int | None = None, window_frames: int | None = None,
                     chunk_frames: int | None = None) -> torch.Tensor:
        """Velocity of every given frame, recomputing all attention. t may be per frame (B, F) (e.g. clean context at
        0 and the current frame at s). With sink_frames and window_frames set, chunk g (of chunk_frames frames) sees
        exactly what a RollingKVCache would hold before it, at the cache's refreshed positions; without, every frame
        sees all earlier frames at positions 0..F-1."""
        batch, frames = latents_frames.shape[:2]
        e, e6 = self._condition(t, style, style_vector, batch, frames, latents_frames.device)
        windowed = sink_frames is not None or window_frames is not None
        sinks, window = sink_frames or 0, window_frames or 0
        chunk = chunk_frames or self.config.chunk_frames

        def make_attend(hp: int, wp: int) -> Attend:
            tpf = hp * wp

            def attend(layer: int, q, k, v):
                if not windowed:
                    return self._attend_alone(q, k, v, hp, wp)
                outputs = []
                for start in range(0, frames, chunk):
                    stop = min(start + chunk, frames)
                    context = _cached_frames_before(start, sinks, window)
                    n = len(context)
                    token_index = (torch.tensor(context, dtype=torch.long, device=q.device)[:, None] * tpf
                                   + torch.arange(tpf, device=q.device)).flatten()
                    ctx_positions = torch.arange(n, device=q.device)
                    chunk_positions = torch.arange(n, n + stop - start, device=q.device)
                    span = slice(start * tpf, stop * tpf)
                    outputs.append(chunk_attention(
                        self._rope(q[:, :, span], chunk_positions, hp, wp),
                        self._rope(k.index_select(2, token_index), ctx_positions, hp, wp),
                        v.index_select(2, token_index),
                        self._rope(k[:, :, span], chunk_positions, hp, wp), v[:, :, span],
                        tpf, backend=self.config.attention_backend))
                return torch.cat(outputs, dim=2)
            return attend

        return self._run(latents_frames, e, e6, make_attend)

    def forward_items(self, items: Sequence[StreamItem]) -> list[torch.Tensor]:
        """One batched forward over items that share chunk and latent size: every linear layer runs once on the
        concatenated batch; attention runs per item against its own cache (ragged contexts). Every item reads the
        caches as they were before this call: writes are applied per layer after all items of that layer have read,
        so two items of one stream (two denoising steps, or a step and the clean-KV write) never see each other."""
        if not items:
            return []
        shape = items[0].latents.shape[1:]
        for item in items:
            if item.latents.shape[1:] != shape:
                raise ValueError(f"stream-batch items must share [F, C, h, w]: {tuple(shape)} vs "
                                 f"{tuple(item.latents.shape[1:])}")
            if item.cache is not None:
                self._check_cache(item.cache, item.latents.shape[0])
            elif item.write_cache:
                raise ValueError("an item with write_cache=True needs a cache")
        sizes = [item.latents.shape[0] for item in items]
        latents = torch.cat([item.latents for item in items])
        conditions = [self._condition(item.t, item.style, item.style_vector, item.latents.shape[0], shape[0],
                                      latents.device) for item in items]
        e = torch.cat([c[0] for c in conditions])
        e6 = torch.cat([c[1] for c in conditions])

        def make_attend(hp: int, wp: int) -> Attend:
            def attend(layer: int, q, k, v):
                outputs, writes = [], []
                for item, qi, ki, vi in zip(items, q.split(sizes), k.split(sizes), v.split(sizes)):
                    if item.cache is None:
                        outputs.append(self._attend_alone(qi, ki, vi, hp, wp))
                        continue
                    outputs.append(cached_chunk_attention(item.cache[layer], qi, ki, vi, hp, wp,
                                                          self.config.attention_backend, self.config.rope_theta))
                    if item.write_cache:
                        writes.append((item.cache[layer], ki, vi))
                for layer_cache, ki, vi in writes:
                    layer_cache.append(ki, vi)
                return torch.cat(outputs)
            return attend

        return list(self._run(latents, e, e6, make_attend).split(sizes))

    def forward_explicit(self, latents_chunk: torch.Tensor, t: torch.Tensor, style: torch.Tensor,
                         ctx_keys: torch.Tensor, ctx_values: torch.Tensor, ctx_positions: torch.Tensor,
                         style_vector: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stateless step: context keys/values [depth, B, heads, N_ctx, head_dim] (un-rotated, any frame order) with
        each context frame's temporal position [N_ctx / tokens_per_frame] in; (velocity, chunk keys, chunk values)
        out, the chunk's keys un-rotated [depth, B, heads, N, head_dim], ready to append to a cache."""
        batch, frames = latents_chunk.shape[:2]
        e, e6 = self._condition(t, style, style_vector, batch, frames, latents_chunk.device)
        new_keys, new_values = [], []

        def make_attend(hp: int, wp: int) -> Attend:
            ctx_frames = ctx_positions.shape[0]
            chunk_positions = torch.arange(frames, device=latents_chunk.device) + ctx_frames

            def attend(layer: int, q, k, v):
                new_keys.append(k)
                new_values.append(v)
                return chunk_attention(self._rope(q, chunk_positions, hp, wp),
                                       self._rope(ctx_keys[layer], ctx_positions, hp, wp), ctx_values[layer],
                                       self._rope(k, chunk_positions, hp, wp), v, hp * wp,
                                       backend=self.config.attention_backend)
            return attend

        velocity = self._run(latents_chunk, e, e6, make_attend)
        return velocity, torch.stack(new_keys), torch.stack(new_values)

    def _check_cache(self, cache: list[RollingKVCache], batch: int) -> None:
        if len(cache) != len(self.blocks):
            raise ValueError(f"need one cache per block ({len(self.blocks)}), got {len(cache)}")
        if cache[0].batch != batch:
            raise ValueError(f"the cache holds {cache[0].batch} streams, the chunk has batch {batch}")


def _cached_frames_before(frames_seen: int, sink_frames: int, window_frames: int) -> list[int]:
    """Stream indices a RollingKVCache holds after `frames_seen` frames: the sinks, then the latest window."""
    sinks = min(frames_seen, sink_frames)
    window = min(frames_seen - sinks, window_frames)
    return list(range(sinks)) + list(range(frames_seen - window, frames_seen))

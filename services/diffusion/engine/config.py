"""The diffusion engine's architecture and streaming settings in one dataclass, stored with every checkpoint.

One config drives the VAE, the causal DiT, the sampler and the rolling KV caches, so a checkpoint (ours or a
Wan2.1-style folder, see weights.py) carries everything needed to rebuild the model that wrote it. Presets:

  tiny      the CPU default: 256x256 frames -> 32x32x8 latents (8x VAE) -> 16x16 = 256 tokens per frame (patch 2),
            dim 128, depth 4, 4 heads. Small enough to train and stream on a laptop CPU.
  wan-1.3b  Wan2.1-T2V-1.3B's transformer shape (dim 1536, 30 layers, 12 heads, ffn 8960, patch (1, 2, 2), 16 latent
            channels, 8x VAE). For planning (bench/h100_plan.py) and for checking the key mapping of weights.py
            at tiny scale; never instantiated on the CPU. Its temporal VAE compression (4) is Wan's; our VAE only
            implements 1 (a streamed frame is one latent frame), so our VAE refuses this preset.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

from services.diffusion.engine.styles import STYLE_NAMES

if TYPE_CHECKING:  # attention.py needs torch, which reading a config does not
    from services.diffusion.engine.attention import Backend


@dataclass(frozen=True)
class DiffusionConfig:
    # --- VAE ---
    image_size: int = 256  # training / default frame side; any multiple of vae_downsample * patch works at run time
    latent_channels: int = 8  # z channels
    vae_downsample: int = 8  # spatial compression, a power of two (one stride-2 stage per factor of 2)
    vae_temporal_downsample: int = 1  # temporal compression; 1 = one latent frame per streamed frame
    vae_channels: tuple[int, ...] = (32, 64, 128)  # conv width per resolution stage, len = log2(vae_downsample)
    vae_temporal: bool = False  # causal temporal mixing at the bottleneck (1-frame cache); off = per-frame VAE
    latent_scale: float = 1.0  # model latents = (vae_mean - latent_shift) * latent_scale, ~unit variance
    latent_shift: float = 0.0
    # The checkpoint's fast VAE (vae_fast.safetensors, the CPU path's): an encoder that averages the frame down this
    # many times and skips as many octaves of its first stages, distilled to the full encoder's latents, and a
    # decoder that stops this many times short of full resolution and scales its image up bilinearly, drawing only
    # the low frequencies (all the output needs when the detail comes from a blur of the input). 0 = none shipped.
    fast_encoder_downsample: int = 0
    fast_decoder_downsample: int = 0

    # --- DiT ---
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (time, height, width); time must be 1 to stream frame by frame
    dim: int = 128
    depth: int = 4
    heads: int = 4
    ffn_dim: int = 512
    freq_dim: int = 256  # sinusoidal timestep features before the time MLP (Wan: 256)
    text_dim: int = 64  # external style/prompt vector width (e.g. a pooled text embedding); Wan: 4096
    num_styles: int = len(STYLE_NAMES)  # learned style table rows, in styles.STYLE_NAMES order
    qk_norm: bool = True  # RMSNorm on q and k over the full width, as Wan2.1
    eps: float = 1e-6
    rope_theta: float = 10000.0
    timestep_scale: float = 1000.0  # flow time t in [0, 1] is fed to the sinusoid as t * timestep_scale (Wan: 1000)

    # --- streaming ---
    sink_frames: int = 1  # first frames of a stream kept in every layer's cache
    window_frames: int = 3  # most recent frames kept besides the sinks
    chunk_frames: int = 1  # latent frames denoised together (1: one game frame at a time)
    steps: int = 2  # denoising steps per chunk (1-4)
    strength: float = 0.7  # default noise strength s (motion.py lowers it on fast motion)
    schedule_shift: float = 1.0  # >1 spends more of the steps at high noise (Wan's sampler uses 5 at 50 steps)
    context_timestep: float = 0.0  # flow time at which the clean latent is re-run to write the cache (0 = clean)
    attention_backend: Backend = "auto"  # "auto" | "sdpa" | "triton" (attention.py)
    detail_transfer: bool = False  # add the input's high frequencies back to the output (sampler.add_detail)
    # Where the detail comes from: 0 = the input minus its VAE reconstruction (one more decode per frame); > 0 = the
    # input minus a Gaussian blur of this sigma in pixels (no decode; measured on held-out clips of the tiny-city
    # checkpoint: sigma 3 scored 26.88 dB / 0.9065 against 26.47 / 0.8947 for the VAE, at a third less CPU per frame).
    detail_blur_sigma: float = 0.0

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads

    @property
    def latent_size(self) -> int:
        return self.image_size // self.vae_downsample

    @property
    def tokens_per_frame(self) -> int:
        side = self.latent_size
        return (side // self.patch_size[1]) * (side // self.patch_size[2])

    @property
    def pixel_multiple(self) -> int:
        """Frame sides must be multiples of this (VAE stride times spatial patch)."""
        return self.vae_downsample * max(self.patch_size[1], self.patch_size[2])

    def validate(self) -> DiffusionConfig:
        """Raises ValueError naming the field to fix; returns self so presets can chain it."""
        problems = []
        if self.dim % self.heads:
            problems.append(f"dim {self.dim} is not divisible by heads {self.heads}")
        elif self.head_dim % 2 or self.head_dim < 6:
            problems.append(f"head_dim {self.head_dim} must be even and >= 6 for 3D RoPE")
        if self.patch_size[0] != 1:
            problems.append(f"patch_size[0] must be 1 (frame-by-frame streaming), got {self.patch_size[0]}")
        if self.vae_downsample < 1 or self.vae_downsample & (self.vae_downsample - 1):
            problems.append(f"vae_downsample must be a power of two, got {self.vae_downsample}")
        elif len(self.vae_channels) != self.vae_downsample.bit_length() - 1:
            problems.append(f"vae_channels needs {self.vae_downsample.bit_length() - 1} entries (one per stride-2 "
                            f"stage of vae_downsample={self.vae_downsample}), got {len(self.vae_channels)}")
        for name in ("fast_encoder_downsample", "fast_decoder_downsample"):
            k = getattr(self, name)
            if k and (k < 2 or k & (k - 1) or k >= self.vae_downsample):
                problems.append(f"{name} must be 0 (none) or a power of two from 2 to half of vae_downsample "
                                f"({self.vae_downsample}), got {k}")
        if self.image_size % self.pixel_multiple:
            problems.append(f"image_size {self.image_size} must be a multiple of {self.pixel_multiple}")
        if self.sink_frames < 0 or self.window_frames < 0 or self.sink_frames + self.window_frames < 1:
            problems.append("sink_frames and window_frames must be >= 0 with at least one frame of cache")
        if self.chunk_frames < 1:
            problems.append("chunk_frames must be >= 1")
        if not 1 <= self.steps <= 4:
            problems.append(f"steps must be 1..4 (few-step sampler), got {self.steps}")
        if not 0.0 <= self.strength <= 1.0:
            problems.append(f"strength must be in [0, 1], got {self.strength}")
        if self.schedule_shift <= 0:
            problems.append("schedule_shift must be > 0")
        if self.detail_blur_sigma < 0:
            problems.append(f"detail_blur_sigma must be >= 0, got {self.detail_blur_sigma}")
        if self.attention_backend not in ("auto", "sdpa", "triton"):
            problems.append(f"attention_backend must be auto, sdpa or triton, got {self.attention_backend!r}")
        if problems:
            raise ValueError("invalid DiffusionConfig: " + "; ".join(problems))
        return self

    def replace(self, **changes) -> DiffusionConfig:
        return replace(self, **changes).validate()

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> DiffusionConfig:
        """Inverse of to_dict; unknown keys are an error (a newer checkpoint), missing keys take the defaults."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown DiffusionConfig keys {unknown}; known: {sorted(known)}")
        # JSON values, checked by validate(); lists are the tuple fields
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values).validate()

    @classmethod
    def from_json(cls, text: str) -> DiffusionConfig:
        return cls.from_dict(json.loads(text))


PRESETS: dict[str, DiffusionConfig] = {
    "tiny": DiffusionConfig().validate(),
    "wan-1.3b": DiffusionConfig(
        image_size=512, latent_channels=16, vae_downsample=8, vae_temporal_downsample=4, vae_channels=(96, 192, 384),
        vae_temporal=True, patch_size=(1, 2, 2), dim=1536, depth=30, heads=12, ffn_dim=8960, freq_dim=256,
        text_dim=4096, sink_frames=1, window_frames=4, steps=2, schedule_shift=5.0,
    ).validate(),
}
DEFAULT_PRESET = "tiny"


def preset(name: str) -> DiffusionConfig:
    if name not in PRESETS:
        raise ValueError(f"unknown diffusion preset {name!r}; known: {', '.join(PRESETS)}")
    return PRESETS[name]


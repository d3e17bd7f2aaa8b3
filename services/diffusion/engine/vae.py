"""A small VAE that maps frames to the latents the DiT denoises, and back.

Why our own and this small: the CPU default has to encode and decode 256x256 frames at interactive rates (about
100 ms for both on 2 CPU cores at the tiny preset's widths), and training it is part of the repo (no downloads).
Wan2.1's VAE is a far larger causal 3D conv net with 4x temporal compression; streaming one game frame at a time wants
temporal compression 1, which is what this one has.

Shape: image [B, 3, H, W] in -1..1 -> latent [B, C, H/8, W/8] (config.vae_downsample) and back. Encoder: conv ->
(ResBlock, stride-2 conv) per stage -> ResBlock -> [temporal mix] -> mean and log-variance. Decoder mirrors it with
nearest-neighbour upsampling. `encode` returns MODEL latents, (mean - latent_shift) * latent_scale, and `decode`
takes them, so the sampler never sees the VAE's raw scale.

The fast VAE (VAE(config, fast=True); train.py --fast-encoder / --fast-decoder) is the CPU path's: the same latent
space at less work per frame. Its encoder averages the frame down by config.fast_encoder_downsample and skips that
many octaves of its first stages (distilled to give the full encoder's latents); its decoder stops
config.fast_decoder_downsample short of full resolution and scales its image up bilinearly (trained to draw the
image's low frequencies: the output's detail comes from a blur of the input, sampler.add_detail).

"Causal over time": by default (config.vae_temporal False) every frame is coded on its own, which is trivially causal.
With vae_temporal True, one CausalTemporalMix at the bottleneck of the encoder and one of the decoder mix each frame's
features with the previous frame's: y_t = x_t + A x_t + B x_{t-1}, with A and B 1x1 convs zero-initialised (the layer
starts as the identity). The previous frame's features are the layer's 1-frame cache (VAECache); a stream's first
frame uses itself as its predecessor. Nothing ever looks ahead, so encode/decode stream frame by frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from services.diffusion.engine.config import DiffusionConfig


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(32, channels // 4) or 1, channels, eps=1e-6)


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.norm1, self.conv1 = _norm(in_ch), nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.norm2, self.conv2 = _norm(out_ch), nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class CausalTemporalMix(nn.Module):
    """y_t = x_t + A x_t + B x_{t-1}: the only place the VAE looks across time, and only backwards."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.current = nn.Conv2d(channels, channels, 1)
        self.previous = nn.Conv2d(channels, channels, 1, bias=False)
        for conv in (self.current, self.previous):
            nn.init.zeros_(conv.weight)
        assert self.current.bias is not None, "Conv2d built with its default bias=True"
        nn.init.zeros_(self.current.bias)

    def forward(self, x: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
        previous = x if previous is None else previous
        return x + self.current(x) + self.previous(previous)


@dataclass
class VAECache:
    """One stream's 1-frame temporal cache: the bottleneck features of its previous frame, encoder and decoder."""

    encoder: torch.Tensor | None = None
    decoder: torch.Tensor | None = None
    frames: int = field(default=0)

    def reset(self) -> None:
        self.encoder = self.decoder = None
        self.frames = 0


class Encoder(nn.Module):
    """input_downsample k > 1: the fast encoder, the frame averaged down k times and the first log2(k) stages skipped."""

    def __init__(self, config: DiffusionConfig, input_downsample: int = 1) -> None:
        super().__init__()
        self.input_downsample = input_downsample
        skipped = input_downsample.bit_length() - 1
        widths = config.vae_channels
        self.conv_in = nn.Conv2d(3, widths[0], 3, padding=1)
        stages, in_ch = [], widths[0]
        for width in widths[skipped:]:
            stages.append(nn.Sequential(ResBlock(in_ch, width), nn.Conv2d(width, width, 3, stride=2, padding=1)))
            in_ch = width
        self.stages = nn.ModuleList(stages)
        self.mid = ResBlock(in_ch, in_ch)
        self.temporal = CausalTemporalMix(in_ch) if config.vae_temporal else None
        self.norm_out = _norm(in_ch)
        self.conv_out = nn.Conv2d(in_ch, 2 * config.latent_channels, 3, padding=1)

    def forward(self, x: torch.Tensor, cache: VAECache | None) -> tuple[torch.Tensor, torch.Tensor]:
        if self.input_downsample > 1:
            x = F.avg_pool2d(x, self.input_downsample)
        h = self.conv_in(x)
        for stage in self.stages:
            h = stage(h)
        h = self.mid(h)  # (B, C_last, H/8, W/8)
        if self.temporal is not None:
            features = h
            h = self.temporal(h, cache.encoder if cache is not None else None)
            if cache is not None:
                cache.encoder = features.detach()
        mean, logvar = self.conv_out(F.silu(self.norm_out(h))).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)


class Decoder(nn.Module):
    """output_downsample k > 1: the fast decoder, the first stages only (it stops log2(k) stages short of full
    resolution) and a bilinear k-times upscale of its image."""

    def __init__(self, config: DiffusionConfig, output_downsample: int = 1) -> None:
        super().__init__()
        self.output_downsample = output_downsample
        skipped = output_downsample.bit_length() - 1
        widths = tuple(reversed(config.vae_channels))[:len(config.vae_channels) - skipped]
        self.conv_in = nn.Conv2d(config.latent_channels, widths[0], 3, padding=1)
        self.mid = ResBlock(widths[0], widths[0])
        self.temporal = CausalTemporalMix(widths[0]) if config.vae_temporal else None
        stages, in_ch = [], widths[0]
        for width in widths:
            stages.append(nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                                        nn.Conv2d(in_ch, width, 3, padding=1), ResBlock(width, width)))
            in_ch = width
        self.stages = nn.ModuleList(stages)
        self.norm_out = _norm(in_ch)
        self.conv_out = nn.Conv2d(in_ch, 3, 3, padding=1)

    def forward(self, z: torch.Tensor, cache: VAECache | None) -> torch.Tensor:
        h = self.mid(self.conv_in(z))
        if self.temporal is not None:
            features = h
            h = self.temporal(h, cache.decoder if cache is not None else None)
            if cache is not None:
                cache.decoder = features.detach()
        for stage in self.stages:
            h = stage(h)
        image = self.conv_out(F.silu(self.norm_out(h)))
        if self.output_downsample > 1:
            image = F.interpolate(image, scale_factor=float(self.output_downsample), mode="bilinear",
                                  align_corners=False)
        return image


class VAE(nn.Module):
    def __init__(self, config: DiffusionConfig, fast: bool = False) -> None:
        """fast: the checkpoint's fast encoder and decoder (config.fast_*_downsample; a part without one is full)."""
        super().__init__()
        config.validate()
        if config.vae_temporal_downsample != 1:
            raise ValueError(f"this VAE compresses time by 1 (frame-by-frame streaming), the config asks for "
                             f"{config.vae_temporal_downsample}; use a preset with vae_temporal_downsample=1")
        self.config = config
        if fast and not (config.fast_encoder_downsample or config.fast_decoder_downsample):
            raise ValueError("this config has no fast VAE (fast_encoder_downsample and fast_decoder_downsample 0)")
        self.encoder = Encoder(config, (config.fast_encoder_downsample or 1) if fast else 1)
        self.decoder = Decoder(config, (config.fast_decoder_downsample or 1) if fast else 1)

    @property
    def is_fast(self) -> bool:
        return self.encoder.input_downsample > 1 or self.decoder.output_downsample > 1

    def encode_distribution(self, images: torch.Tensor, cache: VAECache | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, logvar) of the raw (unscaled) posterior for images [B, 3, H, W] in -1..1."""
        self._check_images(images)
        return self.encoder(images, cache)

    def encode(self, images: torch.Tensor, sample: bool = False, generator: torch.Generator | None = None,
               cache: VAECache | None = None) -> torch.Tensor:
        """Model latents [B, C, H/8, W/8]: the posterior mean (or a sample of it), shifted and scaled."""
        mean, logvar = self.encode_distribution(images, cache)
        if sample:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            mean = mean + (0.5 * logvar).exp() * noise
        if cache is not None:
            cache.frames += 1
        return (mean - self.config.latent_shift) * self.config.latent_scale

    def decode(self, latents: torch.Tensor, cache: VAECache | None = None) -> torch.Tensor:
        """Images [B, 3, H, W] (unclamped, ~-1..1) from model latents [B, C, h, w]."""
        if latents.dim() != 4 or latents.shape[1] != self.config.latent_channels:
            raise ValueError(f"expected latents [B, {self.config.latent_channels}, h, w], got {tuple(latents.shape)}")
        return self.decoder(latents / self.config.latent_scale + self.config.latent_shift, cache)

    def encode_video(self, frames: torch.Tensor, sample: bool = False,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """[B, T, 3, H, W] -> [B, T, C, h, w], frame by frame through a fresh cache (what streaming would give)."""
        cache = VAECache()
        return torch.stack([self.encode(frames[:, i], sample, generator, cache) for i in range(frames.shape[1])], 1)

    def decode_video(self, latents: torch.Tensor) -> torch.Tensor:
        cache = VAECache()
        return torch.stack([self.decode(latents[:, i], cache) for i in range(latents.shape[1])], 1)

    def _check_images(self, images: torch.Tensor) -> None:
        multiple = self.config.vae_downsample
        if images.dim() != 4 or images.shape[1] != 3 or images.shape[2] % multiple or images.shape[3] % multiple:
            raise ValueError(f"expected images [B, 3, H, W] with H and W multiples of {multiple}, "
                             f"got {tuple(images.shape)}")


def rgb_to_tensor(frames: list, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
                  ) -> torch.Tensor:
    """uint8 RGB frames [H, W, 3] (numpy) -> [B, 3, H, W] in -1..1."""
    stacked = torch.stack([torch.from_numpy(f) for f in frames]).to(device)
    return stacked.permute(0, 3, 1, 2).to(dtype) / 127.5 - 1.0


def tensor_to_rgb(images: torch.Tensor) -> list:
    """[B, 3, H, W] in ~-1..1 -> uint8 RGB frames [H, W, 3] (numpy), clamped and rounded."""
    pixels = ((images.detach().float().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)
    return [p.permute(1, 2, 0).cpu().numpy() for p in pixels]

"""What the engine learns and how, without the I/O: the training objectives of the VAE and of the causal DiT.

The task is paired video-to-video: a flat render in, the same scene in a style out (styles.py, dataset.py). At run
time the sampler starts from the flat frame's latent noised to strength s, x_s = (1 - s) z_flat + s n, and integrates
the model's velocity from t = s to 0 (sampler.py). So the DiT is trained on exactly that path: the straight line from
x_s (at t = s) to the styled latent z_style (at t = 0),

    x_t = z_style + (t / s) (x_s - z_style),      t in (0, s],

whose velocity dx/dt = (x_s - z_style) / s makes x_t - t v = z_style at every t. The loss is on that clean estimate,
|x_t - t v_hat - z_style|^2: an x0-prediction objective, so one Euler step already lands on the model's best z_style
and more steps refine it (the sampler's Euler update stays on the line when the prediction is right). This is the
rectified-flow "bridge" from noisy source to target, as image-to-image flow models (e.g. InstructPix2Pix-style
paired training with SDEdit's noised start) use it; s is drawn over the range motion.py can pick.

Temporal context is teacher-forced and mirrors streaming exactly: frame i of a clip is denoised against a rolling KV
cache holding the CLEAN styled latents of frames < i (written at t = context_timestep, as commit_clean does at run
time), with the cache's sink/window eviction. The cache is written in place, so each frame's loss is back-propagated
before the next write (`clip_step` does that) and the cache's keys carry no gradient (as in Self-Forcing's KV cache).

The VAE is a plain autoencoder with a small KL term (keeps the latent smooth for the noise the DiT adds), L1 + MSE on
pixels; afterwards `latent_stats` sets the config's latent shift/scale so model latents have zero mean, unit std.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from services.diffusion.engine.dit import CausalDiT
from services.diffusion.engine.sampler import noise_to_strength
from services.diffusion.engine.vae import VAE


def _per_item(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return value.reshape(-1, *([1] * (like.dim() - 1))).to(like)


def bridge_point(z_source: torch.Tensor, z_target: torch.Tensor, strength: torch.Tensor, fraction: torch.Tensor,
                 noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, t) on the line from x_s = (1 - s) z_source + s noise (t = s) to z_target (t = 0), t = fraction * s.
    strength and fraction are per item (B,), in (0, 1]."""
    if bool((strength <= 0).any() or (strength > 1).any() or (fraction <= 0).any() or (fraction > 1).any()):
        raise ValueError("strength and fraction must be in (0, 1]")
    s, u = _per_item(strength, z_source), _per_item(fraction, z_source)
    x_s = (1.0 - s) * z_source + s * noise
    return z_target + u * (x_s - z_target), strength * fraction


def x0_loss(velocity: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor, z_target: torch.Tensor) -> torch.Tensor:
    """MSE of the clean estimate x_t - t v against the target."""
    return F.mse_loss(x_t - _per_item(t, x_t) * velocity, z_target)


@dataclass(frozen=True)
class BridgeSampling:
    min_strength: float = 0.3  # motion.py's floor; the base strength is at most 1
    max_strength: float = 1.0
    at_start: float = 0.35  # share of samples at t = s exactly (the first step decides most of the result)

    def draw(self, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        strength = self.min_strength + (self.max_strength - self.min_strength) * torch.rand(batch, generator=generator)
        fraction = 1.0 - torch.rand(batch, generator=generator)  # (0, 1]
        start = torch.rand(batch, generator=generator) < self.at_start
        return strength, torch.where(start, torch.ones_like(fraction), fraction)


def clip_step(model: CausalDiT, z_source: torch.Tensor, z_target: torch.Tensor, style: torch.Tensor,
              sampling: BridgeSampling, generator: torch.Generator) -> float:
    """Accumulate gradients of the mean per-frame loss over clips [B, T, C, h, w] (teacher-forced rolling cache,
    see the module docstring); returns that loss. The caller zeroes gradients and steps the optimiser."""
    batch, frames = z_source.shape[:2]
    height, width = z_source.shape[-2:]
    cache = model.new_cache(batch, latent_hw=(height, width))
    total = 0.0
    for i in range(frames):
        strength, fraction = sampling.draw(batch, generator)
        noise = torch.randn(z_source[:, i:i + 1].shape, generator=generator).to(z_source)
        x_t, t = bridge_point(z_source[:, i:i + 1], z_target[:, i:i + 1], strength, fraction, noise)
        velocity = model.forward_chunk(x_t, t, style, cache)
        loss = x0_loss(velocity, x_t, t, z_target[:, i:i + 1]) / frames
        loss.backward()
        total += float(loss.detach())
        if i + 1 < frames:
            with torch.no_grad():
                ctx_t = model.config.context_timestep
                model.forward_chunk(noise_to_strength(z_target[:, i:i + 1], ctx_t, generator), ctx_t, style, cache,
                                    write_cache=True)
    return total


def vae_loss(vae: VAE, images: torch.Tensor, generator: torch.Generator, kl_weight: float = 1e-4
             ) -> tuple[torch.Tensor, dict[str, float]]:
    """Reconstruction (L1 + MSE on -1..1 pixels) of a posterior sample, plus kl_weight * KL to N(0, 1)."""
    mean, logvar = vae.encode_distribution(images)
    z = mean + (0.5 * logvar).exp() * torch.randn(mean.shape, generator=generator).to(mean)
    recon = vae.decoder(z, None)
    l1, mse = F.l1_loss(recon, images), F.mse_loss(recon, images)
    kl = 0.5 * torch.mean(mean.pow(2) + logvar.exp() - 1.0 - logvar)
    loss = l1 + mse + kl_weight * kl
    return loss, {"l1": float(l1.detach()), "mse": float(mse.detach()), "kl": float(kl.detach())}


def latent_stats(raw_means: torch.Tensor) -> tuple[float, float]:
    """(latent_shift, latent_scale) that map raw VAE means to zero mean, unit standard deviation."""
    shift = float(raw_means.mean())
    std = float(raw_means.std())
    if not math.isfinite(std) or std <= 0:
        raise ValueError("the VAE's latents have no spread; it did not train")
    return shift, 1.0 / std


def cosine_lr(step: int, total: int, peak: float, warmup: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))

"""Few-step flow-matching sampling and the per-stream pipeline: frame in, repainted frame out.

Flow matching (rectified flow): x_t = (1 - t) x0 + t noise, t in [0, 1]; the DiT predicts the velocity
v = noise - x0 = dx_t/dt. Video-to-video starts from the input frame's latent noised to strength s (t = s), not from
pure noise, and integrates back to t = 0 in 1-4 Euler steps; s = 0 returns the input untouched, s = 1 ignores it.

  flow_schedule(s, steps, shift)  the times s = t_0 > t_1 > ... > t_steps = 0. The grid is uniform in "unshifted"
                                  time and mapped through sigma(u) = shift u / (1 + (shift - 1) u) (Wan / SD3's shift;
                                  shift > 1 spends more of the steps at high noise). The start is s exactly.
  euler_step                      x_next = x + (t_next - t) v; with renoise=True instead the consistency-style
                                  x_next = (1 - t_next) x0_hat + t_next fresh_noise (CausVid / Self-Forcing's few-step
                                  samplers), which needs a generator.

Per-stream pipeline (StreamEngine.transform, StreamPipeline.process), for each frame:
  encode -> noise to s (s from motion.py: lower on fast motion) -> k denoising steps reading the stream's rolling KV
  cache -> decode -> write the clean latent's keys/values to the cache (one extra forward at t = context_timestep;
  the cache policy of dit.py).
StreamEngine.transform takes frames of MANY streams and runs each denoising step of all of them as one batched
forward (CausalDiT.forward_items: per-item t and cache), and all their cache writes as one more.

Stream batch (StreamPipeline.process_pipelined): the k denoising steps of k consecutive frames of one stream run in
ONE batched forward per incoming frame, together with the cache write of the frame finished on the previous call.
Frame f enters at step 1 when it arrives and leaves after its k-th step, k - 1 calls later:
  - throughput: one forward of batch k (+1 write) per frame instead of k + 1 forwards of batch 1, which on a GPU
    that is not saturated by one item costs about the same wall time as one forward: up to ~k x the frame rate;
  - latency: each output is k - 1 frames late (None is returned for the first k - 1 calls);
  - context lag: a frame in flight reads the cache as committed before each call, so its first step sees frames up
    to f - k - 1 and its last up to f - 2 (the sequential path sees f - 1 at every step). Motion-aware s and the
    sink frames keep this from drifting; it is the trade StreamDiffusion(V2) makes.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import torch

from services.diffusion.engine.config import DiffusionConfig
from services.diffusion.engine.dit import CausalDiT, StreamItem
from services.diffusion.engine.kv_cache import RollingKVCache
from services.diffusion.engine.motion import MotionAwareStrength
from services.diffusion.engine.styles import STYLE_NAMES
from services.diffusion.engine.vae import VAE, VAECache, rgb_to_tensor, tensor_to_rgb


def _shift(u: float, shift: float) -> float:
    return shift * u / (1.0 + (shift - 1.0) * u)


def flow_schedule(strength: float, steps: int, shift: float = 1.0) -> list[float]:
    """Flow times from `strength` down to 0, strictly decreasing, steps + 1 of them; [0.0] (no step) for s = 0."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if steps < 1 or shift <= 0:
        raise ValueError(f"need steps >= 1 and shift > 0, got steps={steps}, shift={shift}")
    if strength == 0.0:
        return [0.0]
    start = strength / (shift - (shift - 1.0) * strength)  # the u whose shifted time is `strength`
    times = [_shift(start * (1.0 - i / steps), shift) for i in range(steps + 1)]
    times[0], times[-1] = strength, 0.0
    return times


def _noise_like(latent: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    device = generator.device if generator is not None else latent.device
    return torch.randn(latent.shape, generator=generator, device=device, dtype=torch.float32).to(latent)


def noise_to_strength(latent: torch.Tensor, strength: float, generator: torch.Generator | None = None
                      ) -> torch.Tensor:
    """x_s = (1 - s) latent + s noise; the latent itself (no noise drawn) for s = 0."""
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    if strength == 0.0:
        return latent
    return (1.0 - strength) * latent + strength * _noise_like(latent, generator)


def euler_step(x: torch.Tensor, velocity: torch.Tensor, t: float, t_next: float, renoise: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
    if not renoise:
        return x + (t_next - t) * velocity
    x0 = x - t * velocity
    return x0 if t_next == 0.0 else (1.0 - t_next) * x0 + t_next * _noise_like(x0, generator)


def denoise(model: CausalDiT, x_s: torch.Tensor, strength: float, steps: int, style,
            cache: list[RollingKVCache] | None = None, style_vector: torch.Tensor | None = None,
            shift: float = 1.0, renoise: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
    """Integrate a chunk [B, F, C, h, w] from t = strength to 0 in `steps` steps; the cache is only read."""
    times = flow_schedule(strength, steps, shift)
    x = x_s
    for t, t_next in pairwise(times):
        velocity = model.forward_chunk(x, t, style, cache, write_cache=False, style_vector=style_vector)
        x = euler_step(x, velocity, t, t_next, renoise, generator)
    return x


def commit_clean(model: CausalDiT, x0: torch.Tensor, style, cache: list[RollingKVCache],
                 style_vector: torch.Tensor | None = None, generator: torch.Generator | None = None) -> None:
    """Append the denoised chunk's keys/values to the cache: one forward at t = context_timestep (noised to it)."""
    t = model.config.context_timestep
    model.forward_chunk(noise_to_strength(x0, t, generator), t, style, cache, write_cache=True,
                        style_vector=style_vector)


def add_detail(output: torch.Tensor, detail: torch.Tensor, reference_std: torch.Tensor) -> torch.Tensor:
    """Detail transfer: output + g * detail, the input's fine structure (what its VAE reconstruction lost) at the
    output's contrast. g per frame = mean over channels of std(output) / std(input's reconstruction), clamped to
    [0, 1.5]: a day look gets the edges back at full strength, a dark night frame gets them dimmed. The styles
    repaint colour and light, not geometry, so the input's edges are the target's edges; this recovers what an 8x VAE
    small enough for a CPU blurs away (measured per style in checkpoints/tiny-city/quality.json)."""
    ratio = output.std(dim=(2, 3), keepdim=True) / (reference_std + 1e-3)
    gain = ratio.clamp(0.0, 1.5).mean(dim=1, keepdim=True)
    return output + detail * gain


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of (B, C, H, W) images, edges replicated: the low frequencies an image's VAE
    reconstruction keeps, without running the decoder (DiffusionConfig.detail_blur_sigma)."""
    radius = max(1, int(3 * sigma + 0.5))
    taps = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-taps * taps / (2 * sigma * sigma))
    kernel = kernel / kernel.sum()
    channels = images.shape[1]
    padded = torch.nn.functional.pad(images, (radius, radius, radius, radius), mode="replicate")
    rows = torch.nn.functional.conv2d(padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return torch.nn.functional.conv2d(rows, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


def style_index(style: int | str) -> int:
    if isinstance(style, str):
        if style not in STYLE_NAMES:
            raise ValueError(f"unknown style {style!r}; known: {', '.join(STYLE_NAMES)}")
        return STYLE_NAMES.index(style)
    return int(style)


@dataclass
class _InFlight:
    x: torch.Tensor  # (1, 1, C, h, w) current latent
    times: list[float]
    strength: float
    step: int = 0
    ticks_left: int = 0  # calls until it leaves the pipeline (keeps outputs in arrival order)
    detail: tuple[torch.Tensor, torch.Tensor] | None = None  # the input's high frequencies (detail_transfer)


@dataclass
class StreamState:
    """Everything one stream carries between frames. Caches are allocated on the first frame (its size)."""

    style: int
    steps: int
    generator: torch.Generator
    motion: MotionAwareStrength | None  # None: fixed strength
    strength: float
    style_vector: torch.Tensor | None = None
    caches: list[RollingKVCache] | None = None
    vae_cache: VAECache = field(default_factory=VAECache)
    frame_shape: tuple[int, int] | None = None
    frame_index: int = 0
    last_strength: float = 0.0
    in_flight: deque = field(default_factory=deque)  # stream-batch mode only
    pending_commit: torch.Tensor | None = None  # stream-batch mode: clean latent to write on the next call


class StreamEngine:
    """The model, the VAE and the sampler settings shared by all streams; `transform` is what the frame pump calls
    (pump.py: transform(list[(state, rgb)]) -> list[(rgb, strength)])."""

    def __init__(self, model: CausalDiT, vae: VAE, renoise: bool = False, vae_runtime=None) -> None:
        """vae_runtime: something with encode(images) / decode(latents) standing in for the frame-by-frame VAE
        (engine/ort_vae.py's OrtVAE on a CPU); None runs the VAE module itself."""
        if model.config.latent_channels != vae.config.latent_channels:
            raise ValueError("the DiT and the VAE disagree on latent_channels")
        if vae_runtime is not None and vae.config.vae_temporal:
            raise ValueError("the temporal VAE keeps per-stream caches: it cannot run on another runtime")
        self.model, self.vae = model.eval(), vae.eval()
        self.vae_runtime = vae_runtime
        self._vae_encode = vae_runtime.encode if vae_runtime is not None else vae.encode
        self._vae_decode = vae_runtime.decode if vae_runtime is not None else vae.decode
        self.config: DiffusionConfig = model.config
        self.renoise = renoise
        weight = model.patch_embed.weight
        self.device, self.dtype = weight.device, weight.dtype
        # Frames per VAE call. On a CPU the VAE's full-resolution convolutions are memory-bound and a batch costs
        # more than its frames one by one (measured: decode of 4 frames 330 ms vs 4 x 61 ms); on a GPU one batch.
        self.vae_batch = 1 if self.device.type == "cpu" else 64

    def new_stream(self, style: int | str = 0, seed: int = 0, steps: int | None = None,
                   strength: float | None = None, motion_aware: bool = True,
                   style_vector: torch.Tensor | None = None) -> StreamState:
        steps = self.config.steps if steps is None else steps
        strength = self.config.strength if strength is None else strength
        if not 1 <= steps <= 4 or not 0.0 <= strength <= 1.0:
            raise ValueError(f"need 1 <= steps <= 4 and 0 <= strength <= 1, got steps={steps}, strength={strength}")
        style = style_index(style)
        if not 0 <= style < self.config.num_styles:
            raise ValueError(f"style {style} out of range: the model knows {self.config.num_styles} styles")
        motion = MotionAwareStrength(base=strength, min_strength=min(0.3, strength)) if motion_aware else None
        vector = None if style_vector is None else style_vector.to(self.device, self.dtype).reshape(1, -1)
        return StreamState(style, steps, torch.Generator().manual_seed(seed), motion, strength, vector)

    # --- sequential mode: every frame fully denoised on its call ---

    @torch.no_grad()
    def transform(self, batch: list[tuple[StreamState, np.ndarray]]) -> list[tuple[np.ndarray, float]]:
        """Repaint one frame of each given stream (streams distinct). Frames of equal size are batched: one forward
        per denoising step for all of them, and one for all their cache writes."""
        if len({id(state) for state, _ in batch}) != len(batch):
            raise ValueError("one frame per stream per batch: a stream's frames must run in order")
        results: list[tuple[np.ndarray, float] | None] = [None] * len(batch)
        by_shape: dict[tuple, list[int]] = {}
        for i, (_, frame) in enumerate(batch):
            by_shape.setdefault(frame.shape, []).append(i)
        for indices in by_shape.values():
            states = [batch[i][0] for i in indices]
            frames = [batch[i][1] for i in indices]
            for i, out in zip(indices, self._transform_group(states, frames)):
                results[i] = out
        return results  # type: ignore[return-value]

    def _transform_group(self, states: list[StreamState], frames: list[np.ndarray]) -> list[tuple[np.ndarray, float]]:
        latents, images_in = self._encode(states, frames)  # (n, C, h, w), (n, 3, H, W)
        details = self._details(latents, images_in)
        strengths = [self._strength(state, frame) for state, frame in zip(states, frames)]
        xs = [noise_to_strength(latents[i:i + 1, None], s, state.generator)
              for i, (state, s) in enumerate(zip(states, strengths))]
        schedules = [flow_schedule(s, state.steps, self.config.schedule_shift) for state, s in zip(states, strengths)]
        for step in range(max(len(times) - 1 for times in schedules)):
            active = [i for i, times in enumerate(schedules) if step < len(times) - 1]
            velocities = self.model.forward_items([self._item(states[i], xs[i], schedules[i][step]) for i in active])
            for i, velocity in zip(active, velocities):
                t, t_next = schedules[i][step], schedules[i][step + 1]
                xs[i] = euler_step(xs[i], velocity, t, t_next, self.renoise, states[i].generator)
        self._commit(states, xs)
        images = self._decode(states, torch.cat(xs)[:, 0], details)
        for state, s in zip(states, strengths):
            state.frame_index += 1
            state.last_strength = s
        return list(zip(images, strengths))

    # --- stream-batch mode: k frames in flight, one batched forward per call ---

    @torch.no_grad()
    def transform_pipelined(self, state: StreamState, frame: np.ndarray) -> np.ndarray | None:
        """Admit a frame, run ONE batched forward over every in-flight frame's next step (plus the previous call's
        cache write), and return the frame that finished (k - 1 calls after it arrived), None while filling."""
        latent, image_in = self._encode([state], [frame])
        strength = self._strength(state, frame)
        times = flow_schedule(strength, state.steps, self.config.schedule_shift)
        state.in_flight.append(_InFlight(noise_to_strength(latent[:, None], strength, state.generator), times,
                                         strength, ticks_left=state.steps, detail=self._details(latent, image_in)))
        stepping = [f for f in state.in_flight if f.step < len(f.times) - 1]
        items = [self._item(state, f.x, f.times[f.step]) for f in stepping]
        if state.pending_commit is not None:
            items.append(self._commit_item(state, state.pending_commit))
            state.pending_commit = None
        for f, velocity in zip(stepping, self.model.forward_items(items)):
            f.x = euler_step(f.x, velocity, f.times[f.step], f.times[f.step + 1], self.renoise, state.generator)
            f.step += 1
        for f in state.in_flight:
            f.ticks_left -= 1
        state.frame_index += 1
        if state.in_flight[0].ticks_left > 0:
            return None
        done = state.in_flight.popleft()
        state.pending_commit = done.x
        state.last_strength = done.strength
        return self._decode([state], done.x[:, 0], done.detail)[0]

    # --- pieces ---

    def _item(self, state: StreamState, x: torch.Tensor, t: float) -> StreamItem:
        return StreamItem(x, t, state.style, state.caches, False, state.style_vector)

    def _commit_item(self, state: StreamState, x0: torch.Tensor) -> StreamItem:
        t = self.config.context_timestep
        return StreamItem(noise_to_strength(x0, t, state.generator), t, state.style, state.caches, True,
                          state.style_vector)

    def _commit(self, states: list[StreamState], xs: list[torch.Tensor]) -> None:
        self.model.forward_items([self._commit_item(state, x) for state, x in zip(states, xs)])

    def _strength(self, state: StreamState, frame: np.ndarray) -> float:
        return state.motion.update(frame) if state.motion is not None else state.strength

    def _encode(self, states: list[StreamState], frames: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """(model latents [n, C, h, w], the frames as tensors [n, 3, H, W] in -1..1)."""
        multiple = self.config.pixel_multiple
        for state, frame in zip(states, frames):
            if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
                raise ValueError(f"expected an RGB uint8 frame [H, W, 3], got {frame.dtype} {frame.shape}")
            if frame.shape[0] % multiple or frame.shape[1] % multiple:
                raise ValueError(f"frame sides must be multiples of {multiple}, got {frame.shape[:2]}")
            if state.frame_shape is None:
                state.frame_shape = frame.shape[:2]
                down = self.config.vae_downsample
                state.caches = self.model.new_cache(1, latent_hw=(frame.shape[0] // down, frame.shape[1] // down))
            elif state.frame_shape != frame.shape[:2]:
                raise ValueError(f"this stream's frames are {state.frame_shape}, got {frame.shape[:2]}: open a new "
                                 f"stream to change size")
        images = rgb_to_tensor(frames, self.device, self.dtype)
        if not self.config.vae_temporal:
            return self._vae_batched(self._vae_encode, images), images
        return torch.cat([self.vae.encode(images[i:i + 1], cache=s.vae_cache) for i, s in enumerate(states)]), images

    def _vae_batched(self, fn, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] <= self.vae_batch:
            return fn(x)
        return torch.cat([fn(x[i:i + self.vae_batch]) for i in range(0, x.shape[0], self.vae_batch)])

    def _details(self, latents: torch.Tensor, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """config.detail_transfer: what the VAE cannot carry of the input (the frame minus its own reconstruction,
        decoded without touching the streams' temporal caches, or minus a blur of it: detail_blur_sigma) and the
        reconstruction's contrast (add_detail)."""
        if not self.config.detail_transfer:
            return None
        if self.config.detail_blur_sigma > 0:
            reconstruction = gaussian_blur(images, self.config.detail_blur_sigma)
        else:
            reconstruction = self._vae_batched(self._vae_decode, latents)
        return images - reconstruction, reconstruction.std(dim=(2, 3), keepdim=True)

    def _decode(self, states: list[StreamState], latents: torch.Tensor,
                details: tuple[torch.Tensor, torch.Tensor] | None = None) -> list[np.ndarray]:
        if not self.config.vae_temporal:
            images = self._vae_batched(self._vae_decode, latents)
        else:
            images = torch.cat([self.vae.decode(latents[i:i + 1], s.vae_cache) for i, s in enumerate(states)])
        if details is not None:
            images = add_detail(images, *details)
        return tensor_to_rgb(images)


class StreamPipeline:
    """One stream over a StreamEngine: `process` (sequential, the frame comes back on its own call) or
    `process_pipelined` (stream batch, k - 1 frames of latency). Do not mix the two on one pipeline."""

    def __init__(self, engine: StreamEngine, **stream_options) -> None:
        self.engine = engine
        self.state = engine.new_stream(**stream_options)

    def process(self, frame_rgb_uint8: np.ndarray) -> np.ndarray:
        return self.engine.transform([(self.state, frame_rgb_uint8)])[0][0]

    def process_pipelined(self, frame_rgb_uint8: np.ndarray) -> np.ndarray | None:
        return self.engine.transform_pipelined(self.state, frame_rgb_uint8)

    @property
    def last_strength(self) -> float:
        return self.state.last_strength

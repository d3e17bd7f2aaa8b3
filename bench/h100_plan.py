"""The H100 plan, on paper: expected frames/s of the streaming engine for a Wan2.1-1.3B-sized configuration, from
FLOP and byte counts, next to StreamDiffusionV2's published 20.5 FPS (1x H100, 480p, 1 denoising step).

No GPU is available here, so this prints a model of the cost with every assumption named, for the cluster's first
measurement to confirm or correct:

    python bench/h100_plan.py
    python bench/h100_plan.py --mfu 0.35 --window 6 --steps 2
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

# H100 SXM5 (NVIDIA datasheet): dense BF16 tensor-core peak and HBM3 bandwidth.
H100_BF16_FLOPS = 989e12
H100_HBM_BYTES_PER_S = 3.35e12
SDV2_FPS_1XH100_480P_1STEP = 20.5


@dataclass(frozen=True)
class WanConfig:
    """Wan2.1-T2V-1.3B: 30 blocks, dim 1536, 12 heads, FFN 8960, patch (1, 2, 2), text context 512 tokens; VAE with
    8x spatial and 4x temporal compression to 16 channels."""

    dim: int = 1536
    layers: int = 30
    ffn: int = 8960
    text_tokens: int = 512
    patch: int = 2
    vae_spatial: int = 8
    vae_temporal: int = 4
    params: float = 1.3e9


def dit_flops_per_latent_frame(cfg: WanConfig, tokens: int, context_tokens: int) -> dict[str, float]:
    """Forward FLOPs (2 per multiply-add) for the tokens of one latent frame attending to context_tokens."""
    d = cfg.dim
    per_token = {
        "self-attn projections (q, k, v, o)": 4 * 2 * d * d,
        "self-attn scores + weighted sum": 2 * 2 * context_tokens * d,
        "cross-attn to text (q, o; k, v cached)": 2 * 2 * d * d + 2 * 2 * cfg.text_tokens * d,
        "feed-forward": 2 * 2 * d * cfg.ffn,
        "adaLN modulation, norms (approx.)": 20 * d,
    }
    return {k: v * tokens * cfg.layers for k, v in per_token.items()}


def vae_flops_per_video_frame(height: int, width: int) -> float:
    """The Wan VAE's causal 3D-conv encoder + decoder, per video frame. Approximation from its widths (96/192/384
    channels at full/half/quarter resolution and 384 at 1/8, 3x3x3 kernels, ~2 residual convs per level per side):
    FLOPs ~ sum over levels of 2 * 27 * C_in * C_out * pixels * convs. Stated as an estimate, to be measured."""
    levels = [(1, 96, 6), (2, 192, 6), (4, 384, 6), (8, 384, 8)]  # (downsample, channels, convs encoder+decoder)
    total = 0.0
    for down, channels, convs in levels:
        pixels = (height // down) * (width // down)
        total += 2 * 27 * channels * channels * pixels * convs
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--width", type=int, default=832)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--sinks", type=int, default=1, help="sink latent frames in the KV cache")
    parser.add_argument("--window", type=int, default=4, help="rolling latent frames in the KV cache")
    parser.add_argument("--mfu", type=float, default=0.45, help="achieved fraction of peak on the DiT's GEMMs/attention")
    parser.add_argument("--vae-mfu", type=float, default=0.30, help="achieved fraction of peak on the VAE's 3D convs")
    args = parser.parse_args(argv)
    cfg = WanConfig()

    lat_h, lat_w = args.height // cfg.vae_spatial, args.width // cfg.vae_spatial
    tokens = (lat_h // cfg.patch) * (lat_w // cfg.patch)
    context = tokens * (args.sinks + args.window + 1)
    video_frames_per_latent = cfg.vae_temporal
    parts = dit_flops_per_latent_frame(cfg, tokens, context)
    dit_flops = sum(parts.values()) * args.steps
    # With the cache, the clean latent's K/V are recomputed once after the last step (Self-Forcing style): ~1/3 of a
    # forward (k, v projections and the norms), counted as one more third of a step.
    dit_flops += sum(parts.values()) / 3
    vae_flops = vae_flops_per_video_frame(args.height, args.width) * video_frames_per_latent

    dit_s = dit_flops / (H100_BF16_FLOPS * args.mfu)
    vae_s = vae_flops / (H100_BF16_FLOPS * args.vae_mfu)
    weight_bytes = cfg.params * 2 * (args.steps + 1)  # bf16 weights streamed once per forward
    kv_bytes = context * cfg.layers * 2 * cfg.dim * 2 * args.steps  # K and V of the context, bf16, per step
    bytes_s = (weight_bytes + kv_bytes) / H100_HBM_BYTES_PER_S
    per_chunk_s = max(dit_s, bytes_s) + vae_s
    fps = video_frames_per_latent / per_chunk_s

    print(f"Wan2.1-1.3B-sized engine, {args.width}x{args.height}, {args.steps} step(s), cache {args.sinks} sink + {args.window} window latent frames")
    print(f"latent {lat_w}x{lat_h}x16 -> {tokens} tokens per latent frame ({video_frames_per_latent} video frames); attention context {context} tokens")
    for name, flops in parts.items():
        print(f"  DiT {name:40s} {flops * args.steps / 1e12:7.2f} TFLOP per chunk")
    print(f"DiT total (incl. KV refresh)                 {dit_flops / 1e12:7.2f} TFLOP -> {dit_s * 1e3:6.1f} ms at {args.mfu:.0%} of {H100_BF16_FLOPS / 1e12:.0f} TFLOP/s")
    print(f"VAE encode + decode ({video_frames_per_latent} frames, estimate)        {vae_flops / 1e12:7.2f} TFLOP -> {vae_s * 1e3:6.1f} ms at {args.vae_mfu:.0%}")
    print(f"HBM traffic (weights + KV cache)             {(weight_bytes + kv_bytes) / 1e9:7.2f} GB   -> {bytes_s * 1e3:6.1f} ms at 3.35 TB/s (compute-bound: {dit_s > bytes_s})")
    print(f"per chunk {per_chunk_s * 1e3:.1f} ms -> expected {fps:.1f} FPS per H100 for one stream (no overlap of VAE and DiT)")
    print(f"StreamDiffusionV2 published: {SDV2_FPS_1XH100_480P_1STEP} FPS (1x H100, 480p, 1 step); ratio ours/published = {fps / SDV2_FPS_1XH100_480P_1STEP:.2f}")
    print("Caveats: the VAE cost is an estimate from layer widths, MFUs are assumptions, and kernel launch/Python")
    print("overheads are not modelled (CUDA graphs and the stream batch are how they are hidden); measure on the cluster.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

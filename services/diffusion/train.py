"""Train the diffusion engine on paired city clips, measure it, and write a checkpoint the service loads.

    python -m services.diffusion.engine.dataset --clips 240 --clip-frames 8 --out data/pairs_train.npz
    python -m services.diffusion.engine.dataset --clips 16 --clip-frames 8 --seed 12345 --out data/pairs_val.npz
    sd-diffusion-train --train data/pairs_train.npz --val data/pairs_val.npz --out services/diffusion/checkpoints/tiny-city

Stages (objectives in engine/training.py):
  1. VAE: autoencoder on random crops of flat and styled frames.
  2. Latent statistics: shift/scale so the DiT sees unit-variance latents (stored in the checkpoint's config).
  3. DiT: every clip encoded once; the bridge objective, teacher-forced through the rolling KV cache.
  4. Checkpoint (fp16 safetensors), then it is loaded back exactly as the service loads it and streamed over the
     held-out clips: PSNR/SSIM of the repainted frames against the styled renders, next to references — the flat
     input itself (what showing the raw render scores), the VAE's reconstruction of the target (the best the latent
     path alone can do) and, with detail transfer on, the output without it. quality.json, training.png and
     samples.png land in the checkpoint folder.
`--eval-only` runs step 4 on an existing checkpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from scalediffusion.logs import event, get_logger
from services.diffusion.engine.checkpoint import load_checkpoint, save_checkpoint
from services.diffusion.engine.config import preset
from services.diffusion.engine.dit import CausalDiT
from services.diffusion.engine.quality import psnr, ssim
from services.diffusion.engine.sampler import StreamEngine
from services.diffusion.engine.training import BridgeSampling, clip_step, cosine_lr, latent_stats, vae_loss
from services.diffusion.engine.vae import VAE, rgb_to_tensor, tensor_to_rgb

log = get_logger("diffusion.train")


def load_pairs(path: str | Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    data = np.load(path)
    flat, styled = data["flat"], data["styled"]
    if flat.ndim != 5 or styled.ndim != 6 or styled.shape[0] != flat.shape[0] or styled.shape[2:] != flat.shape[1:]:
        raise ValueError(f"{path}: expected flat [clips, T, H, W, 3] and styled [clips, S, T, H, W, 3], got "
                         f"{flat.shape} and {styled.shape}")
    return flat, styled, [str(s) for s in data["styles"]]


def train_vae(vae: VAE, flat: np.ndarray, styled: np.ndarray, steps: int, batch: int, crop: int, lr: float,
              generator: torch.Generator, progress) -> list[float]:
    rng = np.random.default_rng(int(torch.randint(1 << 30, (1,), generator=generator)))
    optimiser = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=0.0)
    clips, styles, frames, size = styled.shape[0], styled.shape[1], styled.shape[2], styled.shape[3]
    losses = []
    task = progress.add_task("VAE", total=steps)
    vae.train()
    for step in range(steps):
        crops = []
        for _ in range(batch):
            c, k, which = rng.integers(clips), rng.integers(frames), rng.integers(styles + 1)
            image = flat[c, k] if which == styles else styled[c, which, k]
            y, x = rng.integers(0, size - crop + 1, 2)
            crops.append(np.ascontiguousarray(image[y:y + crop, x:x + crop]))
        for group in optimiser.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup=min(100, steps // 10 + 1))
        loss, parts = vae_loss(vae, rgb_to_tensor(crops), generator)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimiser.step()
        losses.append(float(loss.detach()))
        progress.update(task, advance=1, description=f"VAE l1 {parts['l1']:.4f}")
    return losses


@torch.no_grad()
def encode_all(vae: VAE, frames: np.ndarray, batch: int = 32) -> torch.Tensor:
    """Model latents of frames [..., H, W, 3] -> [..., C, h, w]."""
    lead = frames.shape[:-3]
    flat = frames.reshape(-1, *frames.shape[-3:])
    out = torch.cat([vae.encode(rgb_to_tensor(list(flat[i:i + batch]))) for i in range(0, len(flat), batch)])
    return out.reshape(*lead, *out.shape[1:])


def train_dit(model: CausalDiT, z_flat: torch.Tensor, z_styled: torch.Tensor, steps: int, batch: int,
              clip_frames: int, lr: float, sampling: BridgeSampling, generator: torch.Generator, progress
              ) -> list[float]:
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    clips, styles, frames = z_styled.shape[:3]
    window = min(clip_frames, frames)
    losses = []
    task = progress.add_task("DiT", total=steps)
    model.train()
    for step in range(steps):
        c = torch.randint(clips, (batch,), generator=generator)
        s = torch.randint(styles, (batch,), generator=generator)
        start = int(torch.randint(frames - window + 1, (1,), generator=generator))
        source = z_flat[c, start:start + window]
        target = z_styled[c, s, start:start + window]
        for group in optimiser.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup=min(100, steps // 10 + 1))
        optimiser.zero_grad(set_to_none=True)
        loss = clip_step(model, source, target, s, sampling, generator)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
        losses.append(loss)
        progress.update(task, advance=1, description=f"DiT x0-mse {np.mean(losses[-50:]):.4f}")
    return losses


@torch.no_grad()
def evaluate(engine: StreamEngine, flat: np.ndarray, styled: np.ndarray, styles: list[str], progress=None,
             keep_samples: int = 2) -> tuple[dict, dict]:
    """Stream every held-out clip in every style through the engine (fresh stream per clip and style, the
    checkpoint's defaults, as the service runs it); PSNR/SSIM against the styled render of:
      output                the engine's frames
      output_latent_only    the same without detail transfer (only when the checkpoint uses it): what the latent
                            path alone gives
      input                 the flat render itself (what showing the raw render scores)
      vae_reconstruction    the target through the VAE: the best the latent path alone could do"""
    plain = None
    if engine.config.detail_transfer:
        plain = StreamEngine(engine.model, engine.vae)
        plain.config = engine.config.replace(detail_transfer=False)
    names = ("output", "input", "vae_reconstruction") + (("output_latent_only",) if plain else ())
    scores = {style: {n: {"psnr": [], "ssim": []} for n in names} for style in styles}
    samples = {"flat": [], "output": [], "target": []}
    clips, frames = flat.shape[:2]
    task = progress.add_task("evaluating", total=clips) if progress else None
    for c in range(clips):
        streams = [engine.new_stream(style=j, seed=c) for j in range(len(styles))]
        plain_streams = [plain.new_stream(style=j, seed=c) for j in range(len(styles))] if plain else []
        for k in range(frames):
            outputs = engine.transform([(stream, flat[c, k]) for stream in streams])
            latent_only = plain.transform([(stream, flat[c, k]) for stream in plain_streams]) if plain else []
            targets = [styled[c, j, k] for j in range(len(styles))]
            recon = tensor_to_rgb(engine.vae.decode(engine.vae.encode(rgb_to_tensor(targets))))
            for j, style in enumerate(styles):
                candidates = [("output", outputs[j][0]), ("input", flat[c, k]), ("vae_reconstruction", recon[j])]
                if plain:
                    candidates.append(("output_latent_only", latent_only[j][0]))
                for name, image in candidates:
                    scores[style][name]["psnr"].append(psnr(image, targets[j]))
                    scores[style][name]["ssim"].append(ssim(image, targets[j]))
            if c < keep_samples and k == frames - 1:
                samples["flat"].append(flat[c, k])
                samples["output"].append([o[0] for o in outputs])
                samples["target"].append(targets)
        if task is not None:
            progress.update(task, advance=1)
    summary = {style: {name: {m: round(float(np.mean(v)), 4) for m, v in metrics.items()}
                       for name, metrics in per.items()} for style, per in scores.items()}
    summary["mean"] = {name: {m: round(float(np.mean([summary[s][name][m] for s in styles])), 4)
                              for m in ("psnr", "ssim")} for name in names}
    return summary, samples


def plot(folder: Path, vae_losses: list[float], dit_losses: list[float], summary: dict, samples: dict,
         styles: list[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for ax, losses, title in ((axes[0], vae_losses, "VAE loss (L1 + MSE + KL)"), (axes[1], dit_losses, "DiT x0 MSE")):
        if losses:
            ax.plot(losses, alpha=0.3, color="tab:blue")
            width = max(1, len(losses) // 50)
            smooth = np.convolve(losses, np.ones(width) / width, mode="valid")
            ax.plot(np.arange(len(smooth)) + width - 1, smooth, color="tab:blue")
            ax.set_yscale("log")
        ax.set_title(title)
        ax.set_xlabel("step")
    x = np.arange(len(styles))
    bars = [(name, colour) for name, colour in (("input", "tab:gray"), ("output_latent_only", "tab:olive"),
                                                ("output", "tab:orange"), ("vae_reconstruction", "tab:green"))
            if name in summary[styles[0]]]
    width = 0.8 / len(bars)
    for i, (name, colour) in enumerate(bars):
        axes[2].bar(x + (i - (len(bars) - 1) / 2) * width, [summary[s][name]["psnr"] for s in styles], width,
                    label=name, color=colour)
    axes[2].set_xticks(x, styles)
    axes[2].set_ylabel("PSNR vs styled render (dB)")
    axes[2].legend()
    axes[2].set_title("held-out clips")
    fig.tight_layout()
    fig.savefig(folder / "training.png", dpi=80)
    plt.close(fig)

    rows = []
    for flat_image, outputs, targets in zip(samples["flat"], samples["output"], samples["target"]):
        for j in range(len(styles)):
            rows.append(np.concatenate([flat_image, outputs[j], targets[j]], axis=1))
    if rows:
        from PIL import Image

        grid = np.concatenate(rows, axis=0)
        Image.fromarray(grid).resize((grid.shape[1] // 2, grid.shape[0] // 2)).save(folder / "samples.png",
                                                                                   optimize=True)


def main(argv: list[str] | None = None) -> int:
    from rich.progress import Progress

    parser = argparse.ArgumentParser(description="Train the diffusion engine on paired city clips and measure it.")
    parser.add_argument("--train", help="npz from services.diffusion.engine.dataset")
    parser.add_argument("--val", required=True, help="held-out npz (another seed)")
    parser.add_argument("--out", required=True, help="checkpoint folder to write (or read, with --eval-only)")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--vae-steps", type=int, default=1500)
    parser.add_argument("--vae-batch", type=int, default=8)
    parser.add_argument("--vae-crop", type=int, default=64)
    parser.add_argument("--vae-lr", type=float, default=2e-3)
    parser.add_argument("--dit-steps", type=int, default=1200)
    parser.add_argument("--dit-batch", type=int, default=8)
    parser.add_argument("--dit-clip-frames", type=int, default=3)
    parser.add_argument("--dit-lr", type=float, default=1e-3)
    parser.add_argument("--min-strength", type=float, default=0.3, help="lowest s the DiT trains on")
    parser.add_argument("--max-strength", type=float, default=1.0, help="highest s the DiT trains on")
    parser.add_argument("--default-steps", type=int, default=None, help="steps the checkpoint's streams default to")
    parser.add_argument("--default-strength", type=float, default=None, help="base strength streams default to")
    parser.add_argument("--no-detail-transfer", action="store_true",
                        help="do not add the input's high frequencies back (sampler.add_detail)")
    parser.add_argument("--init", help="checkpoint folder to start both models from (continued training)")
    parser.add_argument("--eval-clips", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-only", action="store_true")
    args = parser.parse_args(argv)
    folder = Path(args.out)
    generator = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    val_flat, val_styled, styles = load_pairs(args.val)
    val_flat, val_styled = val_flat[:args.eval_clips], val_styled[:args.eval_clips]
    vae_losses: list[float] = []
    dit_losses: list[float] = []
    record: dict = {}
    started = time.monotonic()
    with Progress() as progress:
        if not args.eval_only:
            if not args.train:
                parser.error("--train is required unless --eval-only")
            flat, styled, train_styles = load_pairs(args.train)
            if train_styles != styles:
                parser.error(f"train and val styles differ: {train_styles} vs {styles}")
            config = preset(args.preset).replace(detail_transfer=not args.no_detail_transfer)
            if args.default_steps or args.default_strength:
                config = config.replace(steps=args.default_steps or config.steps,
                                        strength=args.default_strength or config.strength)
            vae = VAE(config)
            init_model = None
            if args.init:
                init_model, init_vae, _ = load_checkpoint(args.init)
                vae.load_state_dict(init_vae.state_dict())
            vae_losses = train_vae(vae, flat, styled, args.vae_steps, args.vae_batch, args.vae_crop, args.vae_lr,
                                   generator, progress)
            vae.eval()
            with torch.no_grad():
                pick = np.random.default_rng(args.seed).choice(flat.shape[0], size=min(32, flat.shape[0]),
                                                               replace=False)
                raw = torch.cat([vae.encode_distribution(rgb_to_tensor(list(flat[c]) + list(styled[c, :, 0])))[0]
                                 for c in pick])
            shift, scale = latent_stats(raw)
            config = config.replace(latent_shift=shift, latent_scale=scale)
            scaled_vae = VAE(config)
            scaled_vae.load_state_dict(vae.state_dict())
            vae = scaled_vae.eval()
            event(log, "vae trained", steps=args.vae_steps, latent_shift=shift, latent_scale=scale)
            z_flat = encode_all(vae, flat)
            z_styled = encode_all(vae, styled)
            model = CausalDiT(config)
            if init_model is not None:
                model.load_state_dict(init_model.state_dict())
            dit_losses = train_dit(model, z_flat, z_styled, args.dit_steps, args.dit_batch, args.dit_clip_frames,
                                   args.dit_lr, BridgeSampling(args.min_strength, args.max_strength), generator,
                                   progress)
            save_checkpoint(model.eval(), vae, folder)
            record["training"] = {
                "preset": args.preset, "train_clips": int(flat.shape[0]), "clip_frames": int(flat.shape[1]),
                "frame_size": int(flat.shape[2]), "styles": styles, "vae_steps": args.vae_steps,
                "vae_batch": args.vae_batch, "vae_crop": args.vae_crop, "dit_steps": args.dit_steps,
                "dit_batch": args.dit_batch, "dit_clip_frames": args.dit_clip_frames, "seed": args.seed,
                "strength_range": [args.min_strength, args.max_strength],
                "final_vae_loss": round(float(np.mean(vae_losses[-50:])), 5),
                "final_dit_loss": round(float(np.mean(dit_losses[-50:])), 5),
                "train_seconds": round(time.monotonic() - started, 1),
            }
            if args.init and (Path(args.init) / "quality.json").exists():  # continued training: keep the history
                record["training"]["continued_from"] = json.loads((Path(args.init) / "quality.json").read_text()).get(
                    "training")
            previous_losses = Path(args.init or "") / "losses.json"
            if args.init and previous_losses.exists():
                before = json.loads(previous_losses.read_text())
                vae_losses, dit_losses = before["vae"] + vae_losses, before["dit"] + dit_losses
            (folder / "losses.json").write_text(json.dumps({"vae": [round(x, 5) for x in vae_losses],
                                                            "dit": [round(x, 5) for x in dit_losses]}))
        model, vae, _ = load_checkpoint(folder)  # exactly what the service loads (fp16 weights back to fp32)
        summary, samples = evaluate(StreamEngine(model, vae), val_flat, val_styled, styles, progress)
    previous = folder / "quality.json"
    if args.eval_only and previous.exists():
        record["training"] = json.loads(previous.read_text()).get("training")
        losses_file = folder / "losses.json"
        if losses_file.exists():
            losses = json.loads(losses_file.read_text())
            vae_losses, dit_losses = losses["vae"], losses["dit"]
    record["evaluation"] = {"val_clips": int(val_flat.shape[0]), "clip_frames": int(val_flat.shape[1]),
                            "steps": model.config.steps, "strength": model.config.strength,
                            "motion_aware": True, "scores": summary}
    previous.write_text(json.dumps(record, indent=2) + "\n")
    plot(folder, vae_losses, dit_losses, summary, samples, styles)
    columns = [n for n in ("output", "output_latent_only", "input", "vae_reconstruction") if n in summary["mean"]]
    print(f"PSNR dB / SSIM against the styled renders, {val_flat.shape[0]} held-out clips x {val_flat.shape[1]} frames")
    print(f"{'style':<14}" + "".join(f"{name:>22}" for name in columns))
    for style in [*styles, "mean"]:
        row = summary[style]
        print(f"{style:<14}" + "".join(f"{row[n]['psnr']:>14.2f} / {row[n]['ssim']:.3f}" for n in columns))
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

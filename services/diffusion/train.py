"""Train the diffusion engine on paired city clips, measure it, and write a checkpoint the service loads.

    python -m services.diffusion.engine.dataset --clips 240 --clip-frames 8 --out data/pairs_train.npz
    python -m services.diffusion.engine.dataset --clips 16 --clip-frames 8 --seed 12345 --out data/pairs_val.npz
    sd-diffusion-train --train data/pairs_train.npz --val data/pairs_val.npz --out services/diffusion/checkpoints/tiny-city

Stages (objectives in engine/training.py):
  1. VAE: autoencoder on random crops of flat and styled frames.
  2. Latent statistics: shift/scale so the DiT sees unit-variance latents (stored in the checkpoint's config).
  3. DiT: every clip encoded once; the bridge objective, teacher-forced through the rolling KV cache.
  4. Optional (--fast-encoder K / --fast-decoder K): the fast VAE of the CPU path (train_fast_vae), against the
     frozen full VAE; vae_fast.safetensors. --fast-only trains it for the checkpoint already in --out.
  5. Checkpoint (fp16 safetensors), then it is loaded back exactly as the service loads it and streamed over the
     held-out clips: PSNR/SSIM of the repainted frames against the styled renders, next to references — the flat
     input itself (what showing the raw render scores), the VAE's reconstruction of the target (the best the latent
     path alone can do), with detail transfer on, the output without it, and with a fast VAE, the output of the
     full one. quality.json, training.png and samples.png land in the checkpoint folder.
`--eval-only` runs step 5 on an existing checkpoint.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from scalediffusion.platform.logs import event, get_logger
from services.diffusion.engine.checkpoint import load_checkpoint, save_checkpoint, save_fast_vae, ships_fast_vae
from services.diffusion.engine.config import preset
from services.diffusion.engine.dit import CausalDiT
from services.diffusion.engine.quality import psnr, ssim
from services.diffusion.engine.sampler import StreamEngine, gaussian_blur
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


def _init_from(part: torch.nn.Module, full_part: torch.nn.Module, stage_offset: int, skip: tuple[str, ...] = ()
               ) -> None:
    """Start a fast part from the full one's layers that do the same job: stage j of the part is stage
    j + stage_offset of the full one; layers named in skip (or of another shape) start fresh."""
    full = full_part.state_dict()
    own = part.state_dict()
    picked = {}
    for key, value in own.items():
        source = key
        if key.startswith("stages."):
            index, rest = key.split(".", 2)[1:]
            source = f"stages.{int(index) + stage_offset}.{rest}"
        if not key.startswith(skip) and source in full and full[source].shape == value.shape:
            picked[key] = full[source]
    part.load_state_dict(picked, strict=False)


def train_fast_vae(full: VAE, shipped: VAE | None, flat: np.ndarray, styled: np.ndarray, encoder_downsample: int,
                   decoder_downsample: int, steps: int, batch: int, crop: int, lr: float, generator: torch.Generator,
                   progress) -> tuple[VAE, dict[str, list[float]]]:
    """The fast VAE for a trained one whose checkpoint takes the detail from a blur (VAE(config, fast=True)). Parts
    asked for (downsample > 0) are trained against the full VAE on random crops: the encoder to give the full
    encoder's latents (MSE in model units) from the frame averaged down, the decoder to draw the blur of the image
    from the full encoder's latents (the part of the output the detail transfer does not supply). Each starts from
    the full part's matching layers; a part not asked for is taken from `shipped` (the checkpoint's fast VAE) if
    that has one. The full VAE, and so the DiT's latent space, is never changed. Returns the fast VAE and losses."""
    config = full.config
    sigma = config.detail_blur_sigma
    if not (config.detail_transfer and sigma > 0):
        raise ValueError("the fast VAE's decoder draws the low frequencies for the detail from a blur; this "
                         "checkpoint has detail_transfer off or detail_blur_sigma 0")
    if not (encoder_downsample or decoder_downsample):
        raise ValueError("nothing to train: give an encoder or a decoder downsample")
    kept = shipped.config if shipped is not None else config
    config = config.replace(fast_encoder_downsample=encoder_downsample or kept.fast_encoder_downsample,
                            fast_decoder_downsample=decoder_downsample or kept.fast_decoder_downsample)
    fast = VAE(config, fast=True)
    trained: dict[str, torch.nn.Module] = {}
    if encoder_downsample:
        _init_from(fast.encoder, full.encoder, stage_offset=encoder_downsample.bit_length() - 1)
        trained["encoder"] = fast.encoder
    else:  # the shipped fast encoder, or the full one
        keep = shipped if shipped is not None and shipped.encoder.input_downsample > 1 else full
        fast.encoder.load_state_dict(keep.encoder.state_dict())
    if decoder_downsample:
        _init_from(fast.decoder, full.decoder, stage_offset=0, skip=("norm_out", "conv_out"))
        trained["decoder"] = fast.decoder
    else:
        keep = shipped if shipped is not None and shipped.decoder.output_downsample > 1 else full
        fast.decoder.load_state_dict(keep.decoder.state_dict())
    for p in fast.parameters():
        p.requires_grad_(False)
    groups = []
    for name, part in trained.items():
        part.requires_grad_(True)
        part.train()
        groups.append({"params": list(part.parameters()), "peak": lr if name == "decoder" else lr / 2})
    optimiser = torch.optim.AdamW(groups, lr=lr, weight_decay=0.0)
    rng = np.random.default_rng(int(torch.randint(1 << 30, (1,), generator=generator)))
    clips, styles, frames, size = styled.shape[0], styled.shape[1], styled.shape[2], styled.shape[3]
    multiple = config.vae_downsample
    losses: dict[str, list[float]] = {name: [] for name in trained}
    task = progress.add_task("fast VAE", total=steps)
    for step in range(steps):
        crops = []
        for _ in range(batch):
            c, k, which = rng.integers(clips), rng.integers(frames), rng.integers(styles + 1)
            image = flat[c, k] if which == styles else styled[c, which, k]
            y, x = rng.integers(0, size - crop + 1, 2) // multiple * multiple  # the VAE's grid, as in a frame
            crops.append(np.ascontiguousarray(image[y:y + crop, x:x + crop]))
        images = rgb_to_tensor(crops)
        with torch.no_grad():
            latents, _ = full.encoder(images, None)
        for group in optimiser.param_groups:
            group["lr"] = cosine_lr(step, steps, group["peak"], warmup=min(100, steps // 10 + 1))
        loss = torch.zeros(())
        if "encoder" in trained:
            mean, _ = fast.encoder(images, None)
            part_loss = F.mse_loss(mean * config.latent_scale, latents * config.latent_scale)
            losses["encoder"].append(float(part_loss.detach()))
            loss = loss + part_loss
        if "decoder" in trained:
            out = fast.decoder(latents, None)
            target = gaussian_blur(images, sigma)
            part_loss = F.l1_loss(out, target) + F.mse_loss(out, target)
            losses["decoder"].append(float(part_loss.detach()))
            loss = loss + part_loss
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        for part in trained.values():
            torch.nn.utils.clip_grad_norm_(part.parameters(), 1.0)
        optimiser.step()
        progress.update(task, advance=1, description="fast VAE " + " ".join(
            f"{name} {values[-1]:.4f}" for name, values in losses.items()))
    return fast.eval(), losses


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
             keep_samples: int = 2, full_vae: StreamEngine | None = None) -> tuple[dict, dict]:
    """Stream every held-out clip in every style through the engine (fresh stream per clip and style, the
    checkpoint's defaults, as the service runs it); PSNR/SSIM against the styled render of:
      output                the engine's frames
      output_latent_only    the same without detail transfer (only when the checkpoint uses it): what the latent
                            path alone gives
      output_full_vae       (when full_vae is given: the same checkpoint with its full VAE, engine running the
                            fast one) the frames the full VAE gives
      input                 the flat render itself (what showing the raw render scores)
      vae_reconstruction    the target through the (full) VAE: the best the latent path alone could do"""
    plain = None
    if engine.config.detail_transfer and full_vae is None:
        plain = StreamEngine(engine.model, engine.vae)
        plain.config = engine.config.replace(detail_transfer=False)
    names = (("output", "input", "vae_reconstruction") + (("output_latent_only",) if plain else ())
             + (("output_full_vae",) if full_vae else ()))
    reference_vae = (full_vae or engine).vae
    scores: dict[str, dict[str, dict[str, list[float]]]] = {
        style: {n: {"psnr": [], "ssim": []} for n in names} for style in styles}
    # "flat": one frame per sample; "output" and "target": one frame per style
    samples: dict[str, list[np.ndarray | list[np.ndarray]]] = {"flat": [], "output": [], "target": []}
    clips, frames = flat.shape[:2]
    task = progress.add_task("evaluating", total=clips) if progress else None
    for c in range(clips):
        streams = [engine.new_stream(style=j, seed=c) for j in range(len(styles))]
        plain_streams = [plain.new_stream(style=j, seed=c) for j in range(len(styles))] if plain else []
        full_streams = [full_vae.new_stream(style=j, seed=c) for j in range(len(styles))] if full_vae else []
        for k in range(frames):
            outputs = engine.transform([(stream, flat[c, k]) for stream in streams])
            latent_only = plain.transform([(stream, flat[c, k]) for stream in plain_streams]) if plain else []
            full = full_vae.transform([(stream, flat[c, k]) for stream in full_streams]) if full_vae else []
            targets = [styled[c, j, k] for j in range(len(styles))]
            recon = tensor_to_rgb(reference_vae.decode(reference_vae.encode(rgb_to_tensor(targets))))
            for j, style in enumerate(styles):
                candidates = [("output", outputs[j][0]), ("input", flat[c, k]), ("vae_reconstruction", recon[j])]
                if plain:
                    candidates.append(("output_latent_only", latent_only[j][0]))
                if full_vae:
                    candidates.append(("output_full_vae", full[j][0]))
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
    bar_width = 0.8 / len(bars)
    for i, (name, colour) in enumerate(bars):
        axes[2].bar(x + (i - (len(bars) - 1) / 2) * bar_width, [summary[s][name]["psnr"] for s in styles], bar_width,
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
    parser.add_argument("--fast-encoder", type=int, default=0, metavar="K",
                        help="also train the fast VAE's encoder: reads the frame K times smaller (2 or 4); 0 = none")
    parser.add_argument("--fast-decoder", type=int, default=0, metavar="K",
                        help="also train the fast VAE's decoder: stops K times short of full resolution (2 or 4; "
                             "needs the detail from a blur); 0 = none")
    parser.add_argument("--fast-only", action="store_true",
                        help="train only the fast VAE's parts asked for, for the checkpoint already in --out "
                             "(needs --train); a fast part it ships and not asked for is kept")
    parser.add_argument("--fast-steps", type=int, default=1500)
    parser.add_argument("--fast-batch", type=int, default=8)
    parser.add_argument("--fast-crop", type=int, default=96)
    parser.add_argument("--fast-lr", type=float, default=1e-3, help="the decoder's; the encoder's is half")
    args = parser.parse_args(argv)
    fast_asked = bool(args.fast_encoder or args.fast_decoder)
    if args.fast_only and not fast_asked:
        parser.error("--fast-only needs --fast-encoder K and/or --fast-decoder K")
    if args.eval_only and fast_asked:
        parser.error("--eval-only measures a checkpoint as it is; drop --fast-encoder / --fast-decoder")
    folder = Path(args.out)
    generator = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    val_flat, val_styled, styles = load_pairs(args.val)
    val_flat, val_styled = val_flat[:args.eval_clips], val_styled[:args.eval_clips]
    vae_losses: list[float] = []
    dit_losses: list[float] = []
    record: dict = {}
    started = time.monotonic()
    previous = folder / "quality.json"
    with Progress() as progress:
        if not args.eval_only:
            if not args.train:
                parser.error("--train is required unless --eval-only")
            flat, styled, train_styles = load_pairs(args.train)
            if train_styles != styles:
                parser.error(f"train and val styles differ: {train_styles} vs {styles}")
        if not args.eval_only and not args.fast_only:
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
        if fast_asked:
            model, vae, _ = load_checkpoint(folder, vae_variant="full")
            # With --fast-only, a fast part the checkpoint already ships and that is not retrained now is kept.
            keep = args.fast_only and ships_fast_vae(folder, model.config)
            shipped = load_checkpoint(folder, vae_variant="fast")[1] if keep else None
            fast, fast_losses = train_fast_vae(vae, shipped, flat, styled, args.fast_encoder, args.fast_decoder,
                                               args.fast_steps, args.fast_batch, args.fast_crop, args.fast_lr,
                                               generator, progress)
            model.config = vae.config = fast.config  # config.json now names the fast VAE's parts
            save_checkpoint(model, vae, folder)
            save_fast_vae(fast, folder)
            kept = json.loads(previous.read_text()) if args.fast_only and previous.exists() else {}
            if args.fast_only:
                record["training"] = kept.get("training")
            fast_record = dict(kept.get("fast_vae") or {})
            for name, values in fast_losses.items():
                fast_record[name] = {
                    "downsample": args.fast_encoder if name == "encoder" else args.fast_decoder,
                    "steps": args.fast_steps, "batch": args.fast_batch, "crop": args.fast_crop,
                    "objective": ("MSE to the full encoder's latents" if name == "encoder"
                                  else f"L1 + MSE to the Gaussian blur (sigma {fast.config.detail_blur_sigma})"),
                    "final_loss": round(float(np.mean(values[-50:])), 5),
                    "train_seconds": round(time.monotonic() - started, 1)}  # parts trained together share it
            record["fast_vae"] = fast_record
            event(log, "fast VAE trained", encoder=args.fast_encoder, decoder=args.fast_decoder, steps=args.fast_steps)
        # exactly what the service loads (fp16 weights back to fp32; the fast decoder where the service picks it)
        model, vae, _ = load_checkpoint(folder, vae_variant="auto")
        full = None
        if vae.is_fast:
            full_model, full_vae, _ = load_checkpoint(folder, vae_variant="full")
            full = StreamEngine(full_model, full_vae)
        summary, samples = evaluate(StreamEngine(model, vae), val_flat, val_styled, styles, progress, full_vae=full)
    if args.eval_only and previous.exists():
        kept = json.loads(previous.read_text())
        record["training"] = kept.get("training")
        if "fast_vae" in kept:
            record["fast_vae"] = kept["fast_vae"]
    if (args.eval_only or args.fast_only) and (folder / "losses.json").exists():
        losses = json.loads((folder / "losses.json").read_text())
        vae_losses, dit_losses = losses["vae"], losses["dit"]
    record["evaluation"] = {"val_clips": int(val_flat.shape[0]), "clip_frames": int(val_flat.shape[1]),
                            "steps": model.config.steps, "strength": model.config.strength,
                            "motion_aware": True, "scores": summary}
    previous.write_text(json.dumps(record, indent=2) + "\n")
    plot(folder, vae_losses, dit_losses, summary, samples, styles)
    columns = [n for n in ("output", "output_full_vae", "output_latent_only", "input", "vae_reconstruction")
               if n in summary["mean"]]
    print(f"PSNR dB / SSIM against the styled renders, {val_flat.shape[0]} held-out clips x {val_flat.shape[1]} frames")
    print(f"{'style':<14}" + "".join(f"{name:>22}" for name in columns))
    for style in [*styles, "mean"]:
        row = summary[style]
        print(f"{style:<14}" + "".join(f"{row[n]['psnr']:>14.2f} / {row[n]['ssim']:.3f}" for n in columns))
    print(f"wrote {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""A whole engine checkpoint: the DiT as a Wan2.1-style folder (weights.py) plus the VAE next to it.

    <folder>/config.json                           Wan's fields + our full DiffusionConfig (VAE latent stats included)
    <folder>/diffusion_pytorch_model.safetensors   the DiT, Wan names
    <folder>/vae.safetensors                       the VAE, our names
    <folder>/vae_fast.safetensors                  optional: the fast VAE's encoder and/or decoder (config.fast_*), our names
    <folder>/quality.json, *.png                   what the training script measured (optional, for people)

The shipped CPU default lives in services/diffusion/checkpoints/tiny-city (made by services/diffusion/train.py);
SD_DIFFUSION_CHECKPOINT points the service at another folder.
"""

from __future__ import annotations

from pathlib import Path

import torch

from services.diffusion.engine.dit import CausalDiT
from services.diffusion.engine.sampler import StreamEngine
from services.diffusion.engine.vae import VAE
from services.diffusion.engine.weights import CheckpointError, LoadReport, load_wan_checkpoint, save_wan_style

VAE_FILE = "vae.safetensors"
FAST_VAE_FILE = "vae_fast.safetensors"
VAE_VARIANTS = ("auto", "full", "fast")
DEFAULT_CHECKPOINT = Path(__file__).resolve().parents[1] / "checkpoints" / "tiny-city"


def save_checkpoint(model: CausalDiT, vae: VAE, folder: str | Path, dtype: torch.dtype | None = torch.float16
                    ) -> Path:
    """Write DiT and VAE (stored in `dtype`, fp16 by default: half the bytes, loaded back as fp32)."""
    from safetensors.torch import save_file

    if model.config != vae.config:
        raise ValueError("the DiT and the VAE were built from different configs; a checkpoint holds one")
    folder = save_wan_style(model, folder, dtype=dtype)
    tensors = {k: v.detach().to(dtype or v.dtype).contiguous().cpu() for k, v in vae.state_dict().items()}
    save_file(tensors, str(folder / VAE_FILE), metadata={"format": "pt"})
    return folder


def save_fast_vae(vae: VAE, folder: str | Path, dtype: torch.dtype | None = torch.float16) -> Path:
    """Write the fast parts of a fast VAE (VAE(config, fast=True)) as the checkpoint's fast VAE; config.json must
    carry their downsample factors (save_checkpoint with the same config)."""
    from safetensors.torch import save_file

    parts = [name for name, fast in (("encoder.", vae.encoder.input_downsample > 1),
                                     ("decoder.", vae.decoder.output_downsample > 1)) if fast]
    if not parts:
        raise ValueError("this VAE has no fast part; build it with VAE(config, fast=True)")
    path = Path(folder) / FAST_VAE_FILE
    tensors = {k: v.detach().to(dtype or v.dtype).contiguous().cpu() for k, v in vae.state_dict().items()
               if k.startswith(tuple(parts))}
    save_file(tensors, str(path), metadata={"format": "pt", "parts": ",".join(p.rstrip(".") for p in parts)})
    return path


def ships_fast_vae(folder: str | Path, config) -> bool:
    """Whether a checkpoint folder carries a fast VAE: the file and at least one fast part in its config."""
    return bool(config.fast_encoder_downsample or config.fast_decoder_downsample) and (
        Path(folder) / FAST_VAE_FILE).exists()


def resolve_vae_variant(folder: str | Path, config, variant: str) -> str:
    """"full" or "fast". auto: the fast VAE when the checkpoint ships one and takes the output's detail from a blur
    of the input (what its decoder is trained for: it draws the low frequencies only)."""
    if variant not in VAE_VARIANTS:
        raise ValueError(f"the VAE variant must be one of {', '.join(VAE_VARIANTS)}, got {variant!r}")
    shipped = ships_fast_vae(folder, config)
    if variant == "fast" and not shipped:
        raise CheckpointError(f"{folder} ships no fast VAE ({FAST_VAE_FILE} and config fast_encoder_downsample / "
                              f"fast_decoder_downsample); use the full one")
    if variant == "auto":
        return "fast" if shipped and config.detail_transfer and config.detail_blur_sigma > 0 else "full"
    return variant


def load_checkpoint(folder: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32,
                    vae_variant: str = "full") -> tuple[CausalDiT, VAE, LoadReport]:
    """DiT and VAE of a checkpoint folder; CheckpointError naming what is missing or does not fit. vae_variant:
    "full", "fast" (the checkpoint's fast encoder and decoder where it ships them) or "auto" (resolve_vae_variant)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist")
    model, report = load_wan_checkpoint(folder, device=device, dtype=dtype)
    vae_path = folder / VAE_FILE
    if not vae_path.exists():
        raise CheckpointError(f"{vae_path} not found: an engine checkpoint carries its VAE next to the DiT")
    fast = resolve_vae_variant(folder, model.config, vae_variant) == "fast"
    vae = VAE(model.config, fast=fast)
    state = load_file(str(vae_path))
    if fast:
        fast_state = load_file(str(folder / FAST_VAE_FILE))
        replaced = [part for part, k in (("encoder.", vae.encoder.input_downsample),
                                         ("decoder.", vae.decoder.output_downsample)) if k > 1]
        state = {k: v for k, v in state.items() if not k.startswith(tuple(replaced))} | fast_state
    own = vae.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshapen = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or misshapen:
        names = f"{vae_path}" + (f" + {FAST_VAE_FILE}" if fast else "")
        raise CheckpointError(f"{names} does not fit the config's VAE: missing {missing}, unexpected "
                              f"{unexpected}, misshapen {misshapen}")
    vae.load_state_dict({k: v.float() for k, v in state.items()})
    return model, vae.to(device=device, dtype=dtype).eval(), report


VAE_RUNTIMES = ("auto", "torch", "onnxruntime")


def load_engine(folder: str | Path | None = None, device: torch.device | str = "cpu", vae_runtime: str = "torch",
                vae_variant: str = "auto") -> StreamEngine:
    """The StreamEngine of a checkpoint folder (default: the shipped tiny-city model).

    vae_variant: "auto" (the fast VAE when the checkpoint ships one for its blur detail), "full" or "fast"
    (resolve_vae_variant).

    vae_runtime: "torch" runs the VAE module; "onnxruntime" exports it at load and runs it on onnxruntime's CPU
    provider (engine/ort_vae.py: the CPU path's faster VAE); "auto" picks onnxruntime on a CPU for a frame-by-frame
    VAE, torch otherwise."""
    if vae_runtime not in VAE_RUNTIMES:
        raise ValueError(f"vae_runtime must be one of {', '.join(VAE_RUNTIMES)}, got {vae_runtime!r}")
    model, vae, _ = load_checkpoint(folder or DEFAULT_CHECKPOINT, device=device, vae_variant=vae_variant)
    on_cpu = torch.device(device).type == "cpu"
    if vae_runtime == "auto":
        vae_runtime = "onnxruntime" if on_cpu and not vae.config.vae_temporal else "torch"
    if vae_runtime == "onnxruntime":
        if not on_cpu:
            raise ValueError("vae_runtime onnxruntime is the CPU path; on a GPU the VAE runs on torch")
        from services.diffusion.engine.ort_vae import OrtVAE

        return StreamEngine(model, vae, vae_runtime=OrtVAE(vae))
    return StreamEngine(model, vae)

"""A whole engine checkpoint: the DiT as a Wan2.1-style folder (weights.py) plus the VAE next to it.

    <folder>/config.json                           Wan's fields + our full DiffusionConfig (VAE latent stats included)
    <folder>/diffusion_pytorch_model.safetensors   the DiT, Wan names
    <folder>/vae.safetensors                       the VAE, our names
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


def load_checkpoint(folder: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
                    ) -> tuple[CausalDiT, VAE, LoadReport]:
    """DiT and VAE of a checkpoint folder; CheckpointError naming what is missing or does not fit."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder {folder} does not exist")
    model, report = load_wan_checkpoint(folder, device=device, dtype=dtype)
    vae_path = folder / VAE_FILE
    if not vae_path.exists():
        raise CheckpointError(f"{vae_path} not found: an engine checkpoint carries its VAE next to the DiT")
    vae = VAE(model.config)
    state = load_file(str(vae_path))
    own = vae.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshapen = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or misshapen:
        raise CheckpointError(f"{vae_path} does not fit the config's VAE: missing {missing}, unexpected "
                              f"{unexpected}, misshapen {misshapen}")
    vae.load_state_dict({k: v.float() for k, v in state.items()})
    return model, vae.to(device=device, dtype=dtype).eval(), report


VAE_RUNTIMES = ("auto", "torch", "onnxruntime")


def load_engine(folder: str | Path | None = None, device: torch.device | str = "cpu", vae_runtime: str = "torch"
                ) -> StreamEngine:
    """The StreamEngine of a checkpoint folder (default: the shipped tiny-city model).

    vae_runtime: "torch" runs the VAE module; "onnxruntime" exports it at load and runs it on onnxruntime's CPU
    provider (engine/ort_vae.py: the CPU path's faster VAE); "auto" picks onnxruntime on a CPU for a frame-by-frame
    VAE, torch otherwise."""
    if vae_runtime not in VAE_RUNTIMES:
        raise ValueError(f"vae_runtime must be one of {', '.join(VAE_RUNTIMES)}, got {vae_runtime!r}")
    model, vae, _ = load_checkpoint(folder or DEFAULT_CHECKPOINT, device=device)
    on_cpu = torch.device(device).type == "cpu"
    if vae_runtime == "auto":
        vae_runtime = "onnxruntime" if on_cpu and not vae.config.vae_temporal else "torch"
    if vae_runtime == "onnxruntime":
        if not on_cpu:
            raise ValueError("vae_runtime onnxruntime is the CPU path; on a GPU the VAE runs on torch")
        from services.diffusion.engine.ort_vae import OrtVAE

        return StreamEngine(model, vae, vae_runtime=OrtVAE(vae))
    return StreamEngine(model, vae)

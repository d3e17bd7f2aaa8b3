"""The VAE's encoder and decoder on onnxruntime: the CPU path's frame time is mostly these two convolution stacks.

Measured on this 2-core machine (bench/diffusion_bench.py, "VAE runtime" table): onnxruntime's CPU provider runs
this VAE's convolutions and GroupNorms markedly faster than eager PyTorch at the negotiated stream sizes, and the
outputs agree to float rounding (PARITY_TOLERANCE). The graphs are exported at load time from the VAE's own weights
(a few seconds), never downloaded or shipped twice; height and width are dynamic, the batch too.

Only the frame-by-frame VAE (config.vae_temporal False) is exported: the temporal one carries a per-stream feature
cache that stays on the PyTorch path.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np
import torch
from torch import nn

from services.diffusion.engine.vae import VAE

OPSET = 18
PARITY_TOLERANCE = 1e-3  # max abs difference on images in -1..1 / model latents, fp32


class _EncodeMean(nn.Module):
    """Images [B, 3, H, W] in -1..1 -> model latents (the posterior mean, shifted and scaled as VAE.encode)."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.encoder, self.shift, self.scale = vae.encoder, vae.config.latent_shift, vae.config.latent_scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        mean, _ = self.encoder(images, None)
        return (mean - self.shift) * self.scale


class _Decode(nn.Module):
    """Model latents -> images, as VAE.decode."""

    def __init__(self, vae: VAE) -> None:
        super().__init__()
        self.decoder, self.shift, self.scale = vae.decoder, vae.config.latent_shift, vae.config.latent_scale

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.decoder(latents / self.scale + self.shift, None)


def _export(module: nn.Module, example: torch.Tensor, name_in: str, name_out: str) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice, once per graph
        # torch annotates f as a path only; the TorchScript exporter (dynamo=False) writes to file-like objects too
        torch.onnx.export(module.eval(), (example,), buffer,  # type: ignore[arg-type]
                          input_names=[name_in], output_names=[name_out],
                          dynamic_axes={name_in: {0: "batch", 2: "height", 3: "width"},
                                        name_out: {0: "batch", 2: "height", 3: "width"}},
                          opset_version=OPSET, dynamo=False)
    return buffer.getvalue()


class OrtVAE:
    """VAE.encode (posterior mean) and VAE.decode on onnxruntime's CPU provider; tensors in, tensors out."""

    def __init__(self, vae: VAE, threads: int | None = None) -> None:
        import onnxruntime as ort

        if vae.config.vae_temporal:
            raise ValueError("the temporal VAE keeps a per-stream cache; it runs on PyTorch")
        vae = vae.float().eval()
        down = vae.config.vae_downsample
        image = torch.zeros(1, 3, 4 * down, 4 * down)
        with torch.no_grad():
            encoder = _export(_EncodeMean(vae), image, "images", "latents")
            decoder = _export(_Decode(vae), torch.zeros(1, vae.config.latent_channels, 4, 4), "latents", "images")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads() or (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        # Its threads must not spin between calls: the DiT (PyTorch) runs in between on the same cores, and on a
        # player's machine so does the browser.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.threads = options.intra_op_num_threads
        self._encoder = ort.InferenceSession(encoder, options, providers=["CPUExecutionProvider"])
        self._decoder = ort.InferenceSession(decoder, options, providers=["CPUExecutionProvider"])

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self._run(self._encoder, "images", images)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self._run(self._decoder, "latents", latents)

    @staticmethod
    def _run(session, name: str, x: torch.Tensor) -> torch.Tensor:
        array = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(session.run(None, {name: array})[0])


def parity(vae: VAE, ort_vae: OrtVAE, height: int = 128, width: int = 224, seed: int = 0) -> tuple[float, float]:
    """(max |encode difference|, max |decode difference|) between PyTorch and onnxruntime on a random frame."""
    g = torch.Generator().manual_seed(seed)
    images = torch.rand(1, 3, height, width, generator=g) * 2 - 1
    with torch.no_grad():
        latents = vae.encode(images)
        enc = (ort_vae.encode(images) - latents).abs().max().item()
        dec = (ort_vae.decode(latents) - vae.decode(latents)).abs().max().item()
    return enc, dec

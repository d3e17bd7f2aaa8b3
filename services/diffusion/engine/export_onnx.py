"""ONNX export of ONE denoiser step, with the KV cache as tensors in and out, and its parity check on onnxruntime.

Why the cache is an input: an ONNX graph has no Python state, and the ring-buffer bookkeeping (which slot, which
frame to evict, refreshed positions) is cheap host logic that RollingKVCache already does. So the graph is the pure
function CausalDiT.forward_explicit:

  inputs   latents      float [B, F, C, h, w]            the chunk at flow time t
           t            float [B]                        flow time in [0, 1]
           style        int64 [B]                        style index
           ctx_keys     float [depth, B, heads, N_ctx, head_dim]   un-rotated, from RollingKVCache.view(ordered=False)
           ctx_values   float [depth, B, heads, N_ctx, head_dim]
           ctx_positions int64 [N_ctx / tokens_per_frame]  each context frame's refreshed temporal position
  outputs  velocity     float [B, F, C, h, w]
           chunk_keys   float [depth, B, heads, F*tokens_per_frame, head_dim]  un-rotated: append after the last step
           chunk_values float [depth, B, heads, F*tokens_per_frame, head_dim]

B and the number of context frames (0 .. sink + window) are dynamic; the chunk and latent size are fixed at export
(a TensorRT engine wants them fixed anyway). RoPE is applied inside the graph at the given positions, so the same
graph serves every cache state. OnnxDenoiser runs it against RollingKVCaches.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from services.diffusion.engine.dit import CausalDiT
from services.diffusion.engine.kv_cache import RollingKVCache

PARITY_TOLERANCE = 1e-4  # fp32
OPSET = 18
INPUT_NAMES = ["latents", "t", "style", "ctx_keys", "ctx_values", "ctx_positions"]
OUTPUT_NAMES = ["velocity", "chunk_keys", "chunk_values"]
META_CONFIG = "scalediffusion.diffusion_config"


class DenoiserStep(nn.Module):
    """CausalDiT.forward_explicit as a module with positional tensor inputs (what the exporter traces)."""

    def __init__(self, model: CausalDiT) -> None:
        super().__init__()
        self.model = model

    def forward(self, latents, t, style, ctx_keys, ctx_values, ctx_positions):
        return self.model.forward_explicit(latents, t, style, ctx_keys, ctx_values, ctx_positions)


def example_inputs(model: CausalDiT, batch: int = 2, ctx_frames: int = 2, latent_hw: tuple[int, int] | None = None,
                   seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs of the step's signature (ctx_frames context frames, positions 0..ctx_frames-1)."""
    c = model.config
    h, w = latent_hw or (c.latent_size, c.latent_size)
    tokens = (h // c.patch_size[1]) * (w // c.patch_size[2])
    g = torch.Generator().manual_seed(seed)
    kv_shape = (c.depth, batch, c.heads, ctx_frames * tokens, c.head_dim)
    return (torch.randn(batch, c.chunk_frames, c.latent_channels, h, w, generator=g),
            torch.rand(batch, generator=g),
            torch.arange(batch) % c.num_styles,
            torch.randn(kv_shape, generator=g), torch.randn(kv_shape, generator=g),
            torch.arange(ctx_frames))


def export_denoiser_step(model: CausalDiT, path: str | Path, latent_hw: tuple[int, int] | None = None,
                         max_batch: int = 64) -> Path:
    """Write the step graph (opset 18, dynamo exporter) with the config as metadata; the attention inside is the
    SDPA reference (the Triton kernel is a PyTorch-side backend and does not export)."""
    path = Path(path)
    model = model.eval()
    c = model.config
    sdpa_model = CausalDiT(c.replace(attention_backend="sdpa")).to(model.patch_embed.weight)
    sdpa_model.load_state_dict(model.state_dict())
    step = DenoiserStep(sdpa_model.eval())
    example = example_inputs(model, batch=2, ctx_frames=2, latent_hw=latent_hw)
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    ctx_frames = torch.export.Dim("ctx_frames", min=0, max=c.sink_frames + c.window_frames)
    tokens = example[3].shape[3] // 2
    dynamic = ({0: batch}, {0: batch}, {0: batch}, {1: batch, 3: tokens * ctx_frames},
               {1: batch, 3: tokens * ctx_frames}, {0: ctx_frames})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # exporter chatter
        program = torch.onnx.export(step, example, input_names=INPUT_NAMES, output_names=OUTPUT_NAMES,
                                    dynamic_shapes=dynamic, opset_version=OPSET, dynamo=True, verbose=False)
    assert program is not None, "dynamo=True always returns an ONNXProgram (None is the legacy exporter's)"
    proto = program.model_proto
    prop = proto.metadata_props.add()
    prop.key, prop.value = META_CONFIG, json.dumps(c.to_dict(), sort_keys=True)
    import onnx

    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return path


def default_providers() -> list[str]:
    """TensorRT, then CUDA, then CPU: whichever this onnxruntime build offers."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    wanted = ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]
    return [p for p in wanted if p in available]


class OnnxDenoiser:
    """Runs an exported step against per-layer RollingKVCaches (the host keeps the ring buffers)."""

    def __init__(self, path: str | Path, providers: list[str] | None = None) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(path), providers=providers or default_providers())

    def run(self, latents: np.ndarray, t: np.ndarray, style: np.ndarray, ctx_keys: np.ndarray,
            ctx_values: np.ndarray, ctx_positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        feeds = dict(zip(INPUT_NAMES, (latents, t, style, ctx_keys, ctx_values, ctx_positions)))
        return tuple(self.session.run(OUTPUT_NAMES, feeds))

    def step(self, latents: torch.Tensor, t: torch.Tensor, style: torch.Tensor, caches: list[RollingKVCache],
             write_cache: bool = False) -> torch.Tensor:
        """The same contract as CausalDiT.forward_chunk, through onnxruntime."""
        views = [cache.view(ordered=False) for cache in caches]
        ctx_keys = torch.stack([k for k, _, _ in views]).cpu().numpy()
        ctx_values = torch.stack([v for _, v, _ in views]).cpu().numpy()
        positions = views[0][2].cpu().numpy().astype(np.int64)
        velocity, keys, values = self.run(latents.cpu().numpy(), t.cpu().numpy().astype(np.float32),
                                          style.cpu().numpy().astype(np.int64), ctx_keys, ctx_values, positions)
        if write_cache:
            for layer, cache in enumerate(caches):
                cache.append(torch.from_numpy(keys[layer]).to(cache.keys),
                             torch.from_numpy(values[layer]).to(cache.values))
        return torch.from_numpy(velocity).to(latents)


def parity_max_abs_diff(model: CausalDiT, onnx_path: str | Path, batch: int = 3,
                        ctx_frame_counts: tuple[int, ...] = (0, 1, 3), seed: int = 1) -> float:
    """Largest |PyTorch - onnxruntime (CPU)| over all three outputs, for several context lengths and a batch size
    other than the one exported with."""
    model = model.eval()
    runner = OnnxDenoiser(onnx_path, providers=["CPUExecutionProvider"])
    worst = 0.0
    for n_ctx in ctx_frame_counts:
        inputs = example_inputs(model, batch=batch, ctx_frames=n_ctx, seed=seed + n_ctx)
        inputs = (*inputs[:5], torch.randperm(n_ctx))  # positions in slot order, as view(ordered=False) gives
        with torch.no_grad():
            expected = model.forward_explicit(*inputs)
        got = runner.run(*(x.numpy() for x in inputs))
        worst = max(worst, *(float(np.abs(g - e.numpy()).max()) for g, e in zip(got, expected)))
    return worst

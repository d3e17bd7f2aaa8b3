"""Wan2.1-style checkpoints: a folder with `config.json` and safetensors weights, mapped onto CausalDiT.

Why: the path to a stronger model than the one trained here is a distilled causal Wan2.1-T2V-1.3B (as CausVid,
Self-Forcing and StreamDiffusionV2 do), whose checkpoints use Wan's module names. CausalDiT has Wan's transformer
layout under its own names, so loading is a key mapping plus shape checks; `save_wan_style` writes the same format so
the loader is tested on small checkpoints made here (no downloads).

Folder layout (as Wan2.1 ships it): config.json with Wan's fields (dim, ffn_dim, freq_dim, in_dim, out_dim,
num_heads, num_layers, eps, model_type, optional patch_size / text_dim / qk_norm) and either
diffusion_pytorch_model.safetensors or shards listed in diffusion_pytorch_model.safetensors.index.json ("weight_map").
We add a "scalediffusion" block to config.json with our full DiffusionConfig (streaming settings, VAE); a real Wan
folder lacks it and gets our settings from a base preset.

Key mapping (Wan -> ours; N = block index):
  patch_embedding                   patch_embed                 (Conv3d, kernel = patch_size)
  time_embedding.0 / .2             time_embed.fc1 / .fc2
  time_projection.1                 time_modulation
  text_embedding.0 / .2             style_embed.vector_fc1 / .vector_fc2   (applied to a pooled vector, see below)
  blocks.N.self_attn.{q,k,v,o}      blocks.N.attn.{to_q,to_k,to_v,to_out}
  blocks.N.self_attn.norm_{q,k}     blocks.N.attn.{q_norm,k_norm}
  blocks.N.ffn.0 / .2               blocks.N.mlp.fc1 / .fc2
  blocks.N.modulation               blocks.N.modulation
  head.head / head.modulation       final.linear / final.modulation
  style_embedding (ours only)       style_embed.table           absent in a real Wan folder: zero (no style offset)
Ignored, and listed in the report: Wan's text cross-attention (blocks.N.cross_attn.*, blocks.N.norm3.*) and the
image encoder projection (img_emb.*): our DiT conditions on style through adaLN instead. A Wan checkpoint loaded here
therefore loses its text conditioning and is a starting point for distillation/fine-tuning, not a drop-in sampler;
text_embedding is kept because it is the natural init of our external style-vector MLP.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from services.diffusion.engine.config import DiffusionConfig, preset
from services.diffusion.engine.dit import CausalDiT

WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
INDEX_FILE = "diffusion_pytorch_model.safetensors.index.json"
CONFIG_FILE = "config.json"
OUR_CONFIG_KEY = "scalediffusion"

# (Wan pattern, our pattern); {n} is a block index.
_TOP_LEVEL = [
    ("patch_embedding", "patch_embed"),
    ("time_embedding.0", "time_embed.fc1"),
    ("time_embedding.2", "time_embed.fc2"),
    ("time_projection.1", "time_modulation"),
    ("text_embedding.0", "style_embed.vector_fc1"),
    ("text_embedding.2", "style_embed.vector_fc2"),
    ("head.head", "final.linear"),
    ("head.modulation", "final.modulation"),
    ("style_embedding", "style_embed.table"),
]
_PER_BLOCK = [
    ("self_attn.q", "attn.to_q"),
    ("self_attn.k", "attn.to_k"),
    ("self_attn.v", "attn.to_v"),
    ("self_attn.o", "attn.to_out"),
    ("self_attn.norm_q", "attn.q_norm"),
    ("self_attn.norm_k", "attn.k_norm"),
    ("ffn.0", "mlp.fc1"),
    ("ffn.2", "mlp.fc2"),
    ("modulation", "modulation"),
]
# Wan modules we do not have (see the module docstring); their weights are reported, not loaded.
WAN_UNUSED = re.compile(r"^(blocks\.\d+\.(cross_attn|norm3)\.|img_emb\.)")
# Ours that a genuine Wan checkpoint cannot have; zero-initialised when absent.
OURS_OPTIONAL = ("style_embed.table.weight",)


class CheckpointError(ValueError):
    """A checkpoint that does not fit the model: the message names every missing, unexpected or misshapen key."""


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)  # our keys filled from the checkpoint
    ignored: list[str] = field(default_factory=list)  # Wan keys of modules we do not have
    zero_initialised: list[str] = field(default_factory=list)  # our optional keys the checkpoint lacked


def _split_param(key: str) -> tuple[str, str]:
    module, _, param = key.rpartition(".")
    return module, param


def wan_key_map(model: CausalDiT) -> dict[str, str]:
    """{Wan name: our name} for every parameter of the model."""
    return {ours_to_wan(key): key for key in model.state_dict()}


def ours_to_wan(key: str) -> str:
    """The Wan2.1 name of one of our parameter names (KeyError for a name outside the mapping)."""
    match = re.fullmatch(r"blocks\.(\d+)\.(.+)", key)
    if match:
        index, rest = match.groups()
        if rest == "modulation":
            return f"blocks.{index}.modulation"
        module, param = _split_param(rest)
        for wan, ours in _PER_BLOCK:
            if module == ours:
                return f"blocks.{index}.{wan}.{param}"
    if key == "final.modulation":
        return "head.modulation"
    module, param = _split_param(key)
    for wan, ours in _TOP_LEVEL:
        if module == ours:
            return f"{wan}.{param}"
    raise KeyError(f"no Wan name for parameter {key!r}")


# --- config.json ---

def wan_config(config: DiffusionConfig) -> dict:
    """Wan2.1's config.json fields for our config, plus our own block."""
    return {
        "_class_name": "WanModel", "model_type": "t2v", "dim": config.dim, "ffn_dim": config.ffn_dim,
        "freq_dim": config.freq_dim, "in_dim": config.latent_channels, "out_dim": config.latent_channels,
        "num_heads": config.heads, "num_layers": config.depth, "eps": config.eps,
        "patch_size": list(config.patch_size), "text_dim": config.text_dim, "qk_norm": config.qk_norm,
        OUR_CONFIG_KEY: config.to_dict(),
    }


def config_from_wan(data: dict, base: DiffusionConfig | None = None) -> DiffusionConfig:
    """Our config for a Wan config.json: its own "scalediffusion" block if present (checked against the Wan
    fields), else `base` (default: the wan-1.3b preset) with the transformer shape taken from the Wan fields."""
    model_type = data.get("model_type", "t2v")
    if model_type != "t2v" or data.get("in_dim", 16) != data.get("out_dim", 16):
        raise CheckpointError(f"only text-to-video Wan checkpoints (in_dim == out_dim) map onto CausalDiT; this one is "
                              f"model_type={model_type!r}, in_dim={data.get('in_dim')}, "
                              f"out_dim={data.get('out_dim')}")
    shape = {"dim": data["dim"], "ffn_dim": data["ffn_dim"], "freq_dim": data.get("freq_dim", 256),
             "latent_channels": data.get("in_dim", 16), "heads": data["num_heads"], "depth": data["num_layers"],
             "eps": data.get("eps", 1e-6), "patch_size": tuple(data.get("patch_size", (1, 2, 2))),
             "text_dim": data.get("text_dim", 4096), "qk_norm": data.get("qk_norm", True)}
    if OUR_CONFIG_KEY in data:
        ours = DiffusionConfig.from_dict(data[OUR_CONFIG_KEY])
        disagree = {k: (v, getattr(ours, k)) for k, v in shape.items() if getattr(ours, k) != v}
        if disagree:
            raise CheckpointError(f"config.json's Wan fields and its {OUR_CONFIG_KEY!r} block disagree: "
                                  + ", ".join(f"{k}: {a} vs {b}" for k, (a, b) in disagree.items()))
        return ours
    return (base or preset("wan-1.3b")).replace(**shape)


# --- files ---

def _read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    index = folder / INDEX_FILE
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / WEIGHTS_FILE).exists():
        files = [WEIGHTS_FILE]
    else:
        files = sorted(p.name for p in folder.glob("*.safetensors"))
    if not files:
        raise CheckpointError(f"no safetensors weights in {folder} (expected {WEIGHTS_FILE} or {INDEX_FILE})")
    tensors: dict[str, torch.Tensor] = {}
    for name in files:
        tensors.update(load_file(str(folder / name)))
    return tensors


def load_wan_state_dict(model: CausalDiT, wan_state: dict[str, torch.Tensor]) -> LoadReport:
    """Copy a Wan-named state dict into the model; CheckpointError naming every problem, model untouched then."""
    own = model.state_dict()
    names = wan_key_map(model)
    report = LoadReport()
    mapped: dict[str, torch.Tensor] = {}
    unexpected: list[str] = []
    misshapen: list[str] = []
    for wan_key, tensor in wan_state.items():
        ours = names.get(wan_key)
        if ours is None:
            (report.ignored if WAN_UNUSED.match(wan_key) else unexpected).append(wan_key)
            continue
        if tuple(tensor.shape) != tuple(own[ours].shape):
            misshapen.append(f"{wan_key} (-> {ours}): checkpoint {tuple(tensor.shape)}, model {tuple(own[ours].shape)}")
            continue
        mapped[ours] = tensor
    missing = [k for k in own if k not in mapped and k not in OURS_OPTIONAL]
    problems = []
    if missing:
        problems.append("missing: " + ", ".join(f"{ours_to_wan(k)} (-> {k})" for k in missing))
    if unexpected:
        problems.append("unexpected: " + ", ".join(sorted(unexpected)))
    if misshapen:
        problems.append("wrong shape: " + "; ".join(misshapen))
    if problems:
        c = model.config
        raise CheckpointError(f"checkpoint does not fit CausalDiT(dim={c.dim}, depth={c.depth}, heads={c.heads}): "
                              + " | ".join(problems))
    with torch.no_grad():
        for key, target in own.items():
            if key in mapped:
                target.copy_(mapped[key].to(target.dtype))
                report.loaded.append(key)
            else:
                target.zero_()
                report.zero_initialised.append(key)
    report.ignored.sort()
    return report


def load_wan_checkpoint(folder: str | Path, base: DiffusionConfig | None = None,
                        device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
                        ) -> tuple[CausalDiT, LoadReport]:
    """Build CausalDiT from a Wan2.1-style folder (config.json + safetensors) and load its weights."""
    folder = Path(folder)
    config_path = folder / CONFIG_FILE
    if not config_path.exists():
        raise CheckpointError(f"{config_path} not found: a Wan-style checkpoint folder has config.json")
    config = config_from_wan(json.loads(config_path.read_text()), base)
    model = CausalDiT(config)
    report = load_wan_state_dict(model, _read_tensors(folder))
    return model.to(device=device, dtype=dtype).eval(), report


def save_wan_style(model: CausalDiT, folder: str | Path, dtype: torch.dtype | None = None,
                   max_shard_bytes: int | None = None) -> Path:
    """Write the model as a Wan2.1-style folder (Wan names; one file, or shards plus an index when
    max_shard_bytes is given). Returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {ours_to_wan(k): v.detach().to(dtype or v.dtype).contiguous().cpu()
               for k, v in model.state_dict().items()}
    (folder / CONFIG_FILE).write_text(json.dumps(wan_config(model.config), indent=2, sort_keys=True))
    if max_shard_bytes is None:
        save_file(tensors, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})
        return folder
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for key, tensor in tensors.items():
        nbytes = tensor.numel() * tensor.element_size()
        if shards[-1] and size + nbytes > max_shard_bytes:
            shards.append({})
            size = 0
        shards[-1][key] = tensor
        size += nbytes
    weight_map = {}
    for i, shard in enumerate(shards, start=1):
        name = f"diffusion_pytorch_model-{i:05d}-of-{len(shards):05d}.safetensors"
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    (folder / INDEX_FILE).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map},
                                                indent=2, sort_keys=True))
    return folder

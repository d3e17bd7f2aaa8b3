"""The diffusion model around the attention core: config, VAE, causal DiT, flow-matching sampler, stream batch, ONNX
export of one denoiser step, Wan2.1-style weights. The rolling KV cache and stream batch must be optimisations,
never changes of meaning, so both are checked against recomputation."""

from __future__ import annotations

import json
from itertools import pairwise

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from services.diffusion.engine.config import DiffusionConfig, preset
from services.diffusion.engine.dit import CausalDiT, StreamItem
from services.diffusion.engine.export_onnx import (
    PARITY_TOLERANCE,
    OnnxDenoiser,
    export_denoiser_step,
    parity_max_abs_diff,
)
from services.diffusion.engine.sampler import (
    StreamEngine,
    StreamPipeline,
    denoise,
    flow_schedule,
    noise_to_strength,
)
from services.diffusion.engine.vae import VAE, VAECache
from services.diffusion.engine.weights import (
    INDEX_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    load_wan_checkpoint,
    load_wan_state_dict,
    save_wan_style,
    wan_config,
)

# 64x64 frames -> 8x8x4 latents -> 4x4 = 16 tokens per frame.
SMALL = preset("tiny").replace(image_size=64, latent_channels=4, vae_channels=(8, 16, 32), dim=64, depth=2, heads=2,
                               ffn_dim=128, text_dim=16, sink_frames=1, window_frames=3, steps=2)
CACHE_TOLERANCE = 1e-5


def randomized(module: torch.nn.Module, seed: int = 0, std: float = 0.1) -> torch.nn.Module:
    """Every parameter drawn at random: the zero-initialised (adaLN-Zero) model would predict 0 everywhere and make
    every equality below trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return module.eval()


@pytest.fixture(scope="module")
def model() -> CausalDiT:
    return randomized(CausalDiT(SMALL))


@pytest.fixture(scope="module")
def vae() -> VAE:
    torch.manual_seed(0)
    return VAE(SMALL).eval()


def latent_frames(frames: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, frames, SMALL.latent_channels, SMALL.latent_size, SMALL.latent_size, generator=g)


def rgb_frames(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return [np.roll(base, 2 * i, axis=1) for i in range(n)]  # a panning camera


# --- config ---

def test_config_round_trips_through_json_and_rejects_unknown_keys():
    assert DiffusionConfig.from_json(SMALL.to_json()) == SMALL
    wan = preset("wan-1.3b")
    assert (wan.dim, wan.depth, wan.heads, wan.ffn_dim, wan.patch_size, wan.latent_channels, wan.head_dim) == (
        1536, 30, 12, 8960, (1, 2, 2), 16, 128)
    assert preset("tiny").tokens_per_frame == 256
    with pytest.raises(ValueError, match="unknown DiffusionConfig keys"):
        DiffusionConfig.from_dict({**SMALL.to_dict(), "frobnicate": 1})
    with pytest.raises(ValueError, match="not divisible by heads"):
        SMALL.replace(heads=3)


# --- VAE ---

def test_vae_maps_frames_to_eightfold_smaller_latents_and_back(vae):
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        latents = vae.encode(images)
        decoded = vae.decode(latents)
        again = vae.encode(images)
        g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
        sampled = [vae.encode(images, sample=True, generator=g) for g in (g1, g2)]
    assert latents.shape == (2, 4, 8, 8) and latents.dtype == torch.float32
    assert decoded.shape == images.shape and decoded.dtype == torch.float32
    assert torch.equal(latents, again)
    assert torch.equal(sampled[0], sampled[1]) and not torch.equal(sampled[0], latents)
    with pytest.raises(ValueError, match="multiples of 8"):
        vae.encode(torch.zeros(1, 3, 60, 64))


def test_temporal_vae_is_causal_and_streams_like_a_video():
    temporal = randomized(VAE(SMALL.replace(vae_temporal=True)), seed=3, std=0.05)
    frames = torch.rand(1, 4, 3, 64, 64) * 2 - 1
    changed = frames.clone()
    changed[:, 2] = -changed[:, 2]
    with torch.no_grad():
        video = temporal.encode_video(frames)
        video_changed = temporal.encode_video(changed)
        cache = VAECache()
        streamed = torch.stack([temporal.encode(frames[:, i], cache=cache) for i in range(4)], 1)
        decoded = temporal.decode_video(video)
    assert torch.equal(video, streamed)
    assert torch.equal(video[:, :2], video_changed[:, :2])  # the past does not see the future
    assert not torch.equal(video[:, 3], video_changed[:, 3])  # the future does see the past
    assert decoded.shape == frames.shape


# --- DiT ---

def test_dit_predicts_a_velocity_per_latent_and_is_seed_deterministic(model):
    chunk = latent_frames(2, batch=3)
    with torch.no_grad():
        out = model.forward_chunk(chunk, torch.tensor([0.1, 0.5, 0.9]), torch.tensor([0, 1, 3]))
        again = randomized(CausalDiT(SMALL)).forward_chunk(chunk, torch.tensor([0.1, 0.5, 0.9]),
                                                           torch.tensor([0, 1, 3]))
        fresh = CausalDiT(SMALL).forward_chunk(chunk, 0.5, 0)
    assert out.shape == chunk.shape and out.dtype == torch.float32
    assert torch.equal(out, again)
    assert torch.count_nonzero(fresh) == 0  # adaLN-Zero: an untrained model predicts zero velocity


def test_rolling_cache_output_equals_recomputing_the_window(model):
    """8 frames, sink 1, window 3, a depth-2 model: every frame's output through forward_chunk and the rolling cache
    equals forward_full recomputing all frames with each frame seeing exactly [sinks | window] at refreshed
    positions (context frames clean at t = 0, the current frame noisy at t = 0.6)."""
    clean = latent_frames(8, batch=2, seed=1)
    noisy = latent_frames(8, batch=2, seed=2)
    style = torch.tensor([1, 2])
    cache = model.new_cache(batch=2)
    with torch.no_grad():
        for n in range(8):
            streamed = model.forward_chunk(noisy[:, n:n + 1], 0.6, style, cache)
            model.forward_chunk(clean[:, n:n + 1], 0.0, style, cache, write_cache=True)
            frames = torch.cat((clean[:, :n], noisy[:, n:n + 1]), dim=1)
            t = torch.zeros(2, n + 1)
            t[:, n] = 0.6
            full = model.forward_full(frames, t, style, sink_frames=1, window_frames=3)
            assert (streamed[:, 0] - full[:, n]).abs().max().item() <= CACHE_TOLERANCE, f"frame {n}"
    assert cache[0].frame_indices() == [0, 5, 6, 7]


def test_cache_equals_plain_recompute_over_exactly_sinks_window_and_frame_for_one_block():
    """With one block a cached frame's keys depend on that frame alone, so frame N through the rolling cache equals
    plain frame-causal attention over the frame list [sinks | window | N] renumbered 0..n (the positions refresh)."""
    one_block = randomized(CausalDiT(SMALL.replace(depth=1)), seed=4)
    clean = latent_frames(8, seed=5)
    frame_n = latent_frames(1, seed=6)
    cache = one_block.new_cache()
    with torch.no_grad():
        for n in range(7):
            one_block.forward_chunk(clean[:, n:n + 1], 0.0, 2, cache, write_cache=True)
        streamed = one_block.forward_chunk(frame_n, 0.4, 2, cache)
        frames = torch.cat((clean[:, [0, 4, 5, 6]], frame_n), dim=1)
        full = one_block.forward_full(frames, torch.tensor([[0.0, 0.0, 0.0, 0.0, 0.4]]), 2)
    assert (streamed[:, 0] - full[:, -1]).abs().max().item() <= CACHE_TOLERANCE


# --- stream batch ---

def test_stream_batch_forward_equals_running_items_one_by_one(model):
    """Three streams with caches of different lengths, different t and styles, one writing its cache: one batched
    forward gives each item's output, and leaves each cache, as running it alone would."""
    def prefilled(frames: int, seed: int):
        cache = model.new_cache()
        with torch.no_grad():
            for i in range(frames):
                model.forward_chunk(latent_frames(1, seed=seed + i), 0.0, 0, cache, write_cache=True)
        return cache

    specs = [(0, 0.9, 0, False), (2, 0.5, 1, True), (6, 0.2, 3, False)]  # (cached frames, t, style, write)
    inputs = [latent_frames(1, seed=40 + i) for i in range(len(specs))]
    batched_caches = [prefilled(n, seed=10 * i) for i, (n, *_) in enumerate(specs)]
    alone_caches = [prefilled(n, seed=10 * i) for i, (n, *_) in enumerate(specs)]
    items = [StreamItem(x, t, style, cache, write) for x, (_, t, style, write), cache
             in zip(inputs, specs, batched_caches)]
    with torch.no_grad():
        batched = model.forward_items(items)
        alone = [model.forward_chunk(x, t, style, cache, write) for x, (_, t, style, write), cache
                 in zip(inputs, specs, alone_caches)]
    for b, a in zip(batched, alone):
        assert (b - a).abs().max().item() <= CACHE_TOLERANCE
    for b_cache, a_cache in zip(batched_caches, alone_caches):
        for b_layer, a_layer in zip(b_cache, a_cache):
            (bk, bv, bp), (ak, av, ap) = b_layer.view(), a_layer.view()
            assert torch.equal(bp, ap)
            assert torch.allclose(bk, ak, rtol=0, atol=CACHE_TOLERANCE)
            assert torch.allclose(bv, av, rtol=0, atol=CACHE_TOLERANCE)


def test_engine_batches_streams_without_changing_any_stream(model, vae):
    engine = StreamEngine(model, vae)
    frames_a, frames_b = rgb_frames(3, seed=1), rgb_frames(3, seed=2)
    together = [engine.new_stream(style="night", seed=7), engine.new_stream(style="rain", seed=8, steps=3)]
    alone = [engine.new_stream(style="night", seed=7), engine.new_stream(style="rain", seed=8, steps=3)]
    for fa, fb in zip(frames_a, frames_b):
        batched = engine.transform([(together[0], fa), (together[1], fb)])
        single = [engine.transform([(alone[0], fa)])[0], engine.transform([(alone[1], fb)])[0]]
        for (img_b, s_b), (img_s, s_s) in zip(batched, single):
            assert img_b.shape == (64, 64, 3) and img_b.dtype == np.uint8
            assert s_b == s_s
            assert np.abs(img_b.astype(int) - img_s.astype(int)).max() <= 1  # rounding of ~1e-6 differences


def test_pipelined_stream_returns_frames_k_minus_one_calls_late(model, vae):
    pipeline = StreamPipeline(StreamEngine(model, vae), style=1, seed=3, steps=3)
    outputs = [pipeline.process_pipelined(frame) for frame in rgb_frames(6)]
    assert outputs[:2] == [None, None]
    assert all(o is not None and o.shape == (64, 64, 3) and o.dtype == np.uint8 for o in outputs[2:])
    # Frames 0-3 have finished; 0-2 are in the cache, frame 3's clean-KV write rides on the next call's forward.
    assert pipeline.state.caches[0].frames_seen == 3 and pipeline.state.pending_commit is not None


# --- sampler ---

@settings(max_examples=60, deadline=None)
@given(strength=st.floats(0.01, 1.0), steps=st.integers(1, 4), shift=st.floats(0.5, 8.0))
def test_flow_schedule_runs_from_strength_to_zero_strictly_decreasing(strength, steps, shift):
    times = flow_schedule(strength, steps, shift)
    assert len(times) == steps + 1 and times[0] == strength and times[-1] == 0.0
    assert all(a > b for a, b in pairwise(times))


def test_strength_zero_returns_the_input_latent_unchanged(model):
    latent = latent_frames(1)
    assert flow_schedule(0.0, 3) == [0.0]
    assert torch.equal(noise_to_strength(latent, 0.0, torch.Generator().manual_seed(0)), latent)
    with torch.no_grad():
        assert torch.equal(denoise(model, latent, 0.0, 3, 0), latent)


def test_sampler_is_deterministic_for_a_seed(model, vae):
    latent = latent_frames(1, batch=2)
    with torch.no_grad():
        runs = [denoise(model, noise_to_strength(latent, 0.7, torch.Generator().manual_seed(9)), 0.7, 2,
                        torch.tensor([0, 1]), model.new_cache(2), renoise=True,
                        generator=torch.Generator().manual_seed(10)) for _ in range(2)]
    assert runs[0].shape == latent.shape and torch.equal(runs[0], runs[1])
    frames = rgb_frames(3)
    outputs = []
    for _ in range(2):
        pipeline = StreamPipeline(StreamEngine(model, vae), style="dusk", seed=11)
        outputs.append([pipeline.process(f) for f in frames])
    assert all(np.array_equal(a, b) for a, b in zip(*outputs))
    assert 0.0 < pipeline.last_strength <= SMALL.strength


# --- ONNX ---

def test_onnx_denoiser_step_matches_pytorch(model, tmp_path):
    path = export_denoiser_step(model, tmp_path / "step.onnx")
    assert parity_max_abs_diff(model, path) <= PARITY_TOLERANCE
    # Against a real rolling cache that has wrapped (slot order != temporal order), writing as it goes.
    runner = OnnxDenoiser(path, providers=["CPUExecutionProvider"])
    torch_cache, onnx_cache = model.new_cache(), model.new_cache()
    with torch.no_grad():
        for n in range(6):
            x, t, style = latent_frames(1, seed=60 + n), torch.tensor([0.3]), torch.tensor([2])
            expected = model.forward_chunk(x, t, style, torch_cache, write_cache=True)
            got = runner.step(x, t, style, onnx_cache, write_cache=True)
            assert (got - expected).abs().max().item() <= PARITY_TOLERANCE, f"frame {n}"


# --- weights ---

def test_wan_style_checkpoint_round_trips(model, tmp_path):
    folder = save_wan_style(model, tmp_path / "single")
    sharded = save_wan_style(model, tmp_path / "sharded", max_shard_bytes=64 * 1024)
    from safetensors.torch import load_file

    names = set(load_file(str(folder / WEIGHTS_FILE)))
    assert {"patch_embedding.weight", "time_embedding.0.weight", "time_embedding.2.bias", "time_projection.1.weight",
            "blocks.1.self_attn.q.weight", "blocks.0.self_attn.norm_k.weight", "blocks.0.ffn.2.weight",
            "blocks.1.modulation", "head.head.weight", "head.modulation"} <= names
    assert len(json.loads((sharded / INDEX_FILE).read_text())["weight_map"]) == len(names)
    chunk = latent_frames(2, batch=2)
    with torch.no_grad():
        expected = model.forward_chunk(chunk, 0.5, torch.tensor([0, 3]))
        for path in (folder, sharded):
            loaded, report = load_wan_checkpoint(path)
            assert loaded.config == SMALL and not report.ignored and not report.zero_initialised
            assert torch.equal(loaded.forward_chunk(chunk, 0.5, torch.tensor([0, 3])), expected)


def _wan_state(model: CausalDiT, tmp_path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(save_wan_style(model, tmp_path) / WEIGHTS_FILE))


def test_checkpoint_missing_a_key_fails_naming_it(model, tmp_path):
    state = _wan_state(model, tmp_path)
    del state["blocks.1.self_attn.k.weight"]
    with pytest.raises(CheckpointError, match=r"missing: blocks\.1\.self_attn\.k\.weight"):
        load_wan_state_dict(CausalDiT(SMALL), state)


def test_checkpoint_with_a_wrong_shape_fails_naming_it(model, tmp_path):
    state = _wan_state(model, tmp_path)
    state["blocks.0.ffn.0.weight"] = torch.zeros(100, 64)
    state["surprise.weight"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"blocks\.0\.ffn\.0\.weight.*\(100, 64\).*\(128, 64\)") as error:
        load_wan_state_dict(CausalDiT(SMALL), state)
    assert "unexpected: surprise.weight" in str(error.value)


def test_genuine_wan_layout_loads_with_cross_attention_ignored_and_no_style_table(tmp_path):
    """A Wan2.1-1.3B-shaped checkpoint at tiny scale, as Wan ships it: Wan's config.json fields only, text
    cross-attention weights present, no style table. Our settings come from the base preset."""
    wan_small = preset("wan-1.3b").replace(image_size=64, vae_channels=(8, 16, 32), dim=48, depth=2, heads=2,
                                           ffn_dim=96, text_dim=32)
    source = randomized(CausalDiT(wan_small), seed=8)
    state = _wan_state(source, tmp_path / "wan")
    del state["style_embedding.weight"]
    for i in range(wan_small.depth):
        for name in ("q", "k", "v", "o"):
            state[f"blocks.{i}.cross_attn.{name}.weight"] = torch.zeros(48, 48)
        state[f"blocks.{i}.norm3.weight"] = torch.ones(48)
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "wan" / WEIGHTS_FILE))
    wan_fields = {k: v for k, v in wan_config(wan_small).items() if k != "scalediffusion"}
    (tmp_path / "wan" / "config.json").write_text(json.dumps(wan_fields))
    loaded, report = load_wan_checkpoint(tmp_path / "wan", base=preset("wan-1.3b"))
    assert loaded.config.dim == 48 and loaded.config.latent_channels == 16 and loaded.config.schedule_shift == 5.0
    assert report.zero_initialised == ["style_embed.table.weight"]
    assert len(report.ignored) == 5 * wan_small.depth and "blocks.0.cross_attn.q.weight" in report.ignored
    chunk = torch.randn(1, 1, 16, 8, 8)
    with torch.no_grad():
        source.style_embed.table.weight.zero_()
        assert torch.equal(loaded.forward_chunk(chunk, 0.3, 1), source.forward_chunk(chunk, 0.3, 1))

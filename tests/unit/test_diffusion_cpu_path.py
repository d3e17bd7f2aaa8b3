"""The CPU path's speed-ups change nothing a player sees: the VAE on onnxruntime (engine/ort_vae.py) repaints the same
frames as the PyTorch VAE, and the cached RoPE tables (engine/rope.py) rotate exactly as the uncached ones."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from scalediffusion.platform.settings import SettingsError
from services.diffusion.engine.checkpoint import load_engine
from services.diffusion.engine.config import preset
from services.diffusion.engine.dataset import generate_clips
from services.diffusion.engine.ort_vae import PARITY_TOLERANCE, OrtVAE, parity
from services.diffusion.engine.rope import rope_3d, rope_video, video_positions
from services.diffusion.engine.vae import VAE
from services.diffusion.server import DiffusionSettings


@pytest.fixture(scope="module")
def engines():
    return load_engine(vae_runtime="torch"), load_engine(vae_runtime="onnxruntime")


@pytest.mark.parametrize("height, width", [(128, 224), (256, 256), (64, 128)])
def test_the_onnxruntime_vae_matches_the_torch_vae_at_the_negotiated_sizes(engines, height, width):
    torch_engine, ort_engine = engines
    enc, dec = parity(torch_engine.vae, ort_engine.vae_runtime, height, width)
    assert enc < PARITY_TOLERANCE and dec < PARITY_TOLERANCE, (enc, dec)


def test_a_stream_repainted_on_onnxruntime_shows_the_frames_torch_shows(engines):
    torch_engine, ort_engine = engines
    clip = generate_clips(1, 4, size=128, every_s=0.1, seed=3, styles=("night",))["flat"][0]
    frames = [np.ascontiguousarray(f[:112, :128]) for f in clip]
    a = torch_engine.new_stream(style="dusk", seed=5)
    b = ort_engine.new_stream(style="dusk", seed=5)
    for frame in frames:
        (out_a, s_a), = torch_engine.transform([(a, frame)])
        (out_b, s_b), = ort_engine.transform([(b, frame)])
        assert s_a == s_b
        assert np.abs(out_a.astype(int) - out_b.astype(int)).max() <= 2  # float rounding, then uint8 rounding


def test_auto_picks_onnxruntime_on_a_cpu_and_unknown_runtimes_are_refused(engines):
    assert isinstance(load_engine(vae_runtime="auto").vae_runtime, OrtVAE)
    assert engines[0].vae_runtime is None
    with pytest.raises(ValueError, match="vae_runtime"):
        load_engine(vae_runtime="tensorflow")
    with pytest.raises(SettingsError, match="SD_DIFFUSION_VAE_RUNTIME"):
        DiffusionSettings.from_env({"SD_DIFFUSION_VAE_RUNTIME": "tensorflow"})
    assert DiffusionSettings.from_env({}).vae_runtime == "auto"
    assert DiffusionSettings.from_env({}).threads == 0 and DiffusionSettings.from_env({"SD_DIFFUSION_THREADS": "1"}).threads == 1
    with pytest.raises(SettingsError, match="SD_DIFFUSION_THREADS"):
        DiffusionSettings.from_env({"SD_DIFFUSION_THREADS": "-1"})


def test_the_temporal_vae_stays_on_torch():
    config = dataclasses.replace(preset("tiny"), vae_temporal=True).validate()
    with pytest.raises(ValueError, match="temporal"):
        OrtVAE(VAE(config))


@pytest.mark.parametrize("positions, height, width", [([0], 4, 6), ([0, 1, 2, 3], 7, 12), ([2, 0], 3, 5)])
def test_cached_rope_tables_rotate_exactly_as_computing_them_each_time(positions, height, width):
    g = torch.Generator().manual_seed(len(positions))
    x = torch.randn(2, 4, len(positions) * height * width, 32, generator=g)
    frame_positions = torch.tensor(positions)
    expected = rope_3d(x, *video_positions(frame_positions, height, width))
    for _ in range(2):  # computed, then from the cache
        torch.testing.assert_close(rope_video(x, frame_positions, height, width), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="positions"):
        rope_video(x, torch.tensor([0]), height, width + 1)


def test_the_blur_detail_source_restores_the_input_and_spares_a_vae_decode():
    from services.diffusion.engine.sampler import add_detail, gaussian_blur

    g = torch.Generator().manual_seed(0)
    ramp = torch.linspace(-0.8, 0.8, 40).expand(2, 3, 24, 40)  # coarse structure the blur keeps
    frame = ramp + 0.2 * (torch.rand(2, 3, 24, 40, generator=g) * 2 - 1)
    flat = torch.full((1, 3, 16, 16), 0.25)
    assert torch.allclose(gaussian_blur(flat, 3.0), flat)  # edges replicated: a flat picture stays flat
    blurred = gaussian_blur(frame, 3.0)
    assert blurred.shape == frame.shape
    assert (frame - blurred - (frame - ramp)).abs().mean() < 0.5 * (frame - ramp).abs().mean()  # fine structure out
    detail, reference_std = frame - blurred, blurred.std(dim=(2, 3), keepdim=True)
    assert torch.allclose(add_detail(blurred, detail, reference_std), frame, atol=0.01)

    # The shipped checkpoint takes its detail from the blur: one VAE decode per frame (the output), not two.
    engine = load_engine(vae_runtime="torch")
    assert engine.config.detail_transfer and engine.config.detail_blur_sigma > 0
    clip = generate_clips(1, 2, size=128, every_s=0.1, seed=3, styles=("dusk",))["flat"][0]
    decodes = []
    decode = engine._vae_decode
    engine._vae_decode = lambda z: decodes.append(z.shape) or decode(z)
    stream = engine.new_stream(style="dusk", seed=1)
    for f in clip:
        engine.transform([(stream, np.ascontiguousarray(f[:96, :128]))])
    assert len(decodes) == len(clip)
    engine.config = engine.config.replace(detail_blur_sigma=0.0)  # the VAE as the detail source: two per frame
    decodes.clear()
    for f in clip:
        engine.transform([(stream, np.ascontiguousarray(f[:96, :128]))])
    assert len(decodes) == 2 * len(clip)
    with pytest.raises(ValueError, match="detail_blur_sigma"):
        engine.config.replace(detail_blur_sigma=-1.0)

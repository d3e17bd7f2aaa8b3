"""The diffusion engine's training objectives, checkpoints, frame codec and quality metrics, and the shipped model."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from services.diffusion.codec import FrameError, decode_frame, encode_frame, sniff
from services.diffusion.engine.checkpoint import (
    DEFAULT_CHECKPOINT,
    VAE_FILE,
    load_checkpoint,
    load_engine,
    save_checkpoint,
)
from services.diffusion.engine.config import DiffusionConfig
from services.diffusion.engine.dit import CausalDiT
from services.diffusion.engine.quality import psnr, ssim
from services.diffusion.engine.sampler import StreamEngine, denoise
from services.diffusion.engine.training import BridgeSampling, bridge_point, clip_step, latent_stats, x0_loss
from services.diffusion.engine.vae import VAE
from services.diffusion.engine.weights import CheckpointError

SMALL = DiffusionConfig(image_size=32, latent_channels=4, vae_downsample=4, vae_channels=(8, 16), dim=32, depth=2,
                        heads=2, ffn_dim=64, freq_dim=32, text_dim=8, sink_frames=1, window_frames=2).validate()


# --- the bridge objective ---

def test_the_true_velocity_of_the_bridge_recovers_the_target_at_every_point():
    g = torch.Generator().manual_seed(0)
    source, target, noise = (torch.randn(3, 1, 4, 8, 8, generator=g) for _ in range(3))
    strength, fraction = torch.tensor([0.3, 0.7, 1.0]), torch.tensor([1.0, 0.5, 0.1])
    x_t, t = bridge_point(source, target, strength, fraction, noise)
    assert torch.allclose(t, strength * fraction)
    x_s = (1 - strength.view(-1, 1, 1, 1, 1)) * source + strength.view(-1, 1, 1, 1, 1) * noise
    assert torch.allclose(x_t[0], x_s[0])  # fraction 1: the sampler's start, the input noised to s
    true_velocity = (x_s - target) / strength.view(-1, 1, 1, 1, 1)
    assert float(x0_loss(true_velocity, x_t, t, target)) < 1e-10
    assert float(x0_loss(torch.zeros_like(x_t), x_t, t, target)) > 0.01


def test_bridge_rejects_strengths_outside_0_1():
    z = torch.zeros(1, 1, 4, 2, 2)
    with pytest.raises(ValueError):
        bridge_point(z, z, torch.tensor([0.0]), torch.tensor([1.0]), z)
    with pytest.raises(ValueError):
        bridge_point(z, z, torch.tensor([0.5]), torch.tensor([1.5]), z)


def test_a_model_predicting_the_bridge_velocity_samples_the_target_in_any_number_of_steps():
    """Euler on the bridge stays on the line: with the exact x0 prediction, 1..4 steps all land on the target."""
    target = torch.randn(1, 1, 4, 8, 8)

    class Oracle(CausalDiT):
        def forward_chunk(self, x, t, style, cache=None, write_cache=False, style_vector=None):
            return (x - target) / t

    oracle = Oracle(SMALL)
    source = torch.randn_like(target)
    for steps in (1, 2, 4):
        x_s = 0.4 * source + 0.6 * torch.randn_like(target)
        assert torch.allclose(denoise(oracle, x_s, 0.6, steps, 0), target, atol=1e-5)


def test_clip_step_learns_a_translation_through_the_rolling_cache():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    model = CausalDiT(SMALL)
    source = torch.randn(2, 3, SMALL.latent_channels, 8, 8, generator=g)
    target = -source + 0.5  # a fixed, learnable map
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):  # low strengths: the source stays visible, so the loss can fall well below its start
        optimiser.zero_grad()
        losses.append(clip_step(model, source, target, torch.tensor([0, 1]), BridgeSampling(0.3, 0.4), g))
        optimiser.step()
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5]), losses
    assert all(p.grad is not None for p in model.blocks[0].attn.parameters())


def test_latent_stats_standardise_and_refuse_a_dead_vae():
    raw = torch.randn(1000) * 3.0 + 2.0
    shift, scale = latent_stats(raw)
    assert abs(float(((raw - shift) * scale).mean())) < 1e-5 and abs(float(((raw - shift) * scale).std()) - 1) < 1e-4
    with pytest.raises(ValueError, match="no spread"):
        latent_stats(torch.zeros(10))


def test_detail_transfer_restores_the_input_and_follows_the_outputs_contrast():
    from services.diffusion.engine.sampler import add_detail

    g = torch.Generator().manual_seed(0)
    frame = torch.rand(2, 3, 16, 16, generator=g) * 2 - 1
    blurred = torch.nn.functional.avg_pool2d(frame, 3, 1, 1)  # what a lossy VAE gives back
    detail, reference_std = frame - blurred, blurred.std(dim=(2, 3), keepdim=True)
    assert torch.allclose(add_detail(blurred, detail, reference_std), frame, atol=0.01)  # output = reconstruction
    dark = 0.3 * blurred  # a night look: a third of the contrast gets a third of the detail
    assert torch.allclose(add_detail(dark, detail, reference_std) - dark, 0.3 * detail, atol=0.01)
    flat = torch.zeros_like(frame)  # no structure in the output: nothing is added
    assert torch.equal(add_detail(flat, detail, reference_std), flat)


# --- checkpoints ---

def test_a_checkpoint_round_trips_in_fp16_and_streams_like_the_original(tmp_path):
    torch.manual_seed(1)
    model, vae = CausalDiT(SMALL), VAE(SMALL)
    for p in model.parameters():  # non-zero everywhere (adaLN-Zero starts at zero)
        torch.nn.init.normal_(p, std=0.05)
    save_checkpoint(model, vae, tmp_path / "ck")
    loaded, loaded_vae, report = load_checkpoint(tmp_path / "ck")
    assert loaded.config == SMALL and not report.zero_initialised
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-3 * max(1.0, float(a.abs().max())))
    frames = [np.random.default_rng(k).integers(0, 256, (32, 32, 3), dtype=np.uint8) for k in range(3)]
    original, again = StreamEngine(model, vae), load_engine(tmp_path / "ck")
    a, b = original.new_stream(seed=3), again.new_stream(seed=3)
    for f in frames:
        (x, _), = original.transform([(a, f)])
        (y, _), = again.transform([(b, f)])
        assert np.abs(x.astype(int) - y.astype(int)).max() <= 3  # fp16 storage: a few levels at most


def test_checkpoint_errors_name_the_problem(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "missing")
    save_checkpoint(CausalDiT(SMALL), VAE(SMALL), tmp_path / "ck")
    (tmp_path / "ck" / VAE_FILE).unlink()
    with pytest.raises(CheckpointError, match="carries its VAE"):
        load_checkpoint(tmp_path / "ck")
    from safetensors.torch import save_file

    save_file({"encoder.conv_in.weight": torch.zeros(1)}, str(tmp_path / "ck" / VAE_FILE))
    with pytest.raises(CheckpointError, match=r"misshapen \['encoder.conv_in.weight'\]"):
        load_checkpoint(tmp_path / "ck")


def test_the_training_script_writes_a_checkpoint_the_service_can_load_and_measures_it(tmp_path):
    from services.diffusion import train
    from services.diffusion.engine.dataset import generate_clips

    for name, seed in (("train", 0), ("val", 1)):
        np.savez(tmp_path / f"{name}.npz", **generate_clips(2, 3, size=64, seed=seed))
    out = tmp_path / "ck"
    assert train.main(["--train", str(tmp_path / "train.npz"), "--val", str(tmp_path / "val.npz"), "--out", str(out),
                       "--vae-steps", "3", "--vae-crop", "32", "--dit-steps", "3", "--dit-batch", "2"]) == 0
    record = json.loads((out / "quality.json").read_text())
    assert record["training"]["dit_steps"] == 3 and record["evaluation"]["val_clips"] == 2
    for style in [*record["training"]["styles"], "mean"]:
        scores = record["evaluation"]["scores"][style]
        assert set(scores) == {"output", "output_latent_only", "input", "vae_reconstruction"} and 0 < scores["output"]["psnr"] < 100
    assert (out / "training.png").stat().st_size > 0 and (out / "samples.png").stat().st_size > 0
    config = load_checkpoint(out)[0].config
    assert config.latent_scale != 1.0  # the latent statistics were measured and stored
    assert train.main(["--val", str(tmp_path / "val.npz"), "--out", str(out), "--eval-only"]) == 0


# --- the shipped model ---

def test_the_shipped_checkpoint_repaints_held_out_frames_toward_every_style():
    """The CPU default (services/diffusion/checkpoints/tiny-city) on clips rendered from a seed it never trained on:
    in every style its output is closer to the styled render than the raw render is."""
    from services.diffusion.engine.dataset import generate_clips

    data = generate_clips(1, 3, size=256, seed=999)
    engine = load_engine()
    for j, style in enumerate(data["styles"]):
        stream = engine.new_stream(style=str(style), seed=j)
        outputs = [engine.transform([(stream, data["flat"][0, k])])[0][0] for k in range(3)]
        gain = np.mean([psnr(out, data["styled"][0, j, k]) - psnr(data["flat"][0, k], data["styled"][0, j, k])
                        for k, out in enumerate(outputs)])
        ssim_out = np.mean([ssim(out, data["styled"][0, j, k]) for k, out in enumerate(outputs)])
        assert gain > 0.5 and ssim_out > 0.6, (style, gain, ssim_out)
    quality = json.loads((DEFAULT_CHECKPOINT / "quality.json").read_text())
    assert quality["evaluation"]["scores"]["mean"]["output"]["psnr"] > quality["evaluation"]["scores"]["mean"]["input"]["psnr"]


# --- frames on the wire ---

def _rgb(h=48, w=64) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 4 % 256, y * 5 % 256, (x + y) % 256], -1).astype(np.uint8)


def test_frames_decode_resize_and_encode_in_the_clients_format():
    image = _rgb()
    png = cv2.imencode(".png", image[:, :, ::-1])[1].tobytes()
    rgb, kind = decode_frame(png, "image/png", 64, 48)
    assert kind == "image/png" and np.array_equal(rgb, image)  # PNG is lossless and RGB order is kept
    rgb, _ = decode_frame(png, "", 32, 16)
    assert rgb.shape == (16, 32, 3)
    assert sniff(encode_frame(rgb, "image/png")) == "image/png" and sniff(encode_frame(rgb, "image/jpeg")) == "image/jpeg"
    jpeg = encode_frame(image, "image/jpeg")
    back, kind = decode_frame(jpeg, "image/jpeg; q=1", 64, 48)
    assert kind == "image/jpeg" and np.abs(back.astype(int) - image.astype(int)).mean() < 12


@pytest.mark.parametrize("image,content_type,reason", [
    (b"", "image/jpeg", "empty"),
    (b"BM not a bitmap we take", "", "neither JPEG nor PNG"),
    (b"\x89PNG\r\n\x1a\n truncated", "image/png", "could not be decoded"),
    (b"\xff\xd8\xff\xe0", "image/webp", "not supported"),
    (b"\xff\xd8\xff\xe0", "image/png", "bytes are image/jpeg"),
])
def test_unreadable_frames_say_why(image, content_type, reason):
    with pytest.raises(FrameError, match=reason):
        decode_frame(image, content_type, 64, 64)


# --- quality metrics ---

def test_psnr_and_ssim_on_known_cases():
    a = _rgb()
    assert psnr(a, a) == float("inf") and ssim(a, a) == pytest.approx(1.0)
    b = a.copy()
    b[0, 0, 0] ^= 0xFF  # one channel of one pixel off by |x - (255 - x)|
    mse = (int(a[0, 0, 0]) - int(b[0, 0, 0])) ** 2 / a.size
    assert psnr(a, b) == pytest.approx(10 * np.log10(255**2 / mse))
    noise = np.random.default_rng(0).normal(0, 20, a.shape)
    noisy = np.clip(a + noise, 0, 255).astype(np.uint8)
    noisier = np.clip(a + 3 * noise, 0, 255).astype(np.uint8)
    assert 1.0 > ssim(a, noisy) > ssim(a, noisier) and ssim(a, noisy) == pytest.approx(ssim(noisy, a))
    assert psnr(a, noisy) > psnr(a, noisier)
    with pytest.raises(ValueError):
        ssim(a, a[:, :10])

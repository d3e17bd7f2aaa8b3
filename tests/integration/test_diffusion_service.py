"""DiffusionService over real sockets: the stack's diffusion process (the shipped tiny-city checkpoint on the CPU),
native gRPC and gRPC-Web, every RPC, bad input answered with a status and a reason, idle eviction, metrics, and the
size and rate a stream is offered for the replica's measured speed and load."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import cv2
import grpc
import numpy as np
import pytest
import urllib3

from scalediffusion.stack.procs import terminate
from scalediffusion.v1 import diffusion_pb2, diffusion_pb2_grpc
from services.diffusion.engine.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
from services.diffusion.engine.dataset import generate_clips
from services.diffusion.engine.quality import psnr
from tests.conftest import start_service
from tests.integration.test_grpc_web import grpc_web_call

REPO = Path(__file__).resolve().parents[2]


# Streams sized for any speed: sizing for 0.01 frames/s within a 10-minute latency target grants what is asked.
ROOMY = {"SD_DIFFUSION_MIN_FPS": "0.01", "SD_DIFFUSION_LATENCY_TARGET_MS": "600000"}


@pytest.fixture(scope="module")
def roomy(stack, tmp_path_factory):
    """A second diffusion process that grants the sizes asked, for the tests of exact sizes and of quality (the
    stack's own replica offers what its measured speed sustains; see the admission tests below)."""
    channel, record = start_service(stack, tmp_path_factory.mktemp("roomy"), "diffusion", ROOMY, "diffusion-roomy")
    yield diffusion_pb2_grpc.DiffusionServiceStub(channel)
    terminate(record, grace_s=10)


@pytest.fixture(scope="module")
def pairs():
    """Two short clips rendered flat and in every style (a seed the checkpoint never trained on)."""
    return generate_clips(2, 3, size=256, seed=4242)


def jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    return cv2.imencode(".jpg", np.ascontiguousarray(rgb[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes()


def png(rgb: np.ndarray) -> bytes:
    return cv2.imencode(".png", np.ascontiguousarray(rgb[:, :, ::-1]))[1].tobytes()


def decode(image: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_COLOR)[:, :, ::-1]


def rpc_error(call, request, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30, **kwargs)
    return info.value


def open_stream(diffusion, **config) -> diffusion_pb2.OpenStreamResponse:
    return diffusion.OpenStream(diffusion_pb2.OpenStreamRequest(config=diffusion_pb2.StreamConfig(**config)), timeout=30)


def frame(stream_id: str, seq: int, image: bytes, content_type: str = "image/jpeg") -> diffusion_pb2.Frame:
    return diffusion_pb2.Frame(stream_id=stream_id, seq=seq, client_t_ms=1000.0 + seq, image=image,
                               content_type=content_type)


def test_open_stream_fills_defaults_clamps_and_says_what_it_applies(roomy):
    diffusion = roomy
    opened = open_stream(diffusion, width=5000, height=100, steps=9, strength=3.0, seed=7, prompt="wet neon streets")
    config = opened.config
    assert opened.stream_id.startswith("st-") and opened.idle_timeout_ms == 60_000
    assert (config.style, config.width, config.height, config.steps, config.strength, config.seed) == (
        "photoreal-day", 1024, 96, 4, 1.0, 7)
    assert config.prompt == ""  # the tiny model has no text encoder: the reply says the prompt was not applied
    defaults = open_stream(diffusion).config
    shipped = load_checkpoint(DEFAULT_CHECKPOINT)[0].config  # steps and strength default to the model's own
    assert (defaults.width, defaults.height, defaults.steps) == (256, 256, shipped.steps) and defaults.seed > 0
    assert defaults.strength == pytest.approx(shipped.strength)
    for stream_id in (opened.stream_id,):
        diffusion.CloseStream(diffusion_pb2.CloseStreamRequest(stream_id=stream_id), timeout=10)


def test_open_stream_rejects_unknown_styles_and_negative_strength(diffusion):
    err = rpc_error(diffusion.OpenStream, diffusion_pb2.OpenStreamRequest(config=dict(style="cartoon")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "photoreal-day" in err.details()
    err = rpc_error(diffusion.OpenStream, diffusion_pb2.OpenStreamRequest(config=dict(strength=-0.5)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "strength" in err.details()


def test_transform_frame_repaints_toward_the_style_over_the_wire(roomy, pairs):
    """The trained checkpoint through the whole service: JPEG in, JPEG out, closer to the night render than the flat
    render is (night changes every pixel: the raw render scores ~6 dB against it)."""
    styles = list(pairs["styles"])
    night = styles.index("night")
    diffusion = roomy
    opened = open_stream(diffusion, style="night", width=256, height=256, steps=2, seed=1)
    assert (opened.config.width, opened.config.height) == (256, 256)
    gains = []
    for k in range(pairs["flat"].shape[1]):
        flat, target = pairs["flat"][0, k], pairs["styled"][0, night, k]
        reply = diffusion.TransformFrame(diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, k, jpeg(flat))),
                                         timeout=60)
        assert not reply.dropped and reply.frame.content_type == "image/jpeg"
        assert (reply.frame.stream_id, reply.frame.seq, reply.frame.client_t_ms) == (opened.stream_id, k, 1000.0 + k)
        assert 0.0 < reply.strength <= 1.0 and reply.server_ms > 0
        out = decode(reply.frame.image)
        assert out.shape == (256, 256, 3)
        gains.append(psnr(out, target) - psnr(flat, target))
    assert min(gains) > 5.0, gains
    closed = diffusion.CloseStream(diffusion_pb2.CloseStreamRequest(stream_id=opened.stream_id), timeout=10)
    assert closed.frames == pairs["flat"].shape[1]


def test_frames_of_another_size_or_format_come_back_at_the_streams_size_in_their_format(roomy, pairs):
    diffusion = roomy
    opened = open_stream(diffusion, width=128, height=96)
    big = cv2.resize(pairs["flat"][1, 0], (320, 180))
    reply = diffusion.TransformFrame(diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, 1, png(big), "image/png")),
                                     timeout=60)
    assert reply.frame.content_type == "image/png" and decode(reply.frame.image).shape == (96, 128, 3)
    reply = diffusion.TransformFrame(diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, 2, jpeg(big), "")),
                                     timeout=60)
    assert reply.frame.content_type == "image/jpeg"  # empty content_type: the bytes say which


def test_bad_frames_get_invalid_argument_or_not_found_with_a_reason(diffusion, pairs):
    opened = open_stream(diffusion)
    good = jpeg(pairs["flat"][0, 0])
    cases = [
        (diffusion_pb2.TransformFrameRequest(), grpc.StatusCode.INVALID_ARGUMENT, "frame is required"),
        (diffusion_pb2.TransformFrameRequest(frame=frame("st-nope", 1, good)), grpc.StatusCode.NOT_FOUND, "not open here"),
        (diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, 1, b"")), grpc.StatusCode.INVALID_ARGUMENT, "empty"),
        (diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, 1, b"GIF89a....")), grpc.StatusCode.INVALID_ARGUMENT, "neither JPEG nor PNG"),
        (diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, 1, good[:200])), grpc.StatusCode.INVALID_ARGUMENT, "could not be decoded"),
        (diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, 1, good, "image/png")), grpc.StatusCode.INVALID_ARGUMENT, "bytes are image/jpeg"),
        (diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, 1, good, "image/webp")), grpc.StatusCode.INVALID_ARGUMENT, "not supported"),
    ]
    for request, code, reason in cases:
        err = rpc_error(diffusion.TransformFrame, request)
        assert err.code() == code and reason in err.details(), (reason, err.code(), err.details())
    # The stream survived all of that and still works.
    reply = diffusion.TransformFrame(diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, 9, good)), timeout=60)
    assert reply.frame.image
    diffusion.CloseStream(diffusion_pb2.CloseStreamRequest(stream_id=opened.stream_id), timeout=10)
    err = rpc_error(diffusion.TransformFrame, diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, 10, good)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(diffusion.CloseStream, diffusion_pb2.CloseStreamRequest(stream_id=opened.stream_id))
    assert err.code() == grpc.StatusCode.NOT_FOUND


def test_bidi_stream_answers_every_frame_in_order(diffusion, pairs):
    opened = open_stream(diffusion, style="dusk", width=128, height=128)
    images = [jpeg(cv2.resize(pairs["flat"][0, k % 3], (128, 128))) for k in range(6)]
    replies = list(diffusion.Stream(iter([frame(opened.stream_id, k, image) for k, image in enumerate(images)]), timeout=120))
    assert [r.frame.seq for r in replies] == list(range(6))
    for reply in replies:  # each frame is either repainted or dropped (superseded by a newer one, or too late)
        assert reply.dropped != bool(reply.frame.image)
    assert any(not r.dropped for r in replies)
    closed = diffusion.CloseStream(diffusion_pb2.CloseStreamRequest(stream_id=opened.stream_id), timeout=10)
    assert closed.frames == sum(not r.dropped for r in replies)


def test_bidi_stream_reports_bad_frames_as_a_status(diffusion):
    replies = diffusion.Stream(iter([frame("st-unknown", 1, b"\xff\xd8\xff")]), timeout=30)
    with pytest.raises(grpc.RpcError) as info:
        list(replies)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND


def test_grpc_web_opens_transforms_and_closes(stack, pairs):
    url = stack.grpc_web_url("diffusion")
    opened = grpc_web_call(url, "DiffusionService", "OpenStream", {"config": {"style": "rain", "width": 128, "height": 128}})
    assert opened["ok"], opened
    stream_id = opened["response"]["streamId"]
    import base64

    image = base64.b64encode(jpeg(cv2.resize(pairs["flat"][1, 2], (128, 128)))).decode()
    reply = grpc_web_call(url, "DiffusionService", "TransformFrame",
                          {"frame": {"streamId": stream_id, "seq": "3", "image": image, "contentType": "image/jpeg"}})
    assert reply["ok"], reply
    out = decode(base64.b64decode(reply["response"]["frame"]["image"]))
    applied = opened["response"]["config"]  # what this replica offered for its speed: at most what was asked
    assert applied["width"] <= 128 and applied["height"] <= 128 and float(opened["response"]["frameRate"]) > 0
    assert out.shape == (applied["height"], applied["width"], 3) and reply["response"]["frame"]["seq"] == "3"
    assert float(reply["response"]["frameRate"]) > 0
    closed = grpc_web_call(url, "DiffusionService", "CloseStream", {"streamId": stream_id})
    assert closed["ok"] and closed["response"]["frames"] == "1"


def test_metrics_count_frames_and_streams(stack, diffusion, pairs):
    opened = open_stream(diffusion, width=64, height=64)
    diffusion.TransformFrame(diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, 1, jpeg(pairs["flat"][0, 0]))), timeout=60)
    text = urllib3.PoolManager().request("GET", f"http://127.0.0.1:{stack.layout.services['diffusion'].metrics}/metrics").data.decode()
    transformed = [line for line in text.splitlines() if line.startswith('sd_diffusion_frames_total{outcome="transformed"}')]
    assert transformed and float(transformed[0].split()[-1]) >= 1
    assert "sd_diffusion_open_streams" in text and "sd_diffusion_batch_size_bucket" in text
    diffusion.CloseStream(diffusion_pb2.CloseStreamRequest(stream_id=opened.stream_id), timeout=10)


def test_stream_limit_and_idle_eviction(extra_service, pairs):
    channel, _ = extra_service("diffusion", {"SD_DIFFUSION_MAX_STREAMS": "2", "SD_DIFFUSION_IDLE_TIMEOUT_S": "1"})
    diffusion = diffusion_pb2_grpc.DiffusionServiceStub(channel)
    first, _second = open_stream(diffusion), open_stream(diffusion)
    err = rpc_error(diffusion.OpenStream, diffusion_pb2.OpenStreamRequest())
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "retry later" in err.details()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:  # both go idle after 1 s; the sweeper runs every 0.5 s
        try:
            open_stream(diffusion)
            break
        except grpc.RpcError:
            time.sleep(0.3)
    else:
        pytest.fail("idle streams were never evicted")
    err = rpc_error(diffusion.TransformFrame, diffusion_pb2.TransformFrameRequest(frame=frame(first.stream_id, 1, jpeg(pairs["flat"][0, 0]))))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "idle" in err.details()


def test_a_missing_checkpoint_stops_start_up_with_its_path(tmp_path):
    import socket
    import subprocess

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = subprocess.run([sys.executable, "-m", "services.diffusion.server"], capture_output=True, text=True, timeout=120, cwd=REPO,
                         env={"PATH": "/usr/bin:/bin", "SD_DIFFUSION_CHECKPOINT": str(tmp_path / "nowhere"),
                              "SD_GRPC_PORT": str(port), "SD_GRPCWEB_PORT": "0", "SD_METRICS_PORT": "0", "SD_HOST": "127.0.0.1"})
    assert run.returncode != 0
    assert "SD_DIFFUSION_CHECKPOINT" in run.stderr and "nowhere" in run.stderr and "does not exist" in run.stderr


def test_a_replica_offers_what_it_can_sustain_never_more_than_asked_and_less_under_load(extra_service):
    """Sized for 30 frames/s, no CPU repaints 512x288 in time: the offer shrinks (aspect kept, sides multiples of
    16), never grows past what was asked; every stream opened on top gets no more work and a lower rate."""
    channel, _ = extra_service("diffusion", {"SD_DIFFUSION_MIN_FPS": "30", "SD_DIFFUSION_MAX_FPS": "60"})
    diffusion = diffusion_pb2_grpc.DiffusionServiceStub(channel)
    small = open_stream(diffusion, width=64, height=64)
    assert (small.config.width, small.config.height) == (64, 64)  # never below what was asked... nor above
    offers = [open_stream(diffusion, width=512, height=288) for _ in range(3)]
    sizes = [(o.config.width, o.config.height) for o in offers]
    assert all(w < 512 and h < 288 and w % 16 == 0 and h % 16 == 0 for w, h in sizes), sizes
    assert all(abs(w / h - 512 / 288) < 0.5 for w, h in sizes), sizes
    assert [w * h for w, h in sizes] == sorted((w * h for w, h in sizes), reverse=True), sizes
    rates = [small.frame_rate] + [o.frame_rate for o in offers]
    assert all(r > 0 for r in rates) and rates == sorted(rates, reverse=True) and rates[-1] < rates[0], rates
    assert offers[0].latency_target_ms == 1500
    # Each reply advises the stream's rate for the replica's load now.
    jpeg_frame = jpeg(np.zeros((288, 512, 3), np.uint8))
    reply = diffusion.TransformFrame(diffusion_pb2.TransformFrameRequest(frame=frame(offers[0].stream_id, 1, jpeg_frame)),
                                     timeout=60)
    assert 0 < reply.frame_rate <= rates[-1] * 2, (reply.frame_rate, rates)
    assert reply.dropped or decode(reply.frame.image).shape == (sizes[0][1], sizes[0][0], 3)
    # And the size the stream goes on at, renegotiated from the cost measured now (it can only have shrunk here:
    # 30 fps is out of reach), which the next frame is repainted at whatever size it was sent.
    assert 0 < reply.width <= sizes[0][0] and 0 < reply.height <= sizes[0][1], (reply.width, reply.height, sizes[0])
    assert reply.width % 16 == 0 and reply.height % 16 == 0
    again = diffusion.TransformFrame(diffusion_pb2.TransformFrameRequest(frame=frame(offers[0].stream_id, 2, jpeg_frame)),
                                     timeout=60)
    assert again.dropped or decode(again.frame.image).shape == (reply.height, reply.width, 3)


def test_a_stream_batch_replica_answers_each_frame_with_the_one_that_finished_and_names_it(extra_service):
    """SD_DIFFUSION_STREAM_BATCH (the GPU option, run here on the CPU for its semantics): with 2 steps a frame leaves
    the pipeline one call after it came, so frame 1's call says `filling` and frame n's call carries frame n - 1,
    its seq and its client time, at the stream's size."""
    channel, _ = extra_service("diffusion", {"SD_DIFFUSION_STREAM_BATCH": "true"})
    diffusion = diffusion_pb2_grpc.DiffusionServiceStub(channel)
    opened = open_stream(diffusion, width=64, height=64, steps=2, style="night")
    assert opened.config.steps == 2
    image = jpeg(np.full((64, 64, 3), 90, np.uint8))
    replies = [diffusion.TransformFrame(diffusion_pb2.TransformFrameRequest(frame=frame(opened.stream_id, seq, image)),
                                        timeout=60) for seq in (1, 2, 3, 4)]
    assert replies[0].dropped and replies[0].dropped_reason == "filling"
    for n, reply in enumerate(replies[1:], start=2):
        assert not reply.dropped, reply.dropped_reason
        assert reply.frame.seq == n - 1 and reply.frame.client_t_ms == 1000.0 + (n - 1)
        assert decode(reply.frame.image).shape == (64, 64, 3)

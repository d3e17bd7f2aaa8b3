import numpy as np
import pytest

from scalediffusion.v1 import telemetry_pb2
from services.processor import pipeline


def test_timestamps_that_do_not_advance_are_replaced_by_nominal_steps():
    assert pipeline.normalize_timestamps([0, 33, 33, 20, 100], fps_hint=25) == [0, 33, 73, 113, 153]
    assert pipeline.normalize_timestamps([0, 0, 0], fps_hint=0) == pytest.approx([0, 33.333, 66.667], abs=1e-3)


def test_nearest_index():
    times = [0.0, 10.0, 20.0]
    assert [pipeline.nearest_index(times, t) for t in (-5, 4, 6, 14, 16, 99)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"\xff\xff\xff", "does not parse"),
        (telemetry_pb2.Telemetry(schema_version=2).SerializeToString(), "schema_version 2"),
        (telemetry_pb2.Telemetry(schema_version=1).SerializeToString(), "no ticks"),
    ],
)
def test_unusable_telemetry_is_refused_with_the_reason(data, reason):
    with pytest.raises(ValueError, match=reason):
        pipeline.parse_telemetry(data)


def test_backwards_tick_times_are_refused():
    telemetry = telemetry_pb2.Telemetry(schema_version=1)
    telemetry.ticks.add(t_ms=10)
    telemetry.ticks.add(t_ms=5)
    with pytest.raises(ValueError, match="backwards"):
        pipeline.parse_telemetry(telemetry.SerializeToString())


def test_frames_are_resized_to_256_wide_keeping_the_aspect_and_encoding_is_deterministic():
    frame = np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    a, b = pipeline.resize_and_encode(frame), pipeline.resize_and_encode(frame)
    assert a == b and a[:2] == b"\xff\xd8"
    import cv2

    assert cv2.imdecode(np.frombuffer(a, np.uint8), cv2.IMREAD_COLOR).shape == (144, 256, 3)
    assert pipeline.frame_size(640, 360) == (256, 144)
    assert pipeline.frame_size(512, 512) == (256, 256)
    assert pipeline.frame_size(640, 480) == (256, 192)
    assert pipeline.frame_size(1366, 768) == (256, 144)  # 143.9 -> the nearest even height
    assert pipeline.frame_size(360, 640) == (256, 456)  # a phone held upright: taller than wide, nothing cropped
    with pytest.raises(ValueError):
        pipeline.frame_size(0, 360)


def test_summary_counts_commands_distance_and_speed_bins():
    ms = [dict(x=float(i), y=0.0, speed=3.0, command=4 if i < 3 else 2, timestamp_ms=i * 100.0) for i in range(5)]
    summary = pipeline.summarize(ms)
    assert summary.distance_m == 4.0 and summary.frame_count == 5 and summary.duration_s == 0.4
    assert summary.command_counts == {2: 2, 4: 3}
    assert summary.speed_hist[1] == 5  # 3 m/s falls in [2, 5)


def camera_ticks(heights: list[float], fovs: list[float]) -> list[telemetry_pb2.TelemetryTick]:
    ticks = []
    for z, fov in zip(heights, fovs):
        tick = telemetry_pb2.TelemetryTick()
        tick.camera.position.z, tick.camera.fov_deg = z, fov
        ticks.append(tick)
    return ticks


def test_camera_info_records_size_fov_and_dash_or_chase():
    dash = pipeline.camera_info(camera_ticks([1.3, 1.3, 3.0], [60.0, 90.0, 70.0]), [(1280, 720)] * 3)
    assert dash == {
        "width": 1280,
        "height": 720,
        "vertical_fov_deg": 70.0,  # the median
        "mode": "dash",  # two of three frames from 1.3 m
        "resize": {"width": 256, "height": 144, "keep_aspect": True, "method": "processor.downscale"},
    }
    chase = pipeline.camera_info(camera_ticks([3.0, 3.0, 1.3], [0.0, 50.0, 0.0]), [(640, 360), (640, 360), (320, 180)])
    assert (chase["mode"], chase["vertical_fov_deg"]) == ("chase", 50.0), "ticks without a FOV are left out"
    assert (chase["width"], chase["height"]) == (640, 360), "the most common decoded size"
    unset = pipeline.camera_info(camera_ticks([0.0], [0.0]), [(160, 96)])
    assert (unset["mode"], unset["vertical_fov_deg"]) == ("dash", 0.0)

import random
import struct
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalediffusion.synthetic import write_vp8_webm
from scalediffusion.webm import WebmError, WebmInfo, probe_webm

FPS = 30.0
SECONDS = 2.0
WIDTH, HEIGHT = 320, 240
TRACKS_ID_BYTES = bytes.fromhex("1654AE6B")
UNKNOWN = object()  # size marker for el(): write the reserved "unknown size" (all ones, 8 bytes)


# --- a small EBML writer, enough for MediaRecorder-style streams ---


def vint(value: int) -> bytes:
    """Shortest EBML size VINT for value (never the all-ones pattern, which means unknown size)."""
    for length in range(1, 9):
        if value < (1 << (7 * length)) - 1:
            return ((1 << (7 * length)) | value).to_bytes(length, "big")
    raise ValueError(value)


def el(element_id: int, payload: bytes = b"", size: object = None) -> bytes:
    id_bytes = element_id.to_bytes((element_id.bit_length() + 7) // 8, "big")
    size_bytes = b"\x01\xff\xff\xff\xff\xff\xff\xff" if size is UNKNOWN else vint(len(payload))
    return id_bytes + size_bytes + payload


def uint(element_id: int, value: int) -> bytes:
    return el(element_id, value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def text(element_id: int, value: str) -> bytes:
    return el(element_id, value.encode())


def ebml_header(doc_type: str = "webm") -> bytes:
    versions = uint(0x4286, 1) + uint(0x42F7, 1) + uint(0x42F2, 4) + uint(0x42F3, 8)
    return el(0x1A45DFA3, versions + text(0x4282, doc_type))


def info(scale: int = 1_000_000, duration: float | None = None) -> bytes:
    body = uint(0x2AD7B1, scale) + text(0x4D80, "Chrome") + text(0x5741, "Chrome")
    if duration is not None:
        body += el(0x4489, struct.pack(">d", duration))
    return el(0x1549A966, body)


def video_track(number: int, codec: str = "V_VP8", width: int = 640, height: int = 480) -> bytes:
    video = el(0xE0, uint(0xB0, width) + uint(0xBA, height))
    return el(0xAE, uint(0xD7, number) + uint(0x73C5, number * 1000 + 7) + uint(0x83, 1) + text(0x86, codec) + video)


def audio_track(number: int) -> bytes:
    audio = el(0xE1, el(0xB5, struct.pack(">d", 48000.0)) + uint(0x9F, 1))
    return el(0xAE, uint(0xD7, number) + uint(0x73C5, number * 1000 + 9) + uint(0x83, 2) + text(0x86, "A_OPUS") + audio)


def block_body(track: int, relative: int, flags: int = 0x80, payload: bytes = b"\x9d\x01\x2a frame") -> bytes:
    return vint(track) + struct.pack(">hB", relative, flags) + payload


def simple_block(track: int, relative: int, **kw) -> bytes:
    return el(0xA3, block_body(track, relative, **kw))


def block_group(track: int, relative: int) -> bytes:
    return el(0xA0, el(0xA1, block_body(track, relative, flags=0)) + uint(0x9B, 33))


def cluster(timestamp: int, children: bytes, unknown: bool = True) -> bytes:
    return el(0x1F43B675, uint(0xE7, timestamp) + children, size=UNKNOWN if unknown else None)


def media_recorder_stream(video_ms: list[int], cluster_every_ms: int = 1000) -> bytes:
    """Like Chrome's MediaRecorder: unknown-size Segment and Clusters, no Duration, no Cues, no SeekHead,
    video track 1 and audio track 2 (an Opus block every 20 ms) interleaved in timestamp order."""
    audio_ms = list(range(0, video_ms[-1] + 1, 20))
    events = sorted([(t, 1) for t in video_ms] + [(t, 2) for t in audio_ms])
    clusters = b""
    start = None
    body = b""
    for t, track in events:
        if start is None or t - start >= cluster_every_ms:
            if start is not None:
                clusters += cluster(start, body)
            start, body = t, b""
        body += simple_block(track, t - start)
    clusters += cluster(start, body)
    segment = el(0x18538067, info() + el(0x1654AE6B, video_track(1) + audio_track(2)) + clusters, size=UNKNOWN)
    return ebml_header() + segment


def irregular_timestamps(count: int, seed: int = 3) -> list[int]:
    rng = random.Random(seed)
    out, t = [], 0
    for _ in range(count):
        out.append(t)
        t += rng.choice([30, 33, 34, 41, 50, 66])  # jitter and dropped frames, as a busy tab records
    return out


# --- files written by OpenCV's FFmpeg backend ---


@pytest.fixture(scope="module")
def opencv_webm(tmp_path_factory) -> tuple[bytes, int]:
    path = tmp_path_factory.mktemp("webm") / "opencv.webm"
    try:
        frames = write_vp8_webm(path, SECONDS, FPS, WIDTH, HEIGHT)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    return path.read_bytes(), frames


def test_opencv_file_counts_every_frame(opencv_webm):
    data, frames = opencv_webm
    info_ = probe_webm(data)
    assert info_.frame_count == frames
    assert abs(info_.duration_ms - (frames - 1) * 1000 / FPS) <= 1000 / FPS
    assert info_.first_timestamp_ms == 0.0
    assert (info_.width, info_.height, info_.codec_id) == (WIDTH, HEIGHT, "V_VP8")
    assert info_.truncated is False
    assert info_.declared_duration_ms == pytest.approx(SECONDS * 1000, abs=1000 / FPS)


@pytest.mark.parametrize("seconds, fps, width, height", [(1.0, 25.0, 160, 96), (0.5, 60.0, 64, 48)])
def test_opencv_other_rates_and_sizes(tmp_path, seconds, fps, width, height):
    path = tmp_path / "v.webm"
    try:
        frames = write_vp8_webm(path, seconds, fps, width, height)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    info_ = probe_webm(path.read_bytes())
    assert info_.frame_count == frames
    assert abs(info_.duration_ms - (frames - 1) * 1000 / fps) <= 1000 / fps
    assert (info_.width, info_.height) == (width, height)


def test_accepts_any_bytes_like(opencv_webm):
    data, frames = opencv_webm
    assert probe_webm(bytearray(data)).frame_count == frames
    assert probe_webm(memoryview(data)).frame_count == frames


@pytest.mark.parametrize("keep", [0.05, 0.3, 0.5, 0.77, 0.99])
def test_cut_off_file_reports_what_was_seen(opencv_webm, keep):
    data, frames = opencv_webm
    info_ = probe_webm(data[: int(len(data) * keep)])
    assert info_.truncated is True
    assert 0 <= info_.frame_count <= frames
    assert info_.codec_id == "V_VP8"


def test_cut_files_never_count_more_as_they_shrink(opencv_webm):
    data, _ = opencv_webm
    counts = [probe_webm(data[:cut]).frame_count for cut in range(len(data), len(data) // 4, -len(data) // 23)]
    assert counts == sorted(counts, reverse=True)


def test_cut_before_tracks_complete_is_an_error(opencv_webm):
    data, _ = opencv_webm
    tracks_at = data.index(TRACKS_ID_BYTES)
    for cut in (1, 3, 4, 10, 20, 35, tracks_at, tracks_at + 6, tracks_at + 20):
        with pytest.raises(WebmError):
            probe_webm(data[:cut])


# --- MediaRecorder-style streams built by hand ---


def test_media_recorder_stream_counts_only_video():
    stamps = irregular_timestamps(150)
    info_ = probe_webm(media_recorder_stream(stamps))
    assert info_.frame_count == 150
    assert info_.first_timestamp_ms == 0.0
    assert info_.duration_ms == stamps[-1] - stamps[0]
    assert info_.declared_duration_ms is None
    assert info_.truncated is False
    assert (info_.width, info_.height, info_.codec_id) == (640, 480, "V_VP8")


def test_first_timestamp_and_small_clusters():
    stamps = [t + 1234 for t in irregular_timestamps(40, seed=9)]
    info_ = probe_webm(media_recorder_stream(stamps, cluster_every_ms=200))
    assert info_.frame_count == 40
    assert info_.first_timestamp_ms == 1234.0
    assert info_.duration_ms == stamps[-1] - stamps[0]


def test_unknown_size_cluster_ends_at_cues_and_tags():
    tracks = el(0x1654AE6B, audio_track(1) + video_track(2, codec="V_VP9", width=1280, height=720))
    c1 = cluster(0, simple_block(2, 0) + simple_block(1, 5) + simple_block(2, 33))
    c2 = cluster(66, el(0xEC, b"\0" * 5) + simple_block(2, 0) + block_group(2, 34) + simple_block(1, 10))
    cues = el(0x1C53BB6B, el(0xBB, uint(0xB3, 0)))  # CuePoint IDs would be foreign inside a Cluster
    tags = el(0x1254C367, el(0x7373, b""))
    segment = el(0x18538067, info() + tracks + c1 + cues + c2 + tags, size=UNKNOWN)
    info_ = probe_webm(ebml_header("matroska") + segment)
    assert info_.frame_count == 4
    assert info_.duration_ms == 100.0
    assert (info_.width, info_.height, info_.codec_id) == (1280, 720, "V_VP9")


def test_known_sizes_negative_relative_times_and_scale():
    # TimestampScale 100 us: ticks are 0.1 ms. Relative timestamps may be negative.
    tracks = el(0x1654AE6B, video_track(1))
    clusters = cluster(1000, simple_block(1, -200) + simple_block(1, 0), unknown=False)
    clusters += cluster(2000, simple_block(1, 0) + block_group(1, 500), unknown=False)
    segment = el(0x18538067, info(scale=100_000, duration=1800.0) + tracks + clusters)
    info_ = probe_webm(ebml_header() + segment)
    assert info_.frame_count == 4
    assert info_.first_timestamp_ms == pytest.approx(80.0)
    assert info_.duration_ms == pytest.approx(170.0)
    assert info_.declared_duration_ms == pytest.approx(180.0)
    assert info_.truncated is False


def test_laced_blocks_count_each_frame():
    tracks = el(0x1654AE6B, video_track(1) + audio_track(2))
    xiph = block_body(1, 0, flags=0x82, payload=bytes([2, 10, 10]) + b"x" * 30)  # 3 frames
    fixed = block_body(1, 40, flags=0x84, payload=bytes([3]) + b"y" * 40)  # 4 frames
    ebml = block_body(2, 40, flags=0x86, payload=bytes([5]) + b"z" * 40)  # audio: not counted
    body = el(0xA3, xiph) + el(0xA3, fixed) + el(0xA3, ebml)
    info_ = probe_webm(ebml_header() + el(0x18538067, info() + tracks + cluster(0, body), size=UNKNOWN))
    assert info_.frame_count == 7


def test_clusters_before_tracks_still_count():
    tracks = el(0x1654AE6B, video_track(3))
    segment = el(0x18538067, info() + cluster(0, simple_block(3, 0) + simple_block(3, 33)) + tracks, size=UNKNOWN)
    assert probe_webm(ebml_header() + segment).frame_count == 2


def test_no_blocks_is_zero_frames():
    segment = el(0x18538067, info() + el(0x1654AE6B, video_track(1)), size=UNKNOWN)
    info_ = probe_webm(ebml_header() + segment)
    assert (info_.frame_count, info_.duration_ms, info_.truncated) == (0, 0.0, False)


def test_cut_media_recorder_stream():
    full = media_recorder_stream(irregular_timestamps(90))
    inside_payload = full.index(b"\x9d\x01\x2a frame", len(full) // 2) + 3
    info_ = probe_webm(full[:inside_payload])
    assert info_.truncated is True
    assert 0 < info_.frame_count < 90


def test_audio_only_is_an_error():
    segment = el(0x18538067, info() + el(0x1654AE6B, audio_track(1)) + cluster(0, simple_block(1, 0)), size=UNKNOWN)
    with pytest.raises(WebmError, match="no video track"):
        probe_webm(ebml_header() + segment)


def test_max_blocks_is_a_hard_limit():
    data = media_recorder_stream(irregular_timestamps(20))
    with pytest.raises(WebmError, match="max_blocks"):
        probe_webm(data, max_blocks=10)


def test_child_overrunning_its_parent_is_an_error():
    tracks = el(0x1654AE6B, video_track(1))
    bad_cluster = bytes.fromhex("1F43B675") + vint(3) + simple_block(1, 0)  # says 3 bytes, holds more
    segment = el(0x18538067, info() + tracks + bad_cluster + cluster(33, simple_block(1, 0), unknown=False))
    with pytest.raises(WebmError, match="overruns"):
        probe_webm(ebml_header() + segment)


def test_sixty_second_recording_is_fast():
    # 1800 video frames of ~20 kB (36 MB), like a 60 s 720p recording, plus 50 audio blocks a second.
    frame = b"\x9d\x01\x2a" + b"\x55" * 20_000
    stamps = [round(i * 1000 / 30) for i in range(1800)]
    tracks = el(0x1654AE6B, video_track(1, width=1280, height=720) + audio_track(2))
    clusters = []
    for second in range(60):
        base = second * 1000
        body = [simple_block(1, t - base, payload=frame) for t in stamps if base <= t < base + 1000]
        body += [simple_block(2, t, payload=b"o" * 120) for t in range(0, 1000, 20)]
        clusters.append(cluster(base, b"".join(body)))
    data = ebml_header() + el(0x18538067, info() + tracks + b"".join(clusters), size=UNKNOWN)
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        info_ = probe_webm(data)
        best = min(best, time.perf_counter() - started)
    assert info_.frame_count == 1800
    assert info_.duration_ms == stamps[-1]
    assert best < 0.1, f"probe took {best * 1000:.1f} ms"


# --- inputs that are not WebM ---


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x1a\x45",
        bytes(random.Random(1).randbytes(4096)),
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\0" * 100,
        ebml_header("foo") + el(0x18538067, info() + el(0x1654AE6B, video_track(1))),
        el(0x1A45DFA3, uint(0x4286, 1)) + el(0x18538067, b""),  # no DocType
        b"\x1a\x45\xdf\xa3\x01\xff\xff\xff\xff\xff\xff\xff" + text(0x4282, "webm"),  # unknown-size header
        ebml_header(),  # header but no Segment
        ebml_header() + el(0x18538067, info(), size=UNKNOWN),  # no Tracks
    ],
    ids=[
        "empty", "two-bytes", "random", "jpeg", "doctype-foo", "no-doctype", "unknown-size-header", "no-segment",
        "no-tracks",
    ],
)
def test_non_webm_is_refused(data):
    with pytest.raises(WebmError):
        probe_webm(data)


# --- properties: WebmInfo or WebmError, never anything else ---


def probe_or_refuse(data: bytes) -> None:
    try:
        result = probe_webm(data, max_blocks=10_000)
    except WebmError:
        return
    assert isinstance(result, WebmInfo)
    assert result.frame_count >= 0 and result.width >= 0 and result.height >= 0


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes(data):
    probe_or_refuse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_after_a_valid_header(tail):
    probe_or_refuse(ebml_header() + tail)
    probe_or_refuse(ebml_header() + bytes.fromhex("18538067") + b"\x01\xff\xff\xff\xff\xff\xff\xff" + tail)


mutations = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=12)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0, 1), edits=mutations)
def test_mutated_opencv_file(opencv_webm, cut, edits):
    # Mutate the first 2 kB (headers, first cluster header) most of the time: that is where structure lives.
    data = bytearray(opencv_webm[0])
    for where, value in edits:
        span = 2048 if value % 2 else len(data)
        data[int(where * min(span, len(data)))] = value
    probe_or_refuse(bytes(data[: int(len(data) * cut)]) if cut < 1 else bytes(data))


@settings(max_examples=300, deadline=None)
@given(cut=st.floats(0, 1), edits=mutations)
def test_mutated_media_recorder_stream(cut, edits):
    data = bytearray(MEDIA_RECORDER_SAMPLE)
    for where, value in edits:
        data[int(where * len(data))] = value
    probe_or_refuse(bytes(data[: int(len(data) * cut)]))


MEDIA_RECORDER_SAMPLE = media_recorder_stream(irregular_timestamps(12), cluster_every_ms=100)

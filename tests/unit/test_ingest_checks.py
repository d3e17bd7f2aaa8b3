import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalediffusion import synthetic
from scalediffusion.webm import WebmInfo
from services.ingest import auth, checks
from services.ingest.sessions import CheckFailed

LIMITS = checks.TelemetryLimits()


def good(**kw):
    return synthetic.make_telemetry("s1", seconds=kw.pop("seconds", 3.0), tick_hz=30, **kw)


def test_good_telemetry_passes():
    assert len(checks.check_telemetry(good().SerializeToString(), "s1", LIMITS).ticks) == int(3.25 * 30) + 1


@pytest.mark.parametrize(
    "mutate, check",
    [
        (lambda t: setattr(t, "schema_version", 9), "telemetry_schema"),
        (lambda t: setattr(t, "session_id", "other"), "telemetry_session"),
        (lambda t: setattr(t, "video_fps", float("nan")), "telemetry_geometry"),
        (lambda t: t.ticks[5].__setattr__("t_ms", t.ticks[4].t_ms), "telemetry_time"),
        (lambda t: setattr(t.ticks[3].controls, "steer", 1.5), "telemetry_controls"),
        (lambda t: setattr(t.ticks[3].controls, "brake", math.inf), "telemetry_controls"),
        (lambda t: setattr(t.ticks[3].vehicle, "speed", 200.0), "telemetry_vehicle"),
        (lambda t: setattr(t.ticks[3].camera, "fov_deg", 270.0), "telemetry_camera"),
        (lambda t: setattr(t.ticks[3], "command", 42), "telemetry_command"),
        (lambda t: setattr(t.rtt_samples[1], "rtt_ms", -1.0), "telemetry_rtt"),
        (lambda t: t.ticks.__delitem__(slice(2, None)), "telemetry_duration"),
        (lambda t: setattr(t, "recording_start_t_ms", float("nan")), "telemetry_recording"),
        (lambda t: setattr(t, "recording_start_t_ms", -5.0), "telemetry_recording"),
        (lambda t: setattr(t, "recording_stop_t_ms", math.inf), "telemetry_recording"),
        (lambda t: setattr(t, "recording_stop_t_ms", -1.0), "telemetry_recording"),
        (lambda t: (setattr(t, "recording_start_t_ms", 900.0), setattr(t, "recording_stop_t_ms", 800.0)), "telemetry_recording"),
        (lambda t: setattr(t, "recording_start_t_ms", 1e9), "telemetry_recording"),
    ],
)
def test_each_broken_rule_names_its_check(mutate, check):
    telemetry = good()
    mutate(telemetry)
    with pytest.raises(CheckFailed) as info:
        checks.check_telemetry(telemetry.SerializeToString(), "s1", LIMITS)
    assert info.value.check == check


def with_frames(t, shown_render):
    for shown, render in shown_render:
        t.frames.add(shown_t_ms=shown, render_t_ms=render, source=2 if render < shown else 1)
    return t


@pytest.mark.parametrize(
    "frames",
    [
        [(500.0, 400.0), (500.0, 450.0)],  # not after the previous one
        [(500.0, 600.0)],  # shows a moment after it was shown
        [(500.0, float("nan"))],
        [(500.0, -50.0)],  # before the first tick
        [(1e7, 100.0)],  # long after the recording
    ],
)
def test_impossible_frame_records_are_refused(frames):
    telemetry = with_frames(good(), frames)
    with pytest.raises(CheckFailed) as info:
        checks.check_telemetry(telemetry.SerializeToString(), "s1", LIMITS)
    assert info.value.check == "telemetry_frames"
    fine = with_frames(good(), [(300.0, 300.0), (400.0, 150.0)])
    assert len(checks.check_telemetry(fine.SerializeToString(), "s1", LIMITS).frames) == 2


def test_frame_records_must_describe_every_frame_of_the_video():
    telemetry = with_frames(good(seconds=10.0, video_fps=30), [(250 + 33.3 * i, 250 + 33.3 * i) for i in range(300)])
    checks.check_consistency(telemetry, video(300, 9967), LIMITS)
    with pytest.raises(CheckFailed) as err:
        checks.check_consistency(telemetry, video(299, 9967), LIMITS)
    assert err.value.check == "video_frame_records"
    cut = WebmInfo(frame_count=200, duration_ms=9967, first_timestamp_ms=0, width=640, height=360, codec_id="V_VP8", truncated=True, declared_duration_ms=None)
    checks.check_consistency(telemetry, cut, LIMITS)  # a cut-off upload: the frames before the cut are described


def test_too_few_ticks_per_second_is_refused():
    telemetry = synthetic.make_telemetry("s1", seconds=10.0, tick_hz=2)
    with pytest.raises(CheckFailed, match="Hz") as info:
        checks.check_telemetry(telemetry.SerializeToString(), "s1", LIMITS)
    assert info.value.check == "telemetry_rate"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_either_pass_or_fail_with_a_named_check(data):
    try:
        checks.check_telemetry(data, "s1", LIMITS)
    except CheckFailed as err:
        assert err.check.startswith("telemetry_")


def video(frames: int, duration_ms: float) -> WebmInfo:
    return WebmInfo(frame_count=frames, duration_ms=duration_ms, first_timestamp_ms=0, width=640, height=360, codec_id="V_VP8", truncated=False, declared_duration_ms=None)


def test_consistency_accepts_a_matching_video_and_rejects_impossible_ones():
    telemetry = good(seconds=10.0, video_fps=30)
    checks.check_consistency(telemetry, video(300, 9967), LIMITS)
    for info, check in ((video(0, 0), "video_empty"), (video(60, 1967), "video_duration_mismatch"), (video(3000, 9967), "video_frame_rate"), (video(5, 9967), "video_frame_rate")):
        with pytest.raises(CheckFailed) as err:
            checks.check_consistency(telemetry, info, LIMITS)
        assert err.value.check == check


def test_tokens_round_trip_and_tampering_is_detected():
    signer = auth.TokenSigner(b"k" * 32)
    token, claims = signer.issue("p1", auth.PLAYER, 60, now=1000)
    assert signer.verify(token, now=1010) == claims
    header, body, sig = token.split(".")
    for bad, reason in ((f"{header}.{body}x.{sig}", "signature"), ("a.b", "malformed"), ("", "malformed")):
        with pytest.raises(auth.AuthError) as err:
            signer.verify(bad, now=1010)
        assert err.value.reason == reason
    with pytest.raises(auth.AuthError) as err:
        signer.verify(token, now=1060)
    assert err.value.reason == "expired"
    with pytest.raises(auth.AuthError) as err:
        auth.TokenSigner(b"j" * 32).verify(token, now=1010)
    assert err.value.reason == "signature"


def test_bearer_header_parsing():
    assert auth.bearer_token({"authorization": "Bearer abc"}) == "abc"
    for headers, reason in (({}, "missing"), ({"authorization": "Token abc"}, "malformed"), ({"authorization": "Bearer "}, "malformed")):
        with pytest.raises(auth.AuthError) as err:
            auth.bearer_token(headers)
        assert err.value.reason == reason


def test_wallets_are_base58_32_byte_keys():
    assert auth.validate_wallet("7EcDhSYGxXyscszYEp35KHN8vvw3svAuLKTzXwCFLtV")
    assert auth.validate_wallet("11111111111111111111111111111111")  # the system program: 32 zero bytes
    for bad in ("", "0" * 40, "z" * 44, "I" * 40):
        with pytest.raises(ValueError):
            auth.validate_wallet(bad)


def test_synthetic_sessions_of_any_allowed_length_pass_the_checks():
    """make_telemetry had no drag: after ~69 s its car ran past the vehicle speed limit and no longer passed."""
    telemetry = synthetic.make_telemetry("s1", seconds=240.0, tick_hz=30)
    checked = checks.check_telemetry(telemetry.SerializeToString(), "s1", LIMITS)
    assert max(t.vehicle.speed for t in checked.ticks) < 31.0


def test_every_check_that_rejects_a_session_records_a_typed_reason():
    import ast
    import inspect

    from scalediffusion.v1 import processor_pb2
    from services.ingest.sessions import REJECTING_CHECKS, as_rejection

    # The names check_consistency can raise (read from its source, so a new check cannot be forgotten).
    tree = ast.parse(inspect.getsource(checks.check_consistency))
    raised = {n.args[0].value for n in ast.walk(tree)
              if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "CheckFailed" and isinstance(n.args[0], ast.Constant)}
    assert raised and raised <= set(REJECTING_CHECKS)
    rejection = as_rejection(CheckFailed("video_duration_mismatch", "video lasts 2.0 s but telemetry 30.0 s"))
    assert rejection.reason == processor_pb2.REJECTION_REASON_TELEMETRY_MISMATCH
    assert (rejection.metric, rejection.detail) == ("video_duration_mismatch", "video lasts 2.0 s but telemetry 30.0 s")
    with pytest.raises(KeyError, match="request error"):
        as_rejection(CheckFailed("telemetry_parse", "not a Telemetry message"))

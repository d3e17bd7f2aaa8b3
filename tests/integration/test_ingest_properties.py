"""Property-based: whatever telemetry a client uploads, CompleteSession answers with a clear status or a recorded
outcome; nothing escapes the servicer as INTERNAL/UNKNOWN."""

from __future__ import annotations

import itertools

import grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scalediffusion import synthetic
from scalediffusion.uploader import upload_to_target
from scalediffusion.v1 import ingest_pb2, telemetry_pb2
from tests.integration.conftest import unique_video

_counter = itertools.count()
finite_or_not = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(-1e3, 1e3))


@st.composite
def telemetry_bytes(draw) -> bytes:
    kind = draw(st.sampled_from(["random", "mutated", "structured"]))
    base = synthetic.make_telemetry("", seconds=2.0, tick_hz=20, video_fps=15, width=160, height=96)
    if kind == "random":
        return draw(st.binary(max_size=2000))
    if kind == "mutated":
        data = bytearray(base.SerializeToString())
        for _ in range(draw(st.integers(1, 20))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data[: draw(st.integers(0, len(data)))])
    t = telemetry_pb2.Telemetry()
    t.CopyFrom(base)
    t.schema_version = draw(st.sampled_from([0, 1, 1, 1, 2]))
    t.video_fps = draw(st.sampled_from([15.0, 0.0, -1.0, float("nan"), 1e9]))
    for tick in t.ticks[: draw(st.integers(0, 5))]:
        tick.t_ms = draw(finite_or_not)
        tick.controls.steer = draw(finite_or_not)
        tick.vehicle.speed = draw(finite_or_not)
        tick.command = draw(st.integers(-3, 12))
    if draw(st.booleans()):
        del t.ticks[draw(st.integers(0, len(t.ticks))):]
    for sample in t.rtt_samples[:2]:
        sample.rtt_ms = draw(finite_or_not)
    return t.SerializeToString()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=telemetry_bytes())
def test_malformed_telemetry_always_gets_a_clear_answer(stack, ingest, small_session, data):
    video, _ = small_session
    player = f"hyp-{next(_counter)}"
    ops = stack.auth("ops", operator=True)
    started = ingest.StartSession(ingest_pb2.StartSessionRequest(player_id=player), metadata=ops)
    payload = {ingest_pb2.UPLOAD_KIND_VIDEO: unique_video(video, player), ingest_pb2.UPLOAD_KIND_TELEMETRY: data or b"\x00"}
    for target in started.targets:
        upload_to_target(target, payload[target.kind])
    try:
        reply = ingest.CompleteSession(ingest_pb2.CompleteSessionRequest(session_id=started.session_id), metadata=ops)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (err.code(), err.details())
        assert err.details().startswith("telemetry_"), err.details()
    else:
        assert reply.session.state in (ingest_pb2.SESSION_STATE_UPLOADED, ingest_pb2.SESSION_STATE_REJECTED)

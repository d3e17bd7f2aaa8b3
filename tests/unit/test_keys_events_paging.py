import grpc
import pytest

from scalediffusion.platform import events, keys
from scalediffusion.platform.paging import decode_page_token, encode_page_token
from scalediffusion.platform.rpc import RpcError, snake_case
from scalediffusion.v1 import events_pb2


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "_hidden", "x" * 129, "sp ace", "ü"])
def test_ids_that_could_escape_their_prefix_are_refused(bad):
    with pytest.raises(keys.InvalidId):
        keys.check_id("session id", bad)


def test_key_layout_matches_the_design():
    assert keys.video_key("p1", "s1") == "p1/s1/video.webm"
    assert keys.frame_key("default", keys.segment_id("s1", 2), 7) == "default/route_s1_002/rgb_front/00007.jpg"
    assert keys.measurements_key("default", "route_s1_000") == "default/route_s1_000/measurements.json"
    assert keys.manifest_key("s1") == "_sessions/s1.json"


def test_event_round_trip_stamps_the_schema_version():
    value, headers = events.encode(events_pb2.SessionUploaded(session_id="s1"))
    decoded = events.decode(value, headers, events_pb2.SessionUploaded)
    assert decoded.session_id == "s1" and decoded.schema_version == events.SCHEMA_VERSION


@pytest.mark.parametrize(
    "value, headers, reason",
    [
        (b"\xff\xfe", [], "not a valid"),
        (None, [], "empty record"),
        (b"", [(events.TYPE_HEADER, b"scalediffusion.v1.Telemetry")], "expected scalediffusion.v1.SessionUploaded"),
        (events_pb2.SessionUploaded(schema_version=99).SerializeToString(), [], "schema_version 99"),
    ],
)
def test_records_that_are_not_the_expected_event_are_poison(value, headers, reason):
    with pytest.raises(events.PoisonMessage, match=reason):
        events.decode(value, headers, events_pb2.SessionUploaded)


def test_page_tokens_round_trip_and_garbage_is_invalid_argument():
    assert decode_page_token(encode_page_token("_sessions/abc.json")) == "_sessions/abc.json"
    assert decode_page_token("") == ""
    with pytest.raises(RpcError) as info:
        decode_page_token("%%%")
    assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT


def test_snake_case_matches_connectrpc_method_names():
    assert snake_case("StartSession") == "start_session"
    assert snake_case("GetEvaluationReport") == "get_evaluation_report"


def test_ingest_record_keys_round_trip_and_refuse_ids_that_would_nest():
    assert keys.player_session_key("p1", "s1") == "_index/player/p1/s1"
    assert keys.open_sessions_prefix() == "_index/open/" and keys.open_sessions_prefix("p1") == "_index/open/p1/"
    assert keys.parse_open_session_key(keys.open_session_key("p1", "s1")) == ("p1", "s1")
    assert keys.last_component(keys.pending_key("s1")) == "s1" and keys.pending_key("s1").startswith(keys.PENDING_PREFIX)
    assert keys.session_of_manifest_key(keys.manifest_key("s1")) == "s1"
    assert keys.reward_key("p1", "route_s1_000").startswith(keys.rewards_prefix("p1"))
    assert keys.payout_key("p1", "2026-12") == "_payouts/p1/2026-12.json"
    for bad in ("a/b", "../x", ""):
        with pytest.raises(keys.InvalidId):
            keys.payout_key("p1", bad)
        with pytest.raises(keys.InvalidId):
            keys.revoked_token_key(bad)


def test_no_module_spells_out_a_key_of_the_layout_itself():
    """Every S3 key is built in scalediffusion/platform/keys.py: a literal like "_players/" elsewhere is a second
    copy of the layout."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    literal = re.compile(r"""["'](_index|_videos|_players|_auth|_rewards|_payouts|_sessions|_jobs|_reports)/""")
    offenders = [f"{p.relative_to(root)}:{n}" for base in ("scalediffusion", "services") for p in (root / base).rglob("*.py")
                 if p.name != "keys.py" for n, line in enumerate(p.read_text().splitlines(), 1) if literal.search(line)]
    assert offenders == []

import pytest

from services.ingest import sessions
from scalediffusion.v1 import ingest_pb2

LIMITS = sessions.Limits(max_video_bytes=1000, max_telemetry_bytes=100)


def session() -> ingest_pb2.Session:
    return sessions.new_session("p1", "s1", "raw", now=0)


def test_session_ids_are_time_ordered_and_unique():
    a, b = sessions.new_session_id(now=1), sessions.new_session_id(now=2)
    assert a < b and len(a) == 24
    assert len({sessions.new_session_id(now=1) for _ in range(100)}) == 100


def test_claimed_objects_default_to_the_expected_keys():
    objects = sessions.check_claimed_objects(session(), [])
    assert objects[ingest_pb2.UPLOAD_KIND_VIDEO].key == "p1/s1/video.webm"
    assert objects[ingest_pb2.UPLOAD_KIND_TELEMETRY].key == "p1/s1/telemetry.pb"


@pytest.mark.parametrize(
    "claimed, check",
    [
        ([ingest_pb2.UploadedObject(kind=ingest_pb2.UPLOAD_KIND_VIDEO, key="p2/s1/video.webm")], "object_key"),
        ([ingest_pb2.UploadedObject(kind=ingest_pb2.UPLOAD_KIND_LABELS)], "object_kind"),
        ([ingest_pb2.UploadedObject(kind=ingest_pb2.UPLOAD_KIND_VIDEO)] * 2, "object_kind"),
    ],
)
def test_bad_claims_name_the_failed_check(claimed, check):
    with pytest.raises(sessions.CheckFailed) as info:
        sessions.check_claimed_objects(session(), claimed)
    assert info.value.check == check


@pytest.mark.parametrize(
    "kind, declared, stored, check",
    [
        (ingest_pb2.UPLOAD_KIND_VIDEO, 0, None, "object_missing"),
        (ingest_pb2.UPLOAD_KIND_VIDEO, 0, 0, "object_empty"),
        (ingest_pb2.UPLOAD_KIND_VIDEO, 0, 1001, "object_too_large"),
        (ingest_pb2.UPLOAD_KIND_TELEMETRY, 0, 101, "object_too_large"),
        (ingest_pb2.UPLOAD_KIND_VIDEO, 10, 11, "object_size"),
    ],
)
def test_stored_object_checks(kind, declared, stored, check):
    obj = ingest_pb2.UploadedObject(kind=kind, key="k", size_bytes=declared)
    with pytest.raises(sessions.CheckFailed) as info:
        sessions.check_stored_size(obj, stored, LIMITS)
    assert info.value.check == check


def test_manifest_round_trip():
    s = session()
    s.state = ingest_pb2.SESSION_STATE_UPLOADED
    parsed, published = sessions.parse_manifest(sessions.manifest_doc(s, True))
    assert parsed == s and published
    with pytest.raises(ValueError):
        sessions.parse_manifest({"nope": 1})

import pytest

from scalediffusion.v1 import ingest_pb2
from services.ingest import sessions

LIMITS = sessions.Limits(max_video_bytes=1000, max_telemetry_bytes=100)


def session() -> ingest_pb2.Session:
    return sessions.new_session("p1", "s1", "raw", [], LIMITS, now=0)


def test_session_ids_are_time_ordered_and_unique():
    a, b = sessions.new_session_id(now=1), sessions.new_session_id(now=2)
    assert a < b and len(a) == 24
    assert len({sessions.new_session_id(now=1) for _ in range(100)}) == 100


def test_claimed_objects_default_to_the_expected_keys():
    objects = sessions.check_claimed_objects(session(), [])
    assert objects[(ingest_pb2.UPLOAD_KIND_VIDEO, "")].key == "p1/s1/video.webm"
    assert objects[(ingest_pb2.UPLOAD_KIND_TELEMETRY, "")].key == "p1/s1/telemetry.pb"


def test_label_streams_are_optional_objects_under_the_session():
    s = sessions.new_session("p1", "s1", "raw", ["semantic"], LIMITS, now=0)
    objects = sessions.check_claimed_objects(s, [ingest_pb2.UploadedObject(kind=ingest_pb2.UPLOAD_KIND_LABELS, label_stream="semantic")])
    assert objects[(ingest_pb2.UPLOAD_KIND_LABELS, "semantic")].key == "p1/s1/labels/semantic.webm"
    assert (ingest_pb2.UPLOAD_KIND_LABELS, "semantic") not in sessions.check_claimed_objects(s, [])
    with pytest.raises(sessions.CheckFailed):
        sessions.check_label_streams(["a", "a"], LIMITS)
    with pytest.raises(sessions.CheckFailed):
        sessions.check_label_streams(["../x"], LIMITS)


def test_multipart_parts_must_be_one_to_n_with_etags():
    obj = ingest_pb2.UploadedObject(parts=[ingest_pb2.UploadedPart(part_number=2, etag="b"), ingest_pb2.UploadedPart(part_number=1, etag='"a"')])
    assert sessions.check_parts(obj, 4) == [(1, "a"), (2, "b")]
    for parts in ([], [ingest_pb2.UploadedPart(part_number=2, etag="b")], [ingest_pb2.UploadedPart(part_number=1, etag="")]):
        with pytest.raises(sessions.CheckFailed):
            sessions.check_parts(ingest_pb2.UploadedObject(parts=parts), 4)
    assert sessions.part_count(17 * 1024 * 1024, sessions.Limits(part_size_bytes=8 * 1024 * 1024)) == 3


@pytest.mark.parametrize(
    "claimed, check",
    [
        ([ingest_pb2.UploadedObject(kind=ingest_pb2.UPLOAD_KIND_VIDEO, key="p2/s1/video.webm")], "object_key"),
        ([ingest_pb2.UploadedObject(kind=ingest_pb2.UPLOAD_KIND_LABELS, label_stream="depth")], "object_kind"),
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
    from scalediffusion.platform.manifests import Manifest

    s = session()
    s.state = ingest_pb2.SESSION_STATE_UPLOADED
    parsed = Manifest.from_doc(Manifest(s, event_published=True, publish_attempts=2, multipart={"k": "u"}).to_doc())
    assert parsed.session == s and parsed.event_published and parsed.publish_attempts == 2 and parsed.multipart == {"k": "u"}
    with pytest.raises(ValueError):
        Manifest.from_doc({"nope": 1})

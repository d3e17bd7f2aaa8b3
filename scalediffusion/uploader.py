"""Client side of a session upload over the real path: StartSession -> upload to each presigned target -> CompleteSession.
Used by tests, benchmarks and bot players; the browser game does the same in TypeScript."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import urllib3

from scalediffusion.v1 import ingest_pb2, ingest_pb2_grpc

_http = urllib3.PoolManager(retries=False, timeout=urllib3.Timeout(connect=5, read=120))


class UploadRejected(RuntimeError):
    """The object store refused an upload; carries the HTTP status and S3's error body."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"upload refused with HTTP {status}: {body[:300]}")
        self.status = status
        self.body = body


def upload_to_target(target: ingest_pb2.UploadTarget, data: bytes) -> None:
    """Sends data to one presigned target (PUT URL or POST policy form)."""
    if target.method == "PUT":
        response = _http.request("PUT", target.url, body=data, headers=dict(target.headers))
    elif target.method == "POST":
        fields = dict(target.form_fields)
        fields["file"] = ("upload", data, target.headers.get("Content-Type", "application/octet-stream"))
        response = _http.request("POST", target.url, fields=fields)
    else:
        raise ValueError(f"unknown upload method {target.method!r}")
    if response.status >= 300:
        raise UploadRejected(response.status, response.data.decode(errors="replace"))


@dataclass
class UploadedSession:
    session_id: str
    session: ingest_pb2.Session


def upload_multipart(target: ingest_pb2.UploadTarget, data: bytes) -> list[ingest_pb2.UploadedPart]:
    """PUTs data in part_size pieces to the presigned part URLs; returns the parts with their ETags."""
    size = target.multipart.part_size
    chunks = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    if len(chunks) > len(target.multipart.part_urls):
        raise ValueError(f"{len(data)} bytes need {len(chunks)} parts; the target has {len(target.multipart.part_urls)}")
    parts = []
    for number, (chunk, url) in enumerate(zip(chunks, target.multipart.part_urls), start=1):
        response = _http.request("PUT", url, body=chunk)
        if response.status >= 300:
            raise UploadRejected(response.status, response.data.decode(errors="replace"))
        parts.append(ingest_pb2.UploadedPart(part_number=number, etag=response.headers["ETag"].strip('"')))
    return parts


def upload_session(
    ingest: ingest_pb2_grpc.IngestServiceStub,
    video: bytes,
    telemetry: bytes,
    metadata: tuple = (),
    player_id: str = "",
    labels: dict[str, bytes] | None = None,
) -> UploadedSession:
    """Runs the whole upload for one session (as the caller's token says, or for player_id with an operator
    token) and returns the completed session record."""
    labels = labels or {}
    started = ingest.StartSession(
        ingest_pb2.StartSessionRequest(
            content_type="video/webm", expected_video_bytes=len(video), player_id=player_id, label_streams=sorted(labels)
        ),
        metadata=metadata,
    )
    objects = []
    for target in started.targets:
        if target.kind == ingest_pb2.UPLOAD_KIND_LABELS:
            data = labels[target.label_stream]
        else:
            data = video if target.kind == ingest_pb2.UPLOAD_KIND_VIDEO else telemetry
        obj = ingest_pb2.UploadedObject(
            kind=target.kind, key=target.key, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest(), label_stream=target.label_stream
        )
        if target.method == "MULTIPART":
            obj.parts.extend(upload_multipart(target, data))
        else:
            upload_to_target(target, data)
        objects.append(obj)
    done = ingest.CompleteSession(ingest_pb2.CompleteSessionRequest(session_id=started.session_id, objects=objects), metadata=metadata)
    return UploadedSession(session_id=started.session_id, session=done.session)

"""The object store, through the minio SDK (SeaweedFS locally, any S3 on clusters)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

import urllib3
from minio import Minio
from minio.datatypes import PostPolicy
from minio.error import S3Error

from scalediffusion.platform.settings import S3Settings

_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NoSuchBucket", "ResourceNotFound"})


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str


class ObjectStore:
    """Thin wrapper over one Minio client plus a second one for URLs presigned for browsers.

    The presigning client points at the public endpoint: a presigned signature covers the Host header, so a URL
    signed for the in-cluster address would fail from a browser.
    """

    def __init__(self, settings: S3Settings) -> None:
        self.settings = settings
        # Short timeouts and few retries: callers own retry policy (see the processor's backoff loop).
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=5, read=60),
            maxsize=32,
            retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        )
        self.client = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=http,
        )
        self.presigner = Minio(
            settings.public_endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
        )

    def ensure_buckets(self) -> None:
        for bucket in self.settings.buckets:
            if not self.client.bucket_exists(bucket):
                try:
                    self.client.make_bucket(bucket)
                except S3Error as err:  # another replica created it between the check and the call
                    if err.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                        raise

    def put_bytes(self, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream") -> str:
        result = self.client.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type)
        return result.etag or ""

    def put_json(self, bucket: str, key: str, doc: object) -> str:
        return self.put_bytes(bucket, key, json.dumps(doc, indent=1, sort_keys=True).encode(), "application/json")

    def get_bytes(self, bucket: str, key: str) -> bytes:
        response = self.client.get_object(bucket, key)
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def get_json(self, bucket: str, key: str) -> object | None:
        """The parsed object, or None when it does not exist."""
        try:
            return json.loads(self.get_bytes(bucket, key))
        except S3Error as err:
            if err.code in _MISSING_CODES:
                return None
            raise

    def download(self, bucket: str, key: str, path: str) -> None:
        self.client.fget_object(bucket, key, path)

    def stat(self, bucket: str, key: str) -> ObjectInfo | None:
        """Size and etag of an object, or None when it does not exist."""
        try:
            st = self.client.stat_object(bucket, key)
        except S3Error as err:
            if err.code in _MISSING_CODES:
                return None
            raise
        return ObjectInfo(key=key, size=st.size or 0, etag=(st.etag or "").strip('"'))

    def list_keys(self, bucket: str, prefix: str = "", recursive: bool = True, start_after: str = "") -> Iterator[str]:
        for obj in self.client.list_objects(bucket, prefix=prefix, recursive=recursive, start_after=start_after or None):
            yield obj.object_name

    def delete_prefix(self, bucket: str, prefix: str) -> int:
        count = 0
        for key in list(self.list_keys(bucket, prefix)):
            self.client.remove_object(bucket, key)
            count += 1
        return count

    def put_if_absent(self, bucket: str, key: str, data: bytes, content_type: str = "application/json") -> bool:
        """Creates the object only if no object has that key (S3 conditional write, If-None-Match: *).
        Returns False when it already existed. This is the one atomic claim S3 offers across replicas."""
        headers: dict[str, str | list[str] | tuple[str]] = {
            "If-None-Match": "*", "Content-Type": content_type, "Content-Length": str(len(data))}
        try:
            self.client._execute("PUT", bucket, key, body=data, headers=headers)
        except S3Error as err:
            if err.code in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise
        return True

    def sha256(self, bucket: str, key: str) -> tuple[str, int]:
        """Hex SHA-256 and size of an object, streamed."""
        digest = hashlib.sha256()
        size = 0
        response = self.client.get_object(bucket, key)
        try:
            for chunk in response.stream(1024 * 1024):
                digest.update(chunk)
                size += len(chunk)
        finally:
            response.close()
            response.release_conn()
        return digest.hexdigest(), size

    def set_cors(self, bucket: str, origins: tuple[str, ...], max_age_s: int = 3600) -> None:
        """Bucket CORS (PutBucketCors) so browsers on these origins can POST/PUT uploads and read ETags."""
        rules = "".join(f"<AllowedOrigin>{escape(o)}</AllowedOrigin>" for o in origins)
        body = (
            "<CORSConfiguration><CORSRule>"
            f"{rules}<AllowedMethod>POST</AllowedMethod><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod>"
            "<AllowedHeader>*</AllowedHeader><ExposeHeader>ETag</ExposeHeader>"
            f"<MaxAgeSeconds>{max_age_s}</MaxAgeSeconds></CORSRule></CORSConfiguration>"
        ).encode()
        headers: dict[str, str | list[str] | tuple[str]] = {
            "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode(), "Content-Length": str(len(body))}
        self.client._execute("PUT", bucket, body=body, headers=headers, query_params={"cors": ""})

    def presigned_post(
        self, bucket: str, key: str, content_type: str, max_bytes: int, expires_at: datetime
    ) -> tuple[str, dict[str, str]]:
        """A POST policy for exactly one key, one content type and at most max_bytes; S3 itself enforces all three
        (AccessDenied for another key or type, EntityTooLarge past the size) and refuses it after expires_at."""
        policy = PostPolicy(bucket, expires_at.astimezone(UTC).replace(tzinfo=None))
        policy.add_equals_condition("key", key)
        policy.add_equals_condition("Content-Type", content_type)
        policy.add_content_length_range_condition(1, max_bytes)
        fields = self.presigner.presigned_post_policy(policy)
        fields = {**fields, "key": key, "Content-Type": content_type}
        return f"{self.endpoint_url()}/{bucket}", fields

    def create_multipart(self, bucket: str, key: str, content_type: str) -> str:
        return self.client._create_multipart_upload(bucket, key, {"Content-Type": content_type})

    def presigned_part_url(self, bucket: str, key: str, upload_id: str, part_number: int, expires: timedelta) -> str:
        return self.presigner.get_presigned_url(
            "PUT", bucket, key, expires=expires, extra_query_params={"uploadId": upload_id, "partNumber": str(part_number)}
        )

    def complete_multipart(self, bucket: str, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        from minio.datatypes import Part

        self.client._complete_multipart_upload(bucket, key, upload_id, [Part(n, etag) for n, etag in parts])

    def abort_multipart(self, bucket: str, key: str, upload_id: str) -> None:
        try:
            self.client._abort_multipart_upload(bucket, key, upload_id)
        except S3Error as err:
            if err.code != "NoSuchUpload":
                raise

    def presigned_put(self, bucket: str, key: str, expires: timedelta) -> str:
        return self.presigner.presigned_put_object(bucket, key, expires=expires)

    def endpoint_url(self, public: bool = True) -> str:
        scheme = "https" if self.settings.secure else "http"
        return f"{scheme}://{self.settings.public_endpoint if public else self.settings.endpoint}"

import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from scalediffusion.v1 import processor_pb2 as _processor_pb2
from scalediffusion.v1 import trainer_pb2 as _trainer_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionUploaded(_message.Message):
    __slots__ = ("schema_version", "session_id", "player_id", "bucket", "video_key", "telemetry_key", "label_keys", "uploaded_at", "attempt", "reprocess")
    class LabelKeysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    VIDEO_KEY_FIELD_NUMBER: _ClassVar[int]
    TELEMETRY_KEY_FIELD_NUMBER: _ClassVar[int]
    LABEL_KEYS_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    REPROCESS_FIELD_NUMBER: _ClassVar[int]
    schema_version: int
    session_id: str
    player_id: str
    bucket: str
    video_key: str
    telemetry_key: str
    label_keys: _containers.ScalarMap[str, str]
    uploaded_at: _timestamp_pb2.Timestamp
    attempt: int
    reprocess: bool
    def __init__(self, schema_version: _Optional[int] = ..., session_id: _Optional[str] = ..., player_id: _Optional[str] = ..., bucket: _Optional[str] = ..., video_key: _Optional[str] = ..., telemetry_key: _Optional[str] = ..., label_keys: _Optional[_Mapping[str, str]] = ..., uploaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., attempt: _Optional[int] = ..., reprocess: _Optional[bool] = ...) -> None: ...

class SegmentReady(_message.Message):
    __slots__ = ("schema_version", "segment", "player_id", "ready_at")
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    READY_AT_FIELD_NUMBER: _ClassVar[int]
    schema_version: int
    segment: _processor_pb2.SegmentInfo
    player_id: str
    ready_at: _timestamp_pb2.Timestamp
    def __init__(self, schema_version: _Optional[int] = ..., segment: _Optional[_Union[_processor_pb2.SegmentInfo, _Mapping]] = ..., player_id: _Optional[str] = ..., ready_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SessionRejected(_message.Message):
    __slots__ = ("schema_version", "session_id", "player_id", "rejections", "rejected_at")
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_AT_FIELD_NUMBER: _ClassVar[int]
    schema_version: int
    session_id: str
    player_id: str
    rejections: _containers.RepeatedCompositeFieldContainer[_processor_pb2.Rejection]
    rejected_at: _timestamp_pb2.Timestamp
    def __init__(self, schema_version: _Optional[int] = ..., session_id: _Optional[str] = ..., player_id: _Optional[str] = ..., rejections: _Optional[_Iterable[_Union[_processor_pb2.Rejection, _Mapping]]] = ..., rejected_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class TrainerEvent(_message.Message):
    __slots__ = ("schema_version", "job", "at")
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    schema_version: int
    job: _trainer_pb2.Job
    at: _timestamp_pb2.Timestamp
    def __init__(self, schema_version: _Optional[int] = ..., job: _Optional[_Union[_trainer_pb2.Job, _Mapping]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("schema_version", "source_topic", "partition", "offset", "key", "value", "consumer_group", "error", "attempts", "failed_at")
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_GROUP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_FIELD_NUMBER: _ClassVar[int]
    schema_version: int
    source_topic: str
    partition: int
    offset: int
    key: bytes
    value: bytes
    consumer_group: str
    error: str
    attempts: int
    failed_at: _timestamp_pb2.Timestamp
    def __init__(self, schema_version: _Optional[int] = ..., source_topic: _Optional[str] = ..., partition: _Optional[int] = ..., offset: _Optional[int] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., consumer_group: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., failed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from scalediffusion.v1 import common_pb2 as _common_pb2
from scalediffusion.v1 import processor_pb2 as _processor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SESSION_STATE_UNSPECIFIED: _ClassVar[SessionState]
    SESSION_STATE_CREATED: _ClassVar[SessionState]
    SESSION_STATE_UPLOADED: _ClassVar[SessionState]
    SESSION_STATE_PROCESSING: _ClassVar[SessionState]
    SESSION_STATE_ACCEPTED: _ClassVar[SessionState]
    SESSION_STATE_REJECTED: _ClassVar[SessionState]
    SESSION_STATE_EXPIRED: _ClassVar[SessionState]

class UploadKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    UPLOAD_KIND_UNSPECIFIED: _ClassVar[UploadKind]
    UPLOAD_KIND_VIDEO: _ClassVar[UploadKind]
    UPLOAD_KIND_TELEMETRY: _ClassVar[UploadKind]
    UPLOAD_KIND_LABELS: _ClassVar[UploadKind]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_PLAYER: _ClassVar[Role]
    ROLE_OPERATOR: _ClassVar[Role]
SESSION_STATE_UNSPECIFIED: SessionState
SESSION_STATE_CREATED: SessionState
SESSION_STATE_UPLOADED: SessionState
SESSION_STATE_PROCESSING: SessionState
SESSION_STATE_ACCEPTED: SessionState
SESSION_STATE_REJECTED: SessionState
SESSION_STATE_EXPIRED: SessionState
UPLOAD_KIND_UNSPECIFIED: UploadKind
UPLOAD_KIND_VIDEO: UploadKind
UPLOAD_KIND_TELEMETRY: UploadKind
UPLOAD_KIND_LABELS: UploadKind
ROLE_UNSPECIFIED: Role
ROLE_PLAYER: Role
ROLE_OPERATOR: Role

class MultipartUpload(_message.Message):
    __slots__ = ("upload_id", "part_size", "part_urls")
    UPLOAD_ID_FIELD_NUMBER: _ClassVar[int]
    PART_SIZE_FIELD_NUMBER: _ClassVar[int]
    PART_URLS_FIELD_NUMBER: _ClassVar[int]
    upload_id: str
    part_size: int
    part_urls: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, upload_id: _Optional[str] = ..., part_size: _Optional[int] = ..., part_urls: _Optional[_Iterable[str]] = ...) -> None: ...

class UploadTarget(_message.Message):
    __slots__ = ("kind", "key", "method", "url", "form_fields", "headers", "max_bytes", "expires_at", "multipart", "label_stream")
    class FormFieldsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class HeadersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    FORM_FIELDS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    MULTIPART_FIELD_NUMBER: _ClassVar[int]
    LABEL_STREAM_FIELD_NUMBER: _ClassVar[int]
    kind: UploadKind
    key: str
    method: str
    url: str
    form_fields: _containers.ScalarMap[str, str]
    headers: _containers.ScalarMap[str, str]
    max_bytes: int
    expires_at: _timestamp_pb2.Timestamp
    multipart: MultipartUpload
    label_stream: str
    def __init__(self, kind: _Optional[_Union[UploadKind, str]] = ..., key: _Optional[str] = ..., method: _Optional[str] = ..., url: _Optional[str] = ..., form_fields: _Optional[_Mapping[str, str]] = ..., headers: _Optional[_Mapping[str, str]] = ..., max_bytes: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., multipart: _Optional[_Union[MultipartUpload, _Mapping]] = ..., label_stream: _Optional[str] = ...) -> None: ...

class StartSessionRequest(_message.Message):
    __slots__ = ("content_type", "expected_video_bytes", "label_streams", "player_id")
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VIDEO_BYTES_FIELD_NUMBER: _ClassVar[int]
    LABEL_STREAMS_FIELD_NUMBER: _ClassVar[int]
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    expected_video_bytes: int
    label_streams: _containers.RepeatedScalarFieldContainer[str]
    player_id: str
    def __init__(self, content_type: _Optional[str] = ..., expected_video_bytes: _Optional[int] = ..., label_streams: _Optional[_Iterable[str]] = ..., player_id: _Optional[str] = ...) -> None: ...

class StartSessionResponse(_message.Message):
    __slots__ = ("session_id", "player_id", "targets")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    TARGETS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    player_id: str
    targets: _containers.RepeatedCompositeFieldContainer[UploadTarget]
    def __init__(self, session_id: _Optional[str] = ..., player_id: _Optional[str] = ..., targets: _Optional[_Iterable[_Union[UploadTarget, _Mapping]]] = ...) -> None: ...

class UploadedPart(_message.Message):
    __slots__ = ("part_number", "etag")
    PART_NUMBER_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    part_number: int
    etag: str
    def __init__(self, part_number: _Optional[int] = ..., etag: _Optional[str] = ...) -> None: ...

class UploadedObject(_message.Message):
    __slots__ = ("kind", "key", "size_bytes", "sha256", "parts", "label_stream")
    KIND_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    LABEL_STREAM_FIELD_NUMBER: _ClassVar[int]
    kind: UploadKind
    key: str
    size_bytes: int
    sha256: str
    parts: _containers.RepeatedCompositeFieldContainer[UploadedPart]
    label_stream: str
    def __init__(self, kind: _Optional[_Union[UploadKind, str]] = ..., key: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[UploadedPart, _Mapping]]] = ..., label_stream: _Optional[str] = ...) -> None: ...

class CompleteSessionRequest(_message.Message):
    __slots__ = ("session_id", "objects")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    objects: _containers.RepeatedCompositeFieldContainer[UploadedObject]
    def __init__(self, session_id: _Optional[str] = ..., objects: _Optional[_Iterable[_Union[UploadedObject, _Mapping]]] = ...) -> None: ...

class CompleteSessionResponse(_message.Message):
    __slots__ = ("session",)
    SESSION_FIELD_NUMBER: _ClassVar[int]
    session: Session
    def __init__(self, session: _Optional[_Union[Session, _Mapping]] = ...) -> None: ...

class Session(_message.Message):
    __slots__ = ("session_id", "player_id", "state", "created_at", "updated_at", "objects", "segment_count", "bucket", "video_sha256", "label_streams", "segment_ids", "upload_deadline", "rejections")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    VIDEO_SHA256_FIELD_NUMBER: _ClassVar[int]
    LABEL_STREAMS_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_IDS_FIELD_NUMBER: _ClassVar[int]
    UPLOAD_DEADLINE_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    player_id: str
    state: SessionState
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    objects: _containers.RepeatedCompositeFieldContainer[UploadedObject]
    segment_count: int
    bucket: str
    video_sha256: str
    label_streams: _containers.RepeatedScalarFieldContainer[str]
    segment_ids: _containers.RepeatedScalarFieldContainer[str]
    upload_deadline: _timestamp_pb2.Timestamp
    rejections: _containers.RepeatedCompositeFieldContainer[_processor_pb2.Rejection]
    def __init__(self, session_id: _Optional[str] = ..., player_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., objects: _Optional[_Iterable[_Union[UploadedObject, _Mapping]]] = ..., segment_count: _Optional[int] = ..., bucket: _Optional[str] = ..., video_sha256: _Optional[str] = ..., label_streams: _Optional[_Iterable[str]] = ..., segment_ids: _Optional[_Iterable[str]] = ..., upload_deadline: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rejections: _Optional[_Iterable[_Union[_processor_pb2.Rejection, _Mapping]]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class ListSessionsRequest(_message.Message):
    __slots__ = ("page", "player_id", "state")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page: _common_pb2.PageRequest
    player_id: str
    state: SessionState
    def __init__(self, page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ..., player_id: _Optional[str] = ..., state: _Optional[_Union[SessionState, str]] = ...) -> None: ...

class ListSessionsResponse(_message.Message):
    __slots__ = ("sessions", "next_page_token")
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[Session]
    next_page_token: str
    def __init__(self, sessions: _Optional[_Iterable[_Union[Session, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class Player(_message.Message):
    __slots__ = ("player_id", "wallet_address", "display_name")
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    WALLET_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    player_id: str
    wallet_address: str
    display_name: str
    def __init__(self, player_id: _Optional[str] = ..., wallet_address: _Optional[str] = ..., display_name: _Optional[str] = ...) -> None: ...

class IssueTokenRequest(_message.Message):
    __slots__ = ("player_id", "wallet_address", "ttl_seconds", "role", "display_name")
    PLAYER_ID_FIELD_NUMBER: _ClassVar[int]
    WALLET_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    player_id: str
    wallet_address: str
    ttl_seconds: int
    role: Role
    display_name: str
    def __init__(self, player_id: _Optional[str] = ..., wallet_address: _Optional[str] = ..., ttl_seconds: _Optional[int] = ..., role: _Optional[_Union[Role, str]] = ..., display_name: _Optional[str] = ...) -> None: ...

class IssueTokenResponse(_message.Message):
    __slots__ = ("token", "expires_at", "player", "token_id")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    PLAYER_FIELD_NUMBER: _ClassVar[int]
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token: str
    expires_at: _timestamp_pb2.Timestamp
    player: Player
    token_id: str
    def __init__(self, token: _Optional[str] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., player: _Optional[_Union[Player, _Mapping]] = ..., token_id: _Optional[str] = ...) -> None: ...

class RevokeTokenRequest(_message.Message):
    __slots__ = ("token_id",)
    TOKEN_ID_FIELD_NUMBER: _ClassVar[int]
    token_id: str
    def __init__(self, token_id: _Optional[str] = ...) -> None: ...

class RevokeTokenResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegisterWalletRequest(_message.Message):
    __slots__ = ("wallet_address",)
    WALLET_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    wallet_address: str
    def __init__(self, wallet_address: _Optional[str] = ...) -> None: ...

class RegisterWalletResponse(_message.Message):
    __slots__ = ("player",)
    PLAYER_FIELD_NUMBER: _ClassVar[int]
    player: Player
    def __init__(self, player: _Optional[_Union[Player, _Mapping]] = ...) -> None: ...

class RewardEntry(_message.Message):
    __slots__ = ("entry_id", "segment_id", "session_id", "points", "credited_at")
    ENTRY_ID_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    CREDITED_AT_FIELD_NUMBER: _ClassVar[int]
    entry_id: str
    segment_id: str
    session_id: str
    points: int
    credited_at: _timestamp_pb2.Timestamp
    def __init__(self, entry_id: _Optional[str] = ..., segment_id: _Optional[str] = ..., session_id: _Optional[str] = ..., points: _Optional[int] = ..., credited_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetRewardsRequest(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: _common_pb2.PageRequest
    def __init__(self, page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class GetRewardsResponse(_message.Message):
    __slots__ = ("balance", "entries", "next_page_token")
    BALANCE_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    balance: int
    entries: _containers.RepeatedCompositeFieldContainer[RewardEntry]
    next_page_token: str
    def __init__(self, balance: _Optional[int] = ..., entries: _Optional[_Iterable[_Union[RewardEntry, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

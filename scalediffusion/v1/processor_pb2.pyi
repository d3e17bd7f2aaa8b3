import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RejectionReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REJECTION_REASON_UNSPECIFIED: _ClassVar[RejectionReason]
    REJECTION_REASON_VIDEO_UNDECODABLE: _ClassVar[RejectionReason]
    REJECTION_REASON_TELEMETRY_INVALID: _ClassVar[RejectionReason]
    REJECTION_REASON_TELEMETRY_MISMATCH: _ClassVar[RejectionReason]
    REJECTION_REASON_TOO_SHORT: _ClassVar[RejectionReason]
    REJECTION_REASON_BLUR: _ClassVar[RejectionReason]
    REJECTION_REASON_FROZEN: _ClassVar[RejectionReason]
    REJECTION_REASON_BLACK: _ClassVar[RejectionReason]
    REJECTION_REASON_BLOWN_OUT: _ClassVar[RejectionReason]
    REJECTION_REASON_FLICKER: _ClassVar[RejectionReason]
    REJECTION_REASON_NO_INPUT: _ClassVar[RejectionReason]
    REJECTION_REASON_IMPLAUSIBLE_MOTION: _ClassVar[RejectionReason]
    REJECTION_REASON_DUPLICATE: _ClassVar[RejectionReason]
    REJECTION_REASON_OBJECTS_MISSING: _ClassVar[RejectionReason]
    REJECTION_REASON_VIDEO_TRUNCATED: _ClassVar[RejectionReason]
    REJECTION_REASON_REPLAY_MISMATCH: _ClassVar[RejectionReason]
    REJECTION_REASON_VIDEO_MISMATCH: _ClassVar[RejectionReason]
REJECTION_REASON_UNSPECIFIED: RejectionReason
REJECTION_REASON_VIDEO_UNDECODABLE: RejectionReason
REJECTION_REASON_TELEMETRY_INVALID: RejectionReason
REJECTION_REASON_TELEMETRY_MISMATCH: RejectionReason
REJECTION_REASON_TOO_SHORT: RejectionReason
REJECTION_REASON_BLUR: RejectionReason
REJECTION_REASON_FROZEN: RejectionReason
REJECTION_REASON_BLACK: RejectionReason
REJECTION_REASON_BLOWN_OUT: RejectionReason
REJECTION_REASON_FLICKER: RejectionReason
REJECTION_REASON_NO_INPUT: RejectionReason
REJECTION_REASON_IMPLAUSIBLE_MOTION: RejectionReason
REJECTION_REASON_DUPLICATE: RejectionReason
REJECTION_REASON_OBJECTS_MISSING: RejectionReason
REJECTION_REASON_VIDEO_TRUNCATED: RejectionReason
REJECTION_REASON_REPLAY_MISMATCH: RejectionReason
REJECTION_REASON_VIDEO_MISMATCH: RejectionReason

class Rejection(_message.Message):
    __slots__ = ("reason", "metric", "value", "threshold", "detail", "start_frame", "end_frame")
    REASON_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    START_FRAME_FIELD_NUMBER: _ClassVar[int]
    END_FRAME_FIELD_NUMBER: _ClassVar[int]
    reason: RejectionReason
    metric: str
    value: float
    threshold: float
    detail: str
    start_frame: int
    end_frame: int
    def __init__(self, reason: _Optional[_Union[RejectionReason, str]] = ..., metric: _Optional[str] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., detail: _Optional[str] = ..., start_frame: _Optional[int] = ..., end_frame: _Optional[int] = ...) -> None: ...

class SegmentInfo(_message.Message):
    __slots__ = ("segment_id", "session_id", "dataset", "bucket", "prefix", "frame_count", "fps", "duration_s", "distance_m", "command_counts", "width", "height")
    class CommandCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    SEGMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_M_FIELD_NUMBER: _ClassVar[int]
    COMMAND_COUNTS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    segment_id: str
    session_id: str
    dataset: str
    bucket: str
    prefix: str
    frame_count: int
    fps: float
    duration_s: float
    distance_m: float
    command_counts: _containers.ScalarMap[int, int]
    width: int
    height: int
    def __init__(self, segment_id: _Optional[str] = ..., session_id: _Optional[str] = ..., dataset: _Optional[str] = ..., bucket: _Optional[str] = ..., prefix: _Optional[str] = ..., frame_count: _Optional[int] = ..., fps: _Optional[float] = ..., duration_s: _Optional[float] = ..., distance_m: _Optional[float] = ..., command_counts: _Optional[_Mapping[int, int]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class QualityReport(_message.Message):
    __slots__ = ("session_id", "decoded_frames", "video_duration_s", "segments", "rejections", "report_key", "plot_key", "processed_at", "dataset", "candidate_segments", "breaks")
    class BreaksEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DECODED_FRAMES_FIELD_NUMBER: _ClassVar[int]
    VIDEO_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    REJECTIONS_FIELD_NUMBER: _ClassVar[int]
    REPORT_KEY_FIELD_NUMBER: _ClassVar[int]
    PLOT_KEY_FIELD_NUMBER: _ClassVar[int]
    PROCESSED_AT_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    BREAKS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    decoded_frames: int
    video_duration_s: float
    segments: _containers.RepeatedCompositeFieldContainer[SegmentInfo]
    rejections: _containers.RepeatedCompositeFieldContainer[Rejection]
    report_key: str
    plot_key: str
    processed_at: _timestamp_pb2.Timestamp
    dataset: str
    candidate_segments: int
    breaks: _containers.ScalarMap[str, int]
    def __init__(self, session_id: _Optional[str] = ..., decoded_frames: _Optional[int] = ..., video_duration_s: _Optional[float] = ..., segments: _Optional[_Iterable[_Union[SegmentInfo, _Mapping]]] = ..., rejections: _Optional[_Iterable[_Union[Rejection, _Mapping]]] = ..., report_key: _Optional[str] = ..., plot_key: _Optional[str] = ..., processed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., dataset: _Optional[str] = ..., candidate_segments: _Optional[int] = ..., breaks: _Optional[_Mapping[str, int]] = ...) -> None: ...

class GetSessionReportRequest(_message.Message):
    __slots__ = ("session_id", "dataset")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    dataset: str
    def __init__(self, session_id: _Optional[str] = ..., dataset: _Optional[str] = ...) -> None: ...

class ReprocessRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class ReprocessResponse(_message.Message):
    __slots__ = ("queued",)
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    queued: bool
    def __init__(self, queued: _Optional[bool] = ...) -> None: ...

class GetDatasetStatsRequest(_message.Message):
    __slots__ = ("dataset",)
    DATASET_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    def __init__(self, dataset: _Optional[str] = ...) -> None: ...

class DatasetStats(_message.Message):
    __slots__ = ("dataset", "segment_count", "frame_count", "distance_km", "duration_s", "command_counts", "speed_bin_edges", "speed_bin_counts", "session_count")
    class CommandCountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_KM_FIELD_NUMBER: _ClassVar[int]
    DURATION_S_FIELD_NUMBER: _ClassVar[int]
    COMMAND_COUNTS_FIELD_NUMBER: _ClassVar[int]
    SPEED_BIN_EDGES_FIELD_NUMBER: _ClassVar[int]
    SPEED_BIN_COUNTS_FIELD_NUMBER: _ClassVar[int]
    SESSION_COUNT_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    segment_count: int
    frame_count: int
    distance_km: float
    duration_s: float
    command_counts: _containers.ScalarMap[int, int]
    speed_bin_edges: _containers.RepeatedScalarFieldContainer[float]
    speed_bin_counts: _containers.RepeatedScalarFieldContainer[int]
    session_count: int
    def __init__(self, dataset: _Optional[str] = ..., segment_count: _Optional[int] = ..., frame_count: _Optional[int] = ..., distance_km: _Optional[float] = ..., duration_s: _Optional[float] = ..., command_counts: _Optional[_Mapping[int, int]] = ..., speed_bin_edges: _Optional[_Iterable[float]] = ..., speed_bin_counts: _Optional[_Iterable[int]] = ..., session_count: _Optional[int] = ...) -> None: ...

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

class JobKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_KIND_UNSPECIFIED: _ClassVar[JobKind]
    JOB_KIND_TRAINING: _ClassVar[JobKind]
    JOB_KIND_EVALUATION: _ClassVar[JobKind]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_PENDING: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_LOCAL: _ClassVar[Backend]
    BACKEND_KUBERNETES: _ClassVar[Backend]
    BACKEND_CARLA: _ClassVar[Backend]
JOB_KIND_UNSPECIFIED: JobKind
JOB_KIND_TRAINING: JobKind
JOB_KIND_EVALUATION: JobKind
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_PENDING: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState
BACKEND_UNSPECIFIED: Backend
BACKEND_LOCAL: Backend
BACKEND_KUBERNETES: Backend
BACKEND_CARLA: Backend

class Dataset(_message.Message):
    __slots__ = ("name", "bucket", "segment_count", "frame_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_COUNT_FIELD_NUMBER: _ClassVar[int]
    FRAME_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    bucket: str
    segment_count: int
    frame_count: int
    def __init__(self, name: _Optional[str] = ..., bucket: _Optional[str] = ..., segment_count: _Optional[int] = ..., frame_count: _Optional[int] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ("page",)
    PAGE_FIELD_NUMBER: _ClassVar[int]
    page: _common_pb2.PageRequest
    def __init__(self, page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets", "next_page_token")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[Dataset]
    next_page_token: str
    def __init__(self, datasets: _Optional[_Iterable[_Union[Dataset, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListSegmentsRequest(_message.Message):
    __slots__ = ("dataset", "page")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    PAGE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    page: _common_pb2.PageRequest
    def __init__(self, dataset: _Optional[str] = ..., page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ...) -> None: ...

class ListSegmentsResponse(_message.Message):
    __slots__ = ("segments", "next_page_token")
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    segments: _containers.RepeatedCompositeFieldContainer[_processor_pb2.SegmentInfo]
    next_page_token: str
    def __init__(self, segments: _Optional[_Iterable[_Union[_processor_pb2.SegmentInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class TrainingConfig(_message.Message):
    __slots__ = ("preset", "epochs", "batch_size", "learning_rate", "val_fraction", "seed", "gpus", "nodes", "data_minutes", "max_steps_per_epoch", "turn_weight")
    PRESET_FIELD_NUMBER: _ClassVar[int]
    EPOCHS_FIELD_NUMBER: _ClassVar[int]
    BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    LEARNING_RATE_FIELD_NUMBER: _ClassVar[int]
    VAL_FRACTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    NODES_FIELD_NUMBER: _ClassVar[int]
    DATA_MINUTES_FIELD_NUMBER: _ClassVar[int]
    MAX_STEPS_PER_EPOCH_FIELD_NUMBER: _ClassVar[int]
    TURN_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    preset: str
    epochs: int
    batch_size: int
    learning_rate: float
    val_fraction: float
    seed: int
    gpus: int
    nodes: int
    data_minutes: float
    max_steps_per_epoch: int
    turn_weight: float
    def __init__(self, preset: _Optional[str] = ..., epochs: _Optional[int] = ..., batch_size: _Optional[int] = ..., learning_rate: _Optional[float] = ..., val_fraction: _Optional[float] = ..., seed: _Optional[int] = ..., gpus: _Optional[int] = ..., nodes: _Optional[int] = ..., data_minutes: _Optional[float] = ..., max_steps_per_epoch: _Optional[int] = ..., turn_weight: _Optional[float] = ...) -> None: ...

class StartTrainingRequest(_message.Message):
    __slots__ = ("dataset", "config", "backend", "run_id")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    config: TrainingConfig
    backend: Backend
    run_id: str
    def __init__(self, dataset: _Optional[str] = ..., config: _Optional[_Union[TrainingConfig, _Mapping]] = ..., backend: _Optional[_Union[Backend, str]] = ..., run_id: _Optional[str] = ...) -> None: ...

class EvaluationConfig(_message.Message):
    __slots__ = ("suite", "seed", "metric_version", "carla_version", "shards")
    SUITE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    METRIC_VERSION_FIELD_NUMBER: _ClassVar[int]
    CARLA_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    suite: str
    seed: int
    metric_version: str
    carla_version: str
    shards: int
    def __init__(self, suite: _Optional[str] = ..., seed: _Optional[int] = ..., metric_version: _Optional[str] = ..., carla_version: _Optional[str] = ..., shards: _Optional[int] = ...) -> None: ...

class StartEvaluationRequest(_message.Message):
    __slots__ = ("model_run", "config", "backend", "eval_id")
    MODEL_RUN_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    model_run: str
    config: EvaluationConfig
    backend: Backend
    eval_id: str
    def __init__(self, model_run: _Optional[str] = ..., config: _Optional[_Union[EvaluationConfig, _Mapping]] = ..., backend: _Optional[_Union[Backend, str]] = ..., eval_id: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "kind", "state", "backend", "created_at", "updated_at", "progress", "message", "metrics", "output_prefix", "kubernetes_jobs")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    KUBERNETES_JOBS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    kind: JobKind
    state: JobState
    backend: Backend
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    progress: float
    message: str
    metrics: _containers.ScalarMap[str, float]
    output_prefix: str
    kubernetes_jobs: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., kind: _Optional[_Union[JobKind, str]] = ..., state: _Optional[_Union[JobState, str]] = ..., backend: _Optional[_Union[Backend, str]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., progress: _Optional[float] = ..., message: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., output_prefix: _Optional[str] = ..., kubernetes_jobs: _Optional[_Iterable[str]] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("page", "kind", "state")
    PAGE_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page: _common_pb2.PageRequest
    kind: JobKind
    state: JobState
    def __init__(self, page: _Optional[_Union[_common_pb2.PageRequest, _Mapping]] = ..., kind: _Optional[_Union[JobKind, str]] = ..., state: _Optional[_Union[JobState, str]] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class InfractionStat(_message.Message):
    __slots__ = ("kind", "count", "per_km")
    KIND_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    PER_KM_FIELD_NUMBER: _ClassVar[int]
    kind: str
    count: int
    per_km: float
    def __init__(self, kind: _Optional[str] = ..., count: _Optional[int] = ..., per_km: _Optional[float] = ...) -> None: ...

class RouteResult(_message.Message):
    __slots__ = ("route_id", "driving_score", "route_completion", "infraction_penalty", "route_length_km", "status", "infractions")
    ROUTE_ID_FIELD_NUMBER: _ClassVar[int]
    DRIVING_SCORE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_COMPLETION_FIELD_NUMBER: _ClassVar[int]
    INFRACTION_PENALTY_FIELD_NUMBER: _ClassVar[int]
    ROUTE_LENGTH_KM_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    INFRACTIONS_FIELD_NUMBER: _ClassVar[int]
    route_id: str
    driving_score: float
    route_completion: float
    infraction_penalty: float
    route_length_km: float
    status: str
    infractions: _containers.RepeatedCompositeFieldContainer[InfractionStat]
    def __init__(self, route_id: _Optional[str] = ..., driving_score: _Optional[float] = ..., route_completion: _Optional[float] = ..., infraction_penalty: _Optional[float] = ..., route_length_km: _Optional[float] = ..., status: _Optional[str] = ..., infractions: _Optional[_Iterable[_Union[InfractionStat, _Mapping]]] = ...) -> None: ...

class EvaluationReport(_message.Message):
    __slots__ = ("eval_id", "model_run", "suite", "metric_version", "driving_score", "route_completion", "infraction_penalty", "infractions", "routes", "report_key", "plot_keys")
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_RUN_FIELD_NUMBER: _ClassVar[int]
    SUITE_FIELD_NUMBER: _ClassVar[int]
    METRIC_VERSION_FIELD_NUMBER: _ClassVar[int]
    DRIVING_SCORE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_COMPLETION_FIELD_NUMBER: _ClassVar[int]
    INFRACTION_PENALTY_FIELD_NUMBER: _ClassVar[int]
    INFRACTIONS_FIELD_NUMBER: _ClassVar[int]
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    REPORT_KEY_FIELD_NUMBER: _ClassVar[int]
    PLOT_KEYS_FIELD_NUMBER: _ClassVar[int]
    eval_id: str
    model_run: str
    suite: str
    metric_version: str
    driving_score: float
    route_completion: float
    infraction_penalty: float
    infractions: _containers.RepeatedCompositeFieldContainer[InfractionStat]
    routes: _containers.RepeatedCompositeFieldContainer[RouteResult]
    report_key: str
    plot_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, eval_id: _Optional[str] = ..., model_run: _Optional[str] = ..., suite: _Optional[str] = ..., metric_version: _Optional[str] = ..., driving_score: _Optional[float] = ..., route_completion: _Optional[float] = ..., infraction_penalty: _Optional[float] = ..., infractions: _Optional[_Iterable[_Union[InfractionStat, _Mapping]]] = ..., routes: _Optional[_Iterable[_Union[RouteResult, _Mapping]]] = ..., report_key: _Optional[str] = ..., plot_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class GetEvaluationReportRequest(_message.Message):
    __slots__ = ("eval_id",)
    EVAL_ID_FIELD_NUMBER: _ClassVar[int]
    eval_id: str
    def __init__(self, eval_id: _Optional[str] = ...) -> None: ...

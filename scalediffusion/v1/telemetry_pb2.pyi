from scalediffusion.v1 import common_pb2 as _common_pb2
from scalediffusion.v1 import world_pb2 as _world_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FrameSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FRAME_SOURCE_UNSPECIFIED: _ClassVar[FrameSource]
    FRAME_SOURCE_RAW: _ClassVar[FrameSource]
    FRAME_SOURCE_REPAINTED: _ClassVar[FrameSource]
FRAME_SOURCE_UNSPECIFIED: FrameSource
FRAME_SOURCE_RAW: FrameSource
FRAME_SOURCE_REPAINTED: FrameSource

class Controls(_message.Message):
    __slots__ = ("steer", "throttle", "brake", "hand_brake", "reverse")
    STEER_FIELD_NUMBER: _ClassVar[int]
    THROTTLE_FIELD_NUMBER: _ClassVar[int]
    BRAKE_FIELD_NUMBER: _ClassVar[int]
    HAND_BRAKE_FIELD_NUMBER: _ClassVar[int]
    REVERSE_FIELD_NUMBER: _ClassVar[int]
    steer: float
    throttle: float
    brake: float
    hand_brake: bool
    reverse: bool
    def __init__(self, steer: _Optional[float] = ..., throttle: _Optional[float] = ..., brake: _Optional[float] = ..., hand_brake: _Optional[bool] = ..., reverse: _Optional[bool] = ...) -> None: ...

class VehicleState(_message.Message):
    __slots__ = ("x", "y", "theta", "speed")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    THETA_FIELD_NUMBER: _ClassVar[int]
    SPEED_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    theta: float
    speed: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., theta: _Optional[float] = ..., speed: _Optional[float] = ...) -> None: ...

class CameraPose(_message.Message):
    __slots__ = ("position", "yaw", "pitch", "roll", "fov_deg")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    YAW_FIELD_NUMBER: _ClassVar[int]
    PITCH_FIELD_NUMBER: _ClassVar[int]
    ROLL_FIELD_NUMBER: _ClassVar[int]
    FOV_DEG_FIELD_NUMBER: _ClassVar[int]
    position: _common_pb2.Vec3
    yaw: float
    pitch: float
    roll: float
    fov_deg: float
    def __init__(self, position: _Optional[_Union[_common_pb2.Vec3, _Mapping]] = ..., yaw: _Optional[float] = ..., pitch: _Optional[float] = ..., roll: _Optional[float] = ..., fov_deg: _Optional[float] = ...) -> None: ...

class TelemetryTick(_message.Message):
    __slots__ = ("t_ms", "controls", "vehicle", "camera", "command", "paused", "reset", "expert_controls", "collision", "target_point")
    T_MS_FIELD_NUMBER: _ClassVar[int]
    CONTROLS_FIELD_NUMBER: _ClassVar[int]
    VEHICLE_FIELD_NUMBER: _ClassVar[int]
    CAMERA_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    RESET_FIELD_NUMBER: _ClassVar[int]
    EXPERT_CONTROLS_FIELD_NUMBER: _ClassVar[int]
    COLLISION_FIELD_NUMBER: _ClassVar[int]
    TARGET_POINT_FIELD_NUMBER: _ClassVar[int]
    t_ms: float
    controls: Controls
    vehicle: VehicleState
    camera: CameraPose
    command: _common_pb2.RoadOption
    paused: bool
    reset: bool
    expert_controls: Controls
    collision: bool
    target_point: _world_pb2.Point2
    def __init__(self, t_ms: _Optional[float] = ..., controls: _Optional[_Union[Controls, _Mapping]] = ..., vehicle: _Optional[_Union[VehicleState, _Mapping]] = ..., camera: _Optional[_Union[CameraPose, _Mapping]] = ..., command: _Optional[_Union[_common_pb2.RoadOption, str]] = ..., paused: _Optional[bool] = ..., reset: _Optional[bool] = ..., expert_controls: _Optional[_Union[Controls, _Mapping]] = ..., collision: _Optional[bool] = ..., target_point: _Optional[_Union[_world_pb2.Point2, _Mapping]] = ...) -> None: ...

class RttSample(_message.Message):
    __slots__ = ("t_ms", "rtt_ms")
    T_MS_FIELD_NUMBER: _ClassVar[int]
    RTT_MS_FIELD_NUMBER: _ClassVar[int]
    t_ms: float
    rtt_ms: float
    def __init__(self, t_ms: _Optional[float] = ..., rtt_ms: _Optional[float] = ...) -> None: ...

class VideoFrameRecord(_message.Message):
    __slots__ = ("shown_t_ms", "render_t_ms", "source")
    SHOWN_T_MS_FIELD_NUMBER: _ClassVar[int]
    RENDER_T_MS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    shown_t_ms: float
    render_t_ms: float
    source: FrameSource
    def __init__(self, shown_t_ms: _Optional[float] = ..., render_t_ms: _Optional[float] = ..., source: _Optional[_Union[FrameSource, str]] = ...) -> None: ...

class DrawnActor(_message.Message):
    __slots__ = ("id", "kind", "x", "y", "heading", "length_m", "width_m")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    HEADING_FIELD_NUMBER: _ClassVar[int]
    LENGTH_M_FIELD_NUMBER: _ClassVar[int]
    WIDTH_M_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: _world_pb2.ActorKind
    x: float
    y: float
    heading: float
    length_m: float
    width_m: float
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[_world_pb2.ActorKind, str]] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., heading: _Optional[float] = ..., length_m: _Optional[float] = ..., width_m: _Optional[float] = ...) -> None: ...

class DrawnActors(_message.Message):
    __slots__ = ("t_ms", "actors")
    T_MS_FIELD_NUMBER: _ClassVar[int]
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    t_ms: float
    actors: _containers.RepeatedCompositeFieldContainer[DrawnActor]
    def __init__(self, t_ms: _Optional[float] = ..., actors: _Optional[_Iterable[_Union[DrawnActor, _Mapping]]] = ...) -> None: ...

class Telemetry(_message.Message):
    __slots__ = ("schema_version", "session_id", "video_width", "video_height", "video_fps", "ticks", "rtt_samples", "client_info", "world_id", "recording_start_t_ms", "recording_stop_t_ms", "frames", "world_clock_offset_ms", "physics_hz", "drawn_actors")
    SCHEMA_VERSION_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    VIDEO_WIDTH_FIELD_NUMBER: _ClassVar[int]
    VIDEO_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    VIDEO_FPS_FIELD_NUMBER: _ClassVar[int]
    TICKS_FIELD_NUMBER: _ClassVar[int]
    RTT_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    CLIENT_INFO_FIELD_NUMBER: _ClassVar[int]
    WORLD_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDING_START_T_MS_FIELD_NUMBER: _ClassVar[int]
    RECORDING_STOP_T_MS_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    WORLD_CLOCK_OFFSET_MS_FIELD_NUMBER: _ClassVar[int]
    PHYSICS_HZ_FIELD_NUMBER: _ClassVar[int]
    DRAWN_ACTORS_FIELD_NUMBER: _ClassVar[int]
    schema_version: int
    session_id: str
    video_width: int
    video_height: int
    video_fps: float
    ticks: _containers.RepeatedCompositeFieldContainer[TelemetryTick]
    rtt_samples: _containers.RepeatedCompositeFieldContainer[RttSample]
    client_info: str
    world_id: str
    recording_start_t_ms: float
    recording_stop_t_ms: float
    frames: _containers.RepeatedCompositeFieldContainer[VideoFrameRecord]
    world_clock_offset_ms: float
    physics_hz: float
    drawn_actors: _containers.RepeatedCompositeFieldContainer[DrawnActors]
    def __init__(self, schema_version: _Optional[int] = ..., session_id: _Optional[str] = ..., video_width: _Optional[int] = ..., video_height: _Optional[int] = ..., video_fps: _Optional[float] = ..., ticks: _Optional[_Iterable[_Union[TelemetryTick, _Mapping]]] = ..., rtt_samples: _Optional[_Iterable[_Union[RttSample, _Mapping]]] = ..., client_info: _Optional[str] = ..., world_id: _Optional[str] = ..., recording_start_t_ms: _Optional[float] = ..., recording_stop_t_ms: _Optional[float] = ..., frames: _Optional[_Iterable[_Union[VideoFrameRecord, _Mapping]]] = ..., world_clock_offset_ms: _Optional[float] = ..., physics_hz: _Optional[float] = ..., drawn_actors: _Optional[_Iterable[_Union[DrawnActors, _Mapping]]] = ...) -> None: ...

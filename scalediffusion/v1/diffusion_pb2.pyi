from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamConfig(_message.Message):
    __slots__ = ("style", "prompt", "width", "height", "steps", "strength", "seed")
    STYLE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    style: str
    prompt: str
    width: int
    height: int
    steps: int
    strength: float
    seed: int
    def __init__(self, style: _Optional[str] = ..., prompt: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., steps: _Optional[int] = ..., strength: _Optional[float] = ..., seed: _Optional[int] = ...) -> None: ...

class OpenStreamRequest(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: StreamConfig
    def __init__(self, config: _Optional[_Union[StreamConfig, _Mapping]] = ...) -> None: ...

class OpenStreamResponse(_message.Message):
    __slots__ = ("stream_id", "config", "idle_timeout_ms", "frame_rate", "latency_target_ms")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    IDLE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_TARGET_MS_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    config: StreamConfig
    idle_timeout_ms: int
    frame_rate: float
    latency_target_ms: int
    def __init__(self, stream_id: _Optional[str] = ..., config: _Optional[_Union[StreamConfig, _Mapping]] = ..., idle_timeout_ms: _Optional[int] = ..., frame_rate: _Optional[float] = ..., latency_target_ms: _Optional[int] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("stream_id", "seq", "client_t_ms", "image", "content_type")
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    CLIENT_T_MS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    seq: int
    client_t_ms: float
    image: bytes
    content_type: str
    def __init__(self, stream_id: _Optional[str] = ..., seq: _Optional[int] = ..., client_t_ms: _Optional[float] = ..., image: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...

class TransformFrameRequest(_message.Message):
    __slots__ = ("frame",)
    FRAME_FIELD_NUMBER: _ClassVar[int]
    frame: Frame
    def __init__(self, frame: _Optional[_Union[Frame, _Mapping]] = ...) -> None: ...

class TransformFrameResponse(_message.Message):
    __slots__ = ("frame", "server_ms", "strength", "dropped", "frame_rate", "dropped_reason", "width", "height")
    FRAME_FIELD_NUMBER: _ClassVar[int]
    SERVER_MS_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_FIELD_NUMBER: _ClassVar[int]
    DROPPED_REASON_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    frame: Frame
    server_ms: float
    strength: float
    dropped: bool
    frame_rate: float
    dropped_reason: str
    width: int
    height: int
    def __init__(self, frame: _Optional[_Union[Frame, _Mapping]] = ..., server_ms: _Optional[float] = ..., strength: _Optional[float] = ..., dropped: _Optional[bool] = ..., frame_rate: _Optional[float] = ..., dropped_reason: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class CloseStreamRequest(_message.Message):
    __slots__ = ("stream_id",)
    STREAM_ID_FIELD_NUMBER: _ClassVar[int]
    stream_id: str
    def __init__(self, stream_id: _Optional[str] = ...) -> None: ...

class CloseStreamResponse(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: int
    def __init__(self, frames: _Optional[int] = ...) -> None: ...

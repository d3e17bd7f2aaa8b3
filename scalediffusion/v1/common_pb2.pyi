from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class RoadOption(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROAD_OPTION_UNSPECIFIED: _ClassVar[RoadOption]
    ROAD_OPTION_LEFT: _ClassVar[RoadOption]
    ROAD_OPTION_RIGHT: _ClassVar[RoadOption]
    ROAD_OPTION_STRAIGHT: _ClassVar[RoadOption]
    ROAD_OPTION_LANEFOLLOW: _ClassVar[RoadOption]
    ROAD_OPTION_CHANGELANELEFT: _ClassVar[RoadOption]
    ROAD_OPTION_CHANGELANERIGHT: _ClassVar[RoadOption]
ROAD_OPTION_UNSPECIFIED: RoadOption
ROAD_OPTION_LEFT: RoadOption
ROAD_OPTION_RIGHT: RoadOption
ROAD_OPTION_STRAIGHT: RoadOption
ROAD_OPTION_LANEFOLLOW: RoadOption
ROAD_OPTION_CHANGELANELEFT: RoadOption
ROAD_OPTION_CHANGELANERIGHT: RoadOption

class Vec3(_message.Message):
    __slots__ = ("x", "y", "z")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    z: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ...) -> None: ...

class PageRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

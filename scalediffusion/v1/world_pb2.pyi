from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RoadKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROAD_KIND_UNSPECIFIED: _ClassVar[RoadKind]
    ROAD_KIND_AVENUE: _ClassVar[RoadKind]
    ROAD_KIND_STREET: _ClassVar[RoadKind]

class IntersectionControl(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERSECTION_CONTROL_UNSPECIFIED: _ClassVar[IntersectionControl]
    INTERSECTION_CONTROL_NONE: _ClassVar[IntersectionControl]
    INTERSECTION_CONTROL_TRAFFIC_LIGHT: _ClassVar[IntersectionControl]
    INTERSECTION_CONTROL_STOP_SIGN: _ClassVar[IntersectionControl]

class ActorKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACTOR_KIND_UNSPECIFIED: _ClassVar[ActorKind]
    ACTOR_KIND_VEHICLE: _ClassVar[ActorKind]
    ACTOR_KIND_PEDESTRIAN: _ClassVar[ActorKind]
ROAD_KIND_UNSPECIFIED: RoadKind
ROAD_KIND_AVENUE: RoadKind
ROAD_KIND_STREET: RoadKind
INTERSECTION_CONTROL_UNSPECIFIED: IntersectionControl
INTERSECTION_CONTROL_NONE: IntersectionControl
INTERSECTION_CONTROL_TRAFFIC_LIGHT: IntersectionControl
INTERSECTION_CONTROL_STOP_SIGN: IntersectionControl
ACTOR_KIND_UNSPECIFIED: ActorKind
ACTOR_KIND_VEHICLE: ActorKind
ACTOR_KIND_PEDESTRIAN: ActorKind

class Point2(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class Road(_message.Message):
    __slots__ = ("id", "name", "kind", "start", "end", "width_m", "sidewalk_m", "lanes_forward", "lanes_backward", "from_intersection", "to_intersection")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    WIDTH_M_FIELD_NUMBER: _ClassVar[int]
    SIDEWALK_M_FIELD_NUMBER: _ClassVar[int]
    LANES_FORWARD_FIELD_NUMBER: _ClassVar[int]
    LANES_BACKWARD_FIELD_NUMBER: _ClassVar[int]
    FROM_INTERSECTION_FIELD_NUMBER: _ClassVar[int]
    TO_INTERSECTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    kind: RoadKind
    start: Point2
    end: Point2
    width_m: float
    sidewalk_m: float
    lanes_forward: int
    lanes_backward: int
    from_intersection: str
    to_intersection: str
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[_Union[RoadKind, str]] = ..., start: _Optional[_Union[Point2, _Mapping]] = ..., end: _Optional[_Union[Point2, _Mapping]] = ..., width_m: _Optional[float] = ..., sidewalk_m: _Optional[float] = ..., lanes_forward: _Optional[int] = ..., lanes_backward: _Optional[int] = ..., from_intersection: _Optional[str] = ..., to_intersection: _Optional[str] = ...) -> None: ...

class Intersection(_message.Message):
    __slots__ = ("id", "position", "control", "road_ids", "light_offset_s")
    ID_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    ROAD_IDS_FIELD_NUMBER: _ClassVar[int]
    LIGHT_OFFSET_S_FIELD_NUMBER: _ClassVar[int]
    id: str
    position: Point2
    control: IntersectionControl
    road_ids: _containers.RepeatedScalarFieldContainer[str]
    light_offset_s: float
    def __init__(self, id: _Optional[str] = ..., position: _Optional[_Union[Point2, _Mapping]] = ..., control: _Optional[_Union[IntersectionControl, str]] = ..., road_ids: _Optional[_Iterable[str]] = ..., light_offset_s: _Optional[float] = ...) -> None: ...

class Building(_message.Message):
    __slots__ = ("id", "footprint", "height_m")
    ID_FIELD_NUMBER: _ClassVar[int]
    FOOTPRINT_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_M_FIELD_NUMBER: _ClassVar[int]
    id: str
    footprint: _containers.RepeatedCompositeFieldContainer[Point2]
    height_m: float
    def __init__(self, id: _Optional[str] = ..., footprint: _Optional[_Iterable[_Union[Point2, _Mapping]]] = ..., height_m: _Optional[float] = ...) -> None: ...

class ParkedVehicle(_message.Message):
    __slots__ = ("position", "heading", "length_m", "width_m")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    HEADING_FIELD_NUMBER: _ClassVar[int]
    LENGTH_M_FIELD_NUMBER: _ClassVar[int]
    WIDTH_M_FIELD_NUMBER: _ClassVar[int]
    position: Point2
    heading: float
    length_m: float
    width_m: float
    def __init__(self, position: _Optional[_Union[Point2, _Mapping]] = ..., heading: _Optional[float] = ..., length_m: _Optional[float] = ..., width_m: _Optional[float] = ...) -> None: ...

class SpawnPoint(_message.Message):
    __slots__ = ("position", "heading", "road_id")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    HEADING_FIELD_NUMBER: _ClassVar[int]
    ROAD_ID_FIELD_NUMBER: _ClassVar[int]
    position: Point2
    heading: float
    road_id: str
    def __init__(self, position: _Optional[_Union[Point2, _Mapping]] = ..., heading: _Optional[float] = ..., road_id: _Optional[str] = ...) -> None: ...

class Keyframe(_message.Message):
    __slots__ = ("t_s", "position", "heading")
    T_S_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    HEADING_FIELD_NUMBER: _ClassVar[int]
    t_s: float
    position: Point2
    heading: float
    def __init__(self, t_s: _Optional[float] = ..., position: _Optional[_Union[Point2, _Mapping]] = ..., heading: _Optional[float] = ...) -> None: ...

class ActorTrack(_message.Message):
    __slots__ = ("id", "kind", "period_s", "keyframes", "length_m", "width_m")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PERIOD_S_FIELD_NUMBER: _ClassVar[int]
    KEYFRAMES_FIELD_NUMBER: _ClassVar[int]
    LENGTH_M_FIELD_NUMBER: _ClassVar[int]
    WIDTH_M_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: ActorKind
    period_s: float
    keyframes: _containers.RepeatedCompositeFieldContainer[Keyframe]
    length_m: float
    width_m: float
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[_Union[ActorKind, str]] = ..., period_s: _Optional[float] = ..., keyframes: _Optional[_Iterable[_Union[Keyframe, _Mapping]]] = ..., length_m: _Optional[float] = ..., width_m: _Optional[float] = ...) -> None: ...

class World(_message.Message):
    __slots__ = ("world_id", "name", "version", "min", "max", "roads", "intersections", "buildings", "parked", "spawn_points", "light_cycle_s", "light_yellow_s", "actors")
    WORLD_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    ROADS_FIELD_NUMBER: _ClassVar[int]
    INTERSECTIONS_FIELD_NUMBER: _ClassVar[int]
    BUILDINGS_FIELD_NUMBER: _ClassVar[int]
    PARKED_FIELD_NUMBER: _ClassVar[int]
    SPAWN_POINTS_FIELD_NUMBER: _ClassVar[int]
    LIGHT_CYCLE_S_FIELD_NUMBER: _ClassVar[int]
    LIGHT_YELLOW_S_FIELD_NUMBER: _ClassVar[int]
    ACTORS_FIELD_NUMBER: _ClassVar[int]
    world_id: str
    name: str
    version: int
    min: Point2
    max: Point2
    roads: _containers.RepeatedCompositeFieldContainer[Road]
    intersections: _containers.RepeatedCompositeFieldContainer[Intersection]
    buildings: _containers.RepeatedCompositeFieldContainer[Building]
    parked: _containers.RepeatedCompositeFieldContainer[ParkedVehicle]
    spawn_points: _containers.RepeatedCompositeFieldContainer[SpawnPoint]
    light_cycle_s: float
    light_yellow_s: float
    actors: _containers.RepeatedCompositeFieldContainer[ActorTrack]
    def __init__(self, world_id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ..., min: _Optional[_Union[Point2, _Mapping]] = ..., max: _Optional[_Union[Point2, _Mapping]] = ..., roads: _Optional[_Iterable[_Union[Road, _Mapping]]] = ..., intersections: _Optional[_Iterable[_Union[Intersection, _Mapping]]] = ..., buildings: _Optional[_Iterable[_Union[Building, _Mapping]]] = ..., parked: _Optional[_Iterable[_Union[ParkedVehicle, _Mapping]]] = ..., spawn_points: _Optional[_Iterable[_Union[SpawnPoint, _Mapping]]] = ..., light_cycle_s: _Optional[float] = ..., light_yellow_s: _Optional[float] = ..., actors: _Optional[_Iterable[_Union[ActorTrack, _Mapping]]] = ...) -> None: ...

class GetWorldRequest(_message.Message):
    __slots__ = ("world_id",)
    WORLD_ID_FIELD_NUMBER: _ClassVar[int]
    world_id: str
    def __init__(self, world_id: _Optional[str] = ...) -> None: ...

class WorldSummary(_message.Message):
    __slots__ = ("world_id", "name", "version")
    WORLD_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    world_id: str
    name: str
    version: int
    def __init__(self, world_id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class ListWorldsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListWorldsResponse(_message.Message):
    __slots__ = ("worlds",)
    WORLDS_FIELD_NUMBER: _ClassVar[int]
    worlds: _containers.RepeatedCompositeFieldContainer[WorldSummary]
    def __init__(self, worlds: _Optional[_Iterable[_Union[WorldSummary, _Mapping]]] = ...) -> None: ...

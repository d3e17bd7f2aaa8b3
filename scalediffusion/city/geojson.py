"""Import NYC Open Data style GeoJSON into a World: building footprints (Polygon/MultiPolygon with `heightroof`
in feet, as in the NYC "Building Footprints" dataset) and street centerlines (LineString/MultiLineString with
`full_stree` / `st_width` in feet / `trafficdir` TW|FT|TF, as in the city's street centerline dataset).
Pure: a parsed GeoJSON dict in, a World out.

Longitude/latitude are projected to local metres around the data's centre (equirectangular: well under 0.1 %
error over a few km). Centerline vertices become intersections (endpoints shared within `snap_m` merge), and each
straight piece between two vertices becomes a Road.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scalediffusion.v1 import world_pb2

FEET = 0.3048
EARTH_RADIUS_M = 6_371_008.8


class GeoJsonError(ValueError):
    """The document is not GeoJSON this importer understands; the message says which feature and why."""


@dataclass(frozen=True)
class ImportSpec:
    world_id: str = "nyc-sample"
    name: str = "NYC sample"
    version: int = 1
    snap_m: float = 1.0  # centerline endpoints closer than this are one intersection
    default_height_m: float = 15.0  # for footprints without a height
    default_street_width_m: float = 10.0  # for centerlines without st_width
    sidewalk_m: float = 4.0
    wide_street_m: float = 20.0  # streets at least this wide (kerb to kerb) are avenues


class _Projection:
    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = lon0, lat0
        self.kx = math.radians(1) * EARTH_RADIUS_M * math.cos(math.radians(lat0))
        self.ky = math.radians(1) * EARTH_RADIUS_M

    def __call__(self, lon: float, lat: float) -> tuple[float, float]:
        return (lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky


def _coords(feature: dict, index: int) -> tuple[str, list]:
    geometry = feature.get("geometry")
    if not isinstance(geometry, dict) or "type" not in geometry or "coordinates" not in geometry:
        raise GeoJsonError(f"feature {index} has no geometry with type and coordinates")
    return geometry["type"], geometry["coordinates"]


def _lonlat(point: object, index: int) -> tuple[float, float]:
    if not isinstance(point, (list, tuple)) or len(point) < 2 or not all(isinstance(v, (int, float)) for v in point[:2]):
        raise GeoJsonError(f"feature {index} has a coordinate that is not [lon, lat]")
    lon, lat = float(point[0]), float(point[1])
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise GeoJsonError(f"feature {index} has a coordinate outside lon/lat ranges: {point[:2]}")
    return lon, lat


def import_geojson(doc: dict, spec: ImportSpec = ImportSpec()) -> world_pb2.World:
    """Raises GeoJsonError for anything that is not a FeatureCollection of supported features."""
    if not isinstance(doc, dict) or doc.get("type") != "FeatureCollection" or not isinstance(doc.get("features"), list):
        raise GeoJsonError("expected a GeoJSON FeatureCollection")
    features = doc["features"]
    points = []
    for index, feature in enumerate(features):
        kind, coords = _coords(feature, index)
        points.extend(_flatten(kind, coords, index))
    if not points:
        raise GeoJsonError("the FeatureCollection has no coordinates")
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    project = _Projection((min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2)

    world = world_pb2.World(world_id=spec.world_id, name=spec.name, version=spec.version, light_cycle_s=60.0, light_yellow_s=3.0)
    nodes: list[tuple[float, float]] = []
    node_roads: dict[int, list[str]] = {}

    def node_at(x: float, y: float) -> int:
        for k, (nx, ny) in enumerate(nodes):
            if math.hypot(nx - x, ny - y) <= spec.snap_m:
                return k
        nodes.append((x, y))
        return len(nodes) - 1

    for index, feature in enumerate(features):
        kind, coords = _coords(feature, index)
        props = feature.get("properties") or {}
        if kind in ("Polygon", "MultiPolygon"):
            polygons = [coords] if kind == "Polygon" else coords
            height_ft = props.get("heightroof")
            height = float(height_ft) * FEET if isinstance(height_ft, (int, float)) and height_ft > 0 else spec.default_height_m
            for k, polygon in enumerate(polygons):
                ring = [project(*_lonlat(p, index)) for p in polygon[0]]
                if len(ring) > 1 and ring[0] == ring[-1]:
                    ring = ring[:-1]
                if len(ring) < 3:
                    raise GeoJsonError(f"feature {index} has a polygon with fewer than 3 corners")
                if _signed_area(ring) < 0:
                    ring.reverse()  # CCW, as World.Building promises
                bid = str(props.get("bin") or props.get("id") or f"f{index}")
                world.buildings.add(
                    id=f"{bid}_{k}" if len(polygons) > 1 else bid,
                    footprint=[world_pb2.Point2(x=round(x, 6), y=round(y, 6)) for x, y in ring],
                    height_m=round(height, 3),
                )
        elif kind in ("LineString", "MultiLineString"):
            lines = [coords] if kind == "LineString" else coords
            width_ft = props.get("st_width")
            width = float(width_ft) * FEET if isinstance(width_ft, (int, float)) and width_ft > 0 else spec.default_street_width_m
            direction = str(props.get("trafficdir", "TW")).upper()
            name = str(props.get("full_stree") or props.get("name") or "")
            for k, line in enumerate(lines):
                pts = [project(*_lonlat(p, index)) for p in line]
                if len(pts) < 2:
                    raise GeoJsonError(f"feature {index} has a line with fewer than 2 points")
                for m, (a, b) in enumerate(zip(pts, pts[1:])):
                    na, nb = node_at(*a), node_at(*b)
                    if na == nb:
                        continue
                    rid = f"r{index}_{k}_{m}"
                    forward, backward = (1, 1) if direction == "TW" else ((1, 0) if direction == "FT" else (0, 1))
                    world.roads.add(
                        id=rid, name=name,
                        kind=world_pb2.ROAD_KIND_AVENUE if width >= spec.wide_street_m else world_pb2.ROAD_KIND_STREET,
                        start=world_pb2.Point2(x=round(nodes[na][0], 6), y=round(nodes[na][1], 6)),
                        end=world_pb2.Point2(x=round(nodes[nb][0], 6), y=round(nodes[nb][1], 6)),
                        width_m=round(width, 3), sidewalk_m=spec.sidewalk_m, lanes_forward=forward, lanes_backward=backward,
                        from_intersection=f"n{na}", to_intersection=f"n{nb}",
                    )
                    node_roads.setdefault(na, []).append(rid)
                    node_roads.setdefault(nb, []).append(rid)
        else:
            raise GeoJsonError(f"feature {index} has unsupported geometry {kind!r} (Polygon, MultiPolygon, LineString, MultiLineString)")
    for k, (x, y) in enumerate(nodes):
        degree = len(node_roads.get(k, []))
        control = world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT if degree >= 3 else world_pb2.INTERSECTION_CONTROL_NONE
        world.intersections.add(id=f"n{k}", position=world_pb2.Point2(x=round(x, 6), y=round(y, 6)), control=control, road_ids=sorted(node_roads.get(k, [])))
    all_xy = [project(*p) for p in points]
    world.min.x, world.min.y = round(min(p[0] for p in all_xy), 6), round(min(p[1] for p in all_xy), 6)
    world.max.x, world.max.y = round(max(p[0] for p in all_xy), 6), round(max(p[1] for p in all_xy), 6)
    return world


def _flatten(kind: str, coords: object, index: int) -> list[tuple[float, float]]:
    depth = {"Point": 0, "LineString": 1, "Polygon": 2, "MultiLineString": 2, "MultiPolygon": 3}.get(kind)
    if depth is None:
        raise GeoJsonError(f"feature {index} has unsupported geometry {kind!r}")
    items: list[object] = [coords]
    for _ in range(depth):
        lists = [i for i in items if isinstance(i, list)]
        if len(lists) != len(items):
            raise GeoJsonError(f"feature {index}: {kind} coordinates are not nested {depth} deep")
        items = [c for i in lists for c in i]
    return [_lonlat(p, index) for p in items]


def _signed_area(ring: list[tuple[float, float]]) -> float:
    return 0.5 * sum(x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1]))

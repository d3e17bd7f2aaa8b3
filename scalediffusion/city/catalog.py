"""The worlds this deployment offers, built once per process."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from scalediffusion.city.geojson import ImportSpec, import_geojson
from scalediffusion.city.grid import GridSpec, manhattan_grid
from scalediffusion.v1 import world_pb2

DEFAULT_WORLD = "manhattan-grid"
SAMPLE_GEOJSON = Path(__file__).parent / "data" / "sample_nyc.geojson"


@cache
def worlds() -> dict[str, world_pb2.World]:
    return {
        DEFAULT_WORLD: manhattan_grid(GridSpec()),
        "nyc-sample": import_geojson(json.loads(SAMPLE_GEOJSON.read_text()), ImportSpec()),
    }


def get_world(world_id: str = "") -> world_pb2.World | None:
    return worlds().get(world_id or DEFAULT_WORLD)

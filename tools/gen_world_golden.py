"""Write the golden world files the game's tests compare against (clients/web/src/world/fixtures/):
golden_world.json (the default World as proto3 JSON), golden_stats.json (scalediffusion.city.world_stats) and
golden_actor_poses.json (where each moving actor is at a few times).

    python tools/gen_world_golden.py           # after changing the city generator (and bumping GridSpec.version)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from google.protobuf import json_format

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scalediffusion.city import catalog, world_stats
from scalediffusion.city.actors import actor_pose

OUT = Path(__file__).resolve().parents[1] / "clients" / "web" / "src" / "world" / "fixtures"


POSE_TIMES = [0.0, 0.5, 3.7, 12.5, 61.0, 150.25, 1000.0]


def golden() -> tuple[str, str, str]:
    world = catalog.get_world(catalog.DEFAULT_WORLD)
    poses = {a.id: [list(actor_pose(a, t)) for t in POSE_TIMES] for a in world.actors}
    return (
        json.dumps(json_format.MessageToDict(world), indent=1, sort_keys=True) + "\n",
        json.dumps(world_stats(world), indent=1, sort_keys=True) + "\n",
        json.dumps({"times": POSE_TIMES, "poses": poses}, indent=1, sort_keys=True) + "\n",
    )


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    world_json, stats_json, poses_json = golden()
    (OUT / "golden_world.json").write_text(world_json)
    (OUT / "golden_stats.json").write_text(stats_json)
    (OUT / "golden_actor_poses.json").write_text(poses_json)
    print(f"wrote {OUT / 'golden_world.json'} and golden_stats.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())

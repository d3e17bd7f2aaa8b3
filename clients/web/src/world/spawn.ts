// Where a session starts: one of the world's spawn points, or (worlds without any) the right-hand lane of a road.

import type { World } from "../gen/scalediffusion/v1/world_pb";
import type { VehicleState } from "../sim/vehicle";
import { roadFrame } from "./worldGeometry";

/** Spawn number k (wrapping); the car stands still. */
export function spawnState(world: World, k = 0): VehicleState {
  const n = world.spawnPoints.length;
  if (n > 0) {
    const s = world.spawnPoints[((k % n) + n) % n]!;
    return { x: s.position?.x ?? 0, y: s.position?.y ?? 0, theta: s.heading, speed: 0 };
  }
  const roads = world.roads.filter((r) => roadFrame(r).length > 20);
  if (roads.length > 0) {
    const r = roads[((k % roads.length) + roads.length) % roads.length]!;
    const f = roadFrame(r);
    const along = Math.min(f.length / 2, 25);
    const across = -r.widthM / 4; // right-hand lane
    return { x: f.start.x + f.u.x * along + f.n.x * across, y: f.start.y + f.u.y * along + f.n.y * across, theta: Math.atan2(f.u.y, f.u.x), speed: 0 };
  }
  return { x: 0, y: 0, theta: 0, speed: 0 };
}

// A small rectangular grid city built with the World schema: the unit-test fixture (3x3) and the offline demo
// world the game offers when the world service cannot be reached.

import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  IntersectionControl,
  RoadKind,
  RoadSchema,
  WorldSchema,
  type World,
} from "../gen/scalediffusion/v1/world_pb";
import { hashString } from "./worldGeometry";

export interface GridWorldSpec {
  worldId?: string;
  cols?: number;
  rows?: number;
  /** Distance between intersection centres, metres. */
  spacing?: number;
  roadWidth?: number;
  sidewalk?: number;
}

/**
 * Intersections i{col}_{row} at (col * spacing, row * spacing). Roads: "ew{row}_{col}" east-west from
 * i{col}_{row} to i{col+1}_{row}; "ns{col}_{row}" north-south from i{col}_{row} to i{col}_{row+1}; two-way,
 * one lane each way. Inner intersections have traffic lights, corners stop signs, the rest none. One building per
 * block, heights varied by id; a parked car on the south kerb of each east-west road; spawn points on the
 * north-south roads of the first row heading north in the right-hand lane.
 */
export function gridWorld(spec: GridWorldSpec = {}): World {
  const cols = spec.cols ?? 3;
  const rows = spec.rows ?? 3;
  const s = spec.spacing ?? 100;
  const w = spec.roadWidth ?? 10;
  const sw = spec.sidewalk ?? 3;
  const id = (c: number, r: number) => `i${c}_${r}`;
  const roadsAt = new Map<string, string[]>();
  const roads: MessageInitShape<typeof RoadSchema>[] = [];
  const addRoad = (rid: string, kind: RoadKind, a: [number, number], b: [number, number]) => {
    roads.push({
      id: rid,
      name: rid,
      kind,
      start: { x: a[0] * s, y: a[1] * s },
      end: { x: b[0] * s, y: b[1] * s },
      widthM: w,
      sidewalkM: sw,
      lanesForward: 1,
      lanesBackward: 1,
      fromIntersection: id(...a),
      toIntersection: id(...b),
    });
    for (const iid of [id(...a), id(...b)]) {
      const list = roadsAt.get(iid) ?? [];
      list.push(rid);
      roadsAt.set(iid, list);
    }
  };
  for (let r = 0; r < rows; r++) for (let c = 0; c + 1 < cols; c++) addRoad(`ew${r}_${c}`, RoadKind.STREET, [c, r], [c + 1, r]);
  for (let c = 0; c < cols; c++) for (let r = 0; r + 1 < rows; r++) addRoad(`ns${c}_${r}`, RoadKind.AVENUE, [c, r], [c, r + 1]);

  const intersections = [];
  for (let c = 0; c < cols; c++) {
    for (let r = 0; r < rows; r++) {
      const corner = (c === 0 || c === cols - 1) && (r === 0 || r === rows - 1);
      const inner = c > 0 && c < cols - 1 && r > 0 && r < rows - 1;
      const control = inner ? IntersectionControl.TRAFFIC_LIGHT : corner ? IntersectionControl.STOP_SIGN : IntersectionControl.NONE;
      intersections.push({
        id: id(c, r),
        position: { x: c * s, y: r * s },
        control,
        roadIds: [...(roadsAt.get(id(c, r)) ?? [])].sort(),
        lightOffsetS: inner ? (r * 7) % 60 : 0,
      });
    }
  }

  const inset = w / 2 + sw + 1;
  const buildings = [];
  for (let c = 0; c + 1 < cols; c++) {
    for (let r = 0; r + 1 < rows; r++) {
      const bid = `b${c}_${r}`;
      const x0 = c * s + inset;
      const x1 = (c + 1) * s - inset;
      const y0 = r * s + inset;
      const y1 = (r + 1) * s - inset;
      buildings.push({
        id: bid,
        footprint: [
          { x: x0, y: y0 },
          { x: x1, y: y0 },
          { x: x1, y: y1 },
          { x: x0, y: y1 },
        ],
        heightM: 15 + (hashString(bid) % 60),
      });
    }
  }

  const parked = [];
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c + 1 < cols; c++) {
      parked.push({ position: { x: c * s + s / 2, y: r * s - (w / 2 - 1.2) }, heading: 0, lengthM: 4.6, widthM: 1.9 });
    }
  }

  const spawnPoints = [];
  for (let c = 0; c < cols; c++) {
    spawnPoints.push({ position: { x: c * s + w / 4, y: s * 0.25 }, heading: Math.PI / 2, roadId: `ns${c}_0` });
  }

  return create(WorldSchema, {
    worldId: spec.worldId ?? `grid-${cols}x${rows}`,
    name: `${cols}x${rows} grid`,
    version: 1,
    min: { x: -s / 2, y: -s / 2 },
    max: { x: (cols - 1) * s + s / 2, y: (rows - 1) * s + s / 2 },
    roads,
    intersections,
    buildings,
    parked,
    spawnPoints,
    lightCycleS: 60,
    lightYellowS: 3,
  });
}

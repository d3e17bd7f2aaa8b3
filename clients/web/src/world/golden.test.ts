// The shared golden test: the Python city model (scalediffusion.city) writes golden_world.json (the default World as
// proto3 JSON) and golden_stats.json (its world_stats); the game must compute the same stats from the same World.
import { existsSync, readFileSync } from "node:fs";
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { WorldSchema } from "../gen/scalediffusion/v1/world_pb";
import { buildRoadGraph, shortestPath } from "./routing";
import { worldStats, type WorldStats } from "./worldGeometry";

const WORLD = new URL("./fixtures/golden_world.json", import.meta.url);
const STATS = new URL("./fixtures/golden_stats.json", import.meta.url);
const present = existsSync(WORLD) && existsSync(STATS);
const TOL = 1e-6;

describe.skipIf(!present)(
  present ? "golden world (Python <-> game)" : "golden world: SKIPPED, src/world/fixtures/golden_world.json or golden_stats.json is absent (tools/gen_world_golden.py writes them)",
  () => {
    const load = () => {
      const world = fromJson(WorldSchema, JSON.parse(readFileSync(WORLD, "utf8")) as JsonValue);
      const expected = JSON.parse(readFileSync(STATS, "utf8")) as WorldStats;
      return { world, expected };
    };

    it("worldStats equals golden_stats.json within 1e-6", () => {
      const { world, expected } = load();
      const got = worldStats(world);
      expect(Object.keys(got).sort()).toEqual(Object.keys(expected).sort());
      expect(got.worldId).toBe(expected.worldId);
      expect(got.version).toBe(expected.version);
      expect(got.roadCount).toBe(expected.roadCount);
      expect(got.buildingCount).toBe(expected.buildingCount);
      expect(got.intersectionCount).toBe(expected.intersectionCount);
      expect(Math.abs(got.roadLengthM - expected.roadLengthM)).toBeLessThanOrEqual(TOL);
      expect(got.intersections.map((i) => i.id)).toEqual(expected.intersections.map((i) => i.id));
      got.intersections.forEach((i, k) => {
        expect(Math.abs(i.x - expected.intersections[k]!.x)).toBeLessThanOrEqual(TOL);
        expect(Math.abs(i.y - expected.intersections[k]!.y)).toBeLessThanOrEqual(TOL);
      });
      for (const key of ["boundsMin", "boundsMax"] as const) {
        expect(Math.abs(got[key].x - expected[key].x)).toBeLessThanOrEqual(TOL);
        expect(Math.abs(got[key].y - expected[key].y)).toBeLessThanOrEqual(TOL);
      }
    });

    it("is a connected road graph the game can route across", () => {
      const { world } = load();
      const graph = buildRoadGraph(world);
      const ids = [...graph.nodes.keys()].sort();
      for (const to of ids.slice(1)) expect(shortestPath(graph, ids[0]!, to), `route ${ids[0]} -> ${to}`).not.toBeNull();
    });
  },
);

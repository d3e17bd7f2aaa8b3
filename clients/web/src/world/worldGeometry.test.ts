import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { IntersectionControl, RoadSchema, WorldSchema } from "../gen/scalediffusion/v1/world_pb";
import { grid3x3 } from "./fixtures/grid3x3";
import {
  buildingMesh,
  buildingPrisms,
  controlPoles,
  intersectionBoxes,
  lightColor,
  normaliseRing,
  roadQuad,
  roadSurfaces,
  sidewalkQuads,
  signedArea,
  triangulate,
  worldStats,
  centroid,
  groupByTile,
} from "./worldGeometry";

describe("worldStats", () => {
  it("summarises the 3x3 fixture", () => {
    const stats = worldStats(grid3x3());
    expect(stats.worldId).toBe("grid-3x3");
    expect(stats.version).toBe(1);
    expect(stats.roadCount).toBe(12);
    expect(stats.roadLengthM).toBeCloseTo(1200, 9);
    expect(stats.buildingCount).toBe(4);
    expect(stats.intersectionCount).toBe(9);
    expect(stats.intersections.map((i) => i.id)).toEqual(["i0_0", "i0_1", "i0_2", "i1_0", "i1_1", "i1_2", "i2_0", "i2_1", "i2_2"]);
    expect(stats.intersections[5]).toEqual({ id: "i1_2", x: 100, y: 200 });
    expect(stats.boundsMin).toEqual({ x: -50, y: -50 });
    expect(stats.boundsMax).toEqual({ x: 250, y: 250 });
  });

  it("sorts intersection ids by code point like Python and sums diagonal roads exactly", () => {
    const world = create(WorldSchema, {
      intersections: [
        { id: "b", position: { x: 3, y: 4 } },
        { id: "B", position: { x: 0, y: 0 } },
        { id: "a", position: { x: 1, y: 1 } },
      ],
      roads: [{ id: "r", start: { x: 0, y: 0 }, end: { x: 3, y: 4 } }, { id: "s" }],
    });
    const stats = worldStats(world);
    expect(stats.intersections.map((i) => i.id)).toEqual(["B", "a", "b"]);
    expect(stats.roadLengthM).toBe(5);
    expect(stats.boundsMin).toEqual({ x: 0, y: 0 });
  });
});

describe("road surfaces", () => {
  const road = create(RoadSchema, { id: "r", start: { x: 0, y: 0 }, end: { x: 100, y: 0 }, widthM: 10, sidewalkM: 3 });

  it("builds a counter-clockwise carriageway around the centerline", () => {
    const q = roadQuad(road).corners;
    expect(q).toEqual([
      { x: 0, y: -5 },
      { x: 100, y: -5 },
      { x: 100, y: 5 },
      { x: 0, y: 5 },
    ]);
    expect(signedArea(q)).toBeCloseTo(1000);
  });

  it("puts trimmed sidewalks on both sides", () => {
    const [right, left] = sidewalkQuads(road, 5, 7);
    expect(right!.corners[0]).toEqual({ x: 5, y: -8 });
    expect(right!.corners[2]).toEqual({ x: 93, y: -5 });
    expect(left!.corners[2]).toEqual({ x: 93, y: 8 });
    expect(signedArea(left!.corners)).toBeCloseTo(88 * 3);
  });

  it("trims sidewalks by the half width of crossing roads in the grid", () => {
    const { roads, sidewalks } = roadSurfaces(grid3x3());
    expect(roads).toHaveLength(12);
    expect(sidewalks).toHaveLength(24);
    const ew = sidewalks.find((s) => s.roadId === "ew0_0" && s.side === "left")!;
    // ew0_0 runs from x=0 to x=100; the crossing north-south roads are 10 m wide.
    expect(ew.corners[0].x).toBeCloseTo(5);
    expect(ew.corners[1].x).toBeCloseTo(95);
  });

  it("makes intersection boxes as wide as the widest road", () => {
    const boxes = intersectionBoxes(grid3x3());
    expect(boxes).toHaveLength(9);
    const centre = boxes.find((b) => b.id === "i1_1")!;
    expect(centre).toMatchObject({ center: { x: 100, y: 100 }, halfSize: 5, control: IntersectionControl.TRAFFIC_LIGHT });
  });
});

describe("buildings", () => {
  it("normalises rings to counter-clockwise without a closing point", () => {
    const ring = normaliseRing([
      { x: 0, y: 0 },
      { x: 0, y: 1 },
      { x: 1, y: 1 },
      { x: 1, y: 0 },
      { x: 0, y: 0 },
    ]);
    expect(ring).toHaveLength(4);
    expect(signedArea(ring)).toBeGreaterThan(0);
  });

  it("triangulates a concave (L-shaped) footprint into n-2 triangles covering its area", () => {
    const l = [
      { x: 0, y: 0 },
      { x: 2, y: 0 },
      { x: 2, y: 1 },
      { x: 1, y: 1 },
      { x: 1, y: 2 },
      { x: 0, y: 2 },
    ];
    const tris = triangulate(l);
    expect(tris).toHaveLength(12);
    let area = 0;
    for (let i = 0; i < tris.length; i += 3) area += signedArea([l[tris[i]!]!, l[tris[i + 1]!]!, l[tris[i + 2]!]!]);
    expect(area).toBeCloseTo(3);
  });

  it("extrudes prisms with walls, roofs and varied heights", () => {
    const prisms = buildingPrisms(grid3x3());
    expect(prisms).toHaveLength(4);
    expect(new Set(prisms.map((p) => p.heightM)).size).toBeGreaterThan(1);
    const mesh = buildingMesh(prisms);
    // 4 walls (4 vertices each) + a 4-vertex roof per building.
    expect(mesh.positions.length / 3).toBe(4 * (16 + 4));
    expect(mesh.indices.length).toBe(4 * (4 * 6 + 6));
    const maxZ = Math.max(...mesh.positions.filter((_, i) => i % 3 === 2));
    expect(maxZ).toBe(Math.max(...prisms.map((p) => p.heightM)));
  });
});

describe("traffic control", () => {
  it("places a pole per approach at controlled intersections", () => {
    const poles = controlPoles(grid3x3());
    // i1_1 (light) has 4 approaches; the 4 corners (stop signs) have 2 each.
    expect(poles.filter((p) => p.control === IntersectionControl.TRAFFIC_LIGHT)).toHaveLength(4);
    expect(poles.filter((p) => p.control === IntersectionControl.STOP_SIGN)).toHaveLength(8);
    // Coming north up ns1_0 into i1_1, the pole stands on the right (east) kerb, south of the box.
    const p = poles.find((q) => q.intersectionId === "i1_1" && q.roadId === "ns1_0")!;
    expect(p.position.x).toBeGreaterThan(100);
    expect(p.position.y).toBeLessThan(100);
    expect(p.axis).toBe("ns");
  });

  it("cycles green, yellow, red with the offset, opposite axes out of phase", () => {
    const w = { lightCycleS: 60, lightYellowS: 3 };
    expect(lightColor(w, 10, "ns", 10)).toBe("green");
    expect(lightColor(w, 10, "ew", 10)).toBe("red");
    expect(lightColor(w, 10, "ns", 10 + 28)).toBe("yellow");
    expect(lightColor(w, 10, "ns", 10 + 31)).toBe("red");
    expect(lightColor(w, 10, "ew", 10 + 31)).toBe("green");
    expect(lightColor(w, 10, "ns", 5)).toBe("red");
  });
});

describe("lane markings", () => {
  it("paints a double yellow centre line on two-way roads, trimmed at the boxes", async () => {
    const { laneMarkings } = await import("./worldGeometry");
    const marks = laneMarkings(grid3x3());
    const yellow = marks.filter((m) => m.color === "yellow");
    expect(yellow).toHaveLength(24); // 12 roads x 2 lines
    expect(marks.filter((m) => m.color === "white")).toHaveLength(0); // one lane each way
    const first = yellow[0]!.corners; // ew0_0 from x=0 to 100, boxes of half size 5
    expect(first[0].x).toBeCloseTo(5);
    expect(first[1].x).toBeCloseTo(95);
  });
});

describe("groupByTile", () => {
  it("puts every item in exactly one tile, by its anchor", () => {
    const pts = [
      { x: 1, y: 1 },
      { x: 119, y: 5 },
      { x: 121, y: 5 },
      { x: -1, y: 0 },
      { x: 50, y: 130 },
    ];
    const tiles = groupByTile(pts, (p) => p, 120);
    expect(tiles.flat().length).toBe(pts.length);
    expect(tiles.map((t) => t.length).sort()).toEqual([1, 1, 1, 2]);
    expect(tiles.find((t) => t.length === 2)).toEqual([
      { x: 1, y: 1 },
      { x: 119, y: 5 },
    ]);
  });

  it("anchors a quad at its centroid", () => {
    expect(centroid([{ x: 0, y: 0 }, { x: 2, y: 0 }, { x: 2, y: 4 }, { x: 0, y: 4 }])).toEqual({ x: 1, y: 2 });
    const { roads } = roadSurfaces(grid3x3());
    const tiles = groupByTile(roads, (r) => centroid(r.corners), 50);
    expect(tiles.flat().length).toBe(roads.length);
  });
});

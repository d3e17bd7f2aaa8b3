// Road graph, shortest routes and the navigation command (CARLA RoadOption) at a position. Pure: no DOM.

import { RoadOption } from "../gen/scalediffusion/v1/common_pb";
import type { World } from "../gen/scalediffusion/v1/world_pb";
import { pt, roadFrame, roadLength, type Vec2 } from "./worldGeometry";

export interface GraphEdge {
  from: string;
  to: string;
  roadId: string;
  lengthM: number;
}

export interface RoadGraph {
  nodes: Map<string, Vec2>;
  /** Outgoing edges per node, sorted by road id then target (deterministic tie-breaking). */
  edges: Map<string, GraphEdge[]>;
}

export interface GraphOptions {
  /** Follow lanes_forward/lanes_backward (a road with 0 lanes one way is one-way). Default true. */
  respectOneWay?: boolean;
}

/**
 * Nodes are intersections; each road joining two known intersections is an edge (both ways unless one-way).
 * A road with no lanes either way counts as two-way.
 */
export function buildRoadGraph(world: World, options: GraphOptions = {}): RoadGraph {
  const respect = options.respectOneWay ?? true;
  const nodes = new Map<string, Vec2>();
  const edges = new Map<string, GraphEdge[]>();
  for (const i of world.intersections) {
    nodes.set(i.id, pt(i.position));
    edges.set(i.id, []);
  }
  for (const road of world.roads) {
    const a = road.fromIntersection;
    const b = road.toIntersection;
    if (!nodes.has(a) || !nodes.has(b) || a === b) continue;
    const lengthM = roadLength(road);
    const noLanes = road.lanesForward === 0 && road.lanesBackward === 0;
    const forward = !respect || noLanes || road.lanesForward > 0;
    const backward = !respect || noLanes || road.lanesBackward > 0;
    if (forward) edges.get(a)!.push({ from: a, to: b, roadId: road.id, lengthM });
    if (backward) edges.get(b)!.push({ from: b, to: a, roadId: road.id, lengthM });
  }
  for (const list of edges.values()) {
    list.sort((p, q) => (p.roadId < q.roadId ? -1 : p.roadId > q.roadId ? 1 : p.to < q.to ? -1 : p.to > q.to ? 1 : 0));
  }
  return { nodes, edges };
}

export interface Path {
  nodes: string[];
  roads: string[];
  lengthM: number;
}

class MinHeap {
  private items: { key: number; seq: number; id: string }[] = [];
  get size(): number {
    return this.items.length;
  }
  push(key: number, seq: number, id: string): void {
    const a = this.items;
    a.push({ key, seq, id });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): { key: number; id: string } | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
  private less(p: { key: number; seq: number }, q: { key: number; seq: number }): boolean {
    return p.key < q.key || (p.key === q.key && p.seq < q.seq);
  }
}

/** Dijkstra by road length; null when `to` cannot be reached. Ties resolve deterministically. */
export function shortestPath(graph: RoadGraph, from: string, to: string): Path | null {
  if (!graph.nodes.has(from) || !graph.nodes.has(to)) return null;
  const dist = new Map<string, number>([[from, 0]]);
  const prev = new Map<string, GraphEdge>();
  const done = new Set<string>();
  const heap = new MinHeap();
  let seq = 0;
  heap.push(0, seq++, from);
  while (heap.size > 0) {
    const { key, id } = heap.pop()!;
    if (done.has(id)) continue;
    done.add(id);
    if (id === to) break;
    for (const e of graph.edges.get(id) ?? []) {
      const d = key + e.lengthM;
      if (d < (dist.get(e.to) ?? Infinity) - 1e-9) {
        dist.set(e.to, d);
        prev.set(e.to, e);
        heap.push(d, seq++, e.to);
      }
    }
  }
  if (!done.has(to)) return null;
  const nodes = [to];
  const roads: string[] = [];
  let cur = to;
  while (cur !== from) {
    const e = prev.get(cur)!;
    roads.push(e.roadId);
    nodes.push(e.from);
    cur = e.from;
  }
  nodes.reverse();
  roads.reverse();
  return { nodes, roads, lengthM: dist.get(to)! };
}

/** Signed turn angle at b going a -> b -> c, radians in (-pi, pi]; positive = counter-clockwise = left. */
export function turnAngle(a: Vec2, b: Vec2, c: Vec2): number {
  const ix = b.x - a.x;
  const iy = b.y - a.y;
  const ox = c.x - b.x;
  const oy = c.y - b.y;
  return Math.atan2(ix * oy - iy * ox, ix * ox + iy * oy);
}

/** LEFT above +thresholdDeg (counter-clockwise), RIGHT below -thresholdDeg, otherwise STRAIGHT. */
export function classifyTurn(angleRad: number, thresholdDeg = 30): RoadOption {
  const t = (thresholdDeg * Math.PI) / 180;
  if (angleRad > t) return RoadOption.LEFT;
  if (angleRad < -t) return RoadOption.RIGHT;
  return RoadOption.STRAIGHT;
}

export interface Route {
  /** Polyline vertices: optionally a start position, then intersection positions. */
  points: Vec2[];
  /** The intersection id at each point (null for a start position that is not an intersection). */
  nodeIds: (string | null)[];
  /** Distance along the route at each point. */
  cumulative: number[];
  /** What to do at each point: LEFT/RIGHT/STRAIGHT at interior intersections, LANEFOLLOW at both ends. */
  maneuvers: RoadOption[];
  lengthM: number;
}

/** Builds a route through intersections `nodes` (in order), optionally starting from a free position. */
export function makeRoute(graph: RoadGraph, nodes: readonly string[], start?: Vec2, turnThresholdDeg = 30): Route {
  const points: Vec2[] = [];
  const nodeIds: (string | null)[] = [];
  if (start !== undefined) {
    points.push({ x: start.x, y: start.y });
    nodeIds.push(null);
  }
  for (const id of nodes) {
    const p = graph.nodes.get(id);
    if (p === undefined) throw new Error(`route: unknown intersection ${JSON.stringify(id)}`);
    const last = points[points.length - 1];
    if (last !== undefined && nodeIds[nodeIds.length - 1] === null && Math.hypot(p.x - last.x, p.y - last.y) < 1e-6) {
      // The start position is the first intersection itself.
      nodeIds[nodeIds.length - 1] = id;
      continue;
    }
    points.push({ ...p });
    nodeIds.push(id);
  }
  const cumulative: number[] = [];
  let acc = 0;
  for (let i = 0; i < points.length; i++) {
    if (i > 0) acc += Math.hypot(points[i]!.x - points[i - 1]!.x, points[i]!.y - points[i - 1]!.y);
    cumulative.push(acc);
  }
  const maneuvers = points.map((_, i) =>
    i === 0 || i === points.length - 1 ? RoadOption.LANEFOLLOW : classifyTurn(turnAngle(points[i - 1]!, points[i]!, points[i + 1]!), turnThresholdDeg),
  );
  return { points, nodeIds, cumulative, maneuvers, lengthM: acc };
}

/** Appends intersections to a route (the first of `more` may repeat the route's last node). */
export function extendRoute(graph: RoadGraph, route: Route, more: readonly string[], turnThresholdDeg = 30): Route {
  const ids = route.nodeIds.filter((id): id is string => id !== null);
  const tail = more[0] === ids[ids.length - 1] ? more.slice(1) : more;
  const start = route.nodeIds[0] === null ? route.points[0] : undefined;
  return makeRoute(graph, [...ids, ...tail], start, turnThresholdDeg);
}

/** How far past an intersection its manoeuvre is still announced (NavOptions.exitM). */
export const NAV_EXIT_M = 10;

/** The target point is the route's first point more than this far ahead along it: TransFuser's RoutePlanner
 *  min_distance. Route points are intersection centres, so from just before a junction's centre on it is the far end
 *  of the road the manoeuvre leads into, and it keeps saying so after the command is back to "follow the lane". */
export const TARGET_MIN_M = 7.5;

export interface NavOptions {
  /** Announce the manoeuvre this far before an intersection (m). */
  approachM?: number;
  /** Keep announcing it this far past the intersection, while still crossing it (m). The command returns to
   *  "follow the lane" before a turn from an avenue is finished (it ends ~20 m past the centre); holding it 20 m was
   *  tried on the bots' data and the waypoint policy drove worse (services/trainer/results/value). */
  exitM?: number;
}

export interface Nav {
  command: RoadOption;
  /** Index of the route segment the position projects onto (points[segment] -> points[segment + 1]). */
  segment: number;
  progressM: number;
  /** Distance from the route polyline. */
  lateralM: number;
  remainingM: number;
  nextIndex: number | null;
  nextIntersectionId: string | null;
  distanceToNextM: number | null;
  /** The next LEFT/RIGHT manoeuvre ahead (STRAIGHT crossings are skipped). */
  nextTurn: { command: RoadOption; distanceM: number; index: number } | null;
  finished: boolean;
}

function project(p: Vec2, a: Vec2, b: Vec2): { t: number; d: number; len: number } {
  const dx = b.x - a.x;
  const dy = b.y - a.y;
  const len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? Math.min(1, Math.max(0, ((p.x - a.x) * dx + (p.y - a.y) * dy) / len2)) : 0;
  const qx = a.x + t * dx;
  const qy = a.y + t * dy;
  return { t, d: Math.hypot(p.x - qx, p.y - qy), len: Math.sqrt(len2) };
}

/**
 * Where `pos` is along `route` and what the driver should do next. `segmentHint` (the previous result's segment)
 * keeps progress monotonic on routes that pass near themselves; only segments hint-1 .. hint+3 are searched.
 */
export function navigate(route: Route, pos: Vec2, segmentHint = 0, options: NavOptions = {}): Nav {
  const approachM = options.approachM ?? 40;
  const exitM = options.exitM ?? NAV_EXIT_M;
  const n = route.points.length;
  if (n < 2) {
    return {
      command: RoadOption.LANEFOLLOW, segment: 0, progressM: 0, lateralM: n === 1 ? Math.hypot(pos.x - route.points[0]!.x, pos.y - route.points[0]!.y) : 0,
      remainingM: 0, nextIndex: null, nextIntersectionId: null, distanceToNextM: null, nextTurn: null, finished: true,
    };
  }
  const lo = Math.max(0, Math.min(segmentHint, n - 2) - 1);
  const hi = Math.min(n - 2, Math.max(segmentHint, 0) + 3);
  let best = { seg: lo, t: 0, d: Infinity, len: 0 };
  for (let i = lo; i <= hi; i++) {
    const pr = project(pos, route.points[i]!, route.points[i + 1]!);
    if (pr.d < best.d - 1e-9) best = { seg: i, ...pr };
  }
  const progressM = route.cumulative[best.seg]! + best.t * best.len;
  const remainingM = Math.max(0, route.lengthM - progressM);

  let nextIndex: number | null = null;
  for (let k = best.seg + 1; k < n; k++) {
    if (route.cumulative[k]! > progressM + 1e-9) {
      nextIndex = k;
      break;
    }
  }
  let prevIndex: number | null = null;
  for (let k = Math.min(best.seg + 1, n - 1); k >= 1; k--) {
    if (route.cumulative[k]! <= progressM + 1e-9) {
      prevIndex = k;
      break;
    }
  }

  let command = RoadOption.LANEFOLLOW;
  if (prevIndex !== null && prevIndex < n - 1 && progressM - route.cumulative[prevIndex]! < exitM) {
    command = route.maneuvers[prevIndex]!;
  } else if (nextIndex !== null && route.cumulative[nextIndex]! - progressM <= approachM) {
    command = route.maneuvers[nextIndex]!;
  }

  let nextTurn: Nav["nextTurn"] = null;
  if (nextIndex !== null) {
    for (let k = nextIndex; k < n - 1; k++) {
      const m = route.maneuvers[k]!;
      if (m === RoadOption.LEFT || m === RoadOption.RIGHT) {
        nextTurn = { command: m, distanceM: route.cumulative[k]! - progressM, index: k };
        break;
      }
    }
  }
  return {
    command,
    segment: best.seg,
    progressM,
    lateralM: best.d,
    remainingM,
    nextIndex,
    nextIntersectionId: nextIndex === null ? null : route.nodeIds[nextIndex]!,
    distanceToNextM: nextIndex === null ? null : route.cumulative[nextIndex]! - progressM,
    nextTurn,
    finished: nextIndex === null,
  };
}

/** The point a driver at `nav` heads for (city frame): the first route point more than minAheadM ahead of the
 *  position's progress, else the route's end; null for an empty route. Recorded per tick (TelemetryTick.target_point). */
export function targetPoint(route: Route, nav: Nav, minAheadM = TARGET_MIN_M): Vec2 | null {
  if (route.points.length === 0) return null;
  for (let k = nav.segment + 1; k < route.points.length; k++) {
    if (route.cumulative[k]! - nav.progressM > minAheadM) return route.points[k]!;
  }
  return route.points[route.points.length - 1]!;
}

export interface RoadLocation {
  roadId: string;
  /** The intersection the heading points towards, and the one behind. */
  aheadNode: string;
  behindNode: string;
  alongM: number;
  lateralM: number;
}

/** The road whose carriageway/sidewalks contain `pos` (closest centerline), and which way along it `heading` points. */
export function locateOnRoad(world: World, pos: Vec2, heading: number): RoadLocation | null {
  let best: RoadLocation | null = null;
  let bestD = Infinity;
  for (const road of world.roads) {
    if (!road.fromIntersection || !road.toIntersection) continue;
    const f = roadFrame(road);
    const rx = pos.x - f.start.x;
    const ry = pos.y - f.start.y;
    const along = rx * f.u.x + ry * f.u.y;
    const lateral = Math.abs(rx * f.n.x + ry * f.n.y);
    const margin = road.widthM / 2 + road.sidewalkM + 2;
    if (lateral > margin || along < -margin || along > f.length + margin) continue;
    // Prefer the road we are inside lengthwise, then the nearest centerline.
    const outside = along < 0 ? -along : along > f.length ? along - f.length : 0;
    const d = lateral + outside * 2;
    if (d < bestD) {
      bestD = d;
      const forward = Math.cos(heading) * f.u.x + Math.sin(heading) * f.u.y >= 0;
      best = {
        roadId: road.id,
        aheadNode: forward ? road.toIntersection : road.fromIntersection,
        behindNode: forward ? road.fromIntersection : road.toIntersection,
        alongM: along,
        lateralM: lateral,
      };
    }
  }
  return best;
}

/** The intersection nearest to pos. */
export function nearestNode(graph: RoadGraph, pos: Vec2): string | null {
  let best: string | null = null;
  let bestD = Infinity;
  for (const [id, p] of graph.nodes) {
    const d = Math.hypot(p.x - pos.x, p.y - pos.y);
    if (d < bestD) {
      bestD = d;
      best = id;
    }
  }
  return best;
}

/** Small deterministic PRNG (mulberry32) so routes are reproducible per seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface PlannerOptions extends NavOptions {
  /** Destinations are picked at least this far away by road (m). */
  minLegM?: number;
  /** Extend the route when less than this remains (m). */
  extendBelowM?: number;
  /** Re-plan when the car is this far from the route (m). */
  rerouteAboveM?: number;
  seed?: number;
}

/**
 * Keeps a route ahead of the car: picks random destinations (seeded), extends the route before the car reaches its
 * end, and re-plans from the road the car is on when it leaves the route.
 */
export class RoutePlanner {
  readonly graph: RoadGraph;
  route: Route | null = null;
  private segment = 0;
  private readonly rng: () => number;
  private readonly opts: Required<Omit<PlannerOptions, "seed">>;

  constructor(
    readonly world: World,
    options: PlannerOptions = {},
  ) {
    this.graph = buildRoadGraph(world);
    this.rng = mulberry32(options.seed ?? 1);
    this.opts = {
      approachM: options.approachM ?? 40,
      exitM: options.exitM ?? NAV_EXIT_M,
      minLegM: options.minLegM ?? 400,
      extendBelowM: options.extendBelowM ?? 160,
      rerouteAboveM: options.rerouteAboveM ?? 25,
    };
  }

  /** A path from `from` to a random destination at least minLegM away, not starting back towards `avoid`. */
  private randomLeg(from: string, avoid?: string): Path | null {
    const ids = [...this.graph.nodes.keys()];
    let fallback: Path | null = null;
    for (let attempt = 0; attempt < 24 && ids.length > 1; attempt++) {
      const to = ids[Math.floor(this.rng() * ids.length)]!;
      if (to === from) continue;
      const p = shortestPath(this.graph, from, to);
      if (p === null || p.nodes.length < 2) continue;
      const uTurn = avoid !== undefined && p.nodes[1] === avoid;
      if (p.lengthM >= this.opts.minLegM && !uTurn) return p;
      if (!uTurn && (fallback === null || p.lengthM > fallback.lengthM)) fallback = p;
    }
    return fallback;
  }

  /** Plans a fresh route from a position and heading. */
  plan(pos: Vec2, heading: number): Route | null {
    const loc = locateOnRoad(this.world, pos, heading);
    const first = loc?.aheadNode ?? nearestNode(this.graph, pos);
    if (first === null) {
      this.route = null;
      return null;
    }
    const leg = this.randomLeg(first, loc?.behindNode);
    this.route = makeRoute(this.graph, leg?.nodes ?? [first], pos);
    this.segment = 0;
    return this.route;
  }

  /** Navigation at the car's position; extends or re-plans the route as needed. */
  update(pos: Vec2, heading: number): Nav | null {
    if (this.route === null) this.plan(pos, heading);
    if (this.route === null) return null;
    let nav = navigate(this.route, pos, this.segment, this.opts);
    if (nav.lateralM > this.opts.rerouteAboveM) {
      this.plan(pos, heading);
      if (this.route === null) return null;
      nav = navigate(this.route, pos, 0, this.opts);
    }
    if (nav.remainingM < this.opts.extendBelowM) {
      const ids = this.route.nodeIds.filter((id): id is string => id !== null);
      const last = ids[ids.length - 1];
      if (last !== undefined) {
        const leg = this.randomLeg(last, ids[ids.length - 2]);
        if (leg !== null) {
          this.route = extendRoute(this.graph, this.route, leg.nodes);
          nav = navigate(this.route, pos, nav.segment, this.opts);
        }
      }
    }
    this.segment = nav.segment;
    return nav;
  }
}

export function roadOptionName(option: RoadOption): string {
  switch (option) {
    case RoadOption.LEFT:
      return "LEFT";
    case RoadOption.RIGHT:
      return "RIGHT";
    case RoadOption.STRAIGHT:
      return "STRAIGHT";
    case RoadOption.LANEFOLLOW:
      return "LANEFOLLOW";
    case RoadOption.CHANGELANELEFT:
      return "CHANGELANELEFT";
    case RoadOption.CHANGELANERIGHT:
      return "CHANGELANERIGHT";
    default:
      return "UNSPECIFIED";
  }
}

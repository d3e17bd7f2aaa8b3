// Moving actors (NPC vehicles, pedestrians) on looping timetables. Pure and deterministic; must give the same poses
// as the Python side (scalediffusion.city) for the same World and time: at world time t (seconds since the drive
// started) an actor is at its keyframes interpolated at u = t mod period_s (u in [0, period)), linearly in position
// and the short way round in heading; after the last keyframe the next one is keyframes[0] at time period_s.

import { ActorKind, type ActorTrack, type World } from "../gen/scalediffusion/v1/world_pb";

export interface Pose2 {
  x: number;
  y: number;
  /** Radians, counter-clockwise from +x. */
  heading: number;
}

export interface ActorPose extends Pose2 {
  id: string;
  kind: ActorKind;
  lengthM: number;
  widthM: number;
}

/** Defaults when a track leaves its size at 0. */
export const DEFAULT_ACTOR_SIZE: Readonly<Record<"vehicle" | "pedestrian", { lengthM: number; widthM: number }>> = Object.freeze({
  vehicle: { lengthM: 4.6, widthM: 1.9 },
  pedestrian: { lengthM: 0.5, widthM: 0.5 },
});

/** t mod period the way Python's float % does it (result has the sign of the period, here in [0, period]). */
function pyMod(t: number, period: number): number {
  const r = t % period;
  return r !== 0 && r < 0 ? r + period : r;
}

/** The pose of one actor at world time t (seconds). A track without keyframes is at the origin. */
export function actorPose(track: ActorTrack, t: number): Pose2 {
  const ks = track.keyframes;
  const first = ks[0];
  if (first === undefined) return { x: 0, y: 0, heading: 0 };
  const p0 = { x: first.position?.x ?? 0, y: first.position?.y ?? 0, heading: first.heading };
  const period = track.periodS;
  if (ks.length === 1 || !(period > 0) || !Number.isFinite(period) || !Number.isFinite(t)) return p0;
  const u = pyMod(t, period);
  // Last keyframe with t_s <= u (keyframes are sorted, the first at 0).
  let lo = 0;
  let hi = ks.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (ks[mid]!.tS <= u) lo = mid;
    else hi = mid - 1;
  }
  const a = ks[lo]!;
  const b = lo + 1 < ks.length ? ks[lo + 1]! : first;
  const tb = lo + 1 < ks.length ? b.tS : period;
  const span = tb - a.tS;
  const f = span > 0 ? (u - a.tS) / span : 0;
  const ax = a.position?.x ?? 0;
  const ay = a.position?.y ?? 0;
  const bx = b.position?.x ?? 0;
  const by = b.position?.y ?? 0;
  const delta = Math.atan2(Math.sin(b.heading - a.heading), Math.cos(b.heading - a.heading));
  return { x: ax + (bx - ax) * f, y: ay + (by - ay) * f, heading: a.heading + delta * f };
}

/** Every actor with keyframes, at world time t (seconds), in World order, with its size (defaults filled in). */
export function actorPoses(world: World, t: number): ActorPose[] {
  const out: ActorPose[] = [];
  for (const track of world.actors) {
    if (track.keyframes.length === 0) continue;
    const size = track.kind === ActorKind.PEDESTRIAN ? DEFAULT_ACTOR_SIZE.pedestrian : DEFAULT_ACTOR_SIZE.vehicle;
    out.push({
      id: track.id,
      kind: track.kind,
      lengthM: track.lengthM > 0 ? track.lengthM : size.lengthM,
      widthM: track.widthM > 0 ? track.widthM : size.widthM,
      ...actorPose(track, t),
    });
  }
  return out;
}

// Where the rendering camera sits relative to the car. Pure; the pose is also what telemetry records.

import type { VehicleState } from "./vehicle";

export type CameraMode = "chase" | "dash";

export interface CameraPose {
  /** City frame, metres (z up). */
  x: number;
  y: number;
  z: number;
  /** Radians: yaw counter-clockwise from +x (like the car's theta), pitch up-positive, roll. */
  yaw: number;
  pitch: number;
  roll: number;
  fovDeg: number;
  /** The point the camera looks at (city frame). */
  target: { x: number; y: number; z: number };
}

export const CHASE = Object.freeze({ back: 7.5, height: 3.0, lookAhead: 8, lookHeight: 1.2 });
export const DASH = Object.freeze({ forward: 0.2, height: 1.3, lookAhead: 30, lookHeight: 1.0 });

/**
 * The camera pose for a car state. `yaw` (default the car's heading) lets the caller lag the chase camera behind
 * quick heading changes for a smoother view.
 */
export function cameraPose(state: VehicleState, mode: CameraMode, fovDeg: number, yaw: number = state.theta): CameraPose {
  const c = Math.cos(yaw);
  const s = Math.sin(yaw);
  let x: number, y: number, z: number, target: CameraPose["target"];
  if (mode === "dash") {
    x = state.x + Math.cos(state.theta) * DASH.forward;
    y = state.y + Math.sin(state.theta) * DASH.forward;
    z = DASH.height;
    target = { x: x + c * DASH.lookAhead, y: y + s * DASH.lookAhead, z: DASH.lookHeight };
  } else {
    x = state.x - c * CHASE.back;
    y = state.y - s * CHASE.back;
    z = CHASE.height;
    target = { x: state.x + c * CHASE.lookAhead, y: state.y + s * CHASE.lookAhead, z: CHASE.lookHeight };
  }
  const horizontal = Math.hypot(target.x - x, target.y - y);
  return { x, y, z, yaw, pitch: Math.atan2(target.z - z, horizontal), roll: 0, fovDeg, target };
}

/** Moves an angle towards a target along the shorter way, by a fraction in [0, 1]. */
export function lerpAngle(from: number, to: number, t: number): number {
  let d = (to - from) % (2 * Math.PI);
  if (d > Math.PI) d -= 2 * Math.PI;
  if (d < -Math.PI) d += 2 * Math.PI;
  return from + d * Math.min(1, Math.max(0, t));
}

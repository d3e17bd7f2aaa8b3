// Player controls from the keyboard (WASD + arrows) and an optional gamepad. Pure reducers; the DOM glue only
// collects the set of pressed keys (KeyboardEvent.code) and the Gamepad snapshot.

export interface Controls {
  /** [-1, 1], positive = right. */
  steer: number;
  throttle: number;
  brake: number;
  reverse: boolean;
  handBrake: boolean;
}

export const NEUTRAL: Readonly<Controls> = Object.freeze({ steer: 0, throttle: 0, brake: 0, reverse: false, handBrake: false });

export interface InputRates {
  /** How fast steering moves towards full lock while a key is held (units per second). */
  steerRate: number;
  /** How fast it returns to centre when released or reversed (units per second). */
  steerReturnRate: number;
  throttleRate: number;
  throttleReleaseRate: number;
  brakeRate: number;
  brakeReleaseRate: number;
}

export const DEFAULT_RATES: Readonly<InputRates> = Object.freeze({
  steerRate: 2.2,
  steerReturnRate: 3.5,
  throttleRate: 3,
  throttleReleaseRate: 6,
  brakeRate: 6,
  brakeReleaseRate: 10,
});

export const KEYS = Object.freeze({
  throttle: ["KeyW", "ArrowUp"],
  brake: ["KeyS", "ArrowDown"],
  left: ["KeyA", "ArrowLeft"],
  right: ["KeyD", "ArrowRight"],
  handBrake: ["Space"],
});

/** Keys the game handles itself (so the page does not scroll on arrows/space). */
export const GAME_KEYS: ReadonlySet<string> = new Set([
  ...KEYS.throttle,
  ...KEYS.brake,
  ...KEYS.left,
  ...KEYS.right,
  ...KEYS.handBrake,
]);

function approach(value: number, target: number, rate: number, dt: number): number {
  const stepSize = rate * dt;
  if (Math.abs(target - value) <= stepSize) return target;
  return value + Math.sign(target - value) * stepSize;
}

const anyDown = (keys: ReadonlySet<string>, names: readonly string[]) => names.some((k) => keys.has(k));

/**
 * Next controls from the keys held now, the previous controls and the time since. Steering ramps towards full lock
 * (left = negative, right = positive) and springs back to centre; pedals ramp quickly. `reverse` carries over
 * (toggled by the game, see toggleReverse). Space is a hand brake (full brake).
 */
export function controlsFrom(keysDown: ReadonlySet<string>, previous: Controls, dt: number, rates: InputRates = DEFAULT_RATES): Controls {
  const left = anyDown(keysDown, KEYS.left);
  const right = anyDown(keysDown, KEYS.right);
  const target = left === right ? 0 : left ? -1 : 1;
  let steer: number;
  if (target === 0) steer = approach(previous.steer, 0, rates.steerReturnRate, dt);
  else if (Math.sign(previous.steer) === -target) steer = approach(previous.steer, target, rates.steerReturnRate + rates.steerRate, dt);
  else steer = approach(previous.steer, target, rates.steerRate, dt);

  const handBrake = anyDown(keysDown, KEYS.handBrake);
  const throttle = anyDown(keysDown, KEYS.throttle)
    ? approach(previous.throttle, 1, rates.throttleRate, dt)
    : approach(previous.throttle, 0, rates.throttleReleaseRate, dt);
  const braking = anyDown(keysDown, KEYS.brake) || handBrake;
  const brake = braking ? (handBrake ? 1 : approach(previous.brake, 1, rates.brakeRate, dt)) : approach(previous.brake, 0, rates.brakeReleaseRate, dt);
  return { steer, throttle, brake, reverse: previous.reverse, handBrake };
}

/** Engages or releases reverse gear, only when (nearly) stopped. */
export function toggleReverse(controls: Controls, speed: number): Controls {
  if (Math.abs(speed) > 0.5) return controls;
  return { ...controls, reverse: !controls.reverse };
}

/** The parts of the Gamepad API that the game reads (standard mapping). */
export interface PadSnapshot {
  axes: readonly number[];
  buttons: readonly { value: number; pressed: boolean }[];
}

export function deadzone(v: number, dz = 0.12): number {
  if (!Number.isFinite(v) || Math.abs(v) < dz) return 0;
  return (Math.sign(v) * (Math.abs(v) - dz)) / (1 - dz);
}

/**
 * Analog controls from a standard-mapping gamepad: left stick x steers, right trigger (button 7) is throttle, left
 * trigger (button 6) brake, A (button 0) hand brake. Null when the pad is idle, so the keyboard keeps control.
 */
export function padControls(pad: PadSnapshot | null | undefined, previous: Controls): Controls | null {
  if (pad == null) return null;
  const steer = deadzone(pad.axes[0] ?? 0);
  const throttle = deadzone(pad.buttons[7]?.value ?? 0, 0.05);
  const handBrake = pad.buttons[0]?.pressed ?? false;
  const brake = handBrake ? 1 : deadzone(pad.buttons[6]?.value ?? 0, 0.05);
  if (steer === 0 && throttle === 0 && brake === 0) return null;
  return {
    steer: Math.max(-1, Math.min(1, steer)),
    throttle: Math.max(0, Math.min(1, throttle)),
    brake: Math.max(0, Math.min(1, brake)),
    reverse: previous.reverse,
    handBrake,
  };
}

/** Keyboard, unless the gamepad is being used this tick. */
export function mergeControls(keyboard: Controls, pad: Controls | null): Controls {
  return pad ?? keyboard;
}

"""The replay check (anti-cheat): do the recorded poses follow from the recorded controls? Pure.

Each telemetry tick is the state after that tick's physics step with that tick's controls (the game's loop, and the
bots'), and the processor has the game's vehicle model as an exact port (scalediffusion/sim/vehicle.py,
golden-tested against clients/web/src/sim/vehicle.ts). So every tick k >= 1 is checked against one step of the
model from tick k - 1, over the client's fixed step 1 / Telemetry.physics_hz (t_k - t_(k-1) when it is not recorded),
against the world's static obstacles (buildings, parked cars, its edge):
- a plain tick must be that step;
- a paused tick must not move at all;
- a collision tick (the game hit something; moving actors are not replayed, so what it hit is taken on trust) must be
  what a collision does in the model: stopped dead where it was, or the free step of a car that already overlapped
  something;
- a reset tick is a teleport the game allows: the replay starts again from it.
A tick "diverges" when its position, speed or heading is further from the expected state than the tolerances; the
model is deterministic and its floating-point operations are the game's, so a genuine session diverges nowhere
(float32 controls in the telemetry shift a step by under a micrometre). Controls edited after the drive, poses
moved, speeds smoothed or a telemetry stitched from other drives diverge at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scalediffusion.sim import vehicle as vm
from scalediffusion.v1 import processor_pb2, telemetry_pb2, world_pb2


@dataclass(frozen=True)
class ReplaySettings:
    position_tolerance_m: float = 0.01
    speed_tolerance_mps: float = 0.01
    heading_tolerance_rad: float = 0.001
    # Ticks allowed to diverge, as a fraction of those checked: none in every genuine bot and browser session
    # measured; kept above 0 so one odd tick in an hour of play does not cost the player the session ...
    max_divergent_fraction: float = 0.001
    # ... unless it is off by this much: a pose moved by a metre is a teleport the game did not record, however rare.
    max_position_error_m: float = 0.5

    def validate(self) -> None:
        if not (self.position_tolerance_m > 0 and self.speed_tolerance_mps > 0 and self.heading_tolerance_rad > 0):
            raise ValueError("replay tolerances must be > 0")
        if not 0 <= self.max_divergent_fraction < 1:
            raise ValueError("SD_REPLAY_MAX_DIVERGENT_FRACTION must be in [0, 1)")
        if not self.max_position_error_m > self.position_tolerance_m:
            raise ValueError("max_position_error_m must be above position_tolerance_m")


@dataclass(frozen=True)
class ReplayResult:
    checked: int  # ticks compared with the model
    divergent: int  # ticks further from it than the tolerances
    max_position_error_m: float
    first_divergent_t_ms: float | None
    resets: int

    @property
    def divergent_fraction(self) -> float:
        return self.divergent / self.checked if self.checked else 0.0

    def rejection(self, s: ReplaySettings) -> processor_pb2.Rejection | None:
        """The session's rejection when more ticks diverge than allowed, or one is off by more than
        max_position_error_m; else None."""
        detail = (f"{self.divergent} of {self.checked} ticks do not follow from the recorded controls "
                  f"(up to {self.max_position_error_m:.3g} m off, first at t={self.first_divergent_t_ms or 0.0:.0f} ms)")
        if self.max_position_error_m > s.max_position_error_m:
            return processor_pb2.Rejection(reason=processor_pb2.REJECTION_REASON_REPLAY_MISMATCH, metric="replay_position_error_m",
                                           value=self.max_position_error_m, threshold=s.max_position_error_m, detail=detail)
        if self.divergent_fraction > s.max_divergent_fraction:
            return processor_pb2.Rejection(reason=processor_pb2.REJECTION_REASON_REPLAY_MISMATCH, metric="replay_divergent_fraction",
                                           value=self.divergent_fraction, threshold=s.max_divergent_fraction, detail=detail)
        return None


def _state(tick: telemetry_pb2.TelemetryTick) -> vm.VehicleState:
    v = tick.vehicle
    return vm.VehicleState(x=v.x, y=v.y, theta=v.theta, speed=v.speed)


def _errors(got: vm.VehicleState, want: vm.VehicleState) -> tuple[float, float, float]:
    heading = abs(math.remainder(got.theta - want.theta, 2 * math.pi))
    return math.hypot(got.x - want.x, got.y - want.y), abs(got.speed - want.speed), heading


def replay_check(telemetry: telemetry_pb2.Telemetry, world: world_pb2.World | vm.CollisionWorld, s: ReplaySettings) -> ReplayResult:
    """Compares every tick with one step of the vehicle model from the tick before (see the module docstring)."""
    obstacles = world if isinstance(world, vm.CollisionWorld) else vm.collision_world(world)
    ticks = telemetry.ticks
    fixed_dt = 1.0 / telemetry.physics_hz if telemetry.physics_hz > 0 else None
    checked = divergent = resets = 0
    worst, first = 0.0, None
    for k in range(1, len(ticks)):
        tick = ticks[k]
        if tick.reset:
            resets += 1
            continue
        before, after = _state(ticks[k - 1]), _state(tick)
        if tick.paused:
            candidates = [before]
        else:
            c = tick.controls
            drive = vm.DriveInput(steer=c.steer, throttle=c.throttle, brake=c.brake, reverse=c.reverse)
            dt = fixed_dt or (tick.t_ms - ticks[k - 1].t_ms) / 1000.0
            candidates = [vm.step_with_collisions(before, drive, dt, obstacles).state]
            if tick.collision:  # what it hit may be a moving actor: stopped dead, or the free step out of an overlap
                candidates = [vm.VehicleState(before.x, before.y, before.theta, 0.0), vm.step(before, drive, dt)]
        errors = min((_errors(after, want) for want in candidates), key=lambda e: e[0])
        checked += 1
        worst = max(worst, errors[0])
        if errors[0] > s.position_tolerance_m or errors[1] > s.speed_tolerance_mps or errors[2] > s.heading_tolerance_rad:
            divergent += 1
            first = tick.t_ms if first is None else first
    return ReplayResult(checked=checked, divergent=divergent, max_position_error_m=worst, first_divergent_t_ms=first, resets=resets)

"""One route of a suite driven by a policy file, step by step: what the policy was given (speed, command, target
point) and what it predicted (its last waypoint), with where the car was along the route. This is how a failing
route is read: the route map shows where it went wrong, the trace shows why (a command that switched, waypoints
that straightened, a stop that never ended).

    python -m scalediffusion.sim.trace --model model.onnx --suite traffic@1 --route 0 --seed 1 [--every 10]
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass

from scalediffusion.city.grid import manhattan_grid
from scalediffusion.sim.episode import Episode
from scalediffusion.sim.evaluate import OnnxDriver, camera_setup
from scalediffusion.sim.lanes import LaneMap
from scalediffusion.sim.suites import suite


@dataclass(frozen=True)
class TraceRow:
    t: float  # seconds since the route started
    route_s: float  # metres along the route
    speed: float  # m/s
    command: int  # RoadOption
    target: tuple[float, float] | None  # the route's target point, ego frame (x forward, y right), metres
    last_waypoint: tuple[float, float] | None  # the policy's furthest predicted waypoint (waypoint policies)
    # What the policy did not see, printed to explain it (the evaluator's ground truth, never a policy input):
    front_range: float = math.inf  # the front range sensor, metres (inf: clear for 30 m)
    stop_ahead: tuple[float, str] | None = None  # next stop line on the route: (metres ahead, light or "stop sign")
    controls: str = ""  # what the controller sent: t<throttle> b<brake>, s<steer>, R reversing, C creeping, E AEB


def trace_route(model: str, suite_key: str, route_index: int, seed: int, every: int = 10,
                max_steps: int | None = None) -> tuple[list[TraceRow], str]:
    """(a row every `every` control steps, the route's final status). The episode is the evaluator's own: the same
    world, traffic seed (seed * 1000 + route index) and camera, so a trace explains an evaluation's route."""
    spec = suite(suite_key)
    if not 0 <= route_index < len(spec.routes):
        raise ValueError(f"{suite_key} has routes 0..{len(spec.routes) - 1}, not {route_index}")
    world = manhattan_grid(spec.world)
    driver = OnnxDriver(model)
    renderer, config = camera_setup(driver, world)
    episode = Episode(world, LaneMap(world), spec.routes[route_index], spec, seed * 1000 + route_index,
                      renderer=renderer, config=config)
    start = episode.t
    rows: list[TraceRow] = []

    def on_step(ep: Episode, obs) -> None:
        if (ep.steps - 1) % max(1, every) == 0:
            wps = driver.driver.last_waypoints
            rows.append(TraceRow(t=round(ep.t - start, 2), route_s=round(ep.monitor.current_s, 1), speed=round(ep.ego.speed, 2),
                                 command=int(obs.command), target=_rounded(obs.target_point),
                                 last_waypoint=_rounded(wps[-1]) if wps else None,
                                 front_range=ep.front_range(), stop_ahead=_stop_ahead(ep),
                                 controls=_controls(driver.driver.last_controls, driver.driver.policy.last_light)))

    run = episode.run(driver, max_steps=max_steps, on_step=on_step)
    return rows, run.status


def _stop_ahead(ep: Episode) -> tuple[float, str] | None:
    from scalediffusion.v1 import world_pb2

    for stop in ep.path.stop_lines:
        if stop.exit_s >= ep.monitor.current_s:
            state = ("stop sign" if stop.control == world_pb2.INTERSECTION_CONTROL_STOP_SIGN
                     else ep.lights.color(stop.intersection_id, stop.axis, ep.t))
            return round(stop.s - ep.monitor.current_s, 1), state
    return None


def _controls(c, light: list[float] | None = None) -> str:
    """The controls sent, R/C/E/L flags (reverse, creeping, emergency brake, light stop) and, for a policy with a
    light head, its most likely class and P(red) + P(yellow)."""
    if c is None:
        return ""
    flags = ("R" if c.reverse else "") + ("C" if c.creeping else "") + ("E" if c.emergency_brake else "") + ("L" if c.light_stop else "")
    seen = ""
    if light is not None:
        from scalediffusion.driving import LIGHT_CLASSES

        best = max(range(len(light)), key=light.__getitem__)
        seen = f" saw {LIGHT_CLASSES[best]} p_stop {light[LIGHT_CLASSES.index('red')] + light[LIGHT_CLASSES.index('yellow')]:.2f}"
    return f"t{c.throttle:.2f} b{c.brake:.0f} s{c.steer:+.2f} {flags}".rstrip() + seen


def _rounded(point) -> tuple[float, float] | None:
    return None if point is None else (round(float(point[0]), 1), round(float(point[1]), 1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Drive one route of a suite with a policy and print what it saw and predicted.")
    parser.add_argument("--model", required=True, help="an ONNX policy file")
    parser.add_argument("--suite", default="traffic@1")
    parser.add_argument("--route", type=int, default=0, help="route index in the suite")
    parser.add_argument("--seed", type=int, default=1, help="evaluation seed (as scale-diffusion value's)")
    parser.add_argument("--every", type=int, default=10, help="print every N control steps (20 per second)")
    parser.add_argument("--max-steps", type=int, default=None)
    args = parser.parse_args(argv)
    try:
        rows, status = trace_route(args.model, args.suite, args.route, args.seed, args.every, args.max_steps)
    except (KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{'t s':>6} {'route m':>8} {'m/s':>5} {'cmd':>3} {'target (fwd, right)':>20} {'last waypoint':>16} "
          f"{'range':>5} {'next stop':>16}  controls")
    for r in rows:
        target = "-" if r.target is None else f"({r.target[0]:.1f}, {r.target[1]:.1f})"
        wp = "-" if r.last_waypoint is None else f"({r.last_waypoint[0]:.1f}, {r.last_waypoint[1]:.1f})"
        stop = "-" if r.stop_ahead is None else f"{r.stop_ahead[0]:.0f} m {r.stop_ahead[1]}"
        print(f"{r.t:6.1f} {r.route_s:8.1f} {r.speed:5.1f} {r.command:3d} {target:>20} {wp:>16} "
              f"{r.front_range:5.1f} {stop:>16}  {r.controls}")
    print(status)
    return 0


if __name__ == "__main__":
    sys.exit(main())


"""The embedded evaluator: a driver closed-loop over a route suite, scored with the CARLA Leaderboard 2.0 metrics.

    python -m scalediffusion.sim.evaluate --model model.onnx --suite easy@1 --out eval/
    python -m scalediffusion.sim.evaluate --policy autopilot --suite dense@1 --out eval/
    python -m scalediffusion.sim.evaluate --eval-id e1 --model-run r1 --suite easy@1     # the trainer's backend: S3 in and out

Writes report.json (the EvaluationReport), routes/<route>.png (the map with the route, the driven trajectory and
the infractions) and, in S3 mode, progress.json for the trainer's job. Uses scalediffusion/leaderboard.py, the
same metric code the CARLA result files are scored with.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf import json_format

from scalediffusion import leaderboard
from scalediffusion.city.grid import manhattan_grid
from scalediffusion.sim import routing
from scalediffusion.sim import vehicle as vm
from scalediffusion.sim.autopilot import Autopilot, ConstantThrottle, Control, Observation, StandStill
from scalediffusion.sim.episode import Episode, EpisodeConfig
from scalediffusion.sim.lanes import LaneMap
from scalediffusion.sim.suites import SuiteSpec, suite
from scalediffusion.v1 import trainer_pb2

RENDER_SIZE = 256
SHORT_NAMES = {"collisions_vehicle": "hit vehicle", "collisions_pedestrian": "hit pedestrian", "collisions_layout": "hit layout",
               "red_light": "red light", "stop_infraction": "stop sign", "route_dev": "left route", "vehicle_blocked": "blocked",
               "route_timeout": "timeout", "min_speed_infractions": "too slow", "outside_route_lanes": "outside lanes"}


class OnnxDriver:
    """A trained policy (scalediffusion/policy.py) as a driver, through the same PolicyDriver as the CARLA agent:
    the front camera image, speed, command and the front range sensor in, controls out. The camera it is shown is
    the one in the policy's metadata (`camera`): the evaluator renders exactly that (size, FOV, mode)."""

    needs_image = True
    needs_front_range = True

    def __init__(self, model_path: str | Path, controller_overrides: dict | None = None) -> None:
        from scalediffusion.policy import OnnxPolicy, PolicyDriver

        self.policy = OnnxPolicy(model_path)
        self.driver = PolicyDriver(self.policy, control_hz=EpisodeConfig().control_hz,
                                   controller_overrides=controller_overrides)
        self.camera = self.policy.camera
        self.name = f"onnx:{Path(model_path).name}"

    def __call__(self, obs: Observation) -> Control:
        assert obs.image is not None, "needs_image: the episode renders every frame for this driver"
        out = self.driver(obs.image, obs.speed, obs.command, obs.front_range_m, obs.target_point)
        return Control(out.steer, out.throttle, out.brake, reverse=out.reverse)


BASELINES: dict[str, Callable[[], object]] = {
    "autopilot": Autopilot,
    "stand-still": StandStill,
    "constant-throttle": ConstantThrottle,
}


@dataclass
class RouteOutcome:
    run: leaderboard.RouteRun
    trajectory: list[tuple[float, float]]
    events: list[tuple[str, float, float]]
    path: list[tuple[float, float]]
    steps: int


def camera_setup(driver, world):
    """(renderer or None, EpisodeConfig) for a driver: drivers that see get the camera they were trained with (a
    policy's `camera` metadata: size, vertical FOV, dash or chase); a driver without one gets a square 256 frame."""
    config = EpisodeConfig()
    if not getattr(driver, "needs_image", False):
        return None, config
    from scalediffusion.sim.render import CityRenderer

    camera = getattr(driver, "camera", None)
    if camera is None:
        return CityRenderer(world, RENDER_SIZE, RENDER_SIZE, vertical_fov_deg=config.fov_deg), config
    config = EpisodeConfig(camera_mode=camera.mode, fov_deg=camera.vertical_fov_deg)
    return CityRenderer(world, camera.width, camera.height, vertical_fov_deg=camera.vertical_fov_deg), config


def evaluate_suite(driver_factory: Callable[[], object], suite_spec: SuiteSpec, seed: int | None = None,
                   on_route: Callable[[int, RouteOutcome], None] | None = None,
                   on_step: Callable[[], None] | None = None) -> list[RouteOutcome]:
    """Every route of the suite with a fresh driver; deterministic for (suite, seed, driver)."""
    world = manhattan_grid(suite_spec.world)
    lanes = LaneMap(world)
    collision_world = vm.collision_world(world)
    graph = routing.build_road_graph(world)
    probe = driver_factory()
    renderer, config = camera_setup(probe, world)
    outcomes = []
    base_seed = suite_spec.seed if seed is None else seed
    for k, route in enumerate(suite_spec.routes):
        driver = probe if k == 0 else driver_factory()
        episode = Episode(world, lanes, route, suite_spec, base_seed * 1000 + k, renderer=renderer, config=config,
                          collision_world=collision_world, graph=graph)
        run = episode.run(driver, on_step=(lambda ep, obs: on_step()) if on_step else None)
        outcome = RouteOutcome(run, list(episode.monitor.trajectory), list(episode.monitor.event_positions),
                               [tuple(p) for p in episode.path.line.points.tolist()], episode.steps)
        outcomes.append(outcome)
        if on_route:
            on_route(k, outcome)
    return outcomes


def build_report(outcomes: list[RouteOutcome], *, eval_id: str, model_run: str, suite_key: str,
                 metric_version: str = leaderboard.DEFAULT_METRIC_VERSION) -> trainer_pb2.EvaluationReport:
    scores = [leaderboard.score_route(o.run, metric_version) for o in outcomes]
    return leaderboard.to_report(leaderboard.aggregate(scores, metric_version), scores, eval_id=eval_id,
                                 model_run=model_run, suite=suite_key)


def plot_route(world, outcome: RouteOutcome, path: Path, title: str) -> Path:
    """The route (blue), the driven trajectory (black) and each infraction (a labelled red marker) on the city map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p[0] for p in outcome.path] + [p[0] for p in outcome.trajectory]
    ys = [p[1] for p in outcome.path] + [p[1] for p in outcome.trajectory]
    pad = 40.0
    cx, cy = (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2
    half_x, half_y = (max(xs) - min(xs)) / 2 + pad, (max(ys) - min(ys)) / 2 + pad
    half_x, half_y = max(half_x, 0.6 * half_y), max(half_y, 0.6 * half_x)  # never a sliver: routes can be straight
    box = (cx - half_x, cx + half_x, cy - half_y, cy + half_y)
    fig, ax = plt.subplots(figsize=(7, 7 * half_y / half_x))
    from scalediffusion.sim.geometry import intersection_boxes, road_quad, square_quad

    for road in world.roads:  # carriageways and junctions to scale
        ax.fill(*zip(*[(c.x, c.y) for c in road_quad(road).corners]), color="#cfcfcf", zorder=1)
    for junction in intersection_boxes(world):
        ax.fill(*zip(*[(c.x, c.y) for c in square_quad(junction.center, junction.half_size)]), color="#cfcfcf", zorder=1)
    for b in world.buildings:
        ring = [(p.x, p.y) for p in b.footprint]
        ax.fill(*zip(*ring), color="#efe8dc", zorder=0)
    ax.plot(*zip(*outcome.path), color="#2a6fdb", linewidth=2, label="route", zorder=2)
    if outcome.trajectory:
        ax.plot(*zip(*outcome.trajectory), color="black", linewidth=1.2, label="driven", zorder=3)
        ax.plot(*outcome.trajectory[0], "o", color="green", zorder=4)
    labelled: list[tuple[float, float]] = []
    for kind, x, y in outcome.events:
        ax.plot(x, y, "X", color="red", markersize=10, zorder=5)
        stacked = sum(1 for lx, ly in labelled if abs(lx - x) < 70 and abs(ly - y) < 15)  # nearby events: labels stack up
        labelled.append((x, y))
        ax.annotate(SHORT_NAMES.get(kind, kind), (x, y), textcoords="offset points", xytext=(8, 6 + 10 * stacked), fontsize=7, color="red", zorder=6)
    ax.set_xlim(box[0], box[1])
    ax.set_ylim(box[2], box[3])
    ax.set_aspect("equal")
    run = outcome.run
    score = leaderboard.score_route(run)
    ax.set_title(f"{title}\nDS {score.driving_score:.1f}  RC {score.route_completion:.1f}  IP {score.infraction_penalty:.2f}  {run.status}", fontsize=9)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_outputs(outcomes: list[RouteOutcome], report: trainer_pb2.EvaluationReport, suite_spec: SuiteSpec, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    world = manhattan_grid(suite_spec.world)
    plots = []
    (out_dir / "routes").mkdir(exist_ok=True)
    for outcome in outcomes:
        plots.append(plot_route(world, outcome, out_dir / "routes" / f"{outcome.run.route_id}.png",
                                f"{report.suite} {outcome.run.route_id} ({report.model_run})"))
    report.report_key = "report.json"
    del report.plot_keys[:]
    report.plot_keys.extend(f"routes/{p.name}" for p in plots)
    (out_dir / "report.json").write_text(json.dumps(json_format.MessageToDict(report), indent=1))
    return plots


def summary_table(report: trainer_pb2.EvaluationReport):
    from rich.table import Table

    table = Table(title=f"{report.suite} — {report.model_run}: DS {report.driving_score:.1f}  RC {report.route_completion:.1f}  IP {report.infraction_penalty:.3f}")
    for col in ("route", "DS", "RC", "IP", "km", "status", "infractions"):
        table.add_column(col)
    for r in report.routes:
        found = ", ".join(f"{i.kind}×{i.count}" for i in r.infractions if i.count)
        table.add_row(r.route_id, f"{r.driving_score:.1f}", f"{r.route_completion:.1f}", f"{r.infraction_penalty:.3f}",
                      f"{r.route_length_km:.2f}", r.status, found or "-")
    return table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Closed-loop evaluation in the embedded simulator (Leaderboard 2.0 metrics).")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--model", help="an ONNX policy file")
    who.add_argument("--policy", choices=sorted(BASELINES))
    who.add_argument("--model-run", help="S3 mode: evaluate models/<run>/model.onnx, write reports/<eval-id>/")
    parser.add_argument("--eval-id", default="")
    parser.add_argument("--suite", default="easy@1")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--metric-version", default=leaderboard.DEFAULT_METRIC_VERSION)
    parser.add_argument("--out", default="", help="output folder (default: a temporary one in S3 mode, ./eval otherwise)")
    parser.add_argument("--controller", action="append", default=[], metavar="KEY=VALUE",
                        help="override a waypoint controller setting of the policy file (repeatable), e.g. "
                             "aeb_time_s=0; the report's model name says so")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--exit-with-parent", type=int, metavar="PID", default=0, help="end when process PID ends")
    args = parser.parse_args(argv)
    if args.exit_with_parent:
        from scalediffusion.platform.process import exit_with_parent

        exit_with_parent(args.exit_with_parent)
    try:
        suite_spec = suite(args.suite)
        leaderboard.check_version(args.metric_version)
    except (KeyError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    overrides = {}
    for item in args.controller:
        key, sep, value = item.partition("=")
        try:
            overrides[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            print(f"error: --controller takes KEY=NUMBER, got {item!r}", file=sys.stderr)
            return 2
    tag = "".join(f"+{k}={v:g}" for k, v in sorted(overrides.items()))

    s3_mode = bool(args.model_run)
    store = s3 = None
    progress_key = ""
    if s3_mode:
        from scalediffusion.platform import keys
        from scalediffusion.platform.s3 import ObjectStore
        from scalediffusion.platform.settings import S3Settings

        if not args.eval_id:
            parser.error("--eval-id is required with --model-run")
        s3 = S3Settings.from_env()
        store = ObjectStore(s3)
        progress_key = keys.eval_key(args.eval_id, "progress.json")
    own_dir = s3_mode and not args.out  # a scratch folder for the downloaded model and the plots, removed at the end
    out_dir = Path(args.out or (tempfile.mkdtemp(prefix="sd-eval-") if s3_mode else "eval"))

    def progress(state: str, value: float, message: str, metrics: dict | None = None) -> None:
        if store is not None and s3 is not None:  # both set in S3 mode
            store.put_json(s3.bucket_reports, progress_key, {"state": state, "progress": round(value, 4), "message": message,
                                                             "metrics": metrics or {}, "updated_at": time.time()})

    try:
        factory: Callable[[], object]  # a driver factory, as BASELINES holds
        if s3_mode:
            from scalediffusion.platform import keys

            assert store is not None and s3 is not None, "both set above in S3 mode"
            model_path = out_dir / "model.onnx"
            out_dir.mkdir(parents=True, exist_ok=True)
            store.download(s3.bucket_models, keys.run_key(args.model_run, "model.onnx"), str(model_path))
            factory, model_run = (lambda: OnnxDriver(model_path, overrides)), args.model_run
        elif args.model:
            factory, model_run = (lambda: OnnxDriver(args.model, overrides)), Path(args.model).stem + tag
        else:
            factory, model_run = BASELINES[args.policy], args.policy
        progress("RUNNING", 0.0, f"evaluating on {suite_spec.key}")
        outcomes = _run_with_progress(factory, suite_spec, args.seed, not args.no_progress, progress)
        report = build_report(outcomes, eval_id=args.eval_id or f"local-{model_run}", model_run=model_run,
                              suite_key=suite_spec.key, metric_version=args.metric_version)
        plots = write_outputs(outcomes, report, suite_spec, out_dir)
        if s3_mode:
            from scalediffusion.platform import keys

            assert store is not None and s3 is not None, "both set above in S3 mode"
            for plot in plots:
                store.put_bytes(s3.bucket_reports, keys.eval_key(args.eval_id, f"routes/{plot.name}"), plot.read_bytes(), "image/png")
            report.report_key = keys.eval_key(args.eval_id, "report.json")
            del report.plot_keys[:]
            report.plot_keys.extend(keys.eval_key(args.eval_id, f"routes/{p.name}") for p in plots)
            store.put_json(s3.bucket_reports, report.report_key, json_format.MessageToDict(report))
        metrics = {"driving_score": report.driving_score, "route_completion": report.route_completion,
                   "infraction_penalty": report.infraction_penalty}
        progress("SUCCEEDED", 1.0, f"DS {report.driving_score:.1f} RC {report.route_completion:.1f} IP {report.infraction_penalty:.3f}", metrics)
    except Exception as exc:
        progress("FAILED", 0.0, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if own_dir:
            shutil.rmtree(out_dir, ignore_errors=True)
    from rich.console import Console

    Console(width=140).print(summary_table(report))
    print(json.dumps({"eval_id": report.eval_id, "suite": report.suite, "driving_score": report.driving_score,
                      "route_completion": report.route_completion, "infraction_penalty": report.infraction_penalty,
                      "out": "" if own_dir else str(out_dir)}))
    return 0


def _run_with_progress(factory, suite_spec: SuiteSpec, seed, show: bool, progress) -> list[RouteOutcome]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), disable=not show)
    routes = len(suite_spec.routes)
    with bar:
        task = bar.add_task(f"{suite_spec.key}: routes", total=routes)

        def on_route(k: int, outcome: RouteOutcome) -> None:
            bar.advance(task)
            progress("RUNNING", (k + 1) / routes, f"route {k + 1}/{routes} done ({outcome.run.status})")

        return evaluate_suite(factory, suite_spec, seed, on_route=on_route)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())

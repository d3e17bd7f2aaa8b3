"""Embedded simulator benchmark, measured side by side in one run:

- simulated control steps/s (20 Hz control, 60 Hz physics, traffic, infraction checks) without rendering vs with
  the 256x256 front camera rendered every step (ratio), on the same routes, seeds and driver (the autopilot);
- evaluation wall time per simulated minute: the autopilot (no camera), and a CILRS ONNX policy (camera + policy)
  for the tiny and the resnet18-128 presets (untrained weights: the cost does not depend on them);
- frames/s of the renderer alone at 256x256 and 640x360 (the bots' resolution).

    python bench/sim_bench.py                 # traffic@1 (~2-3 min)
    python bench/sim_bench.py --suite dense@1
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console
from rich.table import Table

from scalediffusion.city.grid import manhattan_grid
from scalediffusion.sim import routing
from scalediffusion.sim import vehicle as vm
from scalediffusion.sim.autopilot import Autopilot
from scalediffusion.sim.camera import camera_pose
from scalediffusion.sim.episode import Episode
from scalediffusion.sim.evaluate import OnnxDriver, evaluate_suite
from scalediffusion.sim.lanes import LaneMap
from scalediffusion.sim.render import CityRenderer
from scalediffusion.sim.suites import suite

console = Console(width=120)
OUT = Path(__file__).resolve().parent / "out"


def steps_per_second(suite_key: str, render: bool, max_steps: int) -> tuple[float, int]:
    """Autopilot over the suite's routes (at most max_steps control steps in all), optionally rendering each step."""
    spec = suite(suite_key)
    world = manhattan_grid(spec.world)
    lanes, cw, graph = LaneMap(world), vm.collision_world(world), routing.build_road_graph(world)
    renderer = CityRenderer(world, 256, 256) if render else None
    steps, t0 = 0, time.perf_counter()
    for k, route in enumerate(spec.routes):
        episode = Episode(world, lanes, route, spec, spec.seed * 1000 + k, renderer=renderer, collision_world=cw, graph=graph)
        driver = Autopilot()
        while not episode.done and steps < max_steps:
            episode.step(driver(episode.observe()))
            steps += 1
        if steps >= max_steps:
            break
    return steps / (time.perf_counter() - t0), steps


def wall_per_sim_minute(factory, suite_key: str) -> tuple[float, float]:
    counted = {"steps": 0}
    t0 = time.perf_counter()
    outcomes = evaluate_suite(factory, suite(suite_key), on_step=lambda: counted.__setitem__("steps", counted["steps"] + 1))
    wall = time.perf_counter() - t0
    sim_minutes = sum(o.steps for o in outcomes) / 20.0 / 60.0
    return wall / sim_minutes, sim_minutes


def render_fps(width: int, height: int, frames: int = 200) -> float:
    world = manhattan_grid()
    renderer = CityRenderer(world, width, height)
    spawn = world.spawn_points[0]
    state = vm.VehicleState(spawn.position.x, spawn.position.y, spawn.heading, 0.0)
    renderer.render(camera_pose(state, "dash", 60.0))
    t0 = time.perf_counter()
    for i in range(frames):
        state = vm.VehicleState(state.x, state.y + 0.3, state.theta, 8.0)
        renderer.render(camera_pose(state, "dash", 60.0), (), i / 20.0)
    return frames / (time.perf_counter() - t0)


def export_policy(preset_name: str, folder: Path) -> Path:
    import torch

    from services.trainer.model import build_model, preset
    from services.trainer.onnx_export import export_onnx

    torch.manual_seed(0)
    return export_onnx(build_model(preset(preset_name)).eval(), folder / f"{preset_name}.onnx")


def plot(bare: float, rendered: float, rows, path: Path, suite_key: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.bar(["no camera", "256x256 camera"], [bare, rendered], color=["#4c72b0", "#dd8452"])
    left.set_ylabel("control steps/s (20 Hz control)")
    left.set_title(f"simulator ({suite_key}): ratio {rendered / bare:.2f}")
    names = [r[0].replace(" (", "\n(") for r in rows]
    right.barh(names, [60 / r[2] for r in rows], color="#55a868")
    right.set_xlabel("x real time (simulated s per wall s)")
    right.set_title("evaluation speed")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", default="traffic@1")
    parser.add_argument("--steps", type=int, default=3000, help="control steps per side of the render comparison")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)

    with console.status("steps/s without rendering"):
        bare, n_bare = steps_per_second(args.suite, False, args.steps)
    with console.status("steps/s with the 256x256 camera"):
        rendered, n_rendered = steps_per_second(args.suite, True, args.steps)
    table = Table(title=f"{args.suite}: simulated control steps/s (20 Hz control, autopilot)")
    for col in ("", "steps", "steps/s", "simulated s per wall s"):
        table.add_column(col, justify="right")
    table.add_row("without rendering", str(n_bare), f"{bare:.0f}", f"{bare / 20:.1f}")
    table.add_row("with 256x256 camera", str(n_rendered), f"{rendered:.0f}", f"{rendered / 20:.1f}")
    console.print(table)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, factory in (("autopilot (no camera)", Autopilot),
                              ("CILRS tiny ONNX (camera + policy)", lambda p=export_policy("cilrs-resnet18-tiny", Path(tmp)): OnnxDriver(p)),
                              ("CILRS resnet18-128 ONNX (camera + policy)", lambda p=export_policy("cilrs-resnet18-128", Path(tmp)): OnnxDriver(p))):
            with console.status(f"evaluating {name} on {args.suite}"):
                per_minute, minutes = wall_per_sim_minute(factory, args.suite)
            rows.append((name, minutes, per_minute))
    table = Table(title=f"evaluation wall time per simulated minute ({args.suite})")
    for col in ("driver", "simulated min", "wall s per simulated min", "x real time"):
        table.add_column(col, justify="right")
    for name, _minutes, per_minute in rows:
        table.add_row(name, f"{minutes:.1f}", f"{per_minute:.1f}", f"{60 / per_minute:.1f}")
    console.print(table)

    fps = {size: render_fps(*size) for size in ((256, 256), (640, 360))}
    plot(bare, rendered, rows, OUT / "sim_bench.png", args.suite)
    console.print(f"plot: {OUT / 'sim_bench.png'}")
    console.print(f"renderer alone: 256x256 {fps[(256, 256)]:.0f} frames/s, 640x360 {fps[(640, 360)]:.0f} frames/s")
    print(f"ratio steps/s with rendering / without: {rendered / bare:.2f}")
    for name, _minutes, per_minute in rows:
        print(f"{name}: {per_minute:.1f} s wall per simulated minute ({60 / per_minute:.1f}x real time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

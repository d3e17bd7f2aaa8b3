"""Run the whole system on this machine.

Examples:
    scale-diffusion up                     # start S3, Kafka and the four services; print endpoints; return
    scale-diffusion up --foreground        # same, then stop everything on Ctrl-C
    scale-diffusion status                 # health of each part
    scale-diffusion down                   # stop only what `up` started
    scale-diffusion up --base-port 21000 --state-dir /tmp/sd2   # a second stack on other ports
    scale-diffusion bots --count 8 --seconds 30  # bot players play and upload sessions through ingest
    scale-diffusion loop --bots 6                # bots -> dataset -> policy training -> embedded evaluation report
    scale-diffusion value --minutes 5 15 30     # data-value curve: models trained on growing slices, DS/RC/IP plot
    scale-diffusion value-plot a/value.json b/value.json --out curve   # one curve from points run in pieces
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from scalediffusion.stack.layout import SERVICES, default_layout, offset_layout
from scalediffusion.stack.local import LocalStack, StackState
from scalediffusion.stack.procs import StackError

if TYPE_CHECKING:
    from scalediffusion.sim.value import ValueResult

console = Console(stderr=False)


def _stack(args: argparse.Namespace) -> LocalStack:
    layout = offset_layout(args.base_port) if getattr(args, "base_port", None) else default_layout()
    extra: dict[str, str] = {}
    for item in getattr(args, "env", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.startswith("SD_"):
            raise StackError(f"--env takes SD_NAME=VALUE (a service setting), got {item!r}")
        extra[key] = value
    return LocalStack(Path(args.state_dir), layout, extra_env=extra)


def _print_endpoints(stack: LocalStack, state: StackState) -> None:
    table = Table(title="Scale Diffusion — local stack", show_lines=False)
    table.add_column("part")
    table.add_column("endpoint")
    table.add_column("address")
    for part, what, address in stack.endpoints(state):
        table.add_row(part, what, address)
    console.print(table)


def cmd_up(args: argparse.Namespace) -> int:
    stack = _stack(args)
    with console.status("starting") as status:
        state = stack.up(progress=lambda msg: status.update(msg))
    _print_endpoints(stack, state)
    if not args.foreground:
        console.print(f"Health: scale-diffusion status   Stop: scale-diffusion down   (state in {args.state_dir}; `make status` / `make down` from the repo)")
        return 0
    console.print("Running in the foreground; Ctrl-C stops everything.")
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    stopped = stack.down(state)
    console.print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    stack = LocalStack(Path(args.state_dir), default_layout())
    stopped = stack.down()
    console.print(f"stopped: {', '.join(stopped)}" if stopped else f"nothing recorded as running in {args.state_dir}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    stack = LocalStack(Path(args.state_dir), default_layout())
    state = stack.load()
    if state is None:
        console.print(f"no stack recorded in {args.state_dir}; start one with `scale-diffusion up`")
        return 1
    rows: list[dict] = []
    for name, record in state.procs.items():
        alive = record.alive()
        health = stack.health(state, name) if alive and name in SERVICES else ("running" if alive else "stopped")
        reflected = stack.reflected_services(state, name) if alive and name in SERVICES else []
        rows.append({"part": name, "pid": record.pid, "state": health, "services": reflected, "log": record.log})
    healthy = all(r["state"] in ("SERVING", "running") for r in rows)
    if args.json:
        print(json.dumps({"healthy": healthy, "parts": rows, "endpoints": stack.endpoints(state)}))
    else:
        table = Table(title="Scale Diffusion — status")
        for col in ("part", "pid", "health", "gRPC services (reflection)", "log"):
            table.add_column(col)
        for r in rows:
            color = "green" if r["state"] in ("SERVING", "running") else "red"
            table.add_row(r["part"], str(r["pid"]), f"[{color}]{r['state']}[/]", "\n".join(r["services"]), r["log"])
        console.print(table)
        _print_endpoints(stack, state)
    return 0 if healthy else 1


def _running(args: argparse.Namespace) -> tuple[LocalStack, StackState]:
    stack = LocalStack(Path(args.state_dir), default_layout())
    state = stack.load()
    if state is None or not all(record.alive() for name, record in state.procs.items() if name in SERVICES):
        raise StackError(f"no running stack recorded in {args.state_dir}; start one with `scale-diffusion up` (make up)")
    return stack, state


def _bot_auth(state: StackState):
    """Player tokens for bots (bot-0, bot-1, ...), signed with the stack's key as `sd-ingest-admin issue-token` does."""
    import time

    from services.ingest.auth import PLAYER, TokenSigner

    signer = TokenSigner(state.credentials["token_key"].encode())
    return lambda k: (("authorization", f"Bearer {signer.issue(f'bot-{k}', PLAYER, 6 * 3600, time.time())[0]}"),)


def _channels(state: StackState) -> dict:
    import grpc

    return {name: grpc.insecure_channel(f"{state.layout.host}:{state.layout.services[name].grpc}") for name in SERVICES}


def _bot_config(args: argparse.Namespace):
    from scalediffusion.sim.bots import BotConfig

    return BotConfig(seconds=args.seconds, width=args.width, height=args.height, camera_mode=args.camera,
                     turn_lapses=args.turn_lapses)


def _stage_progress(bar):
    """progress(stage, done, total) for the loop and value commands: one bar per stage; bots and processor count
    sessions as they finish, jobs report their fraction done."""
    tasks: dict[str, int] = {}

    def progress(stage: str, done: float, total: float) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        if stage in ("bots", "processor"):
            bar.advance(tasks[stage], done)
        else:
            bar.update(tasks[stage], completed=done)

    return progress


def cmd_bots(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from scalediffusion.sim.loop import run_bots

    _, state = _running(args)
    with Progress(console=console) as bar:
        task = bar.add_task(f"{args.count} bots x {args.seconds:.0f} s", total=args.count)
        ids = run_bots(_channels(state)["ingest"], _bot_auth(state), args.count, _bot_config(args), args.workers,
                       first_seed=args.seed, on_done=lambda n: bar.advance(task, n))
    console.print(f"uploaded {len(ids)} sessions: {', '.join(ids)}")
    return 0


def cmd_loop(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from scalediffusion.sim.evaluate import summary_table
    from scalediffusion.sim.loop import LoopError, full_loop
    from scalediffusion.v1 import trainer_pb2

    _, state = _running(args)
    training = trainer_pb2.TrainingConfig(preset=args.preset, epochs=args.epochs, batch_size=32, val_fraction=0.2, seed=args.seed)
    with Progress(console=console) as bar:
        progress = _stage_progress(bar)
        try:
            result = full_loop(_channels(state), _bot_auth(state), args.bots, _bot_config(args), training, args.suite,
                               workers=args.workers, progress=progress)
        except LoopError as err:
            console.print(f"[red]loop failed:[/] {err}")
            return 1
    console.print(f"{len(result.session_ids)} bot sessions -> {result.segments} segments ({result.frames} frames; "
                  f"{result.rejected} sessions rejected) -> run {result.training.job_id} "
                  f"(best val loss {result.training.metrics.get('best_val_loss', float('nan')):.4f}) -> {result.evaluation.job_id}")
    wide = Console(width=max(console.width, 140))  # the per-route table needs the room, also when not on a terminal
    wide.print(summary_table(result.report))
    table = Table(title="stages")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for name, seconds in result.stage_seconds.items():
        table.add_row(name, f"{seconds:.1f}")
    table.add_row("total", f"{sum(result.stage_seconds.values()):.1f}")
    console.print(table)
    return 0


def cmd_value(args: argparse.Namespace) -> int:
    from rich.progress import Progress

    from scalediffusion.sim.bots import BotConfig
    from scalediffusion.sim.loop import LoopError
    from scalediffusion.sim.value import ValueConfig, run_value

    _, state = _running(args)
    bot = BotConfig(seconds=args.seconds, width=args.width, height=args.height, fps=args.fps, camera_mode=args.camera,
                    npc_vehicles=args.npc_max, npc_vehicles_min=0, pedestrians=args.pedestrians_max, pedestrians_min=0,
                    turn_lapses=args.turn_lapses)
    config = ValueConfig(minutes=tuple(args.minutes), presets=tuple(args.presets), suite=args.suite, seeds=tuple(args.seeds),
                         epochs=args.epochs, max_steps=args.max_steps, turn_weight=args.turn_weight, batch_size=args.batch_size,
                         bot=bot, tag=args.tag,
                         eval_tag=args.eval_tag)
    with Progress(console=console) as bar:
        progress = _stage_progress(bar)
        try:
            result = run_value(_channels(state), _bot_auth(state), config, args.recordings, args.out,
                               workers=args.workers, first_seed=args.seed, progress=progress)
        except LoopError as err:
            console.print(f"[red]value experiment failed:[/] {err}")
            return 1
    _print_value(result, Path(args.out))
    return 0


def cmd_value_plot(args: argparse.Namespace) -> int:
    """One curve from value reports run in pieces: no stack needed."""
    from scalediffusion.sim.value import combine_results, write_outputs

    docs = []
    for path in args.reports:
        try:
            docs.append(json.loads(Path(path).read_text()))
        except (OSError, json.JSONDecodeError) as err:
            raise ValueError(f"cannot read the value report {path}: {err}") from err
    result = combine_results(docs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_outputs(result, out)
    _print_value(result, out)
    return 0


def _print_value(result: ValueResult, out: Path) -> None:
    config = result.config
    table = Table(title=f"data value on {config['suite']} (mean of seeds {', '.join(map(str, config['seeds']))}); "
                        f"{result.sessions} sessions, {result.accepted_minutes:.1f} min accepted")
    for col in ("model", "minutes", "DS", "RC", "IP", "DS per seed", "train s", "val loss"):
        table.add_column(col)
    for p in result.points:
        table.add_row(p.preset, f"{p.train_minutes:.1f}", f"{p.mean('driving_score'):.1f}", f"{p.mean('route_completion'):.1f}",
                      f"{p.mean('infraction_penalty'):.3f}", " ".join(f"{s['driving_score']:.1f}" for s in p.seeds.values()),
                      f"{p.train_wall_s:.0f}", f"{p.best_val_loss:.3f}")
    a = result.autopilot
    table.add_row("autopilot (ceiling)", "-", f"{a['driving_score']:.1f}", f"{a['route_completion']:.1f}", f"{a['infraction_penalty']:.3f}", "", "", "")
    Console(width=max(console.width, 140)).print(table)
    for stage, seconds in result.stage_seconds.items():
        console.print(f"{stage}: {seconds:.0f} s")
    console.print(f"report: {out / 'value.json'}   plot: {out / 'value.png'}")


class _DefaultsHelp(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every option's default, also where the option has no help text (argparse's own formatter skips those)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or any(action.default is v for v in (None, argparse.SUPPRESS, False)) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)".strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scale-diffusion", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", default=".state", help="folder for data, logs and the record of what runs (default .state)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", formatter_class=_DefaultsHelp, help="start the local stack")
    up.add_argument("--foreground", action="store_true", help="stay attached and stop everything on Ctrl-C")
    up.add_argument("--base-port", type=int, default=None, help="use ports base..base+31 instead of the well-known ones")
    up.add_argument("--env", action="append", default=[], metavar="SD_NAME=VALUE",
                    help="a setting for every service (repeatable), e.g. SD_TRAINER_LOCAL_SLOTS=2 to run two "
                         "training/evaluation jobs side by side")
    up.set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop what `up` started").set_defaults(fn=cmd_down)
    status = sub.add_parser("status", help="health of every part")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(fn=cmd_status)
    bots = sub.add_parser("bots", formatter_class=_DefaultsHelp, help="bot players play sessions and upload them through ingest (needs a running stack)")
    bots.add_argument("--count", type=int, default=4, help="bot sessions to play")
    bots.set_defaults(fn=cmd_bots)
    loop = sub.add_parser("loop", formatter_class=_DefaultsHelp,
                          help="bots -> dataset -> training -> embedded evaluation, with stage timings")
    loop.add_argument("--bots", type=int, default=6, help="bot sessions to play")
    loop.add_argument("--epochs", type=int, default=4, help="training epochs")
    loop.add_argument("--preset", default="aim-resnet18-wide", help="the model: a waypoint model (aim-*) or CILRS (cilrs-*)")
    loop.add_argument("--suite", default="easy@1", help="evaluation suite (easy@1, traffic@1, ...)")
    loop.set_defaults(fn=cmd_loop)
    value = sub.add_parser("value", formatter_class=_DefaultsHelp,
                           help="the data-value experiment: bots -> dataset -> models trained on growing slices -> "
                                "evaluation per seed -> value.json + value.png")
    value.add_argument("--minutes", type=float, nargs="+", default=[5.0, 15.0, 30.0, 60.0], help="slices of accepted driving")
    value.add_argument("--presets", nargs="+", default=["cilrs-resnet18-wide", "aim-resnet18-wide"], help="models side by side")
    value.add_argument("--suite", default="traffic@1", help="evaluation suite (easy@1, traffic@1, ...)")
    value.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3], help="evaluation seeds")
    value.add_argument("--epochs", type=int, default=8, help="training epochs per model")
    value.add_argument("--max-steps", type=int, default=0, help="cap on optimiser steps per epoch (0 = whole epochs)")
    value.add_argument("--turn-weight", type=float, default=0.0,
                       help="draw frames whose future path turns more often: x (1 + W x turn amount 0..1); 0 = off")
    value.add_argument("--batch-size", type=int, default=64, help="training batch size")
    value.add_argument("--fps", type=int, default=10, help="bots' recording frame rate (the processor writes 10 Hz)")
    value.add_argument("--npc-max", type=int, default=20, help="each bot session draws 0..N NPC vehicles")
    value.add_argument("--pedestrians-max", type=int, default=8, help="each bot session draws 0..N pedestrians")
    value.add_argument("--recordings", default=".state/recordings", help="bot recordings kept here and reused")
    value.add_argument("--out", default="value", help="folder for value.json and value.png")
    value.add_argument("--tag", default="value", help="prefix of run and evaluation ids (finished ones are reused)")
    value.add_argument("--eval-tag", default="", help="suffix of evaluation ids only: a new one re-evaluates the "
                                                      "finished models, e.g. after a controller change")
    value.set_defaults(fn=cmd_value, seconds=60.0)
    value_plot = sub.add_parser("value-plot", formatter_class=_DefaultsHelp,
                                help="one data-value curve from reports run in pieces (other stacks or machines): "
                                     "their points side by side, refused when they were not measured the same way")
    value_plot.add_argument("reports", nargs="+", help="value.json files written by `value`")
    value_plot.add_argument("--out", default="value", help="folder for the combined value.json and value.png")
    value_plot.set_defaults(fn=cmd_value_plot)
    for p in (bots, loop, value):
        p.add_argument("--seconds", type=float, default=p.get_default("seconds") or 30.0, help="length of each bot session")
        p.add_argument("--width", type=int, default=640, help="bots' camera frame width (the game's default)")
        p.add_argument("--height", type=int, default=360, help="bots' camera frame height")
        p.add_argument("--camera", choices=("dash", "chase"), default="dash", help="bots' camera mode")
        p.add_argument("--workers", type=int, default=2, help="bot sessions rendered at once (processes)")
        p.add_argument("--seed", type=int, default=0, help="first bot seed (a session is deterministic for its seed)")
        p.add_argument("--turn-lapses", type=float, default=0.0,
                       help="chance that a bot's turn gets a steering lapse it recovers from (labels stay the expert's)")
    # Allow --state-dir after the subcommand too.
    for p in (up, status, sub.choices["down"], bots, loop, value):
        p.add_argument("--state-dir", default=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except StackError as err:
        console.print(f"[red]error:[/] {err}")
        return 2
    except ValueError as err:
        console.print(f"[red]error:[/] {err}")
        return 2


if __name__ == "__main__":
    sys.exit(main())

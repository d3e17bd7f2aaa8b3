"""Run the whole system on this machine.

Examples:
    scale-diffusion up                     # start S3, Kafka and the four services; print endpoints; return
    scale-diffusion up --foreground        # same, then stop everything on Ctrl-C
    scale-diffusion status                 # health of each part
    scale-diffusion down                   # stop only what `up` started
    scale-diffusion up --base-port 21000 --state-dir /tmp/sd2   # a second stack on other ports
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from rich.console import Console
from rich.table import Table

from scalediffusion.stack.layout import SERVICES, default_layout, offset_layout
from scalediffusion.stack.local import LocalStack, StackState
from scalediffusion.stack.procs import StackError

console = Console(stderr=False)


def _stack(args: argparse.Namespace) -> LocalStack:
    layout = offset_layout(args.base_port) if getattr(args, "base_port", None) else default_layout()
    return LocalStack(Path(args.state_dir), layout)


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
    rows = []
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scale-diffusion", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", default=".state", help="folder for data, logs and the record of what runs (default .state)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the local stack")
    up.add_argument("--foreground", action="store_true", help="stay attached and stop everything on Ctrl-C")
    up.add_argument("--base-port", type=int, default=None, help="use ports base..base+31 instead of the well-known ones")
    up.set_defaults(fn=cmd_up)
    sub.add_parser("down", help="stop what `up` started").set_defaults(fn=cmd_down)
    status = sub.add_parser("status", help="health of every part")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(fn=cmd_status)
    # Allow --state-dir after the subcommand too.
    for p in (up, status, sub.choices["down"]):
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

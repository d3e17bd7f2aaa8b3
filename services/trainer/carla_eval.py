"""One route shard of a CARLA evaluation, inside an evaluation Job's pod (services/trainer/k8s.py builds the Job).

Fetches the policy (models/<run>/model.onnx), cuts this shard's routes out of the suite's route file, runs the
Leaderboard 2.0 evaluator with our agent against the CARLA server in the same pod, and uploads the evaluator's
result file to reports/<eval>/shards/<shard>.json, where the trainer scores all shards together once the Job
succeeds (services/trainer/kube_runs.py). A failed shard exits non-zero so Kubernetes retries that index.

The building blocks (suite resolution, sharding, the evaluator's command line) are pure and tested here; running
them needs a CARLA server and the leaderboard, which only the evaluation image has.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from scalediffusion.platform import keys
from scalediffusion.platform.logs import configure_logging, event, get_logger
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.platform.settings import S3Settings

log = get_logger("trainer.carla_eval")
AGENT_FILE = Path(__file__).with_name("carla_agent.py")

# Suite name -> route file inside the leaderboard checkout, per suite version. A new version of a suite is a new
# entry: reports name the version they were scored on.
SUITES: dict[str, dict[str, str]] = {
    "devtest": {"1": "data/routes_devtest.xml"},
    "training": {"1": "data/routes_training.xml"},
    "validation": {"1": "data/routes_validation.xml"},
}


class SuiteError(ValueError):
    """An unknown suite or version, or a route file without routes."""


def suite_route_file(suite: str, leaderboard_root: str | Path) -> Path:
    name, _, version = suite.partition("@")
    if name not in SUITES or version not in SUITES[name]:
        known = ", ".join(f"{n}@{v}" for n, versions in sorted(SUITES.items()) for v in versions)
        raise SuiteError(f"unknown CARLA suite {suite!r}; known: {known}")
    return Path(leaderboard_root) / SUITES[name][version]


def shard_routes(routes_xml: str, shard: int, shards: int) -> tuple[str, list[str]]:
    """The routes of shard `shard` of `shards` (every shards-th route, so long and short routes spread evenly) as a
    route file, and their ids. Raises SuiteError when the shard would be empty."""
    if not 0 <= shard < shards:
        raise SuiteError(f"shard {shard} is not in 0..{shards - 1}")
    root = ET.fromstring(routes_xml)
    routes = root.findall("route")
    if not routes:
        raise SuiteError("the route file has no <route> elements")
    mine = routes[shard::shards]
    if not mine:
        raise SuiteError(f"shard {shard} of {shards} has no routes: the suite has only {len(routes)}")
    for route in routes:
        if route not in mine:
            root.remove(route)
    return ET.tostring(root, encoding="unicode"), [r.get("id", "") for r in mine]


def leaderboard_command(leaderboard_root: str | Path, routes: Path, agent_config: Path, checkpoint: Path,
                        host: str, port: int, traffic_manager_port: int, seed: int) -> list[str]:
    return [
        sys.executable, str(Path(leaderboard_root) / "leaderboard" / "leaderboard_evaluator.py"),
        f"--host={host}", f"--port={port}", f"--traffic-manager-port={traffic_manager_port}",
        f"--traffic-manager-seed={seed}", f"--routes={routes}", "--track=SENSORS",
        f"--agent={AGENT_FILE}", f"--agent-config={agent_config}", f"--checkpoint={checkpoint}",
        "--resume=1",  # a retried pod (backoffLimitPerIndex) continues the shard's routes instead of redoing them
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Evaluate one route shard in CARLA (runs inside an evaluation Job).")
    parser.add_argument("--eval-id", required=True)
    parser.add_argument("--model-run", required=True)
    parser.add_argument("--suite", required=True)
    parser.add_argument("--shard", type=int, required=True)
    parser.add_argument("--shards", type=int, required=True)
    parser.add_argument("--carla-host", default="127.0.0.1")
    parser.add_argument("--carla-port", type=int, default=2000)
    parser.add_argument("--metric-version", default="2.0", help="scored by the trainer; recorded here for the logs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work-dir", default="/tmp/carla-eval")
    args = parser.parse_args(argv)
    configure_logging("carla-eval", os.environ.get("SD_LOG_LEVEL", "INFO"))
    leaderboard_root = os.environ.get("SD_LEADERBOARD_ROOT", "/opt/leaderboard")
    s3 = S3Settings.from_env()
    store = ObjectStore(s3)
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        routes_xml, route_ids = shard_routes(suite_route_file(args.suite, leaderboard_root).read_text(), args.shard, args.shards)
    except (SuiteError, OSError, ET.ParseError) as exc:
        event(log, "shard_unusable", eval_id=args.eval_id, shard=args.shard, error=str(exc))
        return 2
    (work / "routes.xml").write_text(routes_xml)
    store.download(s3.bucket_models, keys.run_key(args.model_run, "model.onnx"), str(work / "model.onnx"))
    (work / "agent.json").write_text(json.dumps({"model": str(work / "model.onnx")}))
    checkpoint = work / "result.json"
    command = leaderboard_command(leaderboard_root, work / "routes.xml", work / "agent.json", checkpoint,
                                  args.carla_host, args.carla_port, 8000 + args.shard, args.seed)
    event(log, "shard_started", eval_id=args.eval_id, shard=args.shard, routes=route_ids, command=command)
    result = subprocess.run(command, check=False)
    if not checkpoint.exists():
        event(log, "shard_failed", eval_id=args.eval_id, shard=args.shard, exit_code=result.returncode)
        return result.returncode or 1
    store.put_bytes(s3.bucket_reports, keys.eval_key(args.eval_id, f"shards/{args.shard}.json"), checkpoint.read_bytes(),
                    "application/json")
    event(log, "shard_done", eval_id=args.eval_id, shard=args.shard, exit_code=result.returncode)
    return 0 if result.returncode == 0 else result.returncode


if __name__ == "__main__":
    sys.exit(main())

"""`scale-diffusion up|status|down` as a user runs it: every service SERVING with reflection and metrics; a taken
port is a clear error; down stops only what that stack started, and services drain instead of being killed."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import grpc
import pytest
import urllib3
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from scalediffusion.stack.layout import SERVICES, free_layout
from tests.conftest import FAST_GROUP_ENV, REPO

EXPECTED_SERVICE = {
    "ingest": "scalediffusion.v1.IngestService",
    "diffusion": "scalediffusion.v1.DiffusionService",
    "processor": "scalediffusion.v1.ProcessorService",
    "trainer": "scalediffusion.v1.TrainerService",
}


def cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **FAST_GROUP_ENV, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "scalediffusion.stack.cli", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture(scope="module")
def cli_stack(tmp_path_factory, stack):
    layout = free_layout(exclude=set(stack.layout.all_ports()))
    base = layout.weed.s3
    state_dir = tmp_path_factory.mktemp("cli-stack")
    up = cli("up", "--state-dir", str(state_dir), "--base-port", str(base), "--env", "SD_TRAINER_LOCAL_SLOTS=2")
    assert up.returncode == 0, up.stdout + up.stderr
    yield state_dir, base, up.stdout
    cli("down", "--state-dir", str(state_dir))


def test_up_prints_every_endpoint(cli_stack):
    _, base, out = cli_stack
    for port in (base, base + 8, base + 10, base + 11, base + 12):
        assert f"127.0.0.1:{port}" in out


def test_status_reports_every_service_serving_with_reflection_and_metrics(cli_stack):
    state_dir, _, _ = cli_stack
    status = cli("status", "--state-dir", str(state_dir), "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    doc = json.loads(status.stdout)
    states = {p["part"]: p["state"] for p in doc["parts"]}
    reflected = {p["part"]: set(p["services"]) for p in doc["parts"]}
    assert all(EXPECTED_SERVICE[s] in reflected[s] and "grpc.health.v1.Health" in reflected[s] for s in SERVICES)
    assert states == {"s3": "running", "kafka": "running", "web": "running", **{s: "SERVING" for s in SERVICES}}
    layout = json.loads((state_dir / "stack.json").read_text())["layout"]
    http = urllib3.PoolManager()
    for name in SERVICES:
        ports = layout["services"][name]
        with grpc.insecure_channel(f"127.0.0.1:{ports['grpc']}") as channel:
            services = set(ProtoReflectionDescriptorDatabase(channel).get_services())
        assert {EXPECTED_SERVICE[name], "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= services
        metrics = http.request("GET", f"http://127.0.0.1:{ports['metrics']}/metrics")
        assert metrics.status == 200
        assert b"sd_rpc_requests_total" in metrics.data


def test_the_built_game_is_served_with_the_stack_endpoints(cli_stack):
    state_dir, base, out = cli_stack
    if not (REPO / "clients" / "web" / "dist" / "index.html").exists():
        pytest.fail("clients/web/dist is missing: `make test` builds the game before the tests")
    game = f"http://127.0.0.1:{base + 9}"
    assert game in out, "up prints the game's URL"
    http = urllib3.PoolManager()
    page = http.request("GET", game + "/")
    assert page.status == 200 and b"<div id=\"root\"" in page.data
    config = http.request("GET", game + "/sd-config.js").data.decode()
    assert f'"ingestUrl": "http://127.0.0.1:{base + 11}"' in config


def test_up_on_taken_ports_fails_with_a_message_naming_them(cli_stack, tmp_path):
    _, base, _ = cli_stack
    second = cli("up", "--state-dir", str(tmp_path / "other"), "--base-port", str(base))
    assert second.returncode == 2
    assert f"{base} (SeaweedFS)" in second.stdout and "--base-port" in second.stdout


def test_up_passes_env_settings_to_the_services_and_refuses_malformed_ones(cli_stack, tmp_path):
    state_dir, _, _ = cli_stack
    record = json.loads((state_dir / "stack.json").read_text())
    environ = open(f"/proc/{record['procs']['trainer']['pid']}/environ", "rb").read().split(b"\0")
    assert b"SD_TRAINER_LOCAL_SLOTS=2" in environ
    for bad in ("SD_TRAINER_LOCAL_SLOTS", "PATH=/tmp"):
        run = cli("up", "--state-dir", str(tmp_path / "never"), "--env", bad)
        assert run.returncode != 0 and "SD_NAME=VALUE" in run.stdout + run.stderr, run.stdout + run.stderr
        assert not (tmp_path / "never" / "stack.json").exists()


def test_status_without_a_stack_says_how_to_start_one(tmp_path):
    result = cli("status", "--state-dir", str(tmp_path / "none"))
    assert result.returncode == 1
    assert "scale-diffusion up" in result.stdout


def test_down_stops_only_its_own_processes_and_services_drain(cli_stack, stack):
    state_dir, _, _ = cli_stack
    record = json.loads((state_dir / "stack.json").read_text())
    down = cli("down", "--state-dir", str(state_dir))
    assert down.returncode == 0
    assert "killed" not in down.stdout, "services and infrastructure stop on SIGTERM within the grace period"
    for name, proc in record["procs"].items():
        assert not os.path.exists(f"/proc/{proc['pid']}") or open(f"/proc/{proc['pid']}/stat").read().split()[2] == "Z", name
    for name in SERVICES:
        log_lines = [json.loads(line) for line in open(record["procs"][name]["log"]) if line.startswith("{")]
        assert [e["event"] for e in log_lines if e.get("event") in ("draining", "stopped")] == ["draining", "stopped"], name
    # The session-wide stack is untouched.
    assert all(p.alive() for p in stack.state.procs.values())


@pytest.mark.parametrize("command", ["up", "bots", "loop", "value"])
def test_every_option_of_a_command_shows_its_default_in_help(command):
    """`scale-diffusion loop --help` says what each option does and what it is when not given."""
    out = cli(command, "--help")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split("\n")
    options = [i for i, line in enumerate(lines) if line.startswith("  --") and not line.startswith(("  --help", "  --state-dir", "  --foreground"))]
    assert options
    for i in options:
        block = " ".join(lines[i:next((j for j in options if j > i), len(lines))])
        assert "(default:" in block or command == "up" and "--base-port" in block, f"{command}: {lines[i].strip()} shows no default"

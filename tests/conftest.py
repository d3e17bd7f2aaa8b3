"""Session-wide fixtures: one real local stack (SeaweedFS S3 + Tansu broker + the four services as processes)
on ports of its own, shared by the integration and e2e tests, which isolate themselves by unique ids."""

from __future__ import annotations

import importlib.util
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from kafka import KafkaConsumer, TopicPartition

# Mesa's llvmpipe (the EGL context CityRenderer renders with) and Triton each load their own LLVM; importing Triton
# after a GL context exists segfaults, the other order is fine. torch imports Triton lazily (optimisers, dynamo), so
# a test that renders and then trains would crash depending on test order: load Triton first, once. It is imported
# under its interpreter because Triton's own @jit library functions (tl.sum, tl.max, ...) take the mode of the
# import, and the kernel tests run interpreted (there is no GPU here); the AOT compile test runs in a subprocess.
if importlib.util.find_spec("triton") is not None:
    _saved_interpret = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    import triton  # noqa: F401

    if _saved_interpret is None:
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = _saved_interpret

from scalediffusion.platform.kafka import EventBus
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.stack.layout import Layout, free_layout
from scalediffusion.stack.local import LocalStack, StackState
from scalediffusion.v1 import diffusion_pb2_grpc, ingest_pb2_grpc, processor_pb2_grpc, trainer_pb2_grpc

REPO = Path(__file__).resolve().parents[1]

# Tansu holds a consumer-group join for max_poll_interval_ms (docs/ARCHITECTURE.md "Runtime"), so tests keep it short.
FAST_GROUP_ENV = {"SD_KAFKA_MAX_POLL_INTERVAL_MS": "3000", "SD_KAFKA_SESSION_TIMEOUT_MS": "3000", "SD_SHUTDOWN_GRACE_S": "5"}
# The reconciler runs every second in tests; a verified session with no outcome after 20 s is re-published.
TEST_ENV = {**FAST_GROUP_ENV, "SD_INGEST_RECONCILE_S": "1", "SD_INGEST_REPUBLISH_AFTER_S": "20"}


@dataclass
class Stack:
    local: LocalStack
    state: StackState

    @property
    def layout(self) -> Layout:
        return self.state.layout

    def channel(self, service: str) -> grpc.Channel:
        return grpc.insecure_channel(f"{self.layout.host}:{self.layout.services[service].grpc}")

    def store(self) -> ObjectStore:
        return ObjectStore(self.local.s3_settings(self.state))

    def bus(self) -> EventBus:
        return EventBus(self.local.kafka_settings(self.state), client_id=f"test-{uuid.uuid4().hex[:6]}")

    def token(self, player_id: str, operator: bool = False, ttl_s: int = 3600) -> str:
        """A token signed with the stack's key, as `sd-ingest-admin issue-token` would make it."""
        from services.ingest.auth import OPERATOR, PLAYER, TokenSigner

        token, _ = TokenSigner(self.state.credentials["token_key"].encode()).issue(player_id, OPERATOR if operator else PLAYER, ttl_s, time.time())
        return token

    def auth(self, player_id: str, operator: bool = False) -> tuple[tuple[str, str], ...]:
        """gRPC metadata carrying a fresh token for the player."""
        return (("authorization", f"Bearer {self.token(player_id, operator)}"),)

    def grpc_web_url(self, service: str) -> str:
        return f"http://{self.layout.host}:{self.layout.services[service].grpc_web}"

    def read_topic(self, topic: str, match, timeout_s: float = 30.0) -> list:
        """Records of a topic (from the beginning, no consumer group) for which match(record) is true; waits until
        at least one matches or the timeout passes."""
        consumer = KafkaConsumer(bootstrap_servers=self.layout.kafka_bootstrap, enable_auto_commit=False, group_id=None)
        try:
            deadline = time.monotonic() + timeout_s
            partitions = None
            while partitions is None and time.monotonic() < deadline:
                partitions = consumer.partitions_for_topic(topic)
                if partitions is None:
                    time.sleep(0.2)
            if not partitions:
                return []
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            consumer.seek_to_beginning(*tps)
            found = []
            while time.monotonic() < deadline:
                batch = consumer.poll(timeout_ms=300)
                for records in batch.values():
                    found += [r for r in records if match(r)]
                if found and not batch:
                    break
            return found
        finally:
            consumer.close()


def start_service(stack: Stack, log_dir: Path, service: str, overrides: dict[str, str], name: str):
    """One more process of `service` on the stack's S3 and broker, on its own ports, with env overrides; returns
    (channel, ProcRecord) once it reports SERVING. The caller terminates it."""
    import sys

    from grpc_health.v1 import health_pb2, health_pb2_grpc

    from scalediffusion.stack.procs import spawn, wait_until

    ports = free_layout(exclude=set(stack.layout.all_ports())).services[service]
    env = stack.local.service_env(stack.state, service)
    env.update({"SD_GRPC_PORT": str(ports.grpc), "SD_GRPCWEB_PORT": "0", "SD_METRICS_PORT": "0", **overrides})
    record = spawn(name, [sys.executable, "-m", f"services.{service}.server"], env, log_dir, cwd=REPO)
    channel = grpc.insecure_channel(f"127.0.0.1:{ports.grpc}")

    def serving() -> bool:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    try:
        wait_until(serving, 60, name, record)
    except BaseException:
        from scalediffusion.stack.procs import terminate

        terminate(record, grace_s=5)
        raise
    return channel, record


@pytest.fixture
def extra_service(stack: Stack, tmp_path: Path):
    """Starts more service processes on the stack's S3 and broker, with env overrides (short upload windows, small
    limits, topic prefixes, a PYTHONPATH with crash hooks); each is a real process on its own ports, stopped at teardown.
    Yields start(service, overrides, name) -> (channel, ProcRecord)."""
    from scalediffusion.stack.procs import terminate

    started = []

    def start(service: str, overrides: dict[str, str], name: str = ""):
        channel, record = start_service(stack, tmp_path, service, overrides, name or f"{service}-extra-{len(started)}")
        started.append(record)
        return channel, record

    yield start
    for record in started:
        terminate(record, grace_s=10)


@pytest.fixture
def extra_ingest(extra_service):
    """start(overrides, name) -> (IngestServiceStub, ProcRecord) for an extra ingest process."""

    def start(overrides: dict[str, str], name: str = ""):
        channel, record = extra_service("ingest", overrides, name)
        return ingest_pb2_grpc.IngestServiceStub(channel), record

    return start


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    local = LocalStack(tmp_path_factory.mktemp("stack"), free_layout(), extra_env=TEST_ENV)
    state = local.up()
    try:
        yield Stack(local, state)
    finally:
        local.down(state)


@pytest.fixture(scope="session")
def ingest(stack: Stack) -> ingest_pb2_grpc.IngestServiceStub:
    return ingest_pb2_grpc.IngestServiceStub(stack.channel("ingest"))


@pytest.fixture(scope="session")
def processor(stack: Stack) -> processor_pb2_grpc.ProcessorServiceStub:
    return processor_pb2_grpc.ProcessorServiceStub(stack.channel("processor"))


@pytest.fixture(scope="session")
def trainer(stack: Stack) -> trainer_pb2_grpc.TrainerServiceStub:
    return trainer_pb2_grpc.TrainerServiceStub(stack.channel("trainer"))


@pytest.fixture(scope="session")
def diffusion(stack: Stack) -> diffusion_pb2_grpc.DiffusionServiceStub:
    return diffusion_pb2_grpc.DiffusionServiceStub(stack.channel("diffusion"))

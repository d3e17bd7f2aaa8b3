"""Session-wide fixtures: one real local stack (SeaweedFS S3 + Tansu broker + the four services as processes)
on ports of its own, shared by the integration and e2e tests, which isolate themselves by unique ids."""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from kafka import KafkaConsumer, TopicPartition

from scalediffusion.kafka import EventBus
from scalediffusion.s3 import ObjectStore
from scalediffusion.stack.layout import Layout, offset_layout
from scalediffusion.stack.local import LocalStack, StackState
from scalediffusion.stack.procs import port_in_use
from scalediffusion.v1 import ingest_pb2_grpc, processor_pb2_grpc, trainer_pb2_grpc, diffusion_pb2_grpc

REPO = Path(__file__).resolve().parents[1]

# Tansu holds a consumer-group join for max_poll_interval_ms (DESIGN.md), so tests keep it short.
FAST_GROUP_ENV = {"SD_KAFKA_MAX_POLL_INTERVAL_MS": "3000", "SD_KAFKA_SESSION_TIMEOUT_MS": "3000", "SD_SHUTDOWN_GRACE_S": "5"}


def free_layout(exclude: set[int] | None = None) -> Layout:
    """A layout whose every port is free now (tries random bases).

    Bases stay below the kernel's ephemeral range (32768+ here, /proc/sys/net/ipv4/ip_local_port_range): outgoing
    connections take local ports from that range, and a server port there can be taken between check and bind.
    weed's gRPC side sits at +10000, so bases go up to ~22700.
    """
    for _ in range(50):
        base = random.randrange(10000, 22700, 40)
        layout = offset_layout(base)
        ports = set(layout.all_ports())
        if exclude and ports & exclude:
            continue
        if not any(port_in_use(layout.host, p) for p in ports):
            return layout
    raise RuntimeError("no free port range found for a test stack")


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


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Stack:
    local = LocalStack(tmp_path_factory.mktemp("stack"), free_layout(), extra_env=FAST_GROUP_ENV)
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

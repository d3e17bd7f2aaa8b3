"""Crash safety: processor processes are SIGKILLed at random points while working through a batch of sessions and
restarted; in the end every session is processed exactly once and every output is byte-identical to a clean run.

Each run uses its own topic prefix (so the stack's own processor stays out of it) and its own dataset."""

from __future__ import annotations

import os
import random
import signal
import time
import uuid

from scalediffusion import synthetic
from scalediffusion.platform import keys
from scalediffusion.platform.kafka import EventBus
from scalediffusion.platform.settings import KafkaSettings
from tests.integration.test_processor_events import publish_session

SESSIONS = 6


def run_env(prefix: str, dataset: str) -> dict[str, str]:
    # Every source frame (not the 10 Hz default): twice the writes keep the batch busy long enough to be killed mid-way.
    return {"SD_TOPIC_PREFIX": prefix, "SD_DATASET": dataset, "SD_QUALITY_PLOT": "false", "SD_OUTPUT_FPS": "0"}


def done(store, dataset: str, session_ids: list[str]) -> int:
    return sum(store.stat("clean", keys.report_prefix(dataset, s) + "done.json") is not None for s in session_ids)


def outputs(store, dataset: str) -> dict[str, bytes]:
    """Every segment object and index record of a dataset, keyed without the dataset name, with the dataset name
    inside index records (SegmentInfo.dataset/prefix) replaced, so two datasets compare byte for byte. Reports are
    left out: they hold processing times."""
    return {
        key.split("/", 1)[1]: store.get_bytes("clean", key).replace(dataset.encode(), b"<dataset>")
        for key in store.list_keys("clean", f"{dataset}/")
        if "/_reports/" not in key
    }


def test_sigkill_at_random_points_ends_with_each_session_once_and_byte_identical_output(stack, extra_service, tmp_path):
    rng = random.Random(7)
    store = stack.store()
    run_id = uuid.uuid4().hex[:6]
    videos = []
    for i in range(SESSIONS):
        path = tmp_path / f"v{i}.webm"
        synthetic.write_vp8_webm(path, seconds=3.0 + i % 3, fps=20, width=320, height=180, seed=i)
        videos.append((path.read_bytes(), synthetic.make_telemetry("", 3.5 + i % 3).SerializeToString()))
    session_ids = [f"{run_id}{i:02d}" for i in range(SESSIONS)]

    def publish_all(prefix: str) -> None:
        bus = EventBus(KafkaSettings(bootstrap=(stack.layout.kafka_bootstrap,), topic_prefix=prefix, partitions=4), client_id="crash-test")
        bus.ensure_topics(["sessions.uploaded", "segments.ready", "sessions.rejected", "processor.dlq"])
        for sid, (video, telemetry) in zip(session_ids, videos):
            publish_session(stack, tmp_path, video=video, telemetry=telemetry, bus=bus, session_id=sid)

    # The clean run: one processor, never interrupted.
    clean_ds, crash_ds = f"clean{run_id}", f"crash{run_id}"
    publish_all(f"clean{run_id}-")
    extra_service("processor", run_env(f"clean{run_id}-", clean_ds), name="processor-clean")
    deadline = time.monotonic() + 180
    while done(store, clean_ds, session_ids) < SESSIONS and time.monotonic() < deadline:
        time.sleep(0.5)
    assert done(store, clean_ds, session_ids) == SESSIONS

    # The crash run: kill -9 at random moments, restart, until every session is done. The first processor is up
    # before the work arrives, and a kill comes after a random time or, at the latest, once the process finished a
    # session: a fast machine otherwise processes the whole batch before the first kill and nothing is tested.
    kills = 0
    _, record = extra_service("processor", run_env(f"crash{run_id}-", crash_ds), name="processor-crash-0")
    publish_all(f"crash{run_id}-")
    deadline = time.monotonic() + 300
    while done(store, crash_ds, session_ids) < SESSIONS and time.monotonic() < deadline:
        before, until = done(store, crash_ds, session_ids), time.monotonic() + rng.uniform(0.2, 3.0)
        while time.monotonic() < until and done(store, crash_ds, session_ids) == before:
            time.sleep(0.05)
        if done(store, crash_ds, session_ids) < SESSIONS and record.alive():
            os.killpg(record.pid, signal.SIGKILL)
            kills += 1
            _, record = extra_service("processor", run_env(f"crash{run_id}-", crash_ds), name=f"processor-crash-{kills}")
    assert done(store, crash_ds, session_ids) == SESSIONS
    assert kills >= 1, "the run was killed at least once"

    clean_out, crash_out = outputs(store, clean_ds), outputs(store, crash_ds)
    assert clean_out.keys() == crash_out.keys()
    assert [k for k in clean_out if clean_out[k] != crash_out[k]] == []
    index = [k for k in crash_out if "/_index/" in k or k.startswith("_index/")]
    assert len(index) == len(set(index)) and len(index) >= SESSIONS

"""The shared consumer loop on the real broker: outages are waited out (never dead-lettered), handler errors are
retried then dead-lettered, and the offset moves on only after the record is done."""

from __future__ import annotations

import threading
import time
import uuid

import urllib3

from scalediffusion.platform import events
from scalediffusion.platform.kafka import ConsumerConfig, ConsumerLoop, EventBus, is_transient
from scalediffusion.platform.settings import KafkaSettings
from scalediffusion.v1 import events_pb2


def run_loop(stack, handler, max_attempts: int = 3) -> tuple[ConsumerLoop, EventBus, threading.Thread]:
    prefix = f"loop{uuid.uuid4().hex[:6]}-"
    bus = EventBus(KafkaSettings(bootstrap=(stack.layout.kafka_bootstrap,), topic_prefix=prefix, partitions=1), client_id="loop-test")
    bus.ensure_topics([events.SESSIONS_UPLOADED, "g.dlq"])
    config = ConsumerConfig(group="g", topics=(events.SESSIONS_UPLOADED,), max_attempts=max_attempts, backoff_s=0.05,
                            max_backoff_s=0.3, max_poll_interval_ms=3000, session_timeout_ms=3000)
    loop = ConsumerLoop(bus, config, handler)
    thread = threading.Thread(target=loop.run, daemon=True)
    thread.start()
    return loop, bus, thread


def wait(predicate, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_an_outage_is_waited_out_and_the_record_is_handled_once(stack):
    calls = []

    def handler(record) -> None:
        calls.append(record.offset)
        if len(calls) <= 4:  # S3 unreachable for the first four tries
            raise urllib3.exceptions.MaxRetryError(None, "http://s3", reason="connection refused")

    loop, bus, thread = run_loop(stack, handler, max_attempts=2)
    bus.publish(events.SESSIONS_UPLOADED, "k1", events_pb2.SessionUploaded(session_id="s1"))
    wait(lambda: loop.handled == 1)
    assert loop.dead_lettered == 0, "an outage never dead-letters a good record"
    assert calls == [calls[0]] * 5, "the same record, retried after each outage"
    loop.stop()
    thread.join(10)
    bus.close()


def test_handler_errors_are_retried_then_dead_lettered_and_the_loop_goes_on(stack):
    seen = []

    def handler(record) -> None:
        message = events.decode(record.value, record.headers, events_pb2.SessionUploaded)
        seen.append(message.session_id)
        if message.session_id == "bad":
            raise ValueError("a bug in the handler")

    loop, bus, thread = run_loop(stack, handler, max_attempts=3)
    bus.publish(events.SESSIONS_UPLOADED, "k", events_pb2.SessionUploaded(session_id="bad"))
    bus.publish(events.SESSIONS_UPLOADED, "k", events_pb2.SessionUploaded(session_id="good"))
    wait(lambda: loop.handled == 1 and loop.dead_lettered == 1)
    assert seen == ["bad", "bad", "bad", "good"]
    letters = stack.read_topic(bus.topic("g.dlq"), lambda r: True, timeout_s=10)
    letter = events.decode(letters[0].value, letters[0].headers, events_pb2.DeadLetter)
    assert letter.attempts == 3 and "a bug in the handler" in letter.error
    loop.stop()
    thread.join(10)
    bus.close()


def test_a_record_that_takes_longer_than_the_poll_interval_is_handled_once_and_committed(stack):
    """A big session or a slow node: the handler runs twice the group's max_poll_interval_ms (3 s here). The loop
    keeps polling (partitions paused) while the handler works, so it stays in the group: no redelivery, the
    offset is committed, and the next record follows."""
    seen = []

    def handler(record) -> None:
        message = events.decode(record.value, record.headers, events_pb2.SessionUploaded)
        seen.append(message.session_id)
        if message.session_id == "slow":
            time.sleep(7.0)

    loop, bus, thread = run_loop(stack, handler)
    bus.publish(events.SESSIONS_UPLOADED, "k", events_pb2.SessionUploaded(session_id="slow"))
    bus.publish(events.SESSIONS_UPLOADED, "k", events_pb2.SessionUploaded(session_id="next"))
    wait(lambda: loop.handled >= 2, timeout_s=60)
    time.sleep(4.0)  # a redelivery, if membership was lost, would show up here
    assert seen == ["slow", "next"], seen
    assert loop.commit_failures == 0
    loop.stop()
    thread.join(10)
    bus.close()


def test_what_counts_as_an_outage():
    from minio.error import S3Error

    assert is_transient(urllib3.exceptions.NewConnectionError(None, "refused"))
    assert is_transient(ConnectionResetError())
    assert is_transient(S3Error(None, "SlowDown", "slow down", "r", "1", "h"))
    assert not is_transient(S3Error(None, "NoSuchKey", "missing", "r", "1", "h"))
    assert not is_transient(ValueError("bad data"))

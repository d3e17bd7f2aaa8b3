"""The event bus through kafka-python: topic bootstrap, a publishing client, and a consumer loop that commits
only after its handler succeeded and dead-letters what it cannot handle."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata, TopicPartition
from prometheus_client import Counter

from scalediffusion.platform import events
from scalediffusion.platform.logs import event, get_logger
from scalediffusion.platform.settings import KafkaSettings
from scalediffusion.v1 import events_pb2

log = get_logger("kafka")

CONSUMED = Counter("sd_consumer_records_total", "Records a consumer group finished, by outcome (handled, dead_lettered)", ["group", "topic", "outcome"])
HANDLER_RETRIES = Counter("sd_consumer_retries_total", "Handler failures that were retried, by kind (error, outage)", ["group", "topic", "kind"])
PUBLISHED = Counter("sd_events_published_total", "Events acknowledged by the broker", ["topic"])


class PermanentError(Exception):
    """A handler failure that retrying cannot fix; the record goes to the dead-letter topic at once."""


def is_transient(err: BaseException) -> bool:
    """Infrastructure outages (S3 or broker unreachable, 5xx, timeouts): retried without limit, never dead-lettered,
    because the record is fine and the next try after the outage will work."""
    import urllib3.exceptions
    from kafka.errors import KafkaError
    from minio.error import S3Error, ServerError

    if isinstance(err, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError, ServerError)):
        return True
    if isinstance(err, S3Error):
        return err.code in ("InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "ServiceBusy")
    if isinstance(err, KafkaError):
        return bool(getattr(err, "retriable", False)) or type(err).__name__ in ("KafkaTimeoutError", "NoBrokersAvailable")
    return False


class EventBus:
    """Topic management and publishing for one service. The producer is created lazily and shared."""

    def __init__(self, settings: KafkaSettings, client_id: str) -> None:
        self.settings = settings
        self.client_id = client_id
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def topic(self, name: str) -> str:
        return self.settings.topic(name)

    def ensure_topics(self, names: Iterable[str]) -> None:
        """Creates the prefixed topics that do not exist yet."""
        admin = KafkaAdminClient(bootstrap_servers=list(self.settings.bootstrap), client_id=f"{self.client_id}-admin")
        try:
            existing = set(admin.list_topics())
            missing = [self.topic(n) for n in names if self.topic(n) not in existing]
            for name in missing:
                try:
                    admin.create_topics([NewTopic(name, num_partitions=self.settings.partitions, replication_factor=self.settings.replication_factor)])
                except TopicAlreadyExistsError:
                    pass
        finally:
            admin.close()

    @property
    def producer(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                # acks=all + one request in flight keeps per-key order across retries.
                self._producer = KafkaProducer(
                    bootstrap_servers=list(self.settings.bootstrap),
                    client_id=self.client_id,
                    acks="all",
                    retries=5,
                    max_in_flight_requests_per_connection=1,
                    linger_ms=2,
                )
            return self._producer

    def publish(self, topic_name: str, key: str, message: Message, timeout_s: float = 30.0) -> tuple[int, int]:
        """Publishes and waits for the broker's ack; returns (partition, offset). Raises on failure."""
        value, headers = events.encode(message)
        return self.publish_raw(self.topic(topic_name), key.encode(), value, headers, timeout_s)

    def publish_raw(
        self, full_topic: str, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]], timeout_s: float = 30.0
    ) -> tuple[int, int]:
        meta = self.producer.send(full_topic, key=key, value=value, headers=headers).get(timeout=timeout_s)
        PUBLISHED.labels(full_topic).inc()
        return meta.partition, meta.offset

    def close(self) -> None:
        with self._lock:
            if self._producer is not None:
                self._producer.flush(timeout=10)
                self._producer.close(timeout=10)
                self._producer = None


@dataclass
class ConsumerConfig:
    group: str  # consumer group base name (the bus prefix is added); also names the dead-letter topic <group>.dlq
    topics: tuple[str, ...]  # base names, prefixed by the bus settings
    max_attempts: int = 3  # handler tries before a record is dead-lettered (outages do not count)
    backoff_s: float = 0.2  # first retry delay; doubles each try, jittered
    max_backoff_s: float = 30.0  # cap for outage retries
    # How long the broker waits for a member; Tansu holds group joins for this long, so tests use ~3 s.
    max_poll_interval_ms: int = 300_000
    session_timeout_ms: int = 10_000


class ConsumerLoop:
    """Polls one record at a time, runs the handler, commits that record's offset only after the handler returned.
    The handler runs on a worker thread while the loop keeps polling with its partitions paused, so however long a
    record takes, the consumer stays in its group (max_poll_interval_ms bounds a stuck process, not the work).

    A record that cannot be decoded (events.PoisonMessage) or fails with PermanentError goes straight to the
    dead-letter topic; other exceptions are retried with jittered backoff and dead-lettered after max_attempts.
    A dead-lettered record is committed, so one bad record never stops the group. Outages (is_transient: S3 or
    broker unreachable) are retried without limit: the consumer seeks back to the record and keeps polling
    between tries, so it stays in its group while it waits.
    """

    HANDLER_POLL_S = 0.5  # how often the loop polls (group membership, the poll-interval clock) while a handler runs

    def __init__(self, bus: EventBus, config: ConsumerConfig, handler: Callable[[ConsumerRecord], None]) -> None:
        self.bus = bus
        self.config = config
        self.handler = handler
        self.stop_event = threading.Event()
        self.ready = threading.Event()  # set once the consumer has partitions assigned
        self.handled = 0
        self.dead_lettered = 0
        self.outages = 0  # consecutive outage retries (drives the backoff)
        self.commit_failures = 0  # commits refused because the group moved on (the record is redelivered)

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            *[self.bus.topic(t) for t in self.config.topics],
            bootstrap_servers=list(self.bus.settings.bootstrap),
            group_id=self.bus.topic(self.config.group),
            client_id=f"{self.bus.client_id}-consumer",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=1,
            max_poll_interval_ms=self.config.max_poll_interval_ms,
            session_timeout_ms=self.config.session_timeout_ms,
            heartbeat_interval_ms=max(100, self.config.session_timeout_ms // 3),
        )

    def run(self) -> None:
        """Blocks until stop() is called; safe to run in a thread."""
        consumer = self._consumer()
        try:
            while not self.stop_event.is_set():
                batch = consumer.poll(timeout_ms=300, max_records=1)
                if consumer.assignment():
                    self.ready.set()
                for tp, records in batch.items():
                    for record in records:
                        outcome = self._handle_while_polling(consumer, record)
                        if outcome == "stopped":
                            return
                        if outcome == "outage":
                            consumer.seek(TopicPartition(tp.topic, tp.partition), record.offset)
                            break
                        try:
                            consumer.commit({TopicPartition(tp.topic, tp.partition): OffsetAndMetadata(record.offset + 1, "", -1)})
                        except CommitFailedError as err:
                            # The group rebalanced while we worked (the member was lost: a broker failover, a
                            # stalled process): the record is redelivered to the partition's new owner; outputs
                            # are idempotent.
                            self.commit_failures += 1
                            event(log, "commit_failed", topic=record.topic, partition=record.partition, offset=record.offset, error=str(err))
        finally:
            consumer.close(autocommit=False)

    def stop(self) -> None:
        self.stop_event.set()

    def _handle_while_polling(self, consumer: KafkaConsumer, record: ConsumerRecord) -> str:
        """_handle(record) on a worker thread while this thread keeps polling with every partition paused, so a
        record that takes longer than max_poll_interval_ms (a long session, a slow node) never costs the group
        membership. A rebalance meanwhile can hand over partitions that are not paused yet: whatever such a poll
        returns is put back (seek to its first offset) and the partitions paused."""
        outcome: list[str] = []
        failure: list[BaseException] = []

        def work() -> None:
            try:
                outcome.append(self._handle(record))
            except BaseException as err:  # noqa: BLE001 - re-raised on the loop's thread, where run_forever restarts
                failure.append(err)

        worker = threading.Thread(target=work, name=f"{self.config.group}-handler", daemon=True)
        consumer.pause(*consumer.assignment())
        worker.start()
        try:
            while worker.is_alive():
                worker.join(timeout=self.HANDLER_POLL_S)
                if not worker.is_alive():
                    break
                for tp, returned in consumer.poll(timeout_ms=0).items():
                    consumer.seek(tp, returned[0].offset)
                consumer.pause(*consumer.assignment())
        finally:
            consumer.resume(*consumer.paused())
        if failure:  # e.g. the dead-letter topic unreachable: as if _handle had raised on this thread
            raise failure[0]
        return outcome[0] if outcome else "stopped"

    def run_forever(self, max_backoff_s: float = 30.0) -> None:
        """run(), restarted with capped jittered backoff when it fails (broker unreachable, group errors), until
        stop(). A consumer that died silently would leave the service SERVING while it does nothing."""
        failures = 0
        while not self.stop_event.is_set():
            try:
                self.run()
                return
            except Exception as err:  # noqa: BLE001 - every failure here is retried
                failures += 1
                delay = min(max_backoff_s, self.config.backoff_s * 2**failures) * (0.5 + random.random())
                event(log, "consumer_restart", group=self.config.group, error=repr(err), failures=failures, delay_s=round(delay, 2))
                self.stop_event.wait(delay)

    def _handle(self, record: ConsumerRecord) -> str:
        """Runs the handler with retries. "done" when the record is handled or dead-lettered (commit it),
        "outage" when infrastructure is down (seek back, poll, try again later), "stopped" when shutdown interrupted
        it (left uncommitted so the next member retries it)."""
        attempt = 0
        while True:
            attempt += 1
            try:
                self.handler(record)
                self.handled += 1
                self.outages = 0
                CONSUMED.labels(self.config.group, record.topic, "handled").inc()
                return "done"
            except (events.PoisonMessage, PermanentError) as err:
                self._dead_letter(record, f"{type(err).__name__}: {err}", attempt)
                return "done"
            except Exception as err:  # noqa: BLE001 - any handler failure is retried, then dead-lettered
                if self.stop_event.is_set():
                    return "stopped"
                if is_transient(err):
                    self.outages += 1
                    HANDLER_RETRIES.labels(self.config.group, record.topic, "outage").inc()
                    delay = min(self.config.max_backoff_s, self.config.backoff_s * 2 ** min(self.outages, 16)) * (0.5 + random.random())
                    event(log, "handler_outage", topic=record.topic, offset=record.offset, error=repr(err), retry_in_s=round(delay, 2))
                    self.stop_event.wait(delay)
                    return "stopped" if self.stop_event.is_set() else "outage"
                if attempt >= self.config.max_attempts:
                    self._dead_letter(record, f"{type(err).__name__}: {err}", attempt)
                    return "done"
                HANDLER_RETRIES.labels(self.config.group, record.topic, "error").inc()
                delay = self.config.backoff_s * (2 ** (attempt - 1)) * (0.5 + random.random())
                event(log, "handler_retry", topic=record.topic, offset=record.offset, attempt=attempt, error=str(err), delay_s=round(delay, 3))
                time.sleep(delay)

    def _dead_letter(self, record: ConsumerRecord, error: str, attempts: int) -> None:
        now = Timestamp()
        now.GetCurrentTime()
        letter = events_pb2.DeadLetter(
            schema_version=events.SCHEMA_VERSION,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key or b"",
            value=record.value or b"",
            consumer_group=self.config.group,
            error=error,
            attempts=attempts,
            failed_at=now,
        )
        value, headers = events.encode(letter)
        self.bus.publish_raw(self.bus.topic(events.dead_letter_topic(self.config.group)), record.key, value, headers)
        self.dead_lettered += 1
        CONSUMED.labels(self.config.group, record.topic, "dead_lettered").inc()
        event(log, "dead_lettered", topic=record.topic, partition=record.partition, offset=record.offset, error=error, attempts=attempts)

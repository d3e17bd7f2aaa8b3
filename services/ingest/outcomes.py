"""The processor's verdicts on sessions, as ingest records them (consumer of segments.ready and sessions.rejected).

segments.ready credits the player and marks the session ACCEPTED; sessions.rejected marks it REJECTED with the
processor's typed rejections. Both are idempotent by segment and session id: a redelivered event changes nothing."""

from __future__ import annotations

import time
from dataclasses import dataclass

from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import Counter

from scalediffusion.platform import events, keys
from scalediffusion.platform.logs import event, get_logger
from scalediffusion.platform.manifests import ManifestStore
from scalediffusion.v1 import events_pb2, ingest_pb2
from services.ingest.records import IngestRecords, RewardEntry

log = get_logger("ingest.outcomes")

REWARDS = Counter("sd_ingest_reward_points_total", "Reward points credited")
TERMINAL = (ingest_pb2.SESSION_STATE_ACCEPTED, ingest_pb2.SESSION_STATE_REJECTED, ingest_pb2.SESSION_STATE_EXPIRED)


@dataclass(frozen=True)
class OutcomeSettings:
    points_per_segment: int = 10  # reward points per accepted segment (SD_INGEST_POINTS_PER_SEGMENT)


class OutcomeConsumer:
    """handle() takes one consumed record; the ConsumerLoop commits it only after handle() returned."""

    def __init__(self, manifests: ManifestStore, records: IngestRecords, topic_of, settings: OutcomeSettings) -> None:
        self.manifests, self.records, self.settings = manifests, records, settings
        self._ready_topic = topic_of(events.SEGMENTS_READY)
        self._rejected_topic = topic_of(events.SESSIONS_REJECTED)

    def handle(self, record: ConsumerRecord) -> None:
        if record.topic == self._ready_topic:
            self.on_segment_ready(events.decode(record.value, record.headers, events_pb2.SegmentReady), time.time())
        elif record.topic == self._rejected_topic:
            self.on_session_rejected(events.decode(record.value, record.headers, events_pb2.SessionRejected))

    def on_segment_ready(self, ready: events_pb2.SegmentReady, now: float) -> None:
        segment = ready.segment
        session_id = keys.check_id("session id", segment.session_id)
        manifest = self.manifests.load(session_id)
        player_id = manifest.session.player_id if manifest else keys.check_id("player id", ready.player_id)
        entry = RewardEntry(
            player_id=player_id, segment_id=keys.check_id("segment id", segment.segment_id), session_id=session_id,
            points=self.settings.points_per_segment, credited_at_ms=int(now * 1000),
        )
        if self.records.credit(entry):
            REWARDS.inc(entry.points)
            event(log, "reward_credited", player_id=player_id, segment_id=entry.segment_id, points=entry.points)
        if manifest is not None and segment.segment_id not in manifest.session.segment_ids:
            manifest.session.segment_ids.append(segment.segment_id)
            manifest.session.segment_count = len(manifest.session.segment_ids)
            manifest.session.state = ingest_pb2.SESSION_STATE_ACCEPTED
            self.manifests.save(manifest)
            self.records.remove_pending(session_id)

    def on_session_rejected(self, rejected: events_pb2.SessionRejected) -> None:
        session_id = keys.check_id("session id", rejected.session_id)
        manifest = self.manifests.load(session_id)
        if manifest is None or manifest.session.state in TERMINAL:
            return
        manifest.session.state = ingest_pb2.SESSION_STATE_REJECTED
        del manifest.session.rejections[:]
        manifest.session.rejections.extend(rejected.rejections)
        self.manifests.save(manifest)
        self.records.remove_pending(session_id)

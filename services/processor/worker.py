"""Handles one sessions.uploaded event: download, decode, align, splice, write, publish.

Writes are ordered so readers never see half a segment: frames first, then measurements.json, then the dataset
index record; the event that announces the segment comes after all of them. Keys and bytes depend only on the
inputs, so a redelivered event rewrites identical objects.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

import cv2
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import Counter, Histogram

from scalediffusion import events, keys
from scalediffusion.kafka import EventBus
from scalediffusion.logs import event, get_logger
from scalediffusion.manifests import ManifestStore
from scalediffusion.s3 import ObjectStore
from scalediffusion.v1 import events_pb2, processor_pb2
from services.processor import pipeline

log = get_logger("processor.worker")

DUPLICATES = Counter("sd_processor_duplicate_events_total", "sessions.uploaded events skipped because the session was already processed")
SESSIONS = Counter("sd_processor_sessions_total", "Sessions processed, by outcome (accepted, rejected)", ["outcome"])
SEGMENTS = Counter("sd_processor_segments_total", "Segments written to the clean bucket")
FRAMES = Counter("sd_processor_frames_decoded_total", "Video frames decoded")
SESSION_SECONDS = Histogram("sd_processor_session_seconds", "Wall time to process one session", buckets=(0.5, 1, 2, 5, 10, 20, 40, 80, 160))


@dataclass(frozen=True)
class WorkerSettings:
    dataset: str = "default"  # dataset new segments are added to
    segment_s: float = 5.0  # segment length
    min_segment_s: float = 1.0  # a shorter tail is dropped


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


class SessionWorker:
    def __init__(self, store: ObjectStore, bus: EventBus, settings: WorkerSettings, clean_bucket: str) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self.clean_bucket = clean_bucket

    def handle_record(self, record: ConsumerRecord) -> None:
        """ConsumerLoop handler: raises events.PoisonMessage for records that are not a SessionUploaded."""
        message = events.decode(record.value, record.headers, events_pb2.SessionUploaded)
        try:
            keys.check_id("session id", message.session_id)
        except keys.InvalidId as err:
            raise events.PoisonMessage(str(err)) from None
        done_key = keys.report_prefix(message.session_id) + "done.json"
        if not message.reprocess and self.store.stat(self.clean_bucket, done_key) is not None:
            # Consumers are idempotent by session id: a redelivered or re-published event is a no-op.
            DUPLICATES.inc()
            event(log, "session_already_processed", session_id=message.session_id, attempt=message.attempt)
            return
        ManifestStore(self.store, message.bucket).mark_processing(message.session_id)
        self.process(message)
        # Written after the outcome events: a crash before it means the next delivery redoes the session
        # (same keys, same bytes) and publishes again; after it, deliveries are skipped.
        self.store.put_json(self.clean_bucket, done_key, {"session_id": message.session_id, "attempt": message.attempt})

    def process(self, message: events_pb2.SessionUploaded) -> processor_pb2.QualityReport:
        started = time.perf_counter()
        report = processor_pb2.QualityReport(session_id=message.session_id)
        try:
            segments, decoded, duration_s = self._build_segments(message)
            report.decoded_frames = decoded
            report.video_duration_s = duration_s
            report.segments.extend(segments)
        except pipeline.InputRejected as err:
            report.rejections.append(processor_pb2.Rejection(reason=err.reason, metric=err.metric, detail=err.detail))
        report.processed_at.CopyFrom(_now())
        report.report_key = keys.report_prefix(message.session_id) + "quality.json"
        self.store.put_json(self.clean_bucket, report.report_key, json_format.MessageToDict(report))
        if report.segments:
            for seg in report.segments:
                ready = events_pb2.SegmentReady(segment=seg, player_id=message.player_id, ready_at=_now())
                self.bus.publish(events.SEGMENTS_READY, message.session_id, ready)
        else:
            rejected = events_pb2.SessionRejected(
                session_id=message.session_id, player_id=message.player_id, rejections=report.rejections, rejected_at=_now()
            )
            self.bus.publish(events.SESSIONS_REJECTED, message.session_id, rejected)
        SESSIONS.labels("accepted" if report.segments else "rejected").inc()
        SEGMENTS.inc(len(report.segments))
        FRAMES.inc(report.decoded_frames)
        SESSION_SECONDS.observe(time.perf_counter() - started)
        event(
            log,
            "session_processed",
            session_id=message.session_id,
            segments=len(report.segments),
            frames=report.decoded_frames,
            rejections=[processor_pb2.RejectionReason.Name(r.reason) for r in report.rejections],
            seconds=round(time.perf_counter() - started, 3),
        )
        return report

    def _build_segments(self, message: events_pb2.SessionUploaded) -> tuple[list[processor_pb2.SegmentInfo], int, float]:
        if self.store.stat(message.bucket, message.video_key) is None or self.store.stat(message.bucket, message.telemetry_key) is None:
            raise pipeline.InputRejected(processor_pb2.REJECTION_REASON_OBJECTS_MISSING, "objects", "raw objects are gone")
        try:
            telemetry = pipeline.parse_telemetry(self.store.get_bytes(message.bucket, message.telemetry_key))
        except ValueError as err:
            raise pipeline.InputRejected(processor_pb2.REJECTION_REASON_TELEMETRY_INVALID, "telemetry", str(err)) from None
        with tempfile.TemporaryDirectory(prefix="sd-proc-") as tmp:
            path = os.path.join(tmp, "video.webm")
            self.store.download(message.bucket, message.video_key, path)
            jpegs, raw_times = self._decode(path)
        if not jpegs:
            raise pipeline.InputRejected(processor_pb2.REJECTION_REASON_VIDEO_UNDECODABLE, "decoded_frames", "no frame could be decoded")
        times = pipeline.normalize_timestamps(raw_times, telemetry.video_fps)
        tick_times = [t.t_ms for t in telemetry.ticks]
        measurements = [
            pipeline.frame_measurement(i, t, pipeline.tick_at(telemetry.ticks, tick_times, t)) for i, t in enumerate(times)
        ]
        ranges = pipeline.split_fixed(times, self.settings.segment_s, self.settings.min_segment_s)
        if not ranges:
            raise pipeline.InputRejected(
                processor_pb2.REJECTION_REASON_TOO_SHORT, "duration_s", f"{(times[-1] - times[0]) / 1000:.2f} s of video is shorter than one segment"
            )
        segments = [self._write_segment(message, index, jpegs[a:b], measurements[a:b]) for index, (a, b) in enumerate(ranges)]
        return segments, len(jpegs), (times[-1] - times[0]) / 1000.0

    @staticmethod
    def _decode(path: str) -> tuple[list[bytes], list[float]]:
        """Every frame, resized and JPEG-encoded as it is read (a 60 s 720p session never sits in memory raw).
        Frames are counted by reading: webm from MediaRecorder has no usable FRAME_COUNT."""
        capture = cv2.VideoCapture(path)
        jpegs: list[bytes] = []
        times: list[float] = []
        try:
            while True:
                ok, frame = capture.read()
                if not ok or frame is None:
                    break
                times.append(float(capture.get(cv2.CAP_PROP_POS_MSEC)))
                jpegs.append(pipeline.resize_and_encode(frame))
        finally:
            capture.release()
        return jpegs, times

    def _write_segment(
        self, message: events_pb2.SessionUploaded, index: int, jpegs: list[bytes], measurements: list[dict]
    ) -> processor_pb2.SegmentInfo:
        dataset = self.settings.dataset
        seg_id = keys.segment_id(message.session_id, index)
        rebased = [dict(m, frame=i) for i, m in enumerate(measurements)]
        for i, jpeg in enumerate(jpegs):
            self.store.put_bytes(self.clean_bucket, keys.frame_key(dataset, seg_id, i), jpeg, "image/jpeg")
        self.store.put_json(self.clean_bucket, keys.measurements_key(dataset, seg_id), rebased)
        summary = pipeline.summarize(rebased)
        info = processor_pb2.SegmentInfo(
            segment_id=seg_id,
            session_id=message.session_id,
            dataset=dataset,
            bucket=self.clean_bucket,
            prefix=keys.segment_prefix(dataset, seg_id),
            frame_count=summary.frame_count,
            fps=round(summary.frame_count / summary.duration_s, 3) if summary.duration_s > 0 else 0.0,
            duration_s=summary.duration_s,
            distance_m=summary.distance_m,
            command_counts=summary.command_counts,
            width=pipeline.FRAME_SIZE,
            height=pipeline.FRAME_SIZE,
        )
        index_doc = {"segment": json_format.MessageToDict(info), "speed_hist": summary.speed_hist, "player_id": message.player_id}
        self.store.put_json(self.clean_bucket, keys.dataset_index_key(dataset, seg_id), index_doc)
        return info

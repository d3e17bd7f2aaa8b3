"""Handles one sessions.uploaded event: decode → ALIGN → SPLICE → CLEAN → write → report → publish.

Writes are ordered so readers never see half a segment: frames (and label frames) first, then measurements.json,
then the dataset index record; the events that announce segments come after all of them, and the session's
done marker after the events. Keys and bytes depend only on the inputs and settings, so a redelivered event (or a
restart after a crash at any point) rewrites identical objects.
"""

from __future__ import annotations

import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from kafka.consumer.fetcher import ConsumerRecord
from prometheus_client import Counter, Histogram

from scalediffusion.city.catalog import get_world
from scalediffusion.platform import events, keys
from scalediffusion.platform.kafka import EventBus
from scalediffusion.platform.logs import event, get_logger
from scalediffusion.platform.manifests import ManifestStore
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.sim.camera import recorded_pose
from scalediffusion.sim.labels import LabelRenderer, actor_boxes, encode_depth_carla
from scalediffusion.sim.render import CityRenderer, create_context
from scalediffusion.v1 import events_pb2, processor_pb2
from scalediffusion.webm import WebmError, WebmInfo, probe_webm
from services.processor import clean, lights, pipeline, replay, report, scene, targets, videocheck
from services.processor.align import FrameAlignment, FrameRecordsMismatch, TickTimeline
from services.processor.plan import (
    REASONS,
    Plan,
    plan_from_container,
    plan_holds,
    plan_session,
    rejection,
    session_rejections,
)
from services.processor.splice import SpliceSettings

if TYPE_CHECKING:
    import moderngl

log = get_logger("processor.worker")

DUPLICATES = Counter("sd_processor_duplicate_events_total", "sessions.uploaded events skipped because the session was already processed")
SESSIONS = Counter("sd_processor_sessions_total", "Sessions processed, by outcome (accepted, rejected)", ["outcome"])
SEGMENTS = Counter("sd_processor_segments_total", "Candidate segments, by outcome (accepted, rejected)", ["outcome"])
VIDEO_UNCHECKED = Counter("sd_processor_video_unchecked_total",
                          "Sessions or segments on a known world whose video could not be checked (OpenGL failed here)")
VIDEO_AGREEMENT = Histogram("sd_processor_video_agreement", "Per candidate segment: median agreement of its raw frames with "
                            "the city re-rendered from their camera poses", buckets=(0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 1.0))
FRAMES = Counter("sd_processor_frames_decoded_total", "Video frames decoded")
STAGE_SECONDS = Histogram(
    "sd_processor_stage_seconds", "Wall time per stage per session", ["stage"], buckets=(0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 20, 40, 80)
)

T = TypeVar("T")
R = TypeVar("R", CityRenderer, LabelRenderer)


@dataclass(frozen=True)
class WorkerSettings:
    dataset: str = "default"  # dataset new segments are added to
    splice: SpliceSettings = field(default_factory=SpliceSettings)
    clean: clean.CleanThresholds = field(default_factory=clean.CleanThresholds)
    targets: targets.TargetSettings = field(default_factory=targets.TargetSettings)
    lights: lights.LightSettings = field(default_factory=lights.LightSettings)
    replay: replay.ReplaySettings = field(default_factory=replay.ReplaySettings)
    video: videocheck.VideoCheckSettings = field(default_factory=videocheck.VideoCheckSettings)
    replay_labels: bool = True  # semantic, depth and boxes for every accepted frame on a known world
    # A session on a world this deployment does not know can be neither replayed nor checked against its video:
    # "reject" it (a cluster's players all drive known worlds), or "accept" it unchecked (the local stack, whose
    # tests and demos upload synthetic sessions on a world of their own).
    unknown_worlds: str = "reject"
    upload_threads: int = 8  # parallel S3 writes (small JPEGs are latency-bound)
    decode_queue: int = 16  # decoded frames buffered between the decoder thread and the frame stage
    plot: bool = True  # write the quality PNG beside the JSON report


@dataclass
class DecodedFrames:
    """Per source frame: the decoder's timestamp, the dataset-size JPEG (pipeline.frame_size), its CLEAN metrics and its decoded size."""

    times_ms: list[float] = field(default_factory=list)
    jpegs: list[bytes] = field(default_factory=list)
    metrics: list[clean.FrameMetrics] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) before the resize


@dataclass
class StageTimes:
    seconds: dict[str, float] = field(default_factory=dict)

    def add(self, stage: str, started: float) -> float:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - started
        return now


def decode_frames(path: str, per_frame: Callable[[float, np.ndarray], T], queue_size: int = 16) -> tuple[list[float], list[T], float]:
    """Decodes every frame on a reader thread while per_frame runs on this one (OpenCV releases the GIL, so the
    two overlap on two cores). Frames are counted by reading: MediaRecorder webm has no usable FRAME_COUNT.
    Returns decoder timestamps, per_frame results, and the reader's busy seconds (decode only)."""
    frames: queue.Queue = queue.Queue(maxsize=queue_size)
    decode_seconds = [0.0]
    stop = threading.Event()

    def reader() -> None:
        capture = cv2.VideoCapture(path)
        try:
            while not stop.is_set():
                t0 = time.perf_counter()
                ok, frame = capture.read()
                decode_seconds[0] += time.perf_counter() - t0
                if not ok or frame is None:
                    break
                frames.put((float(capture.get(cv2.CAP_PROP_POS_MSEC)), frame))
        finally:
            capture.release()
            frames.put(None)

    thread = threading.Thread(target=reader, name="decoder", daemon=True)
    thread.start()
    times: list[float] = []
    results: list[T] = []
    try:
        while (item := frames.get()) is not None:
            times.append(item[0])
            results.append(per_frame(item[0], item[1]))
    finally:
        stop.set()
        while thread.is_alive():  # drain so the reader is never blocked on a full queue
            try:
                frames.get(timeout=0.05)
            except queue.Empty:
                pass
    return times, results, decode_seconds[0]


def _now() -> Timestamp:
    ts = Timestamp()
    ts.GetCurrentTime()
    return ts


def label_frames_for(label_frames: dict[str, tuple[list[float], list[bytes]]], frames: list[int], decoded: DecodedFrames) -> dict[str, list[bytes]]:
    """A segment's frames of the label streams a client uploaded: per stream, the label frame nearest each frame."""
    return {stream: [pngs[pipeline.nearest_index(times, decoded.times_ms[f])] for f in frames]
            for stream, (times, pngs) in label_frames.items()}


REPLAY_STREAMS = {"semantic", "depth"}
REPLAY_LABELS_DOC = {
    "semantic": "CARLA 0.9.14+ semantic tags, one uint8 channel (scalediffusion/sim/labels.py CARLA_PALETTE colours them)",
    "depth": "CARLA's depth encoding in RGB: (R + 256 G + 65536 B) / (2^24 - 1) * 1000 m, planar depth; sky 1000 m",
    "boxes": "measurements.json 'boxes': visible vehicles and pedestrians, box3d (city frame) and box2d (pixels)",
}


class SessionRenders:
    """One session's re-renders on the worker's OpenGL context: the video check's pictures and the labels by
    replay. Each frame is drawn from the camera of the tick it shows, with the actors its client drew
    (services/processor/scene.py). Results are kept per candidate segment: a segment judged while decoding is not
    rendered again when the plan held."""

    def __init__(self, worker: SessionWorker, world, timeline: TickTimeline, actors: scene.SceneActors) -> None:
        self.worker, self.world, self.timeline, self.actors = worker, world, timeline, actors
        self._checked: dict[tuple, videocheck.VideoCheckResult] = {}
        self._labels: dict[tuple, tuple[dict[str, list[bytes]], list[list[dict]]]] = {}

    def _draw(self, kind, tick, width: int, height: int):
        renderer = self.worker.renderer(kind, self.world, width, height)
        gl = self.worker._gl
        assert gl is not None
        with gl:  # current on this thread, whichever thread handles the session
            return renderer, renderer.render(recorded_pose(tick.camera), self.actors.at(tick.t_ms), self.actors.world_s(tick.t_ms),
                                             ego=tick.vehicle)

    def video_check(self, frames: list[int], aligned: list[FrameAlignment], decoded: DecodedFrames) -> videocheck.VideoCheckResult:
        key = _segment_key(frames, aligned)
        if key not in self._checked:
            s, timeline = self.worker.settings.video, self.timeline

            def video(f: int) -> np.ndarray:
                bgr = cv2.imdecode(np.frombuffer(decoded.jpegs[f], np.uint8), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise RuntimeError(f"frame {f}: the processor's own JPEG did not decode")
                return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

            def rendered(f: int) -> Iterator[np.ndarray]:
                # At the video's own size, then through the dataset's downscale: the pixels the frame went through.
                # A frame placed by the recorder's clock is known to a frame or so: the ticks around it are tried
                # too, the nearest first (the check stops at the first that agrees).
                a, (width, height) = aligned[f], decoded.sizes[f]
                window = s.exact_search_ms if a.exact else s.search_ms
                ticks = timeline.indices_between(a.render_ms - window, a.render_ms + window) or [timeline.index_at(a.render_ms)]
                for i in sorted(ticks, key=lambda i: abs(timeline.ticks[i].t_ms - a.render_ms)):
                    yield pipeline.downscale(self._draw(CityRenderer, timeline.ticks[i], width, height)[1])

            self._checked[key] = videocheck.check_segment(frames, aligned, video, lambda f, w, h: rendered(f), s)
        return self._checked[key]

    def labels(self, frames: list[int], aligned: list[FrameAlignment], decoded: DecodedFrames, measurements: list[dict]) -> dict[str, list[bytes]]:
        """Semantic and depth PNGs of the dataset frames' size, one per frame, from the tick each frame shows; adds
        each frame's "boxes" to its measurement."""
        key = _segment_key(frames, aligned)
        if key not in self._labels:
            pngs: dict[str, list[bytes]] = {"semantic": [], "depth": []}
            boxes = []
            for f in frames:
                width, height = pipeline.frame_size(*decoded.sizes[f])
                tick = self.timeline.ticks[self.timeline.index_at(aligned[f].render_ms)]
                renderer, out = self._draw(LabelRenderer, tick, width, height)
                pngs["semantic"].append(_png(out.semantic))
                pngs["depth"].append(_png(cv2.cvtColor(encode_depth_carla(out.depth_m), cv2.COLOR_RGB2BGR)))
                boxes.append(actor_boxes(renderer, recorded_pose(tick.camera), self.actors.at(tick.t_ms), out.instance))
            self._labels[key] = (pngs, boxes)
        pngs, boxes = self._labels[key]
        for m, b in zip(measurements, boxes):
            m["boxes"] = b
        return pngs


def _segment_key(frames: list[int], aligned: list[FrameAlignment]) -> tuple:
    """A candidate segment by content (its frames and their render times): the same under a plan that held, another
    under a new plan, whatever lists the plans made."""
    return tuple((f, aligned[f].render_ms) for f in frames)


def _png(image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


class SessionWorker:
    def __init__(self, store: ObjectStore, bus: EventBus, settings: WorkerSettings, clean_bucket: str) -> None:
        self.store = store
        self.bus = bus
        self.settings = settings
        self.clean_bucket = clean_bucket
        self.uploads = ThreadPoolExecutor(max_workers=settings.upload_threads, thread_name_prefix="s3-put")
        # Whole segments (and the plot) are written here, each fanning its objects out to `uploads`.
        self.segment_writer = ThreadPoolExecutor(max_workers=2, thread_name_prefix="segment-writer")
        self.last_stage_times: dict[str, float] = {}
        # The video check's renderers, made on first use, all on one OpenGL context (moderngl draws into whichever
        # context is current: several contexts on one thread would draw into each other's).
        self._gl: moderngl.Context | None = None
        self._renderers: dict[tuple[str, str, int, int], CityRenderer | LabelRenderer] = {}

    def handle_record(self, record: ConsumerRecord) -> None:
        """ConsumerLoop handler: raises events.PoisonMessage for records that are not a usable SessionUploaded."""
        message = events.decode(record.value, record.headers, events_pb2.SessionUploaded)
        try:
            keys.check_id("session id", message.session_id)
        except keys.InvalidId as err:
            raise events.PoisonMessage(str(err)) from None
        done_key = keys.report_prefix(self.settings.dataset, message.session_id) + "done.json"
        if not message.reprocess and self.store.stat(self.clean_bucket, done_key) is not None:
            # Consumers are idempotent by session id: a redelivered or re-published event is a no-op.
            DUPLICATES.inc()
            event(log, "session_already_processed", session_id=message.session_id, attempt=message.attempt)
            return
        ManifestStore(self.store, message.bucket).mark_processing(message.session_id)
        self.process(message)
        # After the outcome events: a crash before this line means the next delivery redoes the session (same
        # keys, same bytes) and publishes again; after it, deliveries are skipped.
        self.store.put_json(self.clean_bucket, done_key, {"session_id": message.session_id, "attempt": message.attempt})

    # -- one session -----------------------------------------------------------------------------------------

    def process(self, message: events_pb2.SessionUploaded) -> processor_pb2.QualityReport:
        started = time.perf_counter()
        dataset = self.settings.dataset
        prefix = keys.report_prefix(dataset, message.session_id)
        result = processor_pb2.QualityReport(session_id=message.session_id, dataset=dataset, report_key=prefix + "quality.json")
        stages = StageTimes()
        plot_png = b""
        try:
            plot_png = self._build(message, result, stages)
        except pipeline.InputRejected as err:
            result.rejections.append(processor_pb2.Rejection(reason=err.reason, metric=err.metric, detail=err.detail,
                                                             value=err.value, threshold=err.threshold))
        result.processed_at.CopyFrom(_now())
        t = time.perf_counter()
        if plot_png:
            result.plot_key = prefix + "quality.png"
            self.store.put_bytes(self.clean_bucket, result.plot_key, plot_png, "image/png")
        self.store.put_json(self.clean_bucket, result.report_key, json_format.MessageToDict(result))
        if result.segments:
            for seg in result.segments:
                ready = events_pb2.SegmentReady(segment=seg, player_id=message.player_id, ready_at=_now())
                self.bus.publish(events.SEGMENTS_READY, message.session_id, ready)
        else:
            rejected = events_pb2.SessionRejected(
                session_id=message.session_id, player_id=message.player_id, rejections=result.rejections, rejected_at=_now()
            )
            self.bus.publish(events.SESSIONS_REJECTED, message.session_id, rejected)
        stages.add("report_and_events", t)
        for stage, seconds in stages.seconds.items():
            STAGE_SECONDS.labels(stage).observe(seconds)
        self.last_stage_times = dict(stages.seconds)
        SESSIONS.labels("accepted" if result.segments else "rejected").inc()
        event(
            log,
            "session_processed",
            session_id=message.session_id,
            segments=len(result.segments),
            candidates=result.candidate_segments,
            frames=result.decoded_frames,
            rejections=sorted({processor_pb2.RejectionReason.Name(r.reason) for r in result.rejections}),
            stages={k: round(v, 3) for k, v in stages.seconds.items()},
            seconds=round(time.perf_counter() - started, 3),
        )
        return result

    def _build(self, message: events_pb2.SessionUploaded, result: processor_pb2.QualityReport, stages: StageTimes) -> bytes:
        t = time.perf_counter()
        if self.store.stat(message.bucket, message.video_key) is None or self.store.stat(message.bucket, message.telemetry_key) is None:
            raise pipeline.InputRejected(REASONS["OBJECTS_MISSING"], "objects", "the raw video or telemetry is gone")
        try:
            telemetry = pipeline.parse_telemetry(self.store.get_bytes(message.bucket, message.telemetry_key))
        except ValueError as err:
            raise pipeline.InputRejected(REASONS["TELEMETRY_INVALID"], "telemetry", str(err)) from None
        try:
            scene.check_drawn_actors(telemetry)
        except ValueError as err:
            raise pipeline.InputRejected(REASONS["TELEMETRY_INVALID"], "drawn_actors", str(err)) from None
        timeline = TickTimeline(telemetry)
        labeler = lights.LightLabeler.for_session(telemetry, self.settings.lights)
        world = get_world(telemetry.world_id)
        if world is None and self.settings.unknown_worlds != "accept":
            raise pipeline.InputRejected(REASONS["TELEMETRY_INVALID"], "world_id",
                                         f"world {telemetry.world_id!r} is not one this deployment knows: the drive can be "
                                         f"neither replayed nor checked against its video")
        if world is not None:  # an unknown world (accepted above) cannot be replayed
            replayed = replay.replay_check(telemetry, world, self.settings.replay)
            event(log, "replay_checked", session_id=message.session_id, checked=replayed.checked,
                  divergent=replayed.divergent, max_position_error_m=replayed.max_position_error_m, resets=replayed.resets)
            mismatch = replayed.rejection(self.settings.replay)
            if mismatch is not None:
                raise pipeline.InputRejected(mismatch.reason, mismatch.metric, mismatch.detail, mismatch.value, mismatch.threshold)
        t = stages.add("telemetry_and_replay", t)
        renders = self._renders(message.session_id, telemetry, timeline, world)
        with tempfile.TemporaryDirectory(prefix="sd-proc-") as tmp:
            path = os.path.join(tmp, "video.webm")
            self.store.download(message.bucket, message.video_key, path)
            label_frames = self._decode_labels(message, tmp)
            t = stages.add("download", t)
            with open(path, "rb") as fh:
                probe = self._probe(fh.read())
            plan = plan_from_container(probe, telemetry, timeline, self.settings.splice)
            t = stages.add("probe_and_plan", t)
            decoded, decode_s, early = self._decode(path, plan, timeline, message, label_frames, labeler, renders)
            stages.seconds["decode"] = decode_s
            t = stages.add("frames", t)
            stages.seconds["frames"] -= decode_s  # resize/metrics/JPEG/early writes not hidden behind decoding
        FRAMES.inc(len(decoded.jpegs))
        result.decoded_frames = len(decoded.jpegs)
        if not decoded.jpegs:
            raise pipeline.InputRejected(REASONS["VIDEO_UNDECODABLE"], "decoded_frames", "no frame could be decoded")
        stale: dict[str, Future] = {}  # segments written early under a plan that did not hold
        if not plan_holds(plan, pipeline.normalize_timestamps(decoded.times_ms, telemetry.video_fps)):
            # The container's timestamps were not the decoder's: plan again from the decoder's.
            try:
                plan = plan_session(decoded.times_ms, telemetry, timeline, self.settings.splice)
            except FrameRecordsMismatch as err:
                raise pipeline.InputRejected(REASONS["TELEMETRY_MISMATCH"], "frame_records", str(err)) from None
            for future in early.values():  # let early writes finish before the same keys are written again
                future.result()
            stale, early = early, {}
        assert plan is not None
        video_ms, aligned, candidates = plan.video_ms, plan.aligned, plan.candidates
        result.video_duration_s = (video_ms[-1] - video_ms[0]) / 1000.0
        t = stages.add("align_splice", t)
        result.candidate_segments = len(candidates)
        result.breaks.update(plan.break_counts())
        result.rejections.extend(session_rejections(plan, probe is not None and probe.truncated, result.video_duration_s,
                                                    self.settings.splice.min_segment_s))
        spans: list[tuple[float, float, bool, str]] = []
        writes = []
        final_ids = set()
        for candidate in candidates:
            seg_id = keys.segment_id(message.session_id, candidate.index)
            measurements, failures, replay_labels = self._evaluate(candidate.frames, aligned, timeline, decoded, labeler, renders)
            start_s, end_s = video_ms[candidate.frames[0]] / 1000.0, video_ms[candidate.frames[-1]] / 1000.0
            if failures:
                SEGMENTS.labels("rejected").inc()
                for f in failures:
                    result.rejections.append(
                        rejection(f.reason, f.metric, f.value, f.threshold, f"{seg_id}: {f.detail}", candidate.frames[f.start_frame], candidate.frames[max(f.end_frame - 1, 0)] + 1)
                    )
                spans.append((start_s, end_s, False, ",".join(sorted({f.reason for f in failures}))))
                continue
            SEGMENTS.labels("accepted").inc()
            final_ids.add(seg_id)
            spans.append((start_s, end_s, True, seg_id.rsplit("_", 1)[1]))
            written = early.get(seg_id)
            if written is None:  # not written while decoding (no usable plan): write it now
                camera = self._camera(candidate.frames, aligned, timeline, decoded)
                written = self.segment_writer.submit(self._write_segment, message, seg_id, candidate.frames, measurements, camera, decoded,
                                                     {**label_frames_for(label_frames, candidate.frames, decoded), **replay_labels})
            writes.append(written)
        for seg_id in stale:
            if seg_id not in final_ids:  # not part of the final result: remove it
                self.store.delete_prefix(self.clean_bucket, keys.segment_prefix(self.settings.dataset, seg_id))
                self.store.client.remove_object(self.clean_bucket, keys.dataset_index_key(self.settings.dataset, seg_id))
        png_future = self.segment_writer.submit(self._plot, message.session_id, video_ms, decoded.metrics, spans) if self.settings.plot else None
        result.segments.extend(w.result() for w in writes)
        t = stages.add("write", t)
        png = png_future.result() if png_future is not None else b""
        stages.add("plot", t)
        return png

    def _plot(self, session_id: str, video_ms: list[float], metrics: list[clean.FrameMetrics], spans: list) -> bytes:
        return report.plot_quality(session_id, [v / 1000.0 for v in video_ms], metrics, self.settings.clean, spans)

    def _evaluate(
        self, frames: list[int], aligned: list[FrameAlignment], timeline: TickTimeline, decoded: DecodedFrames,
        labeler: lights.LightLabeler | None = None, renders: SessionRenders | None = None,
    ) -> tuple[list[dict], list[clean.Failure], dict[str, list[bytes]]]:
        """A candidate segment's measurements, the reasons it is rejected, and (accepted, on a known world) its
        labels by replay: stream -> one PNG per frame, with the actors' boxes added to the measurements."""
        measurements = targets.measurements(frames, aligned, timeline, self.settings.targets, labeler)
        failures = clean.evaluate_segment([decoded.metrics[f] for f in frames], measurements, self.settings.clean)
        if renders is None:
            return measurements, failures, {}
        try:
            if self.settings.video.enabled:
                s = self.settings.video
                result = renders.video_check(frames, aligned, decoded)
                if result.checked:
                    VIDEO_AGREEMENT.observe(result.agreement)
                if result.failed(s):
                    failures.append(clean.Failure(reason="VIDEO_MISMATCH", metric="video_agreement", value=result.agreement,
                                                  threshold=s.min_agreement, start_frame=0, end_frame=len(frames), detail=result.detail(s)))
            if failures or not self.settings.replay_labels:
                return measurements, failures, {}
            return measurements, failures, renders.labels(frames, aligned, decoded, measurements)
        except Exception as err:  # noqa: BLE001 - an OpenGL failure must not cost the player the session
            VIDEO_UNCHECKED.inc()
            event(log, "rerender_failed", level=logging.ERROR, frames=len(frames), error=repr(err))
            return measurements, failures, {}

    def _renders(self, session_id: str, telemetry, timeline: TickTimeline, world) -> SessionRenders | None:
        """The session's re-renders (the video check, labels by replay), or None where there are none: an unknown
        world, both switched off, or no OpenGL here (counted and logged, never silent)."""
        if world is None or not (self.settings.video.enabled or self.settings.replay_labels):
            return None
        try:
            if self._gl is None:
                self._gl = create_context()  # fails here, once per session, rather than inside a segment
        except Exception as err:  # noqa: BLE001 - any OpenGL/EGL failure means the same: no renderer on this host
            VIDEO_UNCHECKED.inc()
            event(log, "video_check_unavailable", level=logging.ERROR, session_id=session_id, error=str(err))
            return None
        return SessionRenders(self, world, timeline, scene.SceneActors(telemetry, world))

    def renderer(self, kind: type[R], world, width: int, height: int) -> R:
        """The worker's renderer of `kind` (CityRenderer, LabelRenderer) for a world and size, made on first use on
        the worker's one OpenGL context."""
        gl = self._gl
        assert gl is not None
        key = (kind.__name__, world.world_id, width, height)
        if key not in self._renderers:
            with gl:  # current on this thread while the renderer's buffers are made
                self._renderers[key] = kind(world, width, height, ctx=gl)
        return self._renderers[key]  # type: ignore[return-value]  # keyed by kind

    @staticmethod
    def _camera(frames: list[int], aligned: list[FrameAlignment], timeline: TickTimeline, decoded: DecodedFrames) -> dict:
        """The index record's camera: from the ticks the segment's images were rendered at, and how its frames were
        placed on the telemetry clock (the client's frame records, or the recorder clock and RTT model)."""
        ticks = [timeline.ticks[timeline.index_at(aligned[f].render_ms)] for f in frames]
        info = pipeline.camera_info(ticks, [decoded.sizes[f] for f in frames])
        info["aligned_by"] = "frame_records" if all(aligned[f].exact for f in frames) else "clock_and_rtt"
        return info

    def _decode(
        self, path: str, plan: Plan | None, timeline: TickTimeline, message: events_pb2.SessionUploaded, label_frames: dict,
        labeler: lights.LightLabeler | None = None, renders: SessionRenders | None = None,
    ) -> tuple[DecodedFrames, float, dict[str, Future]]:
        """Decodes every frame into a JPEG + CLEAN metrics; with a plan, each candidate segment is judged as soon as
        its last frame is decoded and, if accepted, written in the background while decoding goes on."""
        out = DecodedFrames()
        prev_gray: list[np.ndarray | None] = [None]
        early: dict[str, Future] = {}
        last_of = {c.frames[-1]: c for c in plan.candidates} if plan else {}
        on_plan = [plan is not None]

        def per_frame(t_ms: float, frame: np.ndarray) -> None:
            i = len(out.jpegs)
            small = pipeline.downscale(frame)
            gray = clean.to_gray(small)
            prev = prev_gray[0] if prev_gray[0] is not None and prev_gray[0].shape == gray.shape else None  # resized window
            out.metrics.append(clean.frame_metrics(gray, prev))
            out.jpegs.append(pipeline.encode_jpeg(small))
            out.times_ms.append(t_ms)
            out.sizes.append((frame.shape[1], frame.shape[0]))
            prev_gray[0] = gray
            if not on_plan[0] or plan is None:  # on_plan starts False without a plan
                return
            if i >= len(plan.raw_ms) or abs(plan.raw_ms[i] - t_ms) > 0.5:
                on_plan[0] = False
                return
            candidate = last_of.get(i)
            if candidate is not None:
                measurements, failures, replay_labels = self._evaluate(candidate.frames, plan.aligned, timeline, out, labeler, renders)
                if not failures:
                    seg_id = keys.segment_id(message.session_id, candidate.index)
                    camera = self._camera(candidate.frames, plan.aligned, timeline, out)
                    early[seg_id] = self.segment_writer.submit(
                        self._write_segment, message, seg_id, candidate.frames, measurements, camera, out,
                        {**label_frames_for(label_frames, candidate.frames, out), **replay_labels}
                    )

        _, _, decode_s = decode_frames(path, per_frame, self.settings.decode_queue)
        return out, decode_s, early

    @staticmethod
    def _probe(data: bytes) -> WebmInfo | None:
        try:
            return probe_webm(data)
        except WebmError:
            return None  # not a structure we can judge; the decoder decides whether frames exist

    def _decode_labels(self, message: events_pb2.SessionUploaded, tmp: str) -> dict[str, tuple[list[float], list[bytes]]]:
        """Label streams (semantic classes, depth) as PNGs of the dataset frame's size (nearest neighbour: classes must
        not blend)."""
        out: dict[str, tuple[list[float], list[bytes]]] = {}
        for stream, key in sorted(message.label_keys.items()):
            path = os.path.join(tmp, f"labels-{stream}.webm")
            if self.store.stat(message.bucket, key) is None:
                continue
            self.store.download(message.bucket, key, path)

            def per_frame(_t: float, frame: np.ndarray) -> bytes:
                small = cv2.resize(frame, pipeline.frame_size(frame.shape[1], frame.shape[0]), interpolation=cv2.INTER_NEAREST)
                ok, buf = cv2.imencode(".png", small)
                return buf.tobytes() if ok else b""

            times, pngs, _ = decode_frames(path, per_frame, self.settings.decode_queue)
            if pngs:
                out[stream] = (pipeline.normalize_timestamps(times, 0), pngs)
        return out

    def _write_segment(
        self,
        message: events_pb2.SessionUploaded,
        seg_id: str,
        frames: list[int],
        measurements: list[dict],
        camera: dict,
        decoded: DecodedFrames,
        labels: dict[str, list[bytes]],
    ) -> processor_pb2.SegmentInfo:
        """Writes a segment: its frames, its label frames (stream -> one PNG per frame), measurements, index record."""
        dataset = self.settings.dataset
        puts = []
        for k, f in enumerate(frames):
            puts.append(self.uploads.submit(self.store.put_bytes, self.clean_bucket, keys.frame_key(dataset, seg_id, k), decoded.jpegs[f], "image/jpeg"))
        for stream, pngs in labels.items():
            for k, png in enumerate(pngs):
                puts.append(self.uploads.submit(self.store.put_bytes, self.clean_bucket, keys.label_frame_key(dataset, seg_id, stream, k), png, "image/png"))
        done, _ = wait(puts)
        for future in done:
            future.result()  # re-raise the first failed write
        self.store.put_json(self.clean_bucket, keys.measurements_key(dataset, seg_id), measurements)
        summary = pipeline.summarize(measurements)
        info = processor_pb2.SegmentInfo(
            segment_id=seg_id,
            session_id=message.session_id,
            dataset=dataset,
            bucket=self.clean_bucket,
            prefix=keys.segment_prefix(dataset, seg_id),
            frame_count=summary.frame_count,
            fps=round((summary.frame_count - 1) / summary.duration_s, 3) if summary.duration_s > 0 else 0.0,
            duration_s=summary.duration_s,
            distance_m=summary.distance_m,
            command_counts=summary.command_counts,
            width=camera["resize"]["width"],
            height=camera["resize"]["height"],
        )
        index_doc = {
            "segment": json_format.MessageToDict(info),
            "speed_hist": summary.speed_hist,
            "player_id": message.player_id,
            "label_streams": sorted(labels),
            "replay_labels": REPLAY_LABELS_DOC if REPLAY_STREAMS & set(labels) else None,
            "camera": camera,
            "targets": self.settings.targets.describe(),
            "lights": self.settings.lights.describe(),
        }
        self.store.put_json(self.clean_bucket, keys.dataset_index_key(dataset, seg_id), index_doc)
        return info

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.release()
        self._renderers.clear()
        if self._gl is not None:
            self._gl.release()
            self._gl = None
        self.segment_writer.shutdown(wait=True)
        self.uploads.shutdown(wait=True)

"""Diffusion service process: DiffusionService over gRPC and gRPC-Web.

Thin transport over three parts: the stream registry (streams.py: applied configs, limits, idle eviction), the frame
pump (pump.py: every stream's frames through the SLO scheduler into batched engine calls) and the engine
(engine/sampler.py StreamEngine, loaded from a checkpoint folder; the shipped tiny-city model by default).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
from prometheus_client import Counter, Gauge

from scalediffusion.platform.logs import event, get_logger
from scalediffusion.platform.rpc import CallContext, RpcError, ServiceBinding
from scalediffusion.platform.server import ServiceApp, run_main
from scalediffusion.platform.settings import ServerSettings, SettingsError, env_bool, env_float, env_int, env_str
from scalediffusion.v1 import diffusion_connect, diffusion_pb2
from services.diffusion.admission import AdmissionSettings, frame_overhead, frame_rate, offer, renegotiate, work_of
from services.diffusion.codec import FrameError, decode_frame, encode_frame
from services.diffusion.engine.checkpoint import DEFAULT_CHECKPOINT, VAE_RUNTIMES, VAE_VARIANTS, load_engine
from services.diffusion.engine.scheduler import FrameScheduler
from services.diffusion.engine.weights import CheckpointError
from services.diffusion.pump import FramePump
from services.diffusion.streams import StreamError, StreamRegistry, StreamState, engine_options, normalise_config

GRPC_PORT, GRPCWEB_PORT, METRICS_PORT = 50052, 8081, 9401
WARM_UP_SMALL = (128, 64)  # the small frame the warm-up times beside 256x256: the fixed part of a frame's cost
log = get_logger("diffusion")

OPEN_STREAMS = Gauge("sd_diffusion_open_streams", "Streams open on this replica")
STREAMS_CLOSED = Counter("sd_diffusion_streams_closed_total", "Streams ended, by how (closed, idle)", ["how"])
STREAMS_RESIZED = Counter("sd_diffusion_streams_resized_total", "Open streams whose size was renegotiated")
STREAM_CALL_IN_FLIGHT = 4  # frames one bidi Stream call may have submitted before its replies are read


@dataclass(frozen=True)
class DiffusionSettings:
    server: ServerSettings
    checkpoint: Path  # engine checkpoint folder (engine/checkpoint.py)
    device: str  # "auto" (cuda when present), "cpu", "cuda", "cuda:N"
    max_streams: int  # streams one replica holds (each keeps KV caches in memory)
    idle_timeout_s: float  # a stream unused this long is closed
    latency_target_ms: float  # a frame not repainted within this is dropped (the game shows its raw render)
    max_batch: int  # frames of different streams in one batched forward
    admission: AdmissionSettings = AdmissionSettings()  # the size and rate streams are offered (admission.py)
    vae_runtime: str = "auto"  # "auto" (onnxruntime on a CPU), "torch", "onnxruntime" (engine/ort_vae.py)
    stream_batch: bool = False  # the pipelined stream batch (GPU replicas): replies carry an earlier frame
    threads: int = 0  # CPU threads for the model (0: PyTorch's default, one per core)
    vae_variant: str = "auto"  # "auto" (the checkpoint's fast VAE when it ships one), "full", "fast"

    @classmethod
    def from_env(cls, env=None) -> DiffusionSettings:
        settings = cls(
            server=ServerSettings.from_env(grpc_port=GRPC_PORT, grpcweb_port=GRPCWEB_PORT, metrics_port=METRICS_PORT,
                                           env=env),
            checkpoint=Path(env_str("SD_DIFFUSION_CHECKPOINT", str(DEFAULT_CHECKPOINT), env)),
            device=env_str("SD_DIFFUSION_DEVICE", "auto", env),
            max_streams=env_int("SD_DIFFUSION_MAX_STREAMS", 16, env),
            idle_timeout_s=env_float("SD_DIFFUSION_IDLE_TIMEOUT_S", 60.0, env),
            latency_target_ms=env_float("SD_DIFFUSION_LATENCY_TARGET_MS", 1500.0, env),
            max_batch=env_int("SD_DIFFUSION_MAX_BATCH", 8, env),
            admission=_admission(env),
            vae_runtime=env_str("SD_DIFFUSION_VAE_RUNTIME", "auto", env),
            stream_batch=env_bool("SD_DIFFUSION_STREAM_BATCH", False, env),
            threads=env_int("SD_DIFFUSION_THREADS", 0, env),
            vae_variant=env_str("SD_DIFFUSION_VAE", "auto", env),
        )
        if settings.max_streams < 1 or settings.max_batch < 1:
            raise SettingsError("SD_DIFFUSION_MAX_STREAMS and SD_DIFFUSION_MAX_BATCH must be >= 1")
        if settings.idle_timeout_s <= 0 or settings.latency_target_ms <= 0:
            raise SettingsError("SD_DIFFUSION_IDLE_TIMEOUT_S and SD_DIFFUSION_LATENCY_TARGET_MS must be > 0")
        if settings.threads < 0:
            raise SettingsError(f"SD_DIFFUSION_THREADS must be >= 0 (0: one per core), got {settings.threads}")
        if settings.vae_runtime not in VAE_RUNTIMES:
            raise SettingsError(f"SD_DIFFUSION_VAE_RUNTIME must be one of {', '.join(VAE_RUNTIMES)}, got "
                                f"{settings.vae_runtime!r}")
        if settings.vae_variant not in VAE_VARIANTS:
            raise SettingsError(f"SD_DIFFUSION_VAE must be one of {', '.join(VAE_VARIANTS)}, got "
                                f"{settings.vae_variant!r}")
        if not (settings.device in ("auto", "cpu", "cuda") or settings.device.startswith("cuda:")):
            raise SettingsError(f"SD_DIFFUSION_DEVICE must be auto, cpu, cuda or cuda:N, got {settings.device!r}")
        return settings


def _admission(env) -> AdmissionSettings:
    try:
        return AdmissionSettings(min_fps=env_float("SD_DIFFUSION_MIN_FPS", AdmissionSettings.min_fps, env),
                                 max_fps=env_float("SD_DIFFUSION_MAX_FPS", AdmissionSettings.max_fps, env),
                                 min_width=env_int("SD_DIFFUSION_MIN_WIDTH", AdmissionSettings.min_width, env))
    except ValueError as err:
        raise SettingsError(f"SD_DIFFUSION_MIN_FPS / SD_DIFFUSION_MAX_FPS / SD_DIFFUSION_MIN_WIDTH: {err}") from None


def _device(name: str) -> str:
    if name != "auto":
        return name
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _rpc_error(err: StreamError) -> RpcError:
    return RpcError(getattr(grpc.StatusCode, err.code), str(err))


class DiffusionServicer:
    """The RPCs; start()/stop() are the app's hooks (engine load, pump and idle sweeper)."""

    def __init__(self, settings: DiffusionSettings, engine=None) -> None:
        self.settings = settings
        self.engine = engine
        self.registry = StreamRegistry(settings.max_streams, settings.idle_timeout_s)
        self.pump: FramePump | None = None
        self.frame_overhead = 0.0  # units of work per frame on top of its pixels, measured at warm-up
        self._sweeper: asyncio.Task | None = None

    async def start(self) -> None:
        if self.settings.threads:
            import torch

            torch.set_num_threads(self.settings.threads)  # onnxruntime's VAE takes the same number
        if self.engine is None:
            device = _device(self.settings.device)
            try:
                self.engine = await asyncio.to_thread(load_engine, self.settings.checkpoint, device,
                                                      self.settings.vae_runtime, self.settings.vae_variant)
            except (CheckpointError, OSError, ValueError) as err:
                raise SystemExit(f"diffusion: cannot load the engine from SD_DIFFUSION_CHECKPOINT="
                                 f"{self.settings.checkpoint}: {err}") from None
            event(log, "engine loaded", checkpoint=str(self.settings.checkpoint), device=device,
                  vae_runtime="onnxruntime" if self.engine.vae_runtime is not None else "torch",
                  vae="fast" if self.engine.vae.is_fast else "full",
                  dim=self.engine.config.dim, depth=self.engine.config.depth)
        first_s, reference_s, small_s = await asyncio.to_thread(self._warm_up)
        self.frame_overhead = frame_overhead(reference_s, 1.0, small_s, work_of(*WARM_UP_SMALL))
        scheduler = FrameScheduler(max_batch=self.settings.max_batch)
        # What streams are offered before their frames are measured.
        scheduler.observe_batch(1, reference_s, 1.0 + self.frame_overhead)
        event(log, "engine warm", first_frame_ms=round(first_s * 1000, 1), reference_frame_ms=round(reference_s * 1000, 1),
              small_frame_ms=round(small_s * 1000, 1), frame_overhead_units=round(self.frame_overhead, 3))
        self.pump = FramePump(self.engine, scheduler, self.settings.latency_target_ms / 1000.0,
                              stream_batch=self.settings.stream_batch, frame_overhead=self.frame_overhead)
        self.pump.start()
        self._sweeper = asyncio.create_task(self._sweep_idle(), name="idle-streams")

    def _warm_up(self) -> tuple[float, float, float]:
        """Frames through throwaway streams before SERVING: the first 256x256 one pays for lazy initialisation
        (allocator, kernels), which must neither reach a player nor teach the scheduler's cost model a wrong time;
        the next measure what a unit costs and, with a small frame, the fixed part of every frame's cost, which size
        the first streams (admission.py). Returns (first, 256x256, small) seconds, medians of three."""
        import numpy as np

        def timed(width: int, height: int, repeats: int) -> list[float]:
            state = self.engine.new_stream()
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                self.engine.transform([(state, np.zeros((height, width, 3), np.uint8))])
                times.append(time.perf_counter() - started)
            return times

        first, *reference = timed(256, 256, 4)
        small = timed(*WARM_UP_SMALL, 4)[1:]  # its first frame allocates the stream's caches
        return first, sorted(reference)[1], sorted(small)[1]

    def _frame_work(self, width: int, height: int) -> float:
        return work_of(width, height) + self.frame_overhead

    def _open_work(self) -> float:
        return sum(self._frame_work(s.config.width, s.config.height) for s in self.registry.streams.values())

    def _frame_rate(self) -> float:
        seconds_per_unit = self._ready_pump().scheduler.cost.seconds_per_unit()
        return frame_rate(seconds_per_unit, self._open_work(), self.settings.admission)

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            await asyncio.gather(self._sweeper, return_exceptions=True)
        if self.pump is not None:
            await self.pump.stop()

    async def _sweep_idle(self) -> None:
        period = min(5.0, self.settings.idle_timeout_s / 2)
        while True:
            await asyncio.sleep(period)
            for stream in self.registry.evict_idle(time.monotonic()):
                self._ended(stream, "idle")

    def _ended(self, stream: StreamState, how: str) -> None:
        if self.pump is not None:
            self.pump.forget(stream.stream_id)
        STREAMS_CLOSED.labels(how).inc()
        OPEN_STREAMS.set(len(self.registry.streams))
        event(log, "stream ended", stream_id=stream.stream_id, how=how, frames=stream.frames, dropped=stream.dropped)

    # --- RPCs ---

    async def open_stream(self, request: diffusion_pb2.OpenStreamRequest, ctx: CallContext
                          ) -> diffusion_pb2.OpenStreamResponse:
        self._check_ready()
        try:
            multiple = self.engine.config.pixel_multiple
            config = normalise_config(request.config, multiple, default_steps=self.engine.config.steps,
                                      default_strength=self.engine.config.strength)
            asked = (config.width, config.height)
            seconds_per_unit = self._ready_pump().scheduler.cost.seconds_per_unit()
            offered = offer(config.width, config.height, multiple, seconds_per_unit, self._open_work(),
                            self.settings.latency_target_ms / 1000.0, self.settings.admission,
                            overhead=self.frame_overhead)
            config.width, config.height = offered.width, offered.height
            state = self.engine.new_stream(**engine_options(config))
            stream = self.registry.open(config, time.monotonic(), state)
            stream.asked = asked
        except StreamError as err:
            raise _rpc_error(err) from None
        OPEN_STREAMS.set(len(self.registry.streams))
        event(log, "stream opened", stream_id=stream.stream_id, style=config.style, width=config.width,
              height=config.height, asked_width=request.config.width, asked_height=request.config.height,
              frame_rate=round(offered.frame_rate, 2), steps=config.steps, strength=round(config.strength, 3))
        return diffusion_pb2.OpenStreamResponse(stream_id=stream.stream_id, config=config,
                                                idle_timeout_ms=int(self.settings.idle_timeout_s * 1000),
                                                frame_rate=offered.frame_rate,
                                                latency_target_ms=int(self.settings.latency_target_ms))

    async def transform_frame(self, request: diffusion_pb2.TransformFrameRequest, ctx: CallContext
                              ) -> diffusion_pb2.TransformFrameResponse:
        if not request.HasField("frame"):
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, "frame is required (stream_id, seq, image)")
        return await self._transform(request.frame)

    async def stream(self, requests: AsyncIterator[diffusion_pb2.Frame], ctx: CallContext
                     ) -> AsyncIterator[diffusion_pb2.TransformFrameResponse]:
        """Frames in, results out in the same order; up to STREAM_CALL_IN_FLIGHT frames are submitted ahead, so a
        newer frame can supersede a queued older one (that one comes back `dropped`)."""
        pending: asyncio.Queue = asyncio.Queue(maxsize=STREAM_CALL_IN_FLIGHT)

        async def read() -> None:
            try:
                async for frame in requests:
                    await pending.put(asyncio.ensure_future(self._transform(frame)))
            finally:
                await pending.put(None)

        reader = asyncio.create_task(read())
        try:
            while True:
                task = await pending.get()
                if task is None:
                    break
                yield await task
            await reader  # re-raises a failure to read the request stream
        finally:
            reader.cancel()
            while not pending.empty():
                task = pending.get_nowait()
                if task is not None:
                    task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def close_stream(self, request: diffusion_pb2.CloseStreamRequest, ctx: CallContext
                           ) -> diffusion_pb2.CloseStreamResponse:
        try:
            stream = self.registry.close(request.stream_id)
        except StreamError as err:
            raise _rpc_error(err) from None
        self._ended(stream, "closed")
        return diffusion_pb2.CloseStreamResponse(frames=stream.frames)

    # --- one frame ---

    def _check_ready(self) -> None:
        # The gRPC port opens before the engine has loaded (health says NOT_SERVING until it has).
        if self.engine is None or self.pump is None:
            raise RpcError(grpc.StatusCode.UNAVAILABLE, "the diffusion engine is still loading; retry shortly")

    def _ready_pump(self) -> FramePump:
        """The pump, for the RPCs' work after _check_ready."""
        assert self.pump is not None, "_check_ready let this RPC through, so start() has made the pump"
        return self.pump

    async def _transform(self, frame: diffusion_pb2.Frame) -> diffusion_pb2.TransformFrameResponse:
        self._check_ready()
        try:
            stream = self.registry.get(frame.stream_id, time.monotonic())
        except StreamError as err:
            raise _rpc_error(err) from None
        config = stream.config
        try:
            rgb, content_type = await asyncio.to_thread(decode_frame, frame.image, frame.content_type,
                                                        config.width, config.height)
        except FrameError as err:
            raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from None
        stream.in_flight += 1
        stream.remember_client_time(frame.seq, frame.client_t_ms)
        try:
            result = await self._ready_pump().submit(stream.stream_id, stream.engine_state, frame.seq, rgb)
        except RuntimeError as err:
            raise RpcError(grpc.StatusCode.INTERNAL, f"{err}; the stream's state may be inconsistent, open a new "
                                                     f"stream") from None
        finally:
            stream.in_flight -= 1
            stream.last_used = time.monotonic()
        # With the stream batch the image is of an earlier frame of the stream: the echo names that one, so the
        # client orders by it and measures its round trip from that frame's capture.
        seq = frame.seq if result.seq is None else result.seq
        echo = diffusion_pb2.Frame(stream_id=stream.stream_id, seq=seq, client_t_ms=stream.client_time(seq, frame.client_t_ms))
        if result.image is None:
            if result.dropped_reason in ("shutdown", "closed"):
                raise RpcError(grpc.StatusCode.UNAVAILABLE if result.dropped_reason == "shutdown"
                               else grpc.StatusCode.NOT_FOUND,
                               f"stream {stream.stream_id} was {'shut down' if result.dropped_reason == 'shutdown' else 'closed'} "
                               f"while this frame waited")
            stream.dropped += 1
            return diffusion_pb2.TransformFrameResponse(frame=echo, server_ms=result.server_s * 1000.0, dropped=True,
                                                        dropped_reason=result.dropped_reason,
                                                        frame_rate=self._frame_rate())
        stream.frames += 1
        stream.last_seq = max(stream.last_seq, frame.seq)
        echo.image = await asyncio.to_thread(encode_frame, result.image, content_type)
        echo.content_type = content_type
        self._renegotiate(stream)
        return diffusion_pb2.TransformFrameResponse(frame=echo, server_ms=result.server_s * 1000.0,
                                                    strength=result.strength, frame_rate=self._frame_rate(),
                                                    width=stream.config.width, height=stream.config.height)

    def _renegotiate(self, stream: StreamState) -> None:
        """Resizes the stream when the cost measured now says its frames no longer fit the minimum rate, or that
        there is room for a much larger one (admission.renegotiate). The engine state is sized by its first frame,
        so the stream starts a fresh one (a new KV cache) at the new size; frames already queued finish on the old."""
        if not stream.asked[0]:
            return
        other = self._open_work() - self._frame_work(stream.config.width, stream.config.height)
        size = renegotiate(stream.config.width, stream.config.height, *stream.asked, self.engine.config.pixel_multiple,
                           self._ready_pump().scheduler.cost.seconds_per_unit(), max(other, 0.0),
                           self.settings.latency_target_ms / 1000.0, self.settings.admission,
                           frames_at_size=stream.frames - stream.frames_at_resize, overhead=self.frame_overhead)
        if size is None:
            return
        event(log, "stream resized", stream_id=stream.stream_id, width=size[0], height=size[1],
              was_width=stream.config.width, was_height=stream.config.height,
              seconds_per_unit=round(self._ready_pump().scheduler.cost.seconds_per_unit() or 0.0, 4))
        stream.config.width, stream.config.height = size
        stream.engine_state = self.engine.new_stream(**engine_options(stream.config))
        stream.resized += 1
        stream.frames_at_resize = stream.frames
        STREAMS_RESIZED.inc()


def build_app(settings: DiffusionSettings, engine=None) -> ServiceApp:
    """The service app; `engine` overrides loading settings.checkpoint (tests pass a small random engine)."""
    servicer = DiffusionServicer(settings, engine)
    binding = ServiceBinding(diffusion_pb2.DESCRIPTOR.services_by_name["DiffusionService"], servicer)
    return ServiceApp("diffusion", settings.server, [binding], [diffusion_connect.DiffusionServiceASGIApplication],
                      hooks=servicer)


def main() -> None:
    run_main("diffusion", DiffusionSettings.from_env, build_app)


if __name__ == "__main__":
    main()

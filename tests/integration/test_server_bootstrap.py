"""The shared server bootstrap over real sockets: one servicer on gRPC and gRPC-Web, health that tracks readiness,
unexpected exceptions answered as INTERNAL, and a SIGTERM-style drain that lets in-flight calls finish."""

from __future__ import annotations

import asyncio
import threading
import time

import grpc
import pytest
import urllib3
from grpc_health.v1 import health_pb2, health_pb2_grpc

from scalediffusion.platform.rpc import CallContext, RpcError, ServiceBinding
from scalediffusion.platform.server import ServiceApp
from scalediffusion.platform.settings import ServerSettings
from scalediffusion.stack.layout import free_layout
from scalediffusion.v1 import diffusion_connect, diffusion_pb2, diffusion_pb2_grpc

SERVICE = diffusion_pb2.DESCRIPTOR.services_by_name["DiffusionService"]


class SlowServicer:
    """A stand-in servicer (the transport under test is real): one slow call, one failing call."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.ready = asyncio.Event()

    async def start(self) -> None:
        await self.ready.wait()

    async def stop(self) -> None:
        return None

    async def transform_frame(self, request, ctx: CallContext):
        self.started.set()
        await asyncio.sleep(1.0)
        return diffusion_pb2.TransformFrameResponse(frame=diffusion_pb2.Frame(seq=request.frame.seq, stream_id=ctx.transport))

    async def open_stream(self, request, ctx):
        raise ZeroDivisionError("a bug")

    async def close_stream(self, request, ctx):
        raise RpcError(grpc.StatusCode.NOT_FOUND, f"stream {request.stream_id} is not open")


@pytest.fixture
def app_in_thread():
    ports = free_layout().services["diffusion"]
    settings = ServerSettings(
        host="127.0.0.1", grpc_port=ports.grpc, grpcweb_port=ports.grpc_web, metrics_port=0,
        cors_origins=("*",), shutdown_grace_s=5.0, log_level="INFO",
    )
    servicer = SlowServicer()
    loop = asyncio.new_event_loop()
    app_box: dict = {}

    def run() -> None:
        asyncio.set_event_loop(loop)
        app = ServiceApp("test", settings, [ServiceBinding(SERVICE, servicer)], [diffusion_connect.DiffusionServiceASGIApplication], hooks=servicer)
        app_box["app"] = app
        loop.run_until_complete(app.run_until_signal(handle_signals=False))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield settings, servicer, loop, app_box, thread
    if thread.is_alive():
        loop.call_soon_threadsafe(app_box["app"].request_stop)
        thread.join(10)


def health(port: int) -> int:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE.full_name), timeout=2).status


def wait_for(predicate, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except grpc.RpcError:
            pass
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_health_is_not_serving_until_start_hook_finished_then_serving(app_in_thread):
    settings, servicer, loop, _, _ = app_in_thread
    wait_for(lambda: health(settings.grpc_port) == health_pb2.HealthCheckResponse.NOT_SERVING)
    loop.call_soon_threadsafe(servicer.ready.set)
    wait_for(lambda: health(settings.grpc_port) == health_pb2.HealthCheckResponse.SERVING)


def test_errors_map_to_statuses_on_both_transports(app_in_thread):
    settings, servicer, loop, _, _ = app_in_thread
    loop.call_soon_threadsafe(servicer.ready.set)
    wait_for(lambda: health(settings.grpc_port) == health_pb2.HealthCheckResponse.SERVING)
    with grpc.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
        stub = diffusion_pb2_grpc.DiffusionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.OpenStream(diffusion_pb2.OpenStreamRequest())
        assert info.value.code() == grpc.StatusCode.INTERNAL and "a bug" not in info.value.details()
        with pytest.raises(grpc.RpcError) as info:
            stub.CloseStream(diffusion_pb2.CloseStreamRequest(stream_id="s9"))
        assert info.value.code() == grpc.StatusCode.NOT_FOUND and info.value.details() == "stream s9 is not open"
        reply = stub.TransformFrame(diffusion_pb2.TransformFrameRequest(frame=diffusion_pb2.Frame(seq=7)))
        assert reply.frame.seq == 7 and reply.frame.stream_id == "grpc"
    # gRPC-Web framing by hand: 1 flag byte + 4 length bytes + message; status in the trailer frame.
    body = diffusion_pb2.CloseStreamRequest(stream_id="s9").SerializeToString()
    response = urllib3.PoolManager().request(
        "POST", f"http://127.0.0.1:{settings.grpcweb_port}/scalediffusion.v1.DiffusionService/CloseStream",
        body=b"\x00" + len(body).to_bytes(4, "big") + body,
        headers={"content-type": "application/grpc-web+proto", "x-grpc-web": "1"},
    )
    text = response.data.decode(errors="replace") + str(dict(response.headers))
    assert "grpc-status: 5" in text or "'grpc-status': '5'" in text
    assert "stream s9 is not open" in text.replace("%20", " ")


def test_drain_lets_in_flight_calls_finish_and_refuses_new_ones(app_in_thread):
    settings, servicer, loop, app_box, thread = app_in_thread
    loop.call_soon_threadsafe(servicer.ready.set)
    wait_for(lambda: health(settings.grpc_port) == health_pb2.HealthCheckResponse.SERVING)
    result: dict = {}

    def slow_call() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
            stub = diffusion_pb2_grpc.DiffusionServiceStub(channel)
            result["reply"] = stub.TransformFrame(diffusion_pb2.TransformFrameRequest(frame=diffusion_pb2.Frame(seq=42)), timeout=10)

    caller = threading.Thread(target=slow_call)
    caller.start()
    assert servicer.started.wait(5)
    loop.call_soon_threadsafe(app_box["app"].request_stop)  # what SIGTERM does
    caller.join(10)
    assert result["reply"].frame.seq == 42, "the in-flight call finished during the drain"
    thread.join(10)
    assert not thread.is_alive()
    with grpc.insecure_channel(f"127.0.0.1:{settings.grpc_port}") as channel:
        with pytest.raises(grpc.RpcError) as info:
            diffusion_pb2_grpc.DiffusionServiceStub(channel).TransformFrame(diffusion_pb2.TransformFrameRequest(), timeout=2)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE

"""Server bootstrap shared by every service: native gRPC with health + reflection, gRPC-Web (connectrpc over
uvicorn) with CORS from the same servicer objects, Prometheus metrics, and a graceful SIGTERM drain.

    app = ServiceApp("ingest", settings, [ServiceBinding(INGEST, servicer)], hooks=servicer)
    asyncio.run(app.run_until_signal())

Readiness is real: health answers NOT_SERVING until `hooks.start()` returned (buckets, topics, consumers ready),
and flips back to NOT_SERVING at the start of shutdown so load balancers stop sending traffic first.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import grpc
import uvicorn
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server

from scalediffusion.platform.logs import configure_logging, event, get_logger
from scalediffusion.platform.rpc import ServiceBinding
from scalediffusion.platform.settings import ServerSettings, SettingsError

log = get_logger("server")

GRPC_WEB_ALLOW_HEADERS = (
    "content-type, x-grpc-web, x-user-agent, grpc-timeout, authorization, "
    "connect-protocol-version, connect-timeout-ms, x-sd-token"
)
GRPC_WEB_EXPOSE_HEADERS = "grpc-status, grpc-message, grpc-status-details-bin"


class Hooks(Protocol):
    """What a service does around serving: start() before it reports SERVING, stop() after calls drained."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class NoHooks:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


# -- gRPC-Web ASGI pieces ----------------------------------------------------------------------------------------


class CorsMiddleware:
    """CORS for gRPC-Web: answers preflights and adds the allow/expose headers for allowed origins."""

    def __init__(self, app: Callable[..., Awaitable[None]], origins: tuple[str, ...]) -> None:
        self.app = app
        self.origins = origins

    def _allowed(self, origin: str | None) -> bool:
        return origin is not None and ("*" in self.origins or origin in self.origins)

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        origin = headers.get("origin")
        if scope["method"] == "OPTIONS" and "access-control-request-method" in headers:
            status = 204 if self._allowed(origin) else 403
            out = [(b"vary", b"origin")]
            if status == 204 and origin is not None:
                out += [
                    (b"access-control-allow-origin", origin.encode()),
                    (b"access-control-allow-methods", b"POST, OPTIONS"),
                    (b"access-control-allow-headers", GRPC_WEB_ALLOW_HEADERS.encode()),
                    (b"access-control-max-age", b"7200"),
                ]
            await send({"type": "http.response.start", "status": status, "headers": out})
            await send({"type": "http.response.body", "body": b""})
            return None

        async def send_with_cors(message: dict) -> None:
            if message["type"] == "http.response.start" and origin is not None and self._allowed(origin):
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [
                    (b"access-control-allow-origin", origin.encode()),
                    (b"access-control-expose-headers", GRPC_WEB_EXPOSE_HEADERS.encode()),
                    (b"vary", b"origin"),
                ]
            await send(message)

        return await self.app(scope, receive, send_with_cors)


class PathRouter:
    """Routes /<package.Service>/<Method> to that service's connectrpc ASGI application."""

    def __init__(self, apps: list[Any]) -> None:
        self.apps = {app.path.rstrip("/"): app for app in apps}

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            await send({"type": f"{message['type']}.complete"})
            return
        prefix = "/" + scope.get("path", "").strip("/").split("/")[0]
        app = self.apps.get(prefix)
        if app is None:
            body = f"no gRPC-Web service at {scope.get('path')}; this server has {sorted(self.apps)}".encode()
            await send({"type": "http.response.start", "status": 404, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": body})
            return
        await app(scope, receive, send)


class _QuietUvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: ServiceApp owns SIGTERM/SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


# -- the app ---------------------------------------------------------------------------------------------------


@dataclass
class BoundPorts:
    grpc: int
    grpc_web: int
    metrics: int


class ServiceApp:
    """One service process: gRPC + gRPC-Web + metrics around a set of servicer bindings."""

    def __init__(
        self,
        name: str,
        settings: ServerSettings,
        bindings: list[ServiceBinding],
        connect_apps: Sequence[type] | None = None,
        hooks: Hooks | None = None,
    ) -> None:
        self.name = name
        self.settings = settings
        self.bindings = bindings
        self.connect_apps = connect_apps or []
        self.hooks = hooks or NoHooks()
        self.health = HealthServicer()
        self._grpc: grpc.aio.Server | None = None
        self._web: _QuietUvicorn | None = None
        self._web_task: asyncio.Task | None = None
        self._metrics: Any = None
        self._stopping = asyncio.Event()
        self.ports: BoundPorts | None = None

    async def _set_health(self, status: int) -> None:
        for service in ["", *(b.service.full_name for b in self.bindings)]:
            await self.health.set(service, status)

    async def start(self) -> BoundPorts:
        s = self.settings
        # Servicers run blocking S3/Kafka calls in asyncio's default executor; its default size (cores + 4) would
        # cap concurrent calls at 6 on a 2-core pod, so give I/O-bound work more threads.
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=s.io_threads, thread_name_prefix=f"{self.name}-io"))
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", 32 * 1024 * 1024)])
        for binding in self.bindings:
            server.add_generic_rpc_handlers((binding.grpc_handler(),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = [b.service.full_name for b in self.bindings] + [
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ]
        reflection.enable_server_reflection(names, server)
        grpc_port = server.add_insecure_port(f"{s.host}:{s.grpc_port}")
        if grpc_port == 0:
            raise OSError(f"{self.name}: cannot bind gRPC on {s.host}:{s.grpc_port} (port in use?)")
        await server.start()
        self._grpc = server

        metrics_port = 0
        if s.metrics_port:
            self._metrics = start_http_server(s.metrics_port, addr=s.host)
            metrics_port = s.metrics_port

        web_port = 0
        if s.grpcweb_port and self.connect_apps:
            facades = {b.service.full_name: b.connect_facade() for b in self.bindings}
            apps = [app_cls(facades[self._service_of(app_cls)]) for app_cls in self.connect_apps]
            asgi = CorsMiddleware(PathRouter(apps), s.cors_origins)
            config = uvicorn.Config(asgi, host=s.host, port=s.grpcweb_port, log_config=None, access_log=False, lifespan="off")
            self._web = _QuietUvicorn(config)
            self._web_task = asyncio.create_task(self._web.serve())
            while not self._web.started:
                if self._web_task.done():
                    self._web_task.result()  # raises the bind error
                    raise OSError(f"{self.name}: gRPC-Web server on {s.host}:{s.grpcweb_port} exited at start")
                await asyncio.sleep(0.02)
            web_port = s.grpcweb_port

        await self.hooks.start()
        await self._set_health(health_pb2.HealthCheckResponse.SERVING)
        self.ports = BoundPorts(grpc=grpc_port, grpc_web=web_port, metrics=metrics_port)
        event(log, "serving", service=self.name, grpc_port=grpc_port, grpc_web_port=web_port, metrics_port=metrics_port)
        return self.ports

    def _service_of(self, app_cls: type) -> str:
        # Generated apps are named <Service>ASGIApplication; match by service short name.
        short = app_cls.__name__.removesuffix("ASGIApplication")
        for binding in self.bindings:
            if binding.service.name == short:
                return binding.service.full_name
        raise ValueError(f"{app_cls.__name__} has no matching ServiceBinding")

    async def stop(self) -> None:
        """Stops taking calls, drains in-flight ones for up to shutdown_grace_s, then runs hooks.stop()."""
        event(log, "draining", service=self.name, grace_s=self.settings.shutdown_grace_s)
        await self._set_health(health_pb2.HealthCheckResponse.NOT_SERVING)
        if self._web is not None:
            self._web.should_exit = True
        if self._grpc is not None:
            await self._grpc.stop(self.settings.shutdown_grace_s)
        if self._web_task is not None:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._web_task, timeout=self.settings.shutdown_grace_s + 1)
        await self.hooks.stop()
        if self._metrics is not None:
            server = self._metrics[0] if isinstance(self._metrics, tuple) else None
            if server is not None:
                server.shutdown()
        event(log, "stopped", service=self.name)

    def request_stop(self) -> None:
        self._stopping.set()

    async def run_until_signal(self, handle_signals: bool = True) -> None:
        """Serves until SIGTERM/SIGINT (or request_stop()), then drains. handle_signals=False for embedding in a
        thread, where signal handlers cannot be installed."""
        loop = asyncio.get_running_loop()
        if handle_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.request_stop)
        await self.start()
        await self._stopping.wait()
        await self.stop()


S = TypeVar("S")


def run_main(name: str, load_settings: Callable[[], S], build_app: Callable[[S], ServiceApp]) -> None:
    """A service's console-script entry point: settings from the environment (a bad one stops start-up with its
    name), JSON logs, then serve until SIGTERM/SIGINT and drain."""
    try:
        settings = load_settings()
    except SettingsError as err:
        raise SystemExit(f"{name}: configuration error: {err}") from None
    configure_logging(name, settings.server.log_level)  # type: ignore[attr-defined]
    asyncio.run(build_app(settings).run_until_signal())

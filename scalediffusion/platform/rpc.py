"""One servicer object, two transports: native gRPC (grpc.aio) and gRPC-Web (connectrpc ASGI).

A service implements plain async methods named after the proto methods in snake_case:

    class IngestServicer:
        async def start_session(self, request, ctx: CallContext) -> StartSessionResponse: ...

and raises RpcError(code, reason) for every expected failure. ServiceBinding exposes that object on both
transports with the same metrics and logs; a method the object lacks answers UNIMPLEMENTED with a message, and an
unexpected exception answers INTERNAL (logged with its traceback) instead of escaping.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from connectrpc.code import Code
from connectrpc.errors import ConnectError
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message_factory import GetMessageClass
from prometheus_client import Counter, Histogram

from scalediffusion.platform import keys
from scalediffusion.platform.logs import event, get_logger

log = get_logger("rpc")

RPC_REQUESTS = Counter(
    "sd_rpc_requests_total", "RPCs handled, by method, status code and transport", ["service", "method", "code", "transport"]
)
RPC_SECONDS = Histogram(
    "sd_rpc_duration_seconds",
    "Time to answer an RPC (to the end of the stream for streaming RPCs)",
    ["service", "method", "transport"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class RpcError(Exception):
    """An expected failure with the status code and a reason the caller can act on."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class CallContext:
    """What a servicer may know about a call, whatever the transport."""

    method: str  # full method path, e.g. /scalediffusion.v1.IngestService/StartSession
    transport: str  # "grpc" or "grpc-web"
    metadata: dict[str, str] = field(default_factory=dict)  # lowercase keys
    peer: str = ""


def checked_id(kind: str, value: str) -> str:
    """value if it is a safe id (scalediffusion.platform.keys.check_id), else RpcError INVALID_ARGUMENT with the rule."""
    try:
        return keys.check_id(kind, value)
    except keys.InvalidId as err:
        raise RpcError(grpc.StatusCode.INVALID_ARGUMENT, str(err)) from None


def snake_case(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _connect_code(code: grpc.StatusCode) -> Code:
    return Code[code.name] if code.name in Code.__members__ else Code.UNKNOWN


class ServiceBinding:
    """Binds one servicer object to a proto service for both transports."""

    def __init__(self, service: ServiceDescriptor, servicer: object) -> None:
        self.service = service
        self.servicer = servicer

    # -- shared call path -------------------------------------------------------------------------------------

    def _target(self, method: MethodDescriptor) -> Callable[..., Any]:
        fn = getattr(self.servicer, snake_case(method.name), None)
        if fn is None:
            message = f"{self.service.name}.{method.name} is not implemented by this server yet"

            async def unimplemented(*_args: Any) -> Any:
                raise RpcError(grpc.StatusCode.UNIMPLEMENTED, message)

            return unimplemented
        return fn

    def _record(self, method: MethodDescriptor, transport: str, code: grpc.StatusCode, started: float) -> None:
        RPC_REQUESTS.labels(self.service.name, method.name, code.name, transport).inc()
        RPC_SECONDS.labels(self.service.name, method.name, transport).observe(time.perf_counter() - started)

    def _internal(self, method: MethodDescriptor, err: BaseException) -> RpcError:
        log.exception("rpc_internal_error", extra={"event": "rpc_internal_error", "method": method.full_name, "error": repr(err)})
        return RpcError(grpc.StatusCode.INTERNAL, f"internal error in {method.name}; the server log has the details")

    async def _unary(self, method: MethodDescriptor, request: Any, ctx: CallContext) -> Any:
        started = time.perf_counter()
        try:
            response = await self._target(method)(request, ctx)
        except RpcError as err:
            self._record(method, ctx.transport, err.code, started)
            if err.code != grpc.StatusCode.UNIMPLEMENTED:
                event(log, "rpc_error", method=method.name, code=err.code.name, reason=err.message, transport=ctx.transport)
            raise
        except Exception as err:
            self._record(method, ctx.transport, grpc.StatusCode.INTERNAL, started)
            raise self._internal(method, err) from err
        self._record(method, ctx.transport, grpc.StatusCode.OK, started)
        return response

    async def _streaming(self, method: MethodDescriptor, request: Any, ctx: CallContext) -> AsyncIterator[Any]:
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            result = self._target(method)(request, ctx)
            if hasattr(result, "__await__"):  # the UNIMPLEMENTED fallback is a coroutine
                result = await result
            async for item in result:
                yield item
        except RpcError as err:
            code = err.code
            raise
        except Exception as err:
            code = grpc.StatusCode.INTERNAL
            raise self._internal(method, err) from err
        finally:
            self._record(method, ctx.transport, code, started)

    # -- native gRPC ------------------------------------------------------------------------------------------

    def grpc_handler(self) -> grpc.GenericRpcHandler:
        handlers = {}
        for method in self.service.methods:
            req_cls = GetMessageClass(method.input_type)
            res_cls = GetMessageClass(method.output_type)
            kwargs = {"request_deserializer": req_cls.FromString, "response_serializer": res_cls.SerializeToString}
            fn = self._grpc_method(method)
            if method.client_streaming and method.server_streaming:
                handlers[method.name] = grpc.stream_stream_rpc_method_handler(fn, **kwargs)
            elif method.server_streaming:
                handlers[method.name] = grpc.unary_stream_rpc_method_handler(fn, **kwargs)
            elif method.client_streaming:
                handlers[method.name] = grpc.stream_unary_rpc_method_handler(fn, **kwargs)
            else:
                handlers[method.name] = grpc.unary_unary_rpc_method_handler(fn, **kwargs)
        return grpc.method_handlers_generic_handler(self.service.full_name, handlers)

    def _grpc_method(self, method: MethodDescriptor) -> Callable[..., Any]:
        path = f"/{self.service.full_name}/{method.name}"

        def context_of(context: grpc.aio.ServicerContext) -> CallContext:
            metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
            return CallContext(method=path, transport="grpc", metadata=metadata, peer=context.peer() or "")

        if method.server_streaming:

            async def stream(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
                try:
                    async for item in self._streaming(method, request, context_of(context)):
                        yield item
                except RpcError as err:
                    await context.abort(err.code, err.message)

            return stream

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await self._unary(method, request, context_of(context))
            except RpcError as err:
                await context.abort(err.code, err.message)

        return unary

    # -- gRPC-Web (connectrpc) --------------------------------------------------------------------------------

    def connect_facade(self) -> object:
        """An object with the snake_case methods connectrpc's generated ASGI application calls."""
        facade = type(f"{self.service.name}ConnectFacade", (), {})()
        path_prefix = f"/{self.service.full_name}/"
        for method in self.service.methods:

            def context_of(ctx: Any, method: MethodDescriptor = method) -> CallContext:
                headers = ctx.request_headers
                return CallContext(
                    method=path_prefix + method.name,
                    transport="grpc-web",
                    metadata={k.lower(): v for k, v in headers.items()},
                    peer=ctx.client_address or "",
                )

            if method.server_streaming:

                async def stream(request: Any, ctx: Any, method: MethodDescriptor = method, context_of=context_of) -> AsyncIterator[Any]:
                    try:
                        async for item in self._streaming(method, request, context_of(ctx)):
                            yield item
                    except RpcError as err:
                        raise ConnectError(_connect_code(err.code), err.message) from None

                setattr(facade, snake_case(method.name), stream)
            else:

                async def unary(request: Any, ctx: Any, method: MethodDescriptor = method, context_of=context_of) -> Any:
                    try:
                        return await self._unary(method, request, context_of(ctx))
                    except RpcError as err:
                        raise ConnectError(_connect_code(err.code), err.message) from None

                setattr(facade, snake_case(method.name), unary)
        return facade

"""Diffusion service process: DiffusionService over gRPC and gRPC-Web.

The engine (causal DiT with a rolling KV cache) lands with the diffusion issue. Until then every RPC answers
UNIMPLEMENTED with that message, so clients fall back to the raw render honestly instead of getting fake frames.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from scalediffusion.rpc import CallContext, RpcError, ServiceBinding
from scalediffusion.server import ServiceApp, run_main
from scalediffusion.settings import ServerSettings
from scalediffusion.v1 import diffusion_connect, diffusion_pb2

GRPC_PORT, GRPCWEB_PORT, METRICS_PORT = 50052, 8081, 9401
NOT_YET = "the diffusion engine is not built yet (it lands with the diffusion issue); show the raw render"


@dataclass(frozen=True)
class DiffusionSettings:
    server: ServerSettings

    @classmethod
    def from_env(cls) -> DiffusionSettings:
        return cls(server=ServerSettings.from_env(grpc_port=GRPC_PORT, grpcweb_port=GRPCWEB_PORT, metrics_port=METRICS_PORT))


class DiffusionServicer:
    async def open_stream(self, request: diffusion_pb2.OpenStreamRequest, ctx: CallContext) -> diffusion_pb2.OpenStreamResponse:
        raise RpcError(grpc.StatusCode.UNIMPLEMENTED, NOT_YET)

    async def transform_frame(self, request: diffusion_pb2.TransformFrameRequest, ctx: CallContext) -> diffusion_pb2.TransformFrameResponse:
        raise RpcError(grpc.StatusCode.UNIMPLEMENTED, NOT_YET)

    async def stream(self, requests: AsyncIterator[diffusion_pb2.Frame], ctx: CallContext) -> AsyncIterator[diffusion_pb2.TransformFrameResponse]:
        raise RpcError(grpc.StatusCode.UNIMPLEMENTED, NOT_YET)
        yield  # pragma: no cover - makes this an async generator, as streaming methods are

    async def close_stream(self, request: diffusion_pb2.CloseStreamRequest, ctx: CallContext) -> diffusion_pb2.CloseStreamResponse:
        raise RpcError(grpc.StatusCode.UNIMPLEMENTED, NOT_YET)


def build_app(settings: DiffusionSettings) -> ServiceApp:
    binding = ServiceBinding(diffusion_pb2.DESCRIPTOR.services_by_name["DiffusionService"], DiffusionServicer())
    return ServiceApp("diffusion", settings.server, [binding], [diffusion_connect.DiffusionServiceASGIApplication])


def main() -> None:
    run_main("diffusion", DiffusionSettings.from_env, build_app)


if __name__ == "__main__":
    main()

"""WorldService on the ingest service (the game's front door): the city to draw and drive. Public, read-only."""

from __future__ import annotations

import grpc

from scalediffusion.city import catalog
from scalediffusion.platform.rpc import CallContext, RpcError
from scalediffusion.v1 import world_pb2


class WorldServicer:
    async def get_world(self, request: world_pb2.GetWorldRequest, ctx: CallContext) -> world_pb2.World:
        world = catalog.get_world(request.world_id)
        if world is None:
            raise RpcError(grpc.StatusCode.NOT_FOUND, f"no world {request.world_id!r}; known: {sorted(catalog.worlds())}")
        return world

    async def list_worlds(self, request: world_pb2.ListWorldsRequest, ctx: CallContext) -> world_pb2.ListWorldsResponse:
        return world_pb2.ListWorldsResponse(
            worlds=[world_pb2.WorldSummary(world_id=w.world_id, name=w.name, version=w.version) for w in catalog.worlds().values()]
        )

"""The embedded closed-loop driving simulator: the game's vehicle model, collisions, routing and geometry ported to Python (golden-tested against clients/web)."""

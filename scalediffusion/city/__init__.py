"""The city model, defined once: a procedural Manhattan-like grid and an importer for NYC Open Data style GeoJSON,
both producing the `World` proto the game draws and the evaluator drives in."""

from scalediffusion.city.grid import GridSpec, manhattan_grid
from scalediffusion.city.stats import world_stats

__all__ = ["GridSpec", "manhattan_grid", "world_stats"]

"""A stand-in for the leaderboard's ``AutonomousAgent`` where the leaderboard is not installed (tests, bare installs).

Same interface as leaderboard/autoagents/autonomous_agent.py of CARLA Leaderboard 2.0: constructed with the CARLA
host and port, ``setup(conf)``, ``sensors()``, ``run_step(input_data, timestamp)``, ``destroy()``, and
``set_global_plan(gps_plan, world_plan)``. It is not an evaluator: no sensor interface, no game time. In the
evaluation image the real base class is imported instead (services/trainer/carla_agent.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum


class Track(Enum):
    SENSORS = "SENSORS"
    MAP = "MAP"


class AutonomousAgent(ABC):
    def __init__(self, carla_host: str = "127.0.0.1", carla_port: int = 2000, debug: bool = False) -> None:
        self.track = Track.SENSORS
        self._global_plan: list | None = None
        self._global_plan_world_coord: list | None = None

    @abstractmethod
    def setup(self, path_to_conf_file: str) -> None:
        """See the leaderboard's AutonomousAgent."""

    @abstractmethod
    def sensors(self) -> list[dict]:
        """See the leaderboard's AutonomousAgent."""

    @abstractmethod
    def run_step(self, input_data: dict, timestamp: float):
        """See the leaderboard's AutonomousAgent."""

    def destroy(self) -> None:  # noqa: B027 - an optional hook, as in the leaderboard's base class
        pass

    def set_global_plan(self, global_plan_gps, global_plan_world_coord) -> None:
        # The leaderboard keeps a downsampled subset of the route's waypoints; the stand-in keeps every one.
        self._global_plan = list(global_plan_gps)
        self._global_plan_world_coord = list(global_plan_world_coord)

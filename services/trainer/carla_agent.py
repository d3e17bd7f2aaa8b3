"""The CARLA Leaderboard agent: our ONNX policy (CILRS or waypoints) driving in CARLA.

    python ${LEADERBOARD_ROOT}/leaderboard/leaderboard_evaluator.py --track SENSORS \
        --agent services/trainer/carla_agent.py --agent-config /tmp/agent.json ...

``--agent-config`` is either the policy (``model.onnx``) or a JSON file ``{"model": "model.onnx", "camera": {...}}``
overriding the camera. The camera comes from the policy's metadata (``camera``: the size, vertical FOV and game
camera its dataset was recorded with, scalediffusion/driving.py CameraSpec), mounted where the game puts that camera
(clients/web/src/sim/camera.ts: dash 0.2 m ahead of the car's centre, 1.3 m up, looking 30 m ahead; chase 7.5 m
behind, 3 m up); CARLA's ``fov`` is horizontal, so it is converted. The frames then get the processor's resize, as in
training. Controls come from the same PolicyDriver as the embedded evaluator: CILRS outputs post-processed, or the
waypoint controller (PIDs and the stuck detector, whose front range reading is a forward radar).

The base class is the leaderboard's ``AutonomousAgent`` (the evaluation image puts the leaderboard on PYTHONPATH).
Without the leaderboard installed, as in this repo's tests, a stand-in with the same interface is used, so
``sensors``/``run_step`` are exercised on synthetic sensor data against the real ``carla`` client package.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import carla
import cv2
import numpy as np

from scalediffusion.driving import CameraSpec, cilrs_controls
from scalediffusion.policy import OnnxPolicy, PolicyDriver
from scalediffusion.sim.geometry_core import ego_frame
from scalediffusion.sim.routing import TARGET_MIN_M

try:  # the real leaderboard (evaluation image)
    from leaderboard.autoagents.autonomous_agent import AutonomousAgent, Track
except ImportError:  # pragma: no cover - which branch runs depends on the environment
    from services.trainer.agent_base import AutonomousAgent, Track

EARTH_RADIUS_M = 6378137.0  # what CARLA's GNSS uses to turn the map into latitude/longitude
LANEFOLLOW = 4
RADAR_RANGE_M = 30.0
RADAR_HALF_WIDTH_RAD = 0.08  # detections this close to straight ahead count for the front range


def get_entry_point() -> str:
    return "CilrsAgent"


@dataclass(frozen=True)
class CameraMount:
    """A front camera in the vehicle frame (CARLA: x forward, y right, z up; metres and degrees)."""

    x: float = 0.2
    y: float = 0.0
    z: float = 1.3
    pitch: float = math.degrees(math.atan2(1.0 - 1.3, 30.0))  # the game's dash camera looks 30 m ahead at 1 m high
    width: int = 640
    height: int = 360
    vertical_fov_deg: float = 60.0

    @property
    def horizontal_fov_deg(self) -> float:
        half = math.radians(self.vertical_fov_deg) / 2
        return math.degrees(2 * math.atan(math.tan(half) * self.width / self.height))

    @classmethod
    def for_camera(cls, camera: CameraSpec) -> CameraMount:
        """Where the game puts the dataset's camera on the car, with its size and vertical FOV."""
        if camera.mode == "chase":  # 7.5 m behind, 3 m up, looking at 1.2 m high 8 m ahead of the car
            pitch = math.degrees(math.atan2(1.2 - 3.0, 7.5 + 8.0))
            return cls(x=-7.5, z=3.0, pitch=pitch, width=camera.width, height=camera.height, vertical_fov_deg=camera.vertical_fov_deg)
        return cls(width=camera.width, height=camera.height, vertical_fov_deg=camera.vertical_fov_deg)


def front_range(radar_points: np.ndarray) -> float:
    """The nearest radar detection straight ahead, metres (inf: none). Rows as the leaderboard hands radar data
    over: (depth, altitude, azimuth, velocity)."""
    points = np.asarray(radar_points, dtype=np.float32).reshape(-1, 4)
    ahead = points[(np.abs(points[:, 2]) < RADAR_HALF_WIDTH_RAD) & (points[:, 0] > 0.5)]
    return float(ahead[:, 0].min()) if len(ahead) else math.inf


def _road_option_value(option) -> int:
    """RoadOption from the leaderboard's plan (an enum) or a plain int -> its number (1 LEFT .. 6, -1 VOID)."""
    return int(getattr(option, "value", option))


class RouteCommands:
    """Which navigation command applies where the ego is: the RoadOption of the next waypoint of the global plan.

    A waypoint is consumed when the ego comes within `reach_m` of it or is past it (beyond the line through it
    square to the way on to the next waypoint), so a waypoint passed at a distance does not hold the command;
    positions are GNSS latitude/longitude, projected around the first waypoint so distances are in metres."""

    def __init__(self, plan_gps: list[tuple[dict, object]], reach_m: float = 4.0) -> None:
        if not plan_gps:
            raise ValueError("the global plan is empty")
        self.lat0 = math.radians(plan_gps[0][0]["lat"])
        self.points = [self._project(p["lat"], p["lon"]) for p, _ in plan_gps]
        self.options = [_road_option_value(option) for _, option in plan_gps]
        self.reach_m = reach_m
        self.index = 0

    def _project(self, lat: float, lon: float) -> np.ndarray:
        return np.array([EARTH_RADIUS_M * math.radians(lon) * math.cos(self.lat0), EARTH_RADIUS_M * math.radians(lat)])

    def command(self, lat: float, lon: float) -> int:
        ego = self._project(lat, lon)
        while self.index < len(self.points) - 1:
            point, following = self.points[self.index], self.points[self.index + 1]
            reached = np.linalg.norm(point - ego) < self.reach_m
            passed = float(np.dot(ego - point, following - point)) > 0.0
            if reached or passed:
                self.index += 1
            else:
                break
        option = self.options[self.index]
        return option if 1 <= option <= 6 else LANEFOLLOW

    def target(self, lat: float, lon: float, compass: float, min_ahead_m: float = TARGET_MIN_M) -> tuple[float, float]:
        """The route's target point in the ego frame (x forward, y right, metres), as the game records it: the first
        plan waypoint from the current one on that is more than min_ahead_m away (TransFuser's RoutePlanner), else
        the last. compass is CARLA's IMU reading: radians, 0 = north, clockwise; in the projected frame (x east,
        y north) the heading counter-clockwise from +x is pi/2 - compass. Call command() first: it advances the
        plan."""
        ego = self._project(lat, lon)
        point = self.points[-1]
        for candidate in self.points[self.index:]:
            if float(np.linalg.norm(candidate - ego)) > min_ahead_m:
                point = candidate
                break
        return ego_frame(float(ego[0]), float(ego[1]), math.pi / 2 - compass, float(point[0]), float(point[1]))


def control_from_policy(steer: float, throttle: float, brake: float) -> carla.VehicleControl:
    """A CILRS policy's outputs as a VehicleControl, post-processed as in every driver (scalediffusion.driving)."""
    c = cilrs_controls(steer, throttle, brake)
    return carla.VehicleControl(throttle=c.throttle, steer=c.steer, brake=c.brake)


def load_agent_config(path: str) -> tuple[Path, dict | None]:
    """(policy file, camera override or None: the policy's own camera)."""
    config_path = Path(path)
    if config_path.suffix == ".onnx":
        return config_path, None
    doc = json.loads(config_path.read_text())
    model = Path(doc["model"])
    if not model.is_absolute():
        model = config_path.parent / model
    return model, doc.get("camera")


class CilrsAgent(AutonomousAgent):
    def setup(self, path_to_conf_file: str) -> None:
        self.track = Track.SENSORS
        model_path, override = load_agent_config(path_to_conf_file)
        self.policy: OnnxPolicy | None = OnnxPolicy(model_path)  # None once destroy() lets the session go
        self.camera = CameraMount(**override) if override else CameraMount.for_camera(self.policy.camera)
        self.driver = PolicyDriver(self.policy, control_hz=20.0)  # the leaderboard ticks agents at 20 Hz
        self.route: RouteCommands | None = None
        self.last_command = LANEFOLLOW
        self.last_target: tuple[float, float] | None = None
        self.compass = 0.0  # the last finite IMU compass reading (CARLA's first readings can be NaN)

    def sensors(self) -> list[dict]:
        cam = self.camera
        return [
            {"type": "sensor.camera.rgb", "x": cam.x, "y": cam.y, "z": cam.z, "roll": 0.0, "pitch": cam.pitch, "yaw": 0.0,
             "width": cam.width, "height": cam.height, "fov": cam.horizontal_fov_deg, "id": "rgb_front"},
            {"type": "sensor.other.gnss", "x": 0.0, "y": 0.0, "z": 0.0, "roll": 0.0, "pitch": 0.0, "yaw": 0.0, "id": "gps"},
            {"type": "sensor.speedometer", "reading_frequency": 20, "id": "speed"},
            {"type": "sensor.other.radar", "x": 2.4, "y": 0.0, "z": 0.7, "roll": 0.0, "pitch": 0.0, "yaw": 0.0,
             "horizontal_fov": 20.0, "vertical_fov": 6.0, "range": RADAR_RANGE_M, "id": "radar_front"},
            # The compass turns the plan's next waypoint into the ego frame (policies that take the target point).
            {"type": "sensor.other.imu", "x": 0.0, "y": 0.0, "z": 0.0, "roll": 0.0, "pitch": 0.0, "yaw": 0.0, "id": "imu"},
        ]

    def run_step(self, input_data: dict, timestamp: float) -> carla.VehicleControl:
        _, bgra = input_data["rgb_front"]
        rgb = cv2.cvtColor(np.asarray(bgra)[:, :, :3], cv2.COLOR_BGR2RGB)
        speed = float(input_data["speed"][1]["speed"])
        if self.route is None and self._global_plan:
            self.route = RouteCommands(self._global_plan)
        if self.route is not None and "gps" in input_data:
            lat, lon = input_data["gps"][1][:2]
            self.last_command = self.route.command(float(lat), float(lon))
            if "imu" in input_data and math.isfinite(float(input_data["imu"][1][-1])):
                self.compass = float(input_data["imu"][1][-1])
            self.last_target = self.route.target(float(lat), float(lon), self.compass)
        ahead = front_range(input_data["radar_front"][1]) if "radar_front" in input_data else math.inf
        out = self.driver(rgb, speed, self.last_command, ahead, self.last_target)
        return carla.VehicleControl(throttle=out.throttle, steer=out.steer, brake=out.brake, reverse=out.reverse)

    def destroy(self) -> None:
        self.policy = None

"""One route driven closed-loop: the ego (the game's vehicle model and collisions), traffic, the route monitor and,
when a renderer is given, the front camera. Deterministic for a seed.

Time: the driver acts at control_hz (20 Hz, as the CARLA Leaderboard); the ego's physics runs at the game's 60 Hz
in between (scalediffusion/sim/vehicle.py is the game's model, golden-tested against it); traffic moves at the
control rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scalediffusion.sim import routing
from scalediffusion.sim import vehicle as vm
from scalediffusion.sim.autopilot import Control, Observation
from scalediffusion.sim.camera import CameraMode
from scalediffusion.sim.geometry_core import Vec2, ego_frame
from scalediffusion.sim.infractions import RouteMonitor
from scalediffusion.sim.lanes import LaneMap
from scalediffusion.sim.suites import RouteSpec, SuiteSpec
from scalediffusion.sim.traffic import Actor, Traffic
from scalediffusion.v1 import world_pb2

FRONT_RANGE_M = 30.0  # the front range sensor's reach


@dataclass(frozen=True)
class EpisodeConfig:
    control_hz: float = 20.0
    physics_hz: float = 60.0
    camera_mode: CameraMode = "dash"  # the game's camera modes: "dash" (front) or "chase"
    fov_deg: float = 60.0  # vertical, as the game
    start_time_s: float = 0.0  # world clock at the start (lights and pedestrians run on it)


class Episode:
    def __init__(self, world: world_pb2.World, lanes: LaneMap, route: RouteSpec, suite: SuiteSpec, seed: int,
                 renderer=None, config: EpisodeConfig = EpisodeConfig(), collision_world=None, graph=None) -> None:
        self.world, self.lanes, self.route, self.config = world, lanes, route, config
        self.path = lanes.path(lanes.route_segments(list(route.nodes)))
        x, y, heading = self.path.line.point_at(0.0)
        self.ego = vm.VehicleState(x=x, y=y, theta=heading, speed=0.0)
        self.traffic = Traffic(world, lanes, suite.npc_vehicles, suite.pedestrians, seed, keep_clear=[(x, y)])
        self.lights = self.traffic.lights
        self.monitor = RouteMonitor(route.route_id, self.path, self.lights.color)
        self.collision_world = collision_world or vm.collision_world(world)
        self.graph = graph or routing.build_road_graph(world)
        # The car starts on the road out of the first intersection, past its centre: the game's planner routes from
        # the intersection ahead of the car (RoutePlanner.plan), so the first intersection is not part of the route.
        # With it, the route began with a leg back to it: a U-turn command and a target point behind the car for the
        # first metres of every episode and bot session.
        nav_nodes = list(route.nodes[1:]) if len(route.nodes) >= 2 else list(route.nodes)
        self.nav_route = routing.make_route(self.graph, nav_nodes, {"x": x, "y": y})
        self._nav_hint = 0
        self.renderer = renderer
        self.t = config.start_time_s
        self.steps = 0
        self.route_s = 0.0
        self.last_collision: tuple[str, str] | None = None

    @property
    def done(self) -> bool:
        return self.monitor.ended

    def _nav(self) -> routing.Nav:
        nav = routing.navigate(self.nav_route, {"x": self.ego.x, "y": self.ego.y}, self._nav_hint)
        self._nav_hint = nav.segment
        return nav

    def command(self) -> int:
        """The navigation command the game would show here (the ported routing.navigate)."""
        return int(self._nav().command)

    def navigation(self) -> tuple[int, Vec2 | None]:
        """The command and the route's target point (city frame) the game would record here."""
        nav = self._nav()
        return int(nav.command), routing.target_point(self.nav_route, nav)

    def target_ego(self, target: Vec2 | None) -> tuple[float, float] | None:
        """A city-frame point seen from the ego: (x forward, y right) metres, the dataset's convention."""
        if target is None:
            return None
        return ego_frame(self.ego.x, self.ego.y, self.ego.theta, target.x, target.y)

    def actor_poses(self, actors: list[Actor]) -> list:
        return [vm.ActorPose(id=a.id, kind=a.kind, x=a.x, y=a.y, heading=a.heading, length_m=a.length, width_m=a.width)
                for a in actors]

    def front_range(self, max_m: float = FRONT_RANGE_M, step_m: float = 0.5) -> float:
        """A front range sensor (what a forward radar gives a CARLA agent): the distance the car could move straight
        ahead before its body touches an obstacle — a vehicle, pedestrian, parked car or building — up to max_m;
        inf when the way is clear that far."""
        poses = self.actor_poses(self.traffic.actors(self.t))
        c, s = math.cos(self.ego.theta), math.sin(self.ego.theta)
        d = step_m
        while d <= max_m:
            probe = vm.VehicleState(x=self.ego.x + c * d, y=self.ego.y + s * d, theta=self.ego.theta, speed=0.0)
            if vm.collides(probe, self.collision_world) is not None or vm.actor_collision(probe, poses) is not None:
                return d
            d += step_m
        return math.inf

    def observe(self, front_range: bool = False) -> Observation:
        image = None
        if self.renderer is not None:
            from scalediffusion.sim.camera import camera_pose

            camera = camera_pose(self.ego, self.config.camera_mode, self.config.fov_deg)
            image = self.renderer.render(camera, self.actor_poses(self.traffic.actors(self.t)), self.t, ego=self.ego)
        command, target = self.navigation()
        return Observation(t=self.t, speed=self.ego.speed, command=command, image=image, ego=self.ego,
                           route_s=self.monitor.current_s, episode=self,
                           front_range_m=self.front_range if front_range else math.inf,
                           target_point=self.target_ego(target))

    def step(self, control: Control) -> None:
        """Applies the driver's control for one control period."""
        if self.done:
            return
        dt = 1.0 / self.config.control_hz
        substeps = max(1, round(self.config.physics_hz / self.config.control_hz))
        actors = self.traffic.actors(self.t)
        poses = self.actor_poses(actors)
        kinds = {a.id: ("pedestrian" if a.kind == world_pb2.ACTOR_KIND_PEDESTRIAN else "vehicle") for a in actors}
        drive = vm.DriveInput(steer=_clip(control.steer, -1, 1), throttle=_clip(control.throttle, 0, 1),
                              brake=_clip(control.brake, 0, 1), reverse=bool(getattr(control, "reverse", False)))
        collision = None
        for _ in range(substeps):
            result = vm.step_with_collisions(self.ego, drive, dt / substeps, self.collision_world, vm.DEFAULT_PARAMS, poses)
            self.ego = result.state
            if result.collision is not None and collision is None:
                c = result.collision
                collision = (kinds.get(c.id, "vehicle"), c.id) if c.kind == "actor" else (c.kind, c.id)
        self.last_collision = collision
        ego_actor = Actor("ego", world_pb2.ACTOR_KIND_VEHICLE, self.ego.x, self.ego.y, self.ego.theta,
                          vm.DEFAULT_PARAMS.length_m, vm.DEFAULT_PARAMS.width_m, self.ego.speed)
        self.traffic.step(self.t, dt, ego_actor)
        self.t += dt
        self.steps += 1
        traffic = [(n.x, n.y, n.speed) for n in self.traffic.vehicle_actors()]
        self.monitor.observe(self.t, dt, self.ego.x, self.ego.y, self.ego.speed, collision, traffic)

    def run(self, driver, max_steps: int | None = None, on_step=None):
        """Drives until the route ends; returns the leaderboard RouteRun."""
        limit = max_steps or int(math.ceil((self.monitor.timeout_s + 5.0) * self.config.control_hz))
        wants_range = bool(getattr(driver, "needs_front_range", False))
        for _ in range(limit):
            if self.done:
                break
            obs = self.observe(front_range=wants_range)
            self.step(driver(obs))
            if on_step is not None:
                on_step(self, obs)
        return self.monitor.finish(self.t - self.config.start_time_s)


def _clip(v: float, lo: float, hi: float) -> float:
    return lo if not v == v else max(lo, min(hi, float(v)))

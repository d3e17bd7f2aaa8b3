"""Bot players: the autopilot with human-like noise plays sessions through the real game path, so the pipeline can be
loaded with hundreds of sessions and a dataset built without people.

A bot drives a random route through the city among traffic in the simulator (the game's vehicle model and routing
commands), records what the game records — frames of the camera at the game's resolution and frame rate, encoded
as VP8 WebM like a browser's MediaRecorder, and the Telemetry message with one tick per 60 Hz physics step (controls,
vehicle, camera pose, navigation command) — and uploads both through ingest's StartSession / presigned uploads /
CompleteSession exactly as the game does (scalediffusion/uploader.py).

    scale-diffusion bots --count 8 --seconds 30         # against the stack `make up` started
"""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2

from scalediffusion.city.grid import manhattan_grid
from scalediffusion.sim import vehicle as vm
from scalediffusion.sim.autopilot import Control, NoisyAutopilot, TurnLapseParams
from scalediffusion.sim.camera import CameraMode
from scalediffusion.sim.episode import Episode, EpisodeConfig
from scalediffusion.sim.lanes import LaneMap
from scalediffusion.sim.suites import RouteSpec, SuiteSpec
from scalediffusion.v1 import common_pb2, telemetry_pb2
from scalediffusion.vp8 import open_vp8_writer

PREROLL_MS = 500.0  # telemetry starts before the recorder, as in the game (it keeps up to a second of warm-up)
CLIENT_INFO = "scalediffusion.bot/1"


@dataclass(frozen=True)
class BotConfig:
    seconds: float = 30.0
    width: int = 640
    height: int = 360
    fps: int = 30  # the recorder's frame rate (the processor resamples to its output rate, 10 Hz by default)
    camera_mode: CameraMode = "dash"
    fov_deg: float = 60.0  # vertical, as the game's default
    # Traffic per session: each bot draws its count uniformly from [min, max] (seeded), so a fleet of bots sees
    # empty streets, light traffic and queues at lights. Equal bounds give every bot the same count.
    npc_vehicles: int = 12
    pedestrians: int = 8
    npc_vehicles_min: int | None = None  # None = npc_vehicles
    pedestrians_min: int | None = None  # None = pedestrians
    steer_noise: float = 0.08  # the noisy driver's steering wander (Ornstein-Uhlenbeck sigma)
    record_expert: bool = True  # record the autopilot's clean action in TelemetryTick.expert_controls
    # Chance that a turn gets a steering lapse (autopilot.TurnLapseParams): the states a policy that falls behind in
    # a turn ends up in, with the clean action recorded as the label. The processor ends a frame's waypoints where
    # the applied steering leaves the expert's (services/processor/targets.py). Off by default: the one measurement
    # so far (1.0, with the signal visors, services/trainer/results/value) drove worse, not better.
    turn_lapses: float = 0.0
    # How long a bot standing at a light that turns green waits before it goes (seconds, drawn per stop): the frames
    # of a car standing at a green teach a light head the lamp rather than the position (autopilot.AutopilotParams).
    green_reaction_s: tuple[float, float] = (1.0, 3.0)

    def traffic(self, rng: random.Random) -> tuple[int, int]:
        """(NPC vehicles, pedestrians) for one session."""
        lo_v = self.npc_vehicles if self.npc_vehicles_min is None else self.npc_vehicles_min
        lo_p = self.pedestrians if self.pedestrians_min is None else self.pedestrians_min
        return rng.randint(min(lo_v, self.npc_vehicles), self.npc_vehicles), rng.randint(min(lo_p, self.pedestrians), self.pedestrians)


@dataclass
class BotSession:
    video: bytes
    telemetry: telemetry_pb2.Telemetry
    frames: int
    distance_m: float
    route: tuple[str, ...]


def random_route(lanes: LaneMap, rng: random.Random, min_length_m: float) -> tuple[str, ...]:
    """A random drive without U-turns, long enough to last the session: start on a random lane, turn at random."""
    segments = sorted(lanes.segments.values(), key=lambda s: (s.road_id, s.from_node, s.lane))
    seg = rng.choice([s for s in segments if s.lane == s.lanes - 1])
    nodes = [seg.from_node, seg.to_node]
    length = 0.0
    while length < min_length_m:
        options = [s for s in lanes.next_segments(seg) if s.lane == s.lanes - 1] or lanes.next_segments(seg)
        if not options:
            break
        seg = rng.choice(options)
        nodes.append(seg.to_node)
        length += _segment_length(seg)
    return tuple(nodes)


def _segment_length(seg) -> float:
    return ((seg.end[0] - seg.start[0]) ** 2 + (seg.end[1] - seg.start[1]) ** 2) ** 0.5


def play_session(seed: int, config: BotConfig = BotConfig(), work_dir: Path | None = None, renderer=None) -> BotSession:
    """One bot session: (video, telemetry) in the game's formats. Deterministic for a seed."""
    from scalediffusion.sim.camera import camera_pose
    from scalediffusion.sim.render import CityRenderer

    rng = random.Random(seed)
    world = manhattan_grid()
    lanes = LaneMap(world)
    nodes = random_route(lanes, rng, min_length_m=config.seconds * 14.0 + 100.0)
    npc_vehicles, pedestrians = config.traffic(rng)
    suite = SuiteSpec("bots", 1, (RouteSpec(f"bot{seed}", nodes),), npc_vehicles, pedestrians, seed)
    physics_hz = 60.0
    episode = Episode(world, lanes, suite.routes[0], suite, seed, config=EpisodeConfig(
        control_hz=physics_hz, physics_hz=physics_hz, camera_mode=config.camera_mode, fov_deg=config.fov_deg,
        start_time_s=rng.uniform(0, 60)))
    episode.monitor.timeout_s = float("inf")  # a bot drives until its session ends, whatever happens
    renderer = renderer or CityRenderer(world, config.width, config.height, vertical_fov_deg=config.fov_deg)
    driver = NoisyAutopilot(seed, steer_noise=config.steer_noise, lapses=TurnLapseParams(probability=config.turn_lapses),
                            green_reaction_s=config.green_reaction_s)
    telemetry = telemetry_pb2.Telemetry(schema_version=1, video_width=config.width, video_height=config.height,
                                        video_fps=config.fps, world_id=world.world_id, client_info=CLIENT_INFO,
                                        recording_start_t_ms=PREROLL_MS,
                                        world_clock_offset_ms=episode.t * 1000.0,  # lights and traffic run on episode.t
                                        physics_hz=physics_hz)
    own_dir = work_dir is None  # a folder made here is removed again once the video is read back
    work_dir = Path(work_dir or tempfile.mkdtemp(prefix="sd-bot-"))
    video_path = work_dir / f"bot-{seed}.webm"
    writer = open_vp8_writer(video_path, config.fps, config.width, config.height)
    frame_interval_ms = 1000.0 / config.fps
    total_ms = PREROLL_MS + config.seconds * 1000.0
    frames = 0
    distance = 0.0
    dt = 1.0 / physics_hz
    try:
        # Ticks as the game records them: each is the state after that tick's physics step with that tick's
        # controls (the first: the starting state, no controls), so the processor can replay the drive.
        tick, t_ms = 0, 0.0
        _add_tick(telemetry, t_ms, episode, None, config)
        while True:
            # The recorder captures frames at its own rate: each frame shows the state of the latest tick.
            while t_ms >= PREROLL_MS + frames * frame_interval_ms and PREROLL_MS + frames * frame_interval_ms < total_ms:
                camera = camera_pose(episode.ego, config.camera_mode, config.fov_deg)
                actors = episode.actor_poses(episode.traffic.actors(episode.t))
                image = renderer.render(camera, actors, episode.t, ego=episode.ego)
                # The bots draw their own traffic, not the world's timetable actors: recorded for the processor.
                drawn = telemetry.drawn_actors.add(t_ms=t_ms)
                for a in actors:
                    drawn.actors.add(id=a.id, kind=a.kind, x=a.x, y=a.y, heading=a.heading, length_m=a.length_m, width_m=a.width_m)
                writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
                frames += 1
            if t_ms >= total_ms:
                break
            before = (episode.ego.x, episode.ego.y)
            expert = None
            if not episode.done:
                obs = episode.observe()
                control = driver(obs)
                expert = driver.last_expert if config.record_expert else None
                episode.step(control)
                collided = episode.last_collision is not None
            else:  # route over (the bot reached its end): brake to a stand until the session ends
                control = STAND
                result = vm.step_with_collisions(episode.ego, vm.DriveInput(steer=0.0, throttle=0.0, brake=1.0), dt,
                                                 episode.collision_world)
                episode.ego, episode.t = result.state, episode.t + dt
                collided = result.collision is not None
            tick += 1
            t_ms = tick * 1000.0 / physics_hz
            _add_tick(telemetry, t_ms, episode, control, config, expert, collided)
            distance += ((episode.ego.x - before[0]) ** 2 + (episode.ego.y - before[1]) ** 2) ** 0.5
        writer.release()
        video = video_path.read_bytes()
    finally:
        writer.release()
        if own_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    telemetry.recording_stop_t_ms = total_ms
    return BotSession(video, telemetry, frames, distance, nodes)


STAND = Control(steer=0.0, throttle=0.0, brake=1.0)
# Bumped when what a bot records changes for the same configuration, so kept recordings are not reused across it.
# 2: ticks are the state after the step with their controls (as the game's), with collisions and the world clock.
# 3: the actors drawn in each frame (Telemetry.drawn_actors).
RECORDING_FORMAT = 3


def _add_tick(telemetry: telemetry_pb2.Telemetry, t_ms: float, episode: Episode, control, config: BotConfig, expert=None,
              collided: bool = False) -> None:
    from scalediffusion.sim.camera import camera_pose

    ego = episode.ego
    command, target = episode.navigation()
    tick = telemetry.ticks.add(t_ms=t_ms, command=command or common_pb2.ROAD_OPTION_LANEFOLLOW)
    if target is not None:
        tick.target_point.x, tick.target_point.y = target.x, target.y
    if control is not None:  # as applied (Episode.step clips them)
        tick.controls.steer = max(-1.0, min(1.0, control.steer))
        tick.controls.throttle = max(0.0, min(1.0, control.throttle))
        tick.controls.brake = max(0.0, min(1.0, control.brake))
        tick.controls.reverse = bool(getattr(control, "reverse", False))
    tick.collision = collided
    if expert is not None:
        tick.expert_controls.steer, tick.expert_controls.throttle, tick.expert_controls.brake = expert.steer, expert.throttle, expert.brake
    tick.vehicle.x, tick.vehicle.y, tick.vehicle.theta, tick.vehicle.speed = ego.x, ego.y, ego.theta, ego.speed
    pose = camera_pose(ego, config.camera_mode, config.fov_deg)
    tick.camera.position.x, tick.camera.position.y, tick.camera.position.z = pose.x, pose.y, pose.z
    tick.camera.yaw, tick.camera.pitch, tick.camera.roll, tick.camera.fov_deg = pose.yaw, pose.pitch, pose.roll, pose.fov_deg

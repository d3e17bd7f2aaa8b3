"""The Python front-camera renderer (scalediffusion/sim/render.py, a port of the game's Three.js scene.ts) on the
default world: image format, what lies where (road below the horizon, sky above, actors where the camera projects
them, the player's car in the chase view), the colours the game's pipeline gives, traffic lights following the clock,
and determinism. Needs an OpenGL 3.3 context through EGL (Mesa llvmpipe on a CPU-only machine); skipped only where EGL
cannot give one. Writes a dash and a chase frame as PNG into the test's tmp_path."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from scalediffusion.city import manhattan_grid
from scalediffusion.city.actors import ActorPose, actor_poses
from scalediffusion.sim import geometry as geo
from scalediffusion.sim.camera import CameraPose, Vec3, camera_pose
from scalediffusion.sim.render import CityRenderer
from scalediffusion.sim.vehicle import VehicleState
from scalediffusion.v1 import world_pb2

SKY = (0xB4, 0xCD, 0xE6)
W, H = 256, 256


def srgb_byte(linear: float) -> float:
    c = linear * 12.92 if linear <= 0.0031308 else 1.055 * linear ** 0.41666 - 0.055
    return 255 * min(max(c, 0.0), 1.0)


def lit_up_facing(hex_color: int, linearise: bool = False) -> np.ndarray:
    """What Three.js r187 gives an upward-facing MeshLambertMaterial surface in scene.ts's lights, as sRGB bytes:
    albedo / pi * (hemisphere sky (0xe4ecff * 1.6) + n.l * sun (0xfff3e0 * 2.0)), with the sun from (300, 500, 200) in
    Three's y-up frame. Vertex colours (the streets) are used as linear values; material / instance colours are
    converted from sRGB first."""
    def lin(c: float) -> float:
        return c * 0.0773993808 if c < 0.04045 else (c * 0.9478672986 + 0.0521327014) ** 2.4

    def channels(h: int) -> list[float]:
        return [((h >> s) & 0xFF) / 255 for s in (16, 8, 0)]

    ndl = 500 / math.sqrt(300**2 + 500**2 + 200**2)
    albedo = [lin(c) if linearise else c for c in channels(hex_color)]
    sky = [lin(c) * 1.6 for c in channels(0xE4ECFF)]
    sun = [lin(c) * 2.0 for c in channels(0xFFF3E0)]
    return np.array([srgb_byte((ndl * s + k) * a / math.pi) for a, s, k in zip(albedo, sun, sky)])


def pinhole(camera: CameraPose, point, width: int, height: int) -> tuple[float, float]:
    """(column, row from the top) of a city-frame point: a look-at pinhole camera with vertical fov, z up."""
    eye = np.array([camera.x, camera.y, camera.z])
    f = np.array([camera.target.x, camera.target.y, camera.target.z]) - eye
    f /= np.linalg.norm(f)
    right = np.cross(f, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, f)
    d = np.asarray(point, float) - eye
    scale = (height / 2) / math.tan(math.radians(camera.fov_deg) / 2)
    return width / 2 + scale * (d @ right) / (d @ f), height / 2 - scale * (d @ up) / (d @ f)


@pytest.fixture(scope="module")
def world() -> world_pb2.World:
    return manhattan_grid()


@pytest.fixture(scope="module")
def renderer(ctx, world):
    r = CityRenderer(world, W, H, vertical_fov_deg=60.0, ctx=ctx)
    yield r
    r.release()


@pytest.fixture(scope="module")
def ego(world) -> VehicleState:
    sp = world.spawn_points[1]  # ave1_1, heading north in the right-hand lanes
    return VehicleState(sp.position.x, sp.position.y, sp.heading, 0.0)


def at(image: np.ndarray, col: float, row: float) -> np.ndarray:
    return image[int(row), int(col)].astype(int)


def test_dash_and_chase_frames_look_like_the_game_s(renderer, world, ego, tmp_path):
    actors = actor_poses(world, 12.0)
    for mode in ("dash", "chase"):
        camera = camera_pose(ego, mode, 60.0)
        image = renderer.render(camera, actors, 12.0, ego=ego)
        assert image.shape == (H, W, 3) and image.dtype == np.uint8 and image.flags.c_contiguous
        assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 50, "not blank"
        path = tmp_path / f"{mode}.png"
        assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        print(f"{mode} frame: {path}")
        # Sky straight ahead above the avenue's corridor: the background colour, exactly.
        assert tuple(at(image, W / 2, 2)) == SKY
        # Asphalt in the ego's lane ahead (between the lane's dashed line and the kerb): the game's road colour.
        _, horizon = pinhole(camera, (camera.x + 1e5 * math.cos(camera.yaw), camera.y + 1e5 * math.sin(camera.yaw), camera.z), W, H)
        for ahead in (6.0, 12.0, 25.0):
            col, row = pinhole(camera, (ego.x + 2.6, ego.y + ahead, 0.0), W, H)
            assert row > horizon + 5, "the road is below the horizon"
            np.testing.assert_allclose(at(image, col, row), lit_up_facing(0x2E3033), atol=2)
        # The sidewalk to the right, 0.12 m up, and the buildings behind it rise above the horizon.
        col, row = pinhole(camera, (ego.x + 5.25 + 2.25, ego.y + 20.0, 0.12), W, H)
        np.testing.assert_allclose(at(image, col, row), lit_up_facing(0xA9A8A2), atol=2)


def test_the_renderer_projects_like_a_pinhole_camera(renderer, ego):
    for mode in ("dash", "chase"):
        camera = camera_pose(ego, mode, 60.0, yaw=ego.theta + 0.2)
        points = np.array([[ego.x + 3, ego.y + 20, 0.5], [ego.x - 8, ego.y + 40, 6.0], [ego.x, ego.y + 10, 1.0]])
        np.testing.assert_allclose(renderer.project(camera, points), [pinhole(camera, p, W, H) for p in points], atol=1e-6)
    assert np.isnan(renderer.project(camera_pose(ego, "dash", 60.0), [[ego.x, ego.y - 20, 1.0]])).all()  # behind


def test_actors_appear_where_the_camera_projects_them(renderer, ego):
    camera = camera_pose(ego, "dash", 60.0)
    empty = renderer.render(camera, [], 0.0, ego=ego)
    car = ActorPose("npc", world_pb2.ACTOR_KIND_VEHICLE, ego.x + 2.6, ego.y + 15.0, math.pi / 2, 4.5, 1.9)
    walker = ("pedestrian", ego.x - 1.0, ego.y + 8.0, 0.0, 0.5, 0.5)  # tuples and kind names work too
    image = renderer.render(camera, [car, walker], 0.0, ego=ego)
    changed = np.abs(image.astype(int) - empty.astype(int)).sum(axis=2) > 30
    for centre in ((car.x, car.y, 0.75), (walker[1], walker[2], 0.85)):
        col, row = pinhole(camera, centre, W, H)
        assert changed[int(row), int(col)], f"actor at {centre} shows at pixel ({col:.0f}, {row:.0f})"
    # The first vehicle is drawn in the first NPC colour (0xd9822b, lit; its side faces west of the camera's view
    # axis, facing away from the sun less than the road does) - orange, not the road's grey.
    col, row = pinhole(camera, (car.x, car.y, 0.75), W, H)
    r, g, b = at(image, col, row)
    assert r > g > b and r - b > 60
    # Nothing else moved: the sky, the far left and the bottom row are as before.
    far = ~np.zeros_like(changed)
    for (x, y, z) in ((car.x, car.y, 0.75), (walker[1], walker[2], 0.85)):
        col, row = pinhole(camera, (x, y, z), W, H)
        far[max(0, int(row) - 60):int(row) + 60, max(0, int(col) - 60):int(col) + 60] = False
    assert not changed[far].any()


def test_the_chase_view_shows_the_player_s_car_and_the_dash_view_does_not(renderer, ego):
    chase = camera_pose(ego, "chase", 60.0)
    with_car = renderer.render(chase, [], 0.0, ego=ego)
    without = renderer.render(chase, [], 0.0)
    back = (ego.x - 2.2 * math.cos(ego.theta), ego.y - 2.2 * math.sin(ego.theta), 0.6)  # on the body's rear face
    col, row = pinhole(chase, back, W, H)
    r, g, b = at(with_car, col, row)
    assert b > r + 40 and b > g, "the car's blue paint (0x1565c0)"
    assert not np.array_equal(with_car, without)
    dash = camera_pose(ego, "dash", 60.0)
    np.testing.assert_array_equal(renderer.render(dash, [], 0.0, ego=ego), renderer.render(dash, [], 0.0))


def test_traffic_lights_follow_the_sim_clock(renderer, world):
    pole = next(p for p in geo.control_poles(world) if p.control == world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT)
    offset = {i.id: i.light_offset_s for i in world.intersections}[pole.intersection_id]
    fx, fy = math.cos(pole.facing), math.sin(pole.facing)
    lamp = (pole.position.x + fx * 0.17, pole.position.y + fy * 0.17)
    eye = (lamp[0] + fx * 6.0, lamp[1] + fy * 6.0, 4.5)  # 6 m in front of the signal head, facing it
    camera = CameraPose(eye[0], eye[1], eye[2], pole.facing + math.pi, 0.0, 0.0, 60.0, Vec3(lamp[0], lamp[1], 4.5))
    times = {geo.light_color(world, offset, pole.axis, t): t for t in np.arange(0.0, 60.0, 0.5)}
    assert set(times) == {"green", "yellow", "red"}
    lamps = {"red": (4.85, (0xFF, 0x2A, 0x1A)), "yellow": (4.5, (0xFF, 0xB0, 0x00)), "green": (4.15, (0x19, 0xE0, 0x5A))}
    for state, t in times.items():
        image = renderer.render(camera, [], float(t))
        for lamp_state, (z, colour) in lamps.items():
            col, row = pinhole(camera, (lamp[0], lamp[1], z), W, H)
            px = at(image, col, row)
            if lamp_state == state:
                np.testing.assert_allclose(px, colour, atol=2, err_msg=f"{state} lamp lit at t={t}")
            else:
                assert px.max() < 60, f"{lamp_state} lamp dark at t={t} ({state})"


def test_rendering_is_deterministic_and_batches(renderer, world, ego):
    actors = actor_poses(world, 31.5)
    cameras = [camera_pose(ego, "dash", 60.0), camera_pose(ego, "chase", 60.0)]
    first = [renderer.render(c, actors, 31.5, ego=ego) for c in cameras]
    again = [renderer.render(c, actors, 31.5, ego=ego) for c in cameras]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    many = renderer.render_many(cameras, actors, 31.5, egos=[ego, ego])
    assert many.shape == (2, H, W, 3)
    for a, b in zip(first, many):
        np.testing.assert_array_equal(a, b)


def test_the_bots_wide_resolutions(ctx, world, ego):
    for width, height in ((640, 360), (1280, 720)):
        with CityRenderer(world, width, height, ctx=ctx) as r:
            camera = camera_pose(ego, "dash", 60.0)
            image = r.render(camera, actor_poses(world, 0.0), 0.0, ego=ego)
            assert image.shape == (height, width, 3)
            assert tuple(image[2, width // 2]) == SKY
            col, row = pinhole(camera, (ego.x + 2.6, ego.y + 12.0, 0.0), width, height)
            np.testing.assert_allclose(at(image, col, row), lit_up_facing(0x2E3033), atol=2)


def test_every_traffic_light_approach_has_a_far_side_head_over_its_lanes_that_a_low_camera_sees(ctx, world):
    heads = geo.signal_heads(world)
    lights = [p for p in geo.control_poles(world) if p.control == world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT]
    assert len(heads) == 2 * len(lights) and sum(h.far for h in heads) == len(lights)
    far = next(h for h in heads if h.far)
    near = next(h for h in heads if not h.far and h.road_id == far.road_id and h.intersection_id == far.intersection_id)
    assert far.lamp_radius > near.lamp_radius and far.size[2] > near.size[2]
    centre = next(i.position for i in world.intersections if i.id == far.intersection_id)
    d = (-math.cos(far.facing), -math.sin(far.facing))  # the approach's direction of travel
    # Over the approach's own half of the road (right of the centre line), beyond the junction.
    right = (d[1], -d[0])
    rel = (far.center[0] - centre.x, far.center[1] - centre.y)
    assert rel[0] * d[0] + rel[1] * d[1] > 0 and rel[0] * right[0] + rel[1] * right[1] > 0
    # A dash camera on that lane ~30 m before the junction (45 m from the head), at the bots' 640x360 and a 60 degree
    # vertical field of view: the lit lamp is ~3 px across (a near-side lamp from there: under 2).
    eye = (far.center[0] - d[0] * 45.0, far.center[1] - d[1] * 45.0, 1.4)
    camera = CameraPose(*eye, math.atan2(d[1], d[0]), 0.0, 0.0, 60.0, Vec3(eye[0] + d[0] * 10, eye[1] + d[1] * 10, 1.4))
    offset = {i.id: i.light_offset_s for i in world.intersections}[far.intersection_id]
    t = next(t for t in np.arange(0.0, 60.0, 0.5) if geo.light_color(world, offset, far.axis, t) == "red")
    with CityRenderer(world, 640, 360, ctx=ctx) as r:
        image = r.render(camera, [], float(t)).astype(int)
    col, row = pinhole(camera, far.lamps[0], 640, 360)
    assert 0 <= col < 640 and 0 <= row < 360, "the far head is in the frame"
    red = (image[..., 0] > 200) & (image[..., 1] < 90) & (image[..., 2] < 90)
    window = red[max(0, int(row) - 6):int(row) + 7, max(0, int(col) - 6):int(col) + 7]
    assert window.sum() >= 4, f"the lit red lamp covers {window.sum()} pixels around ({col:.0f}, {row:.0f})"


def test_a_signal_heads_visors_hide_its_lamps_from_the_cross_street(ctx, world):
    """Seen from in front a lit lamp shows; seen from the side (where the cross street's drivers are) the head's
    visors hide it, so a junction never shows the cross traffic's green beside one's own red."""
    far = next(h for h in geo.signal_heads(world) if h.far)
    offset = {i.id: i.light_offset_s for i in world.intersections}[far.intersection_id]
    t = next(t for t in np.arange(0.0, 60.0, 0.5) if geo.light_color(world, offset, far.axis, t) == "red")
    fx, fy = math.cos(far.facing), math.sin(far.facing)
    lamp = far.lamps[0]

    def red_pixels(direction: tuple[float, float], distance: float) -> int:
        eye = (lamp[0] + direction[0] * distance, lamp[1] + direction[1] * distance, lamp[2])
        camera = CameraPose(*eye, math.atan2(-direction[1], -direction[0]), 0.0, 0.0, 30.0, Vec3(*lamp))
        with CityRenderer(world, 320, 180, ctx=ctx) as r:
            image = r.render(camera, [], float(t)).astype(int)
        col, row = pinhole(camera, lamp, 320, 180)
        red = (image[..., 0] > 200) & (image[..., 1] < 90) & (image[..., 2] < 90)
        return int(red[max(0, int(row) - 15):int(row) + 16, max(0, int(col) - 15):int(col) + 16].sum())

    assert red_pixels((fx, fy), 8.0) >= 20, "from in front the lit lamp shows"
    for side in ((-fy, fx), (fy, -fx)):  # from the left and from the right, square to the head
        assert red_pixels(side, 8.0) == 0, "from the side the visors hide it"
    assert len(far.visors) == 2 and all(size[0] > 2 * far.lamp_radius for _, size, _ in far.visors)

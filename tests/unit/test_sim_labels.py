"""The label renderer (scalediffusion/sim/labels.py): semantic, depth and instance maps that line up with
CityRenderer's picture of the same inputs, CARLA's palette and depth encoding, and actor boxes from visible pixels.
Real OpenGL through EGL (Mesa llvmpipe on a CPU-only machine), as tests/unit/test_sim_render.py; skipped only where
EGL cannot give a context. Small frames keep it quick."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scalediffusion.city.actors import ActorPose
from scalediffusion.city.grid import manhattan_grid
from scalediffusion.sim import geometry as geo
from scalediffusion.sim.camera import CameraPose, Vec3, camera_pose
from scalediffusion.sim.labels import (
    CARLA_PALETTE,
    DEPTH_FAR_M,
    LabelRenderer,
    SemanticClass,
    actor_boxes,
    colorize,
    decode_depth_carla,
    encode_depth_carla,
)
from scalediffusion.sim.lanes import LaneMap
from scalediffusion.sim.render import COLORS, CityRenderer, lambert, srgb_encode
from scalediffusion.sim.suites import suite
from scalediffusion.sim.vehicle import VehicleState
from scalediffusion.v1 import world_pb2

W, H = 320, 180
DEPTH_LEVEL_M = DEPTH_FAR_M / (2**24 - 1)


@pytest.fixture(scope="module")
def world() -> world_pb2.World:
    return manhattan_grid(suite("traffic@1").world)  # the evaluator's city


@pytest.fixture(scope="module")
def lanes(world) -> LaneMap:
    return LaneMap(world)


@pytest.fixture(scope="module")
def renderers(ctx, world):
    rgb, labels = CityRenderer(world, W, H, ctx=ctx), LabelRenderer(world, W, H, ctx=ctx)
    yield rgb, labels
    labels.release()
    rgb.release()


def route_states(lanes: LaneMap, route_id: str, count: int) -> list[VehicleState]:
    """Cars on an evaluator route's lane: its start, end and evenly between."""
    route = next(r for r in suite("traffic@1").routes if r.route_id == route_id)
    line = lanes.path(lanes.route_segments(list(route.nodes))).line
    return [VehicleState(*line.point_at(s), 0.0) for s in np.linspace(5.0, line.length - 5.0, count)]


def ahead(state: VehicleState, forward: float, right: float = 0.0, z: float = 0.0) -> np.ndarray:
    c, s = math.cos(state.theta), math.sin(state.theta)
    return np.array([state.x + c * forward + s * right, state.y + s * forward - c * right, z])


def planar_depth(camera: CameraPose, point) -> float:
    eye = np.array([camera.x, camera.y, camera.z])
    axis = np.array([camera.target.x, camera.target.y, camera.target.z]) - eye
    return float((np.asarray(point, float) - eye) @ axis / np.linalg.norm(axis))


def lit_flat(color: int) -> np.ndarray:
    """The sRGB bytes CityRenderer gives an upward-facing street surface of this vertex colour (no fog)."""
    albedo = np.array([geo.rgb(color)])
    return 255 * srgb_encode(lambert(albedo, np.array([[0.0, 0.0, 1.0]])))[0]


def near(image: np.ndarray, color, tol: float) -> np.ndarray:
    return (np.abs(image.astype(float) - np.asarray(color, float)) <= tol).all(axis=2)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_sky_road_and_markings_agree_with_the_picture_and_a_2m_shift_breaks_them(ctx, world, lanes):
    """From poses along two evaluator routes (dash and chase): the picture's sky (the background colour), road (the
    lit asphalt / junction colour; exact, as flat vertex-coloured surfaces are, so grey facades do not pass) and lane
    markings (lit white / yellow) against the labels' SKY, ROAD and ROAD_LINE (markings pooled over the poses: some
    show a handful of marking pixels; they need the flat layers' polygon offsets). Labels rendered 2 m to the right
    of the picture's pose do not agree."""
    sky = np.array(geo.rgb(COLORS["sky"])) * 255
    road = [lit_flat(COLORS["asphalt"]), lit_flat(COLORS["junction"])]
    paint = [lit_flat(COLORS["white"]), lit_flat(COLORS["yellow"])]
    both = either = 0
    with CityRenderer(world, 160, 90, ctx=ctx) as rgb, LabelRenderer(world, 160, 90, ctx=ctx) as labels:
        for state in route_states(lanes, "r0_north_right", 4) + route_states(lanes, "r1_east_left", 4):
            for mode in ("dash", "chase"):
                camera = camera_pose(state, mode, 60.0)
                image = rgb.render(camera, [], 0.0, ego=state)
                sky_mask = near(image, sky, 2)
                road_mask = near(image, road[0], 1) | near(image, road[1], 1)
                assert sky_mask.sum() > 50 and road_mask.sum() > 1000
                semantic = labels.render(camera, [], 0.0, ego=state).semantic
                where = f"{mode} at ({state.x:.1f}, {state.y:.1f})"
                assert iou(sky_mask, semantic == SemanticClass.SKY) >= 0.9, where
                assert iou(road_mask, semantic == SemanticClass.ROAD) >= 0.9, where
                paint_mask = near(image, paint[0], 1) | near(image, paint[1], 1)
                both += (paint_mask & (semantic == SemanticClass.ROAD_LINE)).sum()
                either += (paint_mask | (semantic == SemanticClass.ROAD_LINE)).sum()
                shifted = VehicleState(*ahead(state, 0.0, right=2.0)[:2], state.theta, 0.0)
                wrong = labels.render(camera_pose(shifted, mode, 60.0), [], 0.0, ego=shifted).semantic
                assert min(iou(sky_mask, wrong == SemanticClass.SKY), iou(road_mask, wrong == SemanticClass.ROAD)) < 0.9, where
    assert either > 500 and both / either >= 0.9


def test_actor_pixels_are_exactly_the_pixels_the_actors_change_in_the_picture(renderers, lanes):
    rgb, labels = renderers
    state = route_states(lanes, "r0_north_right", 2)[0]
    camera = camera_pose(state, "dash", 60.0)
    car = ("vehicle", *ahead(state, 15.0)[:2], state.theta, 4.5, 1.9)
    walker = ("pedestrian", *ahead(state, 8.0, right=-1.5)[:2], 0.0, 0.5, 0.5)
    changed = (rgb.render(camera, [car, walker]) != rgb.render(camera, [])).any(axis=2)
    out = labels.render(camera, [car, walker])
    assert changed.sum() > 100
    assert not (changed & (out.instance == 0)).any(), "every changed pixel is an actor's"
    assert (out.instance > 0).sum() - changed.sum() <= 0.01 * changed.sum(), "nearly every actor pixel changed"
    np.testing.assert_array_equal(out.semantic[out.instance == 1], SemanticClass.CAR)
    np.testing.assert_array_equal(out.semantic[out.instance == 2], SemanticClass.PEDESTRIAN)


def test_depth_grows_along_the_road_and_is_planar_depth(renderers, lanes):
    rgb, labels = renderers
    state = route_states(lanes, "r0_north_right", 4)[0]  # on the avenue, heading north
    camera = camera_pose(state, "dash", 60.0)
    lead = ActorPose("lead", world_pb2.ACTOR_KIND_VEHICLE, *ahead(state, 15.0)[:2], state.theta, 4.5, 1.9)
    out = labels.render(camera, [lead])
    assert out.depth_m.dtype == np.float32 and out.depth_m.shape == (H, W)
    assert (out.depth_m[out.semantic == SemanticClass.SKY] == DEPTH_FAR_M).all()

    # Up the image column through the empty lane 40 m ahead: road depth rises from the bottom row to the horizon.
    bare = labels.render(camera)
    col = int(rgb.project(camera, [ahead(state, 40.0)])[0, 0])
    road = bare.semantic[::-1, col] == SemanticClass.ROAD
    depth = bare.depth_m[::-1, col][road].astype(np.float64)
    assert len(depth) > 40 and depth[0] < 5.0 and depth[-1] > 100.0
    assert (np.diff(depth) > -1e-5 * depth[1:]).all(), "planar depth along the road increases"

    # The lead car's rear face (square to the camera): the depth at its projected pixel is its planar distance.
    rear = ahead(state, 15.0 - 2.25, z=0.75)
    c, r = rgb.project(camera, [rear])[0]
    assert out.instance[int(r), int(c)] == 1
    assert out.depth_m[int(r), int(c)] == pytest.approx(planar_depth(camera, rear), rel=0.01)

    # A ground point on a pixel's centre ray, 8 m down the lane: the depth buffer is linearised exactly.
    view, proj = rgb.camera_matrices(camera)
    row, column = int(rgb.project(camera, [ahead(state, 8.0)])[0, 1]), W // 2
    ndc = np.array([(column + 0.5) / W * 2 - 1, 1 - (row + 0.5) / H * 2, 1.0, 1.0])
    far = np.linalg.inv(proj @ view) @ ndc
    eye = np.array([camera.x, camera.y, camera.z])
    ray = far[:3] / far[3] - eye
    point = eye + ray * (-eye[2] / ray[2])  # where the ray meets z = 0
    np.testing.assert_allclose(rgb.project(camera, [point])[0], (column + 0.5, row + 0.5), atol=1e-6)
    assert out.semantic[row, column] == SemanticClass.ROAD
    assert out.depth_m[row, column] == pytest.approx(planar_depth(camera, point), rel=1e-4)


def test_props_and_surfaces_carry_their_classes(renderers, world):
    _, labels = renderers
    light = next(p for p in geo.control_poles(world) if p.control == world_pb2.INTERSECTION_CONTROL_TRAFFIC_LIGHT)
    stop = next(p for p in geo.control_poles(world) if p.control == world_pb2.INTERSECTION_CONTROL_STOP_SIGN)
    for pole, things in ((light, {4.5: SemanticClass.TRAFFIC_LIGHT, 2.0: SemanticClass.POLE}),
                         (stop, {2.45: SemanticClass.TRAFFIC_SIGN, 1.0: SemanticClass.POLE})):
        fx, fy = math.cos(pole.facing), math.sin(pole.facing)
        eye = (pole.position.x + fx * 8.0, pole.position.y + fy * 8.0, 2.5)
        camera = CameraPose(*eye, pole.facing + math.pi, 0.0, 0.0, 60.0, Vec3(pole.position.x, pole.position.y, 2.5))
        out = labels.render(camera)
        for z, cls in things.items():
            c, r = labels.project(camera, [(pole.position.x, pole.position.y, z)])[0]
            assert out.semantic[int(r), int(c)] == cls, f"{cls.name} at z={z}"
    # The player's car in the chase view: a car, not an actor.
    ego = VehicleState(world.spawn_points[1].position.x, world.spawn_points[1].position.y, world.spawn_points[1].heading, 0.0)
    camera = camera_pose(ego, "chase", 60.0)
    out = labels.render(camera, [], ego=ego)
    c, r = labels.project(camera, [(ego.x - 2.2 * math.cos(ego.theta), ego.y - 2.2 * math.sin(ego.theta), 0.6)])[0]
    assert out.semantic[int(r), int(c)] == SemanticClass.CAR and out.instance[int(r), int(c)] == 0
    dash = labels.render(camera_pose(ego, "dash", 60.0), [], ego=ego)
    for cls in (SemanticClass.ROAD, SemanticClass.SIDEWALK, SemanticClass.BUILDING, SemanticClass.ROAD_LINE,
                SemanticClass.TERRAIN, SemanticClass.SKY):
        assert (dash.semantic == cls).any(), cls.name
    assert (dash.instance == 0).all()
    # A parked car, seen from 10 m behind it: a car.
    parked = world.parked[0]
    behind = VehicleState(parked.position.x - 10 * math.cos(parked.heading), parked.position.y - 10 * math.sin(parked.heading),
                          parked.heading, 0.0)
    camera = camera_pose(behind, "dash", 60.0)
    c, r = labels.project(camera, [(parked.position.x, parked.position.y, 0.75)])[0]
    assert labels.render(camera).semantic[int(r), int(c)] == SemanticClass.CAR


def test_boxes_of_visible_actors(renderers, world, lanes):
    rgb, labels = renderers
    state = route_states(lanes, "r0_north_right", 4)[0]
    camera = camera_pose(state, "dash", 60.0)
    road = next(r for r in world.roads if r.id == lanes.lane_at(state.x, state.y, state.theta)[0].road_id)
    # The lane's offset right of the road's centre line; the pedestrian stands mid-sidewalk on the right.
    lane_right = float(np.dot([state.x - road.start.x, state.y - road.start.y], [math.sin(state.theta), -math.cos(state.theta)]))
    on_sidewalk = road.width_m / 2 + road.sidewalk_m / 2 - lane_right
    walker_xy = ahead(state, 14.0, right=on_sidewalk)[:2]
    bare = labels.render(camera)
    c, r = labels.project(camera, [(*walker_xy, 0.12)])[0]
    assert bare.semantic[int(r), int(c)] == SemanticClass.SIDEWALK
    hidden_xy = ahead(state, 40.0, right=25.0)[:2]  # inside the block, behind the facades
    c, r = labels.project(camera, [(*hidden_xy, 0.75)])[0]
    assert 0 <= c < W and 0 <= r < H and bare.semantic[int(r), int(c)] == SemanticClass.BUILDING

    actors = [
        ActorPose("npc-1", world_pb2.ACTOR_KIND_VEHICLE, *ahead(state, 15.0)[:2], state.theta, 4.5, 1.9),
        ("pedestrian", *walker_xy, state.theta, 0.5, 0.5),
        ("vehicle", *hidden_xy, state.theta, 4.5, 1.9),
        ("vehicle", *ahead(state, -12.0)[:2], state.theta, 4.5, 1.9),  # behind the camera
    ]
    out = labels.render(camera, actors)
    boxes = actor_boxes(labels, camera, actors, out.instance)
    assert [b["id"] for b in boxes] == ["npc-1", 1]
    assert actor_boxes(labels.camera_matrices(camera), camera, actors, out.instance) == boxes
    car, walker = boxes
    assert (car["class"], walker["class"]) == ("car", "pedestrian")
    assert car["box3d"]["center"] == pytest.approx([*ahead(state, 15.0)[:2], 0.75])
    assert car["box3d"]["extent"] == pytest.approx([2.25, 0.95, 0.65])
    assert car["box3d"]["yaw"] == pytest.approx(state.theta)
    assert walker["box3d"]["center"][2] == pytest.approx(0.85) and walker["box3d"]["extent"] == pytest.approx([0.25, 0.25, 0.85])
    assert car["distance_m"] == pytest.approx(planar_depth(camera, car["box3d"]["center"]))
    for k, box in ((0, car), (1, walker)):
        x0, y0, x1, y1 = box["box2d"]
        mine = out.instance == k + 1
        assert box["visible_pixels"] == mine.sum() >= 10
        assert mine[y0:y1, x0:x1].sum() == mine.sum()  # every visible pixel inside, the edges touched
        assert mine[y0, x0:x1].any() and mine[y1 - 1, x0:x1].any() and mine[y0:y1, x0].any() and mine[y0:y1, x1 - 1].any()
        expected = SemanticClass.CAR if box["class"] == "car" else SemanticClass.PEDESTRIAN
        np.testing.assert_array_equal(out.semantic[mine], expected)
    c, r = rgb.project(camera, [car["box3d"]["center"]])[0]
    x0, y0, x1, y1 = car["box2d"]
    assert x0 <= c < x1 and y0 <= r < y1
    assert (out.semantic[y0:y1, x0:x1] == SemanticClass.CAR).mean() > 0.8


def test_carla_depth_encoding_round_trips():
    rng = np.random.default_rng(0)
    depth = np.concatenate([rng.uniform(0.0, DEPTH_FAR_M, 5000), [0.0, DEPTH_LEVEL_M, 0.1, 999.99, DEPTH_FAR_M, 1500.0]])
    depth = depth.astype(np.float32).reshape(2, -1)
    rgb = encode_depth_carla(depth)
    assert rgb.dtype == np.uint8 and rgb.shape == (*depth.shape, 3)
    back = decode_depth_carla(rgb)
    assert back.dtype == np.float32
    assert np.abs(back.astype(np.float64) - np.minimum(depth, DEPTH_FAR_M)).max() <= DEPTH_LEVEL_M
    assert encode_depth_carla(np.array([0.0, DEPTH_FAR_M, 2000.0])).tolist() == [[0, 0, 0], [255, 255, 255], [255, 255, 255]]
    # CARLA's formula: (R + G * 256 + B * 65536) / (2^24 - 1) * 1000 m.
    np.testing.assert_allclose(decode_depth_carla(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [17, 2, 3]], np.uint8)),
                               np.array([1, 256, 65536, 17 + 2 * 256 + 3 * 65536]) * DEPTH_LEVEL_M, rtol=1e-6)


def test_carla_palette_and_colorize():
    assert CARLA_PALETTE == {
        0: (0, 0, 0), 1: (128, 64, 128), 2: (244, 35, 232), 3: (70, 70, 70), 6: (153, 153, 153), 7: (250, 170, 30),
        8: (220, 220, 0), 10: (152, 251, 152), 11: (70, 130, 180), 12: (220, 20, 60), 14: (0, 0, 142),
        24: (157, 234, 50),
    }
    semantic = np.array([[1, 11, 14], [24, 12, 200]], np.uint8)
    out = colorize(semantic)
    assert out.dtype == np.uint8 and out.shape == (2, 3, 3)
    assert out.tolist() == [[[128, 64, 128], [70, 130, 180], [0, 0, 142]], [[157, 234, 50], [220, 20, 60], [0, 0, 0]]]

"""Free ground-truth labels for replayed frames: a semantic map (CARLA's tags), a depth map (CARLA's depth camera) and an
instance map of the moving actors, rendered from exactly the camera poses, actors and scene that
scalediffusion/sim/render.py's CityRenderer draws the picture from, so each label pixel is the picture's pixel.

LabelRenderer is a second set of programs over the same scene (render.py's SceneRenderer: static_parts, signal_lamps,
actor_instances, the same placement GLSL, draw order, polygon offsets, culling and y-flipped projection). It writes
(class, instance, view depth) into a float colour attachment: no lighting, no fog, no MSAA, and no depth-buffer
linearisation (the depth is the eye-space distance along the camera's axis, interpolated per fragment, exact for
planar triangles). Pure rendering; no I/O besides OpenGL.

    labels = LabelRenderer(world, 256, 144).render(camera_pose(ego, "dash", 60.0), actors, t_s, ego=ego)
    rgb = colorize(labels.semantic); depth_png = encode_depth_carla(labels.depth_m)
    boxes = actor_boxes(renderer, camera, actors, labels.instance)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from scalediffusion.sim.geometry import MeshData
from scalediffusion.sim.render import (
    INSTANCE_WORLD_GLSL,
    LAMP_WORLD_GLSL,
    PLACE_GLSL,
    RIGID_WORLD_GLSL,
    STATIC_WORLD_GLSL,
    SceneRenderer,
    SemanticClass,
    StaticPart,
    actor_instances,
)
from scalediffusion.v1 import world_pb2

__all__ = ["CARLA_PALETTE", "DEPTH_FAR_M", "LabelRenderer", "Labels", "SemanticClass", "actor_boxes", "colorize",
           "decode_depth_carla", "encode_depth_carla"]

DEPTH_FAR_M = 1000.0  # CARLA's depth camera: the far plane, and the sky's depth
_DEPTH_LEVELS = 2**24 - 1  # CARLA's 24-bit depth encoding

# CARLA 0.9.14+'s semantic palette (Cityscapes colours) for the classes the scene has.
CARLA_PALETTE: dict[int, tuple[int, int, int]] = {
    SemanticClass.UNLABELED: (0, 0, 0),
    SemanticClass.ROAD: (128, 64, 128),
    SemanticClass.SIDEWALK: (244, 35, 232),
    SemanticClass.BUILDING: (70, 70, 70),
    SemanticClass.POLE: (153, 153, 153),
    SemanticClass.TRAFFIC_LIGHT: (250, 170, 30),
    SemanticClass.TRAFFIC_SIGN: (220, 220, 0),
    SemanticClass.TERRAIN: (152, 251, 152),
    SemanticClass.SKY: (70, 130, 180),
    SemanticClass.PEDESTRIAN: (220, 20, 60),
    SemanticClass.CAR: (0, 0, 142),
    SemanticClass.ROAD_LINE: (157, 234, 50),
}

_HEAD = "#version 330\n" + PLACE_GLSL + "flat out vec2 v_label;  // semantic class, instance (0: not an actor)\n"

_STATIC_VS = _HEAD + STATIC_WORLD_GLSL + """
in float in_class;
void main() {
    v_label = vec2(in_class, 0.0);
    place(static_world());
}
"""

_RIGID_VS = _HEAD + RIGID_WORLD_GLSL + """
uniform vec2 u_label;
void main() {
    v_label = u_label;
    place(rigid_world());
}
"""

_INSTANCED_VS = _HEAD + INSTANCE_WORLD_GLSL + """
in vec2 i_label;
void main() {
    v_label = i_label;
    place(instance_world(instance_rotation()));
}
"""

_LAMP_VS = _HEAD + LAMP_WORLD_GLSL + """
uniform vec2 u_label;
void main() {
    v_label = u_label;
    place(lamp_world());
}
"""

_LABEL_FS = """
#version 330
flat in vec2 v_label;
in float v_depth;
out vec4 f_label;
void main() {
    f_label = vec4(v_label, v_depth, 1.0);
}
"""


@dataclass(frozen=True, eq=False)
class Labels:
    """One frame's labels, row 0 at the top, pixel for pixel with CityRenderer.render's image of the same inputs."""

    semantic: np.ndarray  # uint8 [H, W]: SemanticClass ids (CARLA's tags)
    depth_m: np.ndarray  # float32 [H, W]: distance along the camera's axis (CARLA's planar depth); sky DEPTH_FAR_M
    instance: np.ndarray  # int32 [H, W]: k + 1 on the k-th actor passed in, 0 elsewhere (static things, the player's car)


class LabelRenderer(SceneRenderer):
    """Renders Labels of a World: the same arguments as CityRenderer (world, size, default vertical fov, an optional
    shared moderngl context) and the same render(camera, actors, t_s, ego, draw_ego) conventions. The player's car
    is CAR with instance 0 when drawn (by default when the camera is off the car: the chase camera). Traffic-light
    states do not change the labels (the lamps are TRAFFIC_LIGHT whatever their colour); t_s is taken for the
    signature's sake. Geometry beyond DEPTH_FAR_M (far ground) keeps its true depth; only the sky is set to it."""

    def __init__(self, world: world_pb2.World, width: int, height: int, vertical_fov_deg: float = 60.0, ctx=None) -> None:
        super().__init__(world, width, height, vertical_fov_deg, ctx)
        ctx = self.ctx
        keep = self._keep
        # Float32 (class, instance, depth, 1) per pixel: class and instance ids are exact in float up to 2^24.
        self._fbo = keep(ctx.framebuffer(keep(ctx.renderbuffer((self.width, self.height), 4, dtype="f4")),
                                         keep(ctx.depth_renderbuffer((self.width, self.height)))))
        self._stat = keep(ctx.program(vertex_shader=_STATIC_VS, fragment_shader=_LABEL_FS))
        self._rigid = keep(ctx.program(vertex_shader=_RIGID_VS, fragment_shader=_LABEL_FS))
        self._instanced = keep(ctx.program(vertex_shader=_INSTANCED_VS, fragment_shader=_LABEL_FS))
        self._lamp = keep(ctx.program(vertex_shader=_LAMP_VS, fragment_shader=_LABEL_FS))
        self._programs = (self._stat, self._rigid, self._instanced, self._lamp)
        self._car_program = self._rigid
        self._rigid["u_model"].value = tuple(np.eye(4, dtype="f4").ravel())
        self._rigid["u_label"].value = (float(SemanticClass.CAR), 0.0)
        self._lamp["u_label"].value = (float(SemanticClass.TRAFFIC_LIGHT), 0.0)
        self._build_scene()
        if self._lamps is not None and self._lamp_data is not None:
            self._lamps.set(np.column_stack([self._lamp_data.positions, self._lamp_data.radii]).astype(np.float32))
        self._buffer = np.empty((self.height, self.width, 4), np.float32)

    def _part_vao(self, part: StaticPart):
        return self._vao(self._stat, [part.mesh.positions, part.classes[:, None], part.mesh.indices], ("in_pos", "in_class"))

    def _instances(self, mesh: MeshData):
        return self._make_instances(self._instanced, mesh, "3f 1f 3f 2f", ("i_pos", "i_heading", "i_scale", "i_label"), 9)

    def _lamp_instances(self, mesh: MeshData):
        return self._make_instances(self._lamp, mesh, "3f 1f", ("i_pos", "i_radius"), 4)

    def _car_vao(self, mesh: MeshData):
        return self._vao(self._rigid, [mesh.positions, mesh.indices], ("in_pos",))

    def _instance_rows(self, rows: np.ndarray, index: np.ndarray, pedestrian: bool) -> np.ndarray:
        data = np.empty((len(rows), 9), np.float32)
        data[:, :7] = rows
        data[:, 7] = SemanticClass.PEDESTRIAN if pedestrian else SemanticClass.CAR
        data[:, 8] = index + 1
        return data

    def render(self, camera, actors: Sequence = (), t_s: float = 0.0, ego=None, draw_ego: bool | None = None) -> Labels:
        """The labels of what CityRenderer.render(camera, actors, t_s, ego, draw_ego) shows (see there)."""
        self._update_actors(actors)
        self._draw_scene(self._fbo, (float(SemanticClass.SKY), 0.0, DEPTH_FAR_M, 1.0), camera, ego, draw_ego)
        self._fbo.read_into(self._buffer, components=4, dtype="f4", alignment=1)
        return Labels(self._buffer[..., 0].astype(np.uint8), self._buffer[..., 2].copy(),
                      self._buffer[..., 1].astype(np.int32))


def colorize(semantic: np.ndarray) -> np.ndarray:
    """A semantic map's CARLA colours: RGB uint8 [H, W, 3] (ids outside CARLA_PALETTE black)."""
    lut = np.zeros((256, 3), np.uint8)
    for cls, color in CARLA_PALETTE.items():
        lut[cls] = color
    return lut[np.asarray(semantic, np.uint8)]


def encode_depth_carla(depth_m: np.ndarray) -> np.ndarray:
    """CARLA's depth image: normalized = (R + G * 256 + B * 65536) / (2^24 - 1), depth = 1000 m * normalized; depth
    clipped to [0, 1000] m, rounded to the nearest level (1000 / (2^24 - 1) m). RGB uint8 [H, W, 3]."""
    d = np.clip(np.asarray(depth_m, np.float64), 0.0, DEPTH_FAR_M)
    level = np.rint(d / DEPTH_FAR_M * _DEPTH_LEVELS).astype(np.uint32)
    return np.stack([level & 0xFF, (level >> 8) & 0xFF, level >> 16], axis=-1).astype(np.uint8)


def decode_depth_carla(rgb: np.ndarray) -> np.ndarray:
    """Metres (float32 [H, W]) of a CARLA depth image (encode_depth_carla's inverse, to within one level)."""
    c = np.asarray(rgb, np.uint32)
    level = c[..., 0] + c[..., 1] * 256 + c[..., 2] * 65536
    return (level * (DEPTH_FAR_M / _DEPTH_LEVELS)).astype(np.float32)


def actor_boxes(renderer_or_camera_matrices, camera, actors: Sequence, instance: np.ndarray) -> list[dict]:
    """Boxes of the actors seen in an instance map (Labels.instance of render(camera, actors, ...)).

    renderer_or_camera_matrices: the renderer (anything with camera_matrices(camera)) or its (view, projection) pair.
    Actors are read as the renderers read them (render.actor_fields: kind, x, y, heading, length, width; ActorPose or
    tuples). An actor gets a box when at least one pixel of it is visible; in `actors` order:

      id             the actor's id where it has one (ActorPose.id), else its index in `actors`
      class          "car" (vehicles) or "pedestrian"
      box3d          {"center": [x, y, z], "extent": [half length, half width, half height], "yaw": heading}: the
                     box the renderers draw, in the city frame (metres, x east, y north, z up; yaw radians
                     counter-clockwise from +x about z). Vehicles: length x width x 1.3 m, z 0.1 .. 1.4 (centre 0.75);
                     pedestrians: width x width x PEDESTRIAN_HEIGHT_M standing on the ground (their capsule's box)
      box2d          [x_min, y_min, x_max, y_max]: pixel bounds of its visible pixels, columns / rows from the top
                     left, min inclusive and max exclusive (ints)
      visible_pixels how many pixels show it
      distance_m     the planar depth of its box's centre (along the camera's axis, as Labels.depth_m)
    """
    if isinstance(renderer_or_camera_matrices, tuple):
        view = np.asarray(renderer_or_camera_matrices[0], np.float64)
    else:
        view = renderer_or_camera_matrices.camera_matrices(camera)[0]
    inst = np.asarray(instance)
    counts = np.bincount(inst.ravel().clip(0), minlength=len(actors) + 1)
    rows, cols = np.nonzero(inst > 0)
    ids = inst[rows, cols]
    cars, car_index, peds, ped_index = actor_instances(actors)
    box_of = {int(k): (row, "car") for row, k in zip(cars, car_index)}
    box_of.update({int(k): (row, "pedestrian") for row, k in zip(peds, ped_index)})
    out = []
    for k, actor in enumerate(actors):
        n = int(counts[k + 1]) if k + 1 < len(counts) else 0
        if n == 0:
            continue
        (x, y, z, heading, sx, sy, sz), cls = box_of[k]
        mine = ids == k + 1
        r, c = rows[mine], cols[mine]
        centre = np.array([x, y, z, 1.0])
        out.append({
            "id": getattr(actor, "id", k) if not isinstance(actor, (tuple, list)) else k,
            "class": cls,
            "box3d": {"center": [float(x), float(y), float(z)], "extent": [float(sx / 2), float(sy / 2), float(sz / 2)],
                      "yaw": float(heading)},
            "box2d": [int(c.min()), int(r.min()), int(c.max()) + 1, int(r.max()) + 1],
            "visible_pixels": n,
            "distance_m": float(-(view @ centre)[2]),
        })
    return out


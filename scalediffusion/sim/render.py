"""A front-camera renderer of the city for the closed-loop evaluator and the bot players: an OpenGL (moderngl, EGL,
headless) port of the game's Three.js view, clients/web/src/render/scene.ts, so a policy trained on game frames sees
the same kind of image: the same geometry (scalediffusion/sim/geometry.py, the port of worldGeometry.ts), colours,
lights, fog and camera (scalediffusion/sim/camera.py; a vertical field of view, near 0.1 m, far 2000 m).

What is reproduced of Three.js r187's pipeline, for the materials scene.ts uses:
- colour management: hex colours given to materials and instances are sRGB and converted to linear; vertex colours
  (the roads, buildings, props meshes) are used as they are, i.e. read as linear; the output is sRGB-encoded with
  Three's sRGBTransferOETF; the background and fog colours are the sRGB hex values;
- MeshLambertMaterial under a HemisphereLight (0xe4ecff / 0x5a564e, 1.6) and a DirectionalLight (0xfff3e0, 2.0,
  from (300, 500, 200) in Three's y-up frame): albedo / pi * (hemisphere + n.l * sun), no legacy light scaling;
  lighting is evaluated per vertex (every lit surface here is flat, so that is exact) and the fog per fragment;
- Fog(sky, 250, 1200): smoothstep over view depth, mixed after the sRGB encoding as Three does;
- polygon offsets of the flat layers, back-face culling (double-sided props), the facade window tile (drawn
  analytically, box-filtered per pixel, instead of the game's mipmapped anisotropic canvas texture), the instanced NPC
  boxes / pedestrian capsules / unlit lamp spheres, and the player's car (drawn unless the camera sits inside it).
MSAA (the game's `antialias: true`) is optional (`samples=4`); it is off by default because it halves the frame rate
on llvmpipe. Against the game itself (scene.ts in Chromium on ANGLE/llvmpipe, same poses, 640x360) about 9 pixels in
10 are within 1/255 and the mean absolute difference is about 1/255, the rest being edge antialiasing.

The scene is described once (static_parts with each part's SemanticClass, polygon-offset layer and culling;
signal_lamps; actor_instances; the placement GLSL; SceneRenderer's draw order and GL state) and drawn by two renderers:
CityRenderer here, and scalediffusion/sim/labels.py's LabelRenderer (semantic, depth and instance maps that line up
with this picture pixel for pixel).

    renderer = CityRenderer(world, 256, 256)
    image = renderer.render(camera_pose(ego, "dash", 60.0), actor_poses, t_s, ego=ego)   # RGB uint8 [H, W, 3]
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Self

import numpy as np
import numpy.typing as npt

from scalediffusion.sim import geometry as geo
from scalediffusion.sim.geometry import MeshData, Vec2
from scalediffusion.v1 import world_pb2

if TYPE_CHECKING:  # imported where a context is made: only rendering needs OpenGL
    import moderngl

__all__ = ["COLORS", "FAR_M", "NEAR_M", "PEDESTRIAN_HEIGHT_M", "VEHICLE_CENTER_Z_M", "VEHICLE_HEIGHT_M", "CityRenderer",
           "SceneRenderer", "SemanticClass", "SignalLamps", "StaticPart", "actor_fields", "actor_instances", "create_context",
           "lambert", "look_at", "perspective", "signal_lamps", "srgb_encode", "srgb_to_linear", "static_parts"]

# clients/web/src/render/scene.ts
COLORS = {
    "sky": 0xB4CDE6, "ground": 0x77786F, "asphalt": 0x2E3033, "junction": 0x323437, "sidewalk": 0xA9A8A2,
    "yellow": 0xE2B93B, "white": 0xEEEEEE, "pole": 0x2E3235, "head": 0x1D1F21, "stop": 0xC4161C, "lampOff": 0x262626,
    "red": 0xFF2A1A, "amber": 0xFFB000, "green": 0x19E05A,
}
NPC_COLORS = (0xD9822B, 0xC0392B, 0xE5C12E, 0x2E8B57, 0xF0F0F0, 0x7D3C98)
PEDESTRIAN_COLORS = (0xC0504D, 0x4F81BD, 0x9BBB59, 0x8064A2, 0xF79646, 0x404040)
PARKED_COLORS = (0xB0B4B8, 0x1F2A44, 0x7A1F1F, 0xE8E8E8, 0x2D2D2D, 0x4A5A3A, 0x8A6D3B, 0x35507A)
PEDESTRIAN_HEIGHT_M = 1.7
# Vehicles (NPCs, parked cars) are boxes this tall, centred this high (0.1 .. 1.4 m), as scene.ts draws them.
VEHICLE_HEIGHT_M, VEHICLE_CENTER_Z_M = 1.3, 0.75
CAR_PAINT, CAR_GLASS, CAR_TYRE = 0x1565C0, 0x22303A, 0x111111
NEAR_M, FAR_M = 0.1, 2000.0
FOG_NEAR_M, FOG_FAR_M = 250.0, 1200.0
HEMI_SKY, HEMI_GROUND, HEMI_INTENSITY = 0xE4ECFF, 0x5A564E, 1.6
SUN_COLOR, SUN_INTENSITY = 0xFFF3E0, 2.0
SUN_DIRECTION = np.array([300.0, -200.0, 500.0]) / math.sqrt(300.0**2 + 200.0**2 + 500.0**2)  # (300, 500, 200) y-up
GROUND_PAD_M = 400.0


def srgb_to_linear(color: int) -> tuple[float, float, float]:
    """Three's SRGBToLinear of a 0xRRGGBB colour (what Color.setHex does under colour management)."""
    out = []
    for c in geo.rgb(color):
        out.append(c * 0.0773993808 if c < 0.04045 else (c * 0.9478672986 + 0.0521327014) ** 2.4)
    return out[0], out[1], out[2]


def create_context(**kwargs):
    """A headless OpenGL 3.3 context through EGL (the GPU's where there is one, Mesa llvmpipe otherwise)."""
    import moderngl

    return moderngl.create_standalone_context(backend="egl", require=330, **kwargs)


def perspective(fov_deg: float, aspect: float, near: float = NEAR_M, far: float = FAR_M) -> np.ndarray:
    """Three.js PerspectiveCamera's projection matrix (vertical fov), column vectors."""
    top = near * math.tan(math.radians(0.5 * fov_deg))
    height = 2 * top
    width = aspect * height
    m = np.zeros((4, 4))
    m[0, 0] = 2 * near / width
    m[1, 1] = 2 * near / height
    m[2, 2] = -(far + near) / (far - near)
    m[2, 3] = -2 * far * near / (far - near)
    m[3, 2] = -1.0
    return m


def look_at(eye: npt.ArrayLike, target: npt.ArrayLike, up: npt.ArrayLike = (0.0, 0.0, 1.0)) -> np.ndarray:
    """The view matrix of a camera at `eye` looking at `target` (Three's Object3D.lookAt for cameras; the city frame's
    up is z, which scene.ts's camera.up (0, 1, 0) becomes under the city group's rotation)."""
    eye_xyz, target_xyz, up_xyz = np.asarray(eye, float), np.asarray(target, float), np.asarray(up, float)
    z = eye_xyz - target_xyz
    if np.dot(z, z) == 0:
        z = np.array([0.0, 0.0, 1.0])
    z = z / np.linalg.norm(z)
    x = np.cross(up_xyz, z)
    if np.dot(x, x) == 0:  # looking straight along up: nudge as Three does
        z = z + np.array([0.0001, 0.0, 0.0]) if abs(up_xyz[2]) == 1 else z + np.array([0.0, 0.0, 0.0001])
        z = z / np.linalg.norm(z)
        x = np.cross(up_xyz, z)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    view = np.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = x, y, z
    view[:3, 3] = -view[:3, :3] @ eye_xyz
    return view


# Three's sRGBTransferOETF (colorspace_fragment), shared by the shaders.
_SRGB = """
vec3 srgb(vec3 c) {
    return mix(pow(c, vec3(0.41666)) * 1.055 - vec3(0.055), c * 12.92, vec3(lessThanEqual(c, vec3(0.0031308))));
}
"""

_LIGHTING = _SRGB + """
uniform vec3 u_sun_dir;
uniform vec3 u_sun;
uniform vec3 u_sky;
uniform vec3 u_ground;
vec3 lambert(vec3 albedo, vec3 n) {
    // MeshLambertMaterial: BRDF_Lambert = albedo / pi; hemisphere irradiance mix(ground, sky, 0.5 n.up + 0.5).
    float ndl = clamp(dot(n, u_sun_dir), 0.0, 1.0);
    vec3 irradiance = ndl * u_sun + mix(u_ground, u_sky, 0.5 * n.z + 0.5);
    return irradiance * albedo * 0.3183098861837907;
}
"""

# Where each kind of geometry lands in the city frame, its clip position and its view depth: one GLSL source for this
# renderer and the label renderer (scalediffusion/sim/labels.py), so that both rasterise exactly the same pixels.
PLACE_GLSL = """
uniform mat4 u_view_proj;
uniform mat4 u_view;
out float v_depth;
void place(vec4 world) {  // clip position and view depth (along the camera's axis) of a city-frame point
    v_depth = -(u_view * world).z;
    gl_Position = u_view_proj * world;
}
"""

# Static meshes are in the city frame already.
STATIC_WORLD_GLSL = """
in vec3 in_pos;
vec4 static_world() {
    return vec4(in_pos, 1.0);
}
"""

# A rigid mesh moved by u_model (the player's car; identity otherwise).
RIGID_WORLD_GLSL = """
uniform mat4 u_model;
in vec3 in_pos;
vec4 rigid_world() {
    return u_model * vec4(in_pos, 1.0);
}
"""

# Instanced boxes / capsules: position, heading (about z) and scale per instance (Three's InstancedMesh).
INSTANCE_WORLD_GLSL = """
in vec3 in_pos;
in vec3 i_pos;
in float i_heading;
in vec3 i_scale;
mat3 instance_rotation() {
    float c = cos(i_heading), s = sin(i_heading);
    return mat3(c, s, 0.0, -s, c, 0.0, 0.0, 0.0, 1.0);
}
vec4 instance_world(mat3 rot) {
    return vec4(i_pos + rot * (in_pos * i_scale), 1.0);
}
"""

# Instanced spheres of a radius each: the traffic-light lamps.
LAMP_WORLD_GLSL = """
in vec3 in_pos;
in vec3 i_pos;
in float i_radius;
vec4 lamp_world() {
    return vec4(i_pos + in_pos * i_radius, 1.0);
}
"""

_COMMON_VS = """
#version 330
""" + PLACE_GLSL + """
out vec3 v_front;
out vec3 v_back;
""" + _LIGHTING

# Static and rigid meshes: per-vertex albedo (linear), u_model for the player's car (identity otherwise). Front and back
# colours both, for the double-sided props (Three flips the normal of back faces).
_LIT_VS = _COMMON_VS + RIGID_WORLD_GLSL + """
in vec3 in_normal;
in vec3 in_color;
void main() {
    vec3 n = normalize(mat3(u_model) * in_normal);
    v_front = srgb(lambert(in_color, n));
    v_back = srgb(lambert(in_color, -n));
    place(rigid_world());
}
"""

# Instanced boxes / capsules with an albedo per instance.
_INSTANCED_VS = _COMMON_VS + INSTANCE_WORLD_GLSL + """
in vec3 in_normal;
in vec3 i_color;
void main() {
    mat3 rot = instance_rotation();
    vec3 n = normalize(rot * (in_normal / i_scale));  // inverse-transpose of the non-uniform scale
    v_front = v_back = srgb(lambert(i_color, n));
    place(instance_world(rot));
}
"""

# Unlit instanced spheres (MeshBasicMaterial): the traffic-light lamps.
_LAMP_VS = _COMMON_VS + LAMP_WORLD_GLSL + """
in vec3 i_color;
void main() {
    v_front = v_back = srgb(i_color);
    place(lamp_world());
}
"""

_FLAT_FS = """
#version 330
uniform vec3 u_fog_color;
uniform vec2 u_fog;
in vec3 v_front;
in vec3 v_back;
in float v_depth;
out vec4 f_color;
void main() {
    vec3 c = gl_FrontFacing ? v_front : v_back;
    f_color = vec4(mix(c, u_fog_color, smoothstep(u_fog.x, u_fog.y, v_depth)), 1.0);
}
"""

# Static meshes: lighting never changes, so the lit, sRGB-encoded colours (front and back faces) are computed once on
# the CPU (lambert, srgb_encode) and the vertex shader only transforms: on llvmpipe vertex work is a good part of a frame.
_STATIC_VS = _COMMON_VS + STATIC_WORLD_GLSL + """
in vec3 in_front;
in vec3 in_back;
void main() {
    v_front = in_front;
    v_back = in_back;
    place(static_world());
}
"""

# Buildings: the facade tile multiplies the (linear) vertex colour before lighting; lighting is linear in the albedo,
# so tile * lit colour (per vertex, from the CPU), then the sRGB encoding and fog per fragment.
_BUILDING_VS = _COMMON_VS + STATIC_WORLD_GLSL + """
in vec3 in_lit;
in vec2 in_uv;
out vec3 v_lit;
out vec2 v_uv;
void main() {
    v_lit = in_lit;
    v_uv = in_uv;
    place(static_world());
}
"""

# scene.ts's facade tile (64 x 64, canvas rows top first, flipped into uv v up): white wall with a window, frame
# 0x4a5866 over x 12..52, y 16..50 and a lighter pane 0x6f8294 over x 14..31, y 18..48. Drawn analytically and
# box-filtered over each pixel's footprint in uv (what the game's mipmapped, anisotropic sRGB texture approximates;
# llvmpipe's anisotropic sampling costs more than the rest of the frame). Rectangles as (u0, u1, v0, v1).
WINDOW_FRAME = (12 / 64, 52 / 64, 1 - 50 / 64, 1 - 16 / 64)
WINDOW_PANE = (14 / 64, 31 / 64, 1 - 48 / 64, 1 - 18 / 64)

_BUILDING_FS = """
#version 330
""" + _SRGB + """
uniform vec3 u_fog_color;
uniform vec2 u_fog;
uniform vec4 u_frame;       // window frame rectangle in the tile: u0, u1, v0, v1
uniform vec4 u_pane;
uniform vec3 u_frame_color;  // linear
uniform vec3 u_pane_color;
uniform float u_windows;     // 0: plain walls
in vec3 v_lit;
in vec2 v_uv;
in float v_depth;
out vec4 f_color;
// Integral from 0 to t of the indicator of [a, b] repeated with period 1.
vec2 ramp(vec2 t, vec2 a, vec2 b) {
    return floor(t) * (b - a) + clamp(fract(t), a, b) - a;
}
// Share of the box [uv - w/2, uv + w/2] covered by the repeated rectangle r (separable, so per axis).
float coverage(vec2 uv, vec2 w, vec4 r) {
    vec2 a = r.xz, b = r.yw;
    vec2 c = (ramp(uv + 0.5 * w, a, b) - ramp(uv - 0.5 * w, a, b)) / w;
    return c.x * c.y;
}
void main() {
    vec2 w = max(fwidth(v_uv), vec2(1.0 / 64.0));  // the pixel footprint, at least a texel (bilinear filtering)
    float frame = coverage(v_uv, w, u_frame) * u_windows;
    float pane = coverage(v_uv, w, u_pane) * u_windows;
    vec3 texel = vec3(1.0) + (u_frame_color - vec3(1.0)) * frame + (u_pane_color - u_frame_color) * pane;
    vec3 c = srgb(texel * v_lit);
    f_color = vec4(mix(c, u_fog_color, smoothstep(u_fog.x, u_fog.y, v_depth)), 1.0);
}
"""


def lambert(albedo: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """The lighting of the shaders' lambert() on the CPU: linear outgoing colour [N, 3] of linear albedo under
    scene.ts's hemisphere light and sun, for unit normals [N, 3]."""
    sun = np.array(srgb_to_linear(SUN_COLOR)) * SUN_INTENSITY
    sky = np.array(srgb_to_linear(HEMI_SKY)) * HEMI_INTENSITY
    ground = np.array(srgb_to_linear(HEMI_GROUND)) * HEMI_INTENSITY
    ndl = np.clip(normals @ SUN_DIRECTION, 0.0, 1.0)[:, None]
    w = 0.5 * normals[:, 2:3] + 0.5
    irradiance = ndl * sun + ground * (1 - w) + sky * w
    return irradiance * albedo * 0.3183098861837907


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """Three's sRGBTransferOETF (as the shaders compute it)."""
    c = np.asarray(linear, np.float64)
    return np.where(c <= 0.0031308, c * 12.92, np.power(np.maximum(c, 0.0), 0.41666) * 1.055 - 0.055)


def _box_mesh(size=(1.0, 1.0, 1.0), center=(0.0, 0.0, 0.0), color: int = 0xFFFFFF) -> MeshData:
    return geo.add_box(geo.empty_mesh(), center, size, 0.0, color)


def capsule_mesh(radius: float = 0.5, height: float = 0.5, cap_segments: int = 4, radial_segments: int = 10) -> MeshData:
    """Three's CapsuleGeometry (height segments 1) rotated upright along z and scaled to 1 m tall in total, as scene.ts
    builds the pedestrians' instance geometry."""
    half = height / 2
    rows = cap_segments * 2 + 1
    positions, normals, indices = [], [], []
    for iy in range(rows + 1):
        if iy <= cap_segments:
            angle = iy / cap_segments * math.pi / 2
            prof_y, prof_r, ny = -half - radius * math.cos(angle), radius * math.sin(angle), -radius * math.cos(angle)
        elif iy <= cap_segments + 1:
            prof_y, prof_r, ny = half, radius, 0.0
        else:
            angle = (iy - cap_segments - 1) / cap_segments * math.pi / 2
            prof_y, prof_r, ny = half + radius * math.sin(angle), radius * math.cos(angle), radius * math.sin(angle)
        for ix in range(radial_segments + 1):
            theta = ix / radial_segments * math.pi * 2
            x, z = -prof_r * math.cos(theta), prof_r * math.sin(theta)
            n = np.array([x, ny, z])
            n = n / (np.linalg.norm(n) or 1.0)
            positions.append((x, prof_y, z))
            normals.append(tuple(n))
        if iy > 0:
            prev, cur = (iy - 1) * (radial_segments + 1), iy * (radial_segments + 1)
            for ix in range(radial_segments):
                indices += [prev + ix, prev + ix + 1, cur + ix, prev + ix + 1, cur + ix + 1, cur + ix]
    p = np.array(positions)
    n = np.array(normals)
    total = height + 2 * radius
    # rotateX(pi / 2): (x, y, z) -> (x, -z, y); then scale z by 1 / total (normals by the inverse transpose).
    p = np.column_stack([p[:, 0], -p[:, 2], p[:, 1] / total])
    n = np.column_stack([n[:, 0], -n[:, 2], n[:, 1] * total])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    return MeshData().append(p, n, np.zeros((len(p), 2)), np.ones((len(p), 3)), indices)


def cylinder_mesh(radius: float, height: float, segments: int, center, color: int) -> MeshData:
    """Three's CylinderGeometry (axis along its local y, caps closed), moved to `center`; albedo linear."""
    cx, cy, cz = center
    albedo = srgb_to_linear(color)
    positions, normals, indices = [], [], []
    for y in (height / 2, -height / 2):
        for ix in range(segments + 1):
            theta = ix / segments * 2 * math.pi
            s, c = math.sin(theta), math.cos(theta)
            positions.append((cx + radius * s, cy + y, cz + radius * c))
            normals.append((s, 0.0, c))
    row = segments + 1
    for ix in range(segments):
        a, b, c, d = ix, row + ix, row + ix + 1, ix + 1
        indices += [a, b, d, b, c, d]
    for sign in (1, -1):
        base = len(positions)
        positions.append((cx, cy + sign * height / 2, cz))
        normals.append((0.0, float(sign), 0.0))
        for ix in range(segments):
            theta = ix / segments * 2 * math.pi
            positions.append((cx + radius * math.sin(theta), cy + sign * height / 2, cz + radius * math.cos(theta)))
            normals.append((0.0, float(sign), 0.0))
        for ix in range(segments):
            a, b = base + 1 + ix, base + 1 + (ix + 1) % segments
            indices += [base, a, b] if sign > 0 else [base, b, a]
    count = len(positions)
    return MeshData().append(positions, normals, np.zeros((count, 2)), [albedo] * count, indices)


def sphere_mesh(radius: float, width_segments: int = 10, height_segments: int = 8) -> MeshData:
    """Three's SphereGeometry (positions only matter: the lamps are unlit)."""
    positions, indices = [], []
    for iy in range(height_segments + 1):
        v = iy / height_segments
        for ix in range(width_segments + 1):
            u = ix / width_segments
            # Three's (x, y, z) turned into the city frame (x, -z, y), keeping the triangles' winding.
            positions.append((-radius * math.cos(u * 2 * math.pi) * math.sin(v * math.pi),
                              -radius * math.sin(u * 2 * math.pi) * math.sin(v * math.pi),
                              radius * math.cos(v * math.pi)))
    row = width_segments + 1
    for iy in range(height_segments):
        for ix in range(width_segments):
            a, b = iy * row + ix + 1, iy * row + ix
            c, d = (iy + 1) * row + ix, (iy + 1) * row + ix + 1
            if iy != 0:
                indices += [a, b, d]
            if iy != height_segments - 1:
                indices += [b, c, d]
    p = np.array(positions)
    count = len(p)
    return MeshData().append(p, p / radius, np.zeros((count, 2)), np.ones((count, 3)), indices)


def car_mesh() -> MeshData:
    """scene.ts's buildCar in the car's frame (x forward, z up): body, cabin, four wheels; albedo linear."""
    mesh = geo.empty_mesh()
    for size, center, color in (((4.5, 1.85, 0.75), (0.0, 0.0, 0.6), CAR_PAINT), ((2.3, 1.65, 0.62), (-0.35, 0.0, 1.28), CAR_GLASS)):
        box = _box_mesh(size, center)
        box.colors[:] = srgb_to_linear(color)
        mesh.extend(box)
    for x, y in ((1.4, 0.9), (1.4, -0.9), (-1.4, 0.9), (-1.4, -0.9)):
        mesh.extend(cylinder_mesh(0.34, 0.25, 14, (x, y, 0.34), CAR_TYRE))
    return mesh


def actor_fields(actor) -> tuple[bool, float, float, float, float, float]:
    """(is_pedestrian, x, y, heading, length, width) of an ActorPose-like object or a (kind, x, y, heading, length,
    width) tuple; kind is a world_pb2.ActorKind or "pedestrian" / "vehicle"."""
    if isinstance(actor, (tuple, list)):
        kind, x, y, heading, length, width = actor
    else:
        kind, x, y, heading = actor.kind, actor.x, actor.y, actor.heading
        length = getattr(actor, "length_m", None)
        width = getattr(actor, "width_m", None)
        length = actor.length if length is None else length
        width = actor.width if width is None else width
    ped = kind == world_pb2.ACTOR_KIND_PEDESTRIAN or kind == "pedestrian"
    return ped, float(x), float(y), float(heading), float(length), float(width)


def actor_instances(actors: Sequence) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """How the renderers draw `actors` (as actor_fields reads them): rows (x, y, z of the centre, heading, size along
    the heading, across, up) [N, 7] of the vehicles (unit boxes: VEHICLE_HEIGHT_M tall, centred VEHICLE_CENTER_Z_M up)
    and of the pedestrians (unit capsules: PEDESTRIAN_HEIGHT_M tall on a width x width footprint), each with its rows'
    indices in `actors`: (vehicle rows, vehicle indices, pedestrian rows, pedestrian indices)."""
    cars: list[tuple[float, ...]] = []
    peds: list[tuple[float, ...]] = []
    car_index: list[int] = []
    ped_index: list[int] = []
    for k, actor in enumerate(actors):
        ped, x, y, heading, length, width = actor_fields(actor)
        if ped:
            peds.append((x, y, PEDESTRIAN_HEIGHT_M / 2, heading, width, width, PEDESTRIAN_HEIGHT_M))
            ped_index.append(k)
        else:
            cars.append((x, y, VEHICLE_CENTER_Z_M, heading, length, width, VEHICLE_HEIGHT_M))
            car_index.append(k)
    return (np.array(cars, np.float64).reshape(-1, 7), np.array(car_index, np.int64),
            np.array(peds, np.float64).reshape(-1, 7), np.array(ped_index, np.int64))


# ---- the scene, described once for both renderers (this one and scalediffusion/sim/labels.py's) ----------------------

class SemanticClass(IntEnum):
    """What each drawn thing is, as CARLA 0.9.14+'s semantic camera tags it (Cityscapes-aligned ids)."""

    UNLABELED = 0
    ROAD = 1  # carriageways and junction boxes
    SIDEWALK = 2
    BUILDING = 3
    POLE = 6  # signal poles, mast arms, stop-sign posts
    TRAFFIC_LIGHT = 7  # signal heads, visors, lamps
    TRAFFIC_SIGN = 8  # stop-sign plates
    TERRAIN = 10  # the ground plane outside roads and sidewalks
    SKY = 11
    PEDESTRIAN = 12
    CAR = 14  # NPC vehicles, parked cars, the player's car
    ROAD_LINE = 24  # lane markings


@dataclass(frozen=True, eq=False)
class StaticPart:
    """One static draw call: its mesh (albedo in the vertex colours, read as linear), each vertex's SemanticClass,
    its polygon-offset layer (0 / None: none; higher is drawn over coplanar lower layers: markings 4 over junctions 2
    over roads and sidewalks 1 over the ground 0), whether back faces are culled (the props are double-sided, as
    scene.ts's DoubleSide material) and whether it is the buildings (drawn with the facade's window tile)."""

    name: str
    mesh: MeshData
    classes: np.ndarray  # uint8 [vertices]
    layer: int | None
    cull: bool = True
    facade: bool = False


def _part(name: str, mesh: MeshData, cls: SemanticClass, layer: int | None, **kw: bool) -> StaticPart:
    return StaticPart(name, mesh, np.full(mesh.vertex_count, int(cls), np.uint8), layer, **kw)


def _signal_props(world: world_pb2.World) -> tuple[MeshData, np.ndarray]:
    """Stop signs, traffic-light poles, mast arms, heads and visors merged into one mesh, with each vertex's class."""
    props = geo.empty_mesh()
    classes: list[int] = []

    def tag(cls: SemanticClass) -> None:  # the class of the vertices appended since the last tag
        classes.extend([int(cls)] * (props.vertex_count - len(classes)))

    for pole in geo.control_poles(world):
        if pole.control == world_pb2.INTERSECTION_CONTROL_STOP_SIGN:
            p = pole.position
            geo.add_box(props, (p.x, p.y, 1.25), (0.08, 0.08, 2.5), 0, COLORS["pole"])
            tag(SemanticClass.POLE)
            geo.add_upright_polygon(props, (p.x + math.cos(pole.facing) * 0.06, p.y + math.sin(pole.facing) * 0.06, 2.45),
                                    0.4, 8, pole.facing, COLORS["stop"])
            tag(SemanticClass.TRAFFIC_SIGN)
    for head in geo.signal_heads(world):
        for centre, size, yaw in head.mounts:
            geo.add_box(props, centre, size, yaw, COLORS["pole"])
        tag(SemanticClass.POLE)
        geo.add_box(props, head.center, head.size, head.facing, COLORS["head"])
        for centre, size, yaw in head.visors:
            geo.add_box(props, centre, size, yaw, COLORS["head"])
        tag(SemanticClass.TRAFFIC_LIGHT)
    return props, np.array(classes, np.uint8)


def static_parts(world: world_pb2.World) -> list[StaticPart]:
    """The static scene in draw order: near, occluding things first (props, buildings, parked cars) so that the flat
    layers below them fail the depth test early, then the flat layers top down (markings, junctions, sidewalks,
    roads, ground)."""
    parts = []
    props, prop_classes = _signal_props(world)
    if props.vertex_count:
        parts.append(StaticPart("props", props, prop_classes, None, cull=False))
    prisms = geo.building_prisms(world)
    if prisms:
        parts.append(_part("buildings", geo.building_mesh(prisms), SemanticClass.BUILDING, None, facade=True))
    # Parked cars: instanced unit boxes in scene.ts; static here, so baked into one mesh (colours linearised, as
    # InstancedMesh.setColorAt does).
    if len(world.parked):
        parked = geo.empty_mesh()
        for i, p in enumerate(world.parked):
            box = geo.add_box(geo.empty_mesh(), (p.position.x, p.position.y, VEHICLE_CENTER_Z_M),
                              (p.length_m or 4.6, p.width_m or 1.9, VEHICLE_HEIGHT_M), p.heading, 0)
            box.colors[:] = srgb_to_linear(PARKED_COLORS[i % len(PARKED_COLORS)])
            parked.extend(box)
        parts.append(_part("parked", parked, SemanticClass.CAR, None))
    surfaces = geo.road_surfaces(world)
    marks = geo.lane_markings(world)
    mark_mesh = geo.empty_mesh()
    geo.add_flat_quads(mark_mesh, [m.corners for m in marks if m.color == "yellow"], 0, COLORS["yellow"])
    geo.add_flat_quads(mark_mesh, [m.corners for m in marks if m.color == "white"], 0, COLORS["white"])
    if mark_mesh.vertex_count:
        parts.append(_part("markings", mark_mesh, SemanticClass.ROAD_LINE, 4))
    lo = world.min if world.HasField("min") else Vec2(-500.0, -500.0)
    hi = world.max if world.HasField("max") else Vec2(500.0, 500.0)
    pad = GROUND_PAD_M
    ground = (Vec2(lo.x - pad, lo.y - pad), Vec2(hi.x + pad, lo.y - pad), Vec2(hi.x + pad, hi.y + pad), Vec2(lo.x - pad, hi.y + pad))
    for name, quads, z, color, cls, layer in (
        ("junctions", [geo.square_quad(b.center, b.half_size) for b in geo.intersection_boxes(world)], 0, "junction", SemanticClass.ROAD, 2),
        ("sidewalks", [s.corners for s in surfaces.sidewalks], 0.12, "sidewalk", SemanticClass.SIDEWALK, 1),
        ("roads", [r.corners for r in surfaces.roads], 0, "asphalt", SemanticClass.ROAD, 1),
        ("ground", [ground], -0.02, "ground", SemanticClass.TERRAIN, 0),
    ):
        if quads:
            parts.append(_part(name, geo.add_flat_quads(geo.empty_mesh(), quads, z, COLORS[color]), cls, layer))
    return parts


@dataclass(frozen=True, eq=False)
class SignalLamps:
    """The traffic-light lamps, three per signal head (red, amber, green, top to bottom), and which light phase each
    head follows."""

    positions: np.ndarray  # [3 * heads, 3] lamp centres, head after head
    radii: np.ndarray  # [3 * heads]
    phases: list[tuple[float, geo.LightAxis]]  # the distinct (light offset, axis) pairs, sorted
    phase_of: np.ndarray  # [heads]: each head's index in phases


def signal_lamps(world: world_pb2.World) -> SignalLamps | None:
    """The world's signal lamps (None without traffic lights)."""
    heads = geo.signal_heads(world)
    if not heads:
        return None
    offsets = {i.id: i.light_offset_s for i in world.intersections}
    keys = [(offsets.get(h.intersection_id, 0.0), h.axis) for h in heads]
    phases = sorted(set(keys))
    return SignalLamps(np.array([xyz for h in heads for xyz in h.lamps], np.float64).reshape(-1, 3),
                       np.array([h.lamp_radius for h in heads for _ in h.lamps], np.float64),
                       phases, np.array([phases.index(k) for k in keys]))


class _Instances:
    """One instanced mesh whose instances change every frame (a growable float32 buffer of per-instance rows)."""

    def __init__(self, ctx, program, mesh: MeshData, layout: str, names: Sequence[str], floats: int) -> None:
        self.ctx, self.program, self.layout, self.names, self.floats = ctx, program, layout, tuple(names), floats
        self.vbo = ctx.buffer(np.column_stack([mesh.positions, mesh.normals]).astype("f4").tobytes())
        self.ibo = ctx.buffer(mesh.indices.astype("u4").tobytes())
        self.mesh_layout = "3f 3f" if "in_normal" in program else "3f 12x"
        self.mesh_names = ("in_pos", "in_normal") if "in_normal" in program else ("in_pos",)
        self.count = 0
        self.ibuf, self.vao = self._instance_buffer(16)

    def _instance_buffer(self, capacity: int) -> tuple[moderngl.Buffer, moderngl.VertexArray]:
        """Room for `capacity` instances: the per-instance buffer and the vertex array drawing from it."""
        self.capacity = capacity
        ibuf = self.ctx.buffer(reserve=self.capacity * self.floats * 4, dynamic=True)
        vao = self.ctx.vertex_array(self.program, [
            (self.vbo, self.mesh_layout, *self.mesh_names),
            (ibuf, self.layout + " /i", *self.names),
        ], index_buffer=self.ibo, index_element_size=4)
        return ibuf, vao

    def _reserve(self, n: int) -> None:
        if n <= self.capacity:
            return
        self.vao.release()
        self.ibuf.release()
        self.ibuf, self.vao = self._instance_buffer(max(n, 2 * self.capacity))

    def set(self, rows: np.ndarray) -> None:
        self.count = len(rows)
        if self.count:
            self._reserve(self.count)
            self.ibuf.write(np.ascontiguousarray(rows, dtype="f4").tobytes())

    def render(self) -> None:
        if self.count:
            self.vao.render(instances=self.count)

    def release(self) -> None:
        for obj in (self.vao, self.ibuf, self.vbo, self.ibo):
            if obj is not None:
                obj.release()


class SceneRenderer(ABC):
    """What CityRenderer and the label renderer (scalediffusion/sim/labels.py) share, so that a label image lines up
    with the picture pixel for pixel: the camera (camera_matrices, project), the scene's draw calls built from one
    description (static_parts, signal_lamps, actor_instances, the actors' / lamps' / player's car's meshes), and one
    draw order under one GL state (depth test <=, back-face culling where a part asks, the flat layers' polygon
    offsets, the y-flipped projection). A subclass makes its programs and the vertex data they read through the
    _part_vao / _instances / _lamp_instances / _car_vao / _instance_rows hooks, then calls _build_scene."""

    def __init__(self, world: world_pb2.World, width: int, height: int, vertical_fov_deg: float, ctx) -> None:
        self.world = world
        self.width, self.height = int(width), int(height)
        self.vertical_fov_deg = float(vertical_fov_deg)
        self._own_ctx = ctx is None
        self.ctx = create_context() if ctx is None else ctx
        self._objects: list = []
        self._programs: tuple = ()  # every program: the camera's uniforms are set on each
        self._car_program = None  # the player's car's program (u_model)

    def _keep(self, obj):
        """Registers a GL object for release()."""
        self._objects.append(obj)
        return obj

    def _vao(self, program, columns, names):
        """A vertex array over float32 columns ([N, k] each) and an index array (the last column)."""
        vbo = self._keep(self.ctx.buffer(np.column_stack(columns[:-1]).astype("f4").tobytes()))
        ibo = self._keep(self.ctx.buffer(np.asarray(columns[-1]).astype("u4").tobytes()))
        layout = " ".join(f"{np.asarray(c).shape[1]}f" for c in columns[:-1])
        return self._keep(self.ctx.vertex_array(program, [(vbo, layout, *names)], index_buffer=ibo, index_element_size=4))

    def _make_instances(self, program, mesh: MeshData, layout: str, names: Sequence[str], floats: int) -> _Instances:
        return self._keep(_Instances(self.ctx, program, mesh, layout, names, floats))

    # Hooks: how a subclass draws each kind of thing.
    @abstractmethod
    def _part_vao(self, part: StaticPart):
        raise NotImplementedError

    @abstractmethod
    def _instances(self, mesh: MeshData) -> _Instances:
        """Instances of a vehicle / pedestrian mesh, rows as _instance_rows makes them."""
        raise NotImplementedError

    @abstractmethod
    def _lamp_instances(self, mesh: MeshData) -> _Instances:
        raise NotImplementedError

    @abstractmethod
    def _car_vao(self, mesh: MeshData):
        raise NotImplementedError

    @abstractmethod
    def _instance_rows(self, rows: np.ndarray, index: np.ndarray, pedestrian: bool) -> np.ndarray:
        """The per-instance data of actor_instances' rows (and their actors' indices)."""
        raise NotImplementedError

    def _build_scene(self) -> None:
        # (vao, polygon offset layer, cull back faces) in static_parts' draw order.
        self._static = [(self._part_vao(part), part.layer, part.cull) for part in static_parts(self.world)]
        self._npc = self._instances(_box_mesh())
        self._peds = self._instances(capsule_mesh())
        self._lamp_data = signal_lamps(self.world)
        self._lamps = None if self._lamp_data is None else self._lamp_instances(sphere_mesh(1.0, 10, 8))
        self._car = self._car_vao(car_mesh())

    def _update_actors(self, actors: Sequence) -> None:
        cars, car_index, peds, ped_index = actor_instances(actors)
        self._npc.set(self._instance_rows(cars, car_index, False))
        self._peds.set(self._instance_rows(peds, ped_index, True))

    def camera_matrices(self, camera) -> tuple[np.ndarray, np.ndarray]:
        """(view, projection) for a camera pose (city frame -> clip; OpenGL conventions, image y up). The pose's
        fov_deg (vertical) wins over the renderer's default, as in scene.ts."""
        eye = (camera.x, camera.y, camera.z)
        target = getattr(camera, "target", None)
        if target is None:  # a pose without a target (telemetry): look along yaw / pitch
            cp = math.cos(camera.pitch)
            target = (camera.x + math.cos(camera.yaw) * cp, camera.y + math.sin(camera.yaw) * cp, camera.z + math.sin(camera.pitch))
        elif not isinstance(target, (tuple, list, np.ndarray)):
            target = (target.x, target.y, target.z)
        fov = getattr(camera, "fov_deg", 0.0) or self.vertical_fov_deg
        return look_at(eye, target), perspective(fov, self.width / self.height)

    def project(self, camera, points) -> np.ndarray:
        """Pixel coordinates (column, row; row 0 at the top, pixel centres at .5) of city-frame points [N, 3], and
        NaN for points behind the camera."""
        view, proj = self.camera_matrices(camera)
        p = np.column_stack([np.asarray(points, float).reshape(-1, 3), np.ones(len(np.asarray(points).reshape(-1, 3)))])
        clip = p @ (proj @ view).T
        out = np.full((len(p), 2), np.nan)
        ok = clip[:, 3] > 0
        ndc = clip[ok, :2] / clip[ok, 3:4]
        out[ok, 0] = (ndc[:, 0] + 1) / 2 * self.width
        out[ok, 1] = (1 - ndc[:, 1]) / 2 * self.height
        return out

    def _draw_scene(self, fbo, clear: tuple[float, float, float, float], camera, ego, draw_ego: bool | None) -> None:
        """Draws the scene (the actors and lamps as last set) into fbo, cleared to `clear`."""
        ctx = self.ctx
        view, proj = self.camera_matrices(camera)
        # Render upside down (y flipped in clip space, so front faces turn clockwise) so that glReadPixels' bottom-up
        # rows come out top row first without a copy.
        flip = np.diag([1.0, -1.0, 1.0, 1.0])
        view_proj = tuple((flip @ proj @ view).T.astype("f4").ravel())
        view_t = tuple(view.T.astype("f4").ravel())
        for prog in self._programs:
            prog["u_view_proj"].value = view_proj
            prog["u_view"].value = view_t
        fbo.use()
        ctx.viewport = (0, 0, self.width, self.height)
        ctx.clear(*clear, depth=1.0)
        ctx.enable_only(ctx.DEPTH_TEST | ctx.CULL_FACE)
        ctx.depth_func = "<="
        ctx.front_face = "cw"
        ctx.cull_face = "back"
        if draw_ego is None:
            draw_ego = ego is not None and math.hypot(camera.x - ego.x, camera.y - ego.y) > 1.0
        if draw_ego and ego is not None and self._car_program is not None:
            c, s = math.cos(ego.theta), math.sin(ego.theta)
            model = np.array([[c, -s, 0, ego.x], [s, c, 0, ego.y], [0, 0, 1, 0], [0, 0, 0, 1]], np.float64)
            self._car_program["u_model"].value = tuple(model.T.astype("f4").ravel())
            self._car.render()
            self._car_program["u_model"].value = tuple(np.eye(4, dtype="f4").ravel())
        self._npc.render()
        self._peds.render()
        if self._lamps is not None:
            self._lamps.render()
        for vao, layer, cull in self._static:
            if cull:
                ctx.enable(ctx.CULL_FACE)
            else:
                ctx.disable(ctx.CULL_FACE)
            ctx.polygon_offset = (-layer, -layer) if layer else (0.0, 0.0)
            vao.render()
        ctx.polygon_offset = (0.0, 0.0)

    def release(self) -> None:
        for obj in reversed(self._objects):
            obj.release()
        self._objects.clear()
        if self._own_ctx:
            self.ctx.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


class CityRenderer(SceneRenderer):
    """Renders a World from a camera pose: RGB uint8 [height, width, 3], top row first.

    Static geometry (ground, roads, intersections, sidewalks, markings, buildings, parked cars, poles and signs) is
    uploaded once; per frame only the moving actors, the lamp colours (light_color at the sim time) and the player's
    car change. Deterministic for the same inputs on the same machine.

    vertical_fov_deg is the default field of view (a pose's own fov_deg wins, as in the game); ctx an existing moderngl
    context to share (one is created through EGL otherwise, and released with the renderer); samples the MSAA sample
    count (0: none; the game's antialiasing is 4, at half the frame rate on llvmpipe); windows False draws plain
    facades."""

    def __init__(self, world: world_pb2.World, width: int, height: int, vertical_fov_deg: float = 60.0, ctx=None,
                 samples: int = 0, windows: bool = True) -> None:
        super().__init__(world, width, height, vertical_fov_deg, ctx)
        ctx = self.ctx
        keep = self._keep
        self.samples = int(samples)

        # Offscreen targets; with MSAA a multisampled pair resolved into the plain one before reading.
        self._fbo = keep(ctx.framebuffer(keep(ctx.renderbuffer((self.width, self.height), 4)),
                                         keep(ctx.depth_renderbuffer((self.width, self.height)))))
        self._ms_fbo = None
        if self.samples > 0:
            self._ms_fbo = keep(ctx.framebuffer(keep(ctx.renderbuffer((self.width, self.height), 4, samples=self.samples)),
                                                keep(ctx.depth_renderbuffer((self.width, self.height), samples=self.samples))))

        self._stat = keep(ctx.program(vertex_shader=_STATIC_VS, fragment_shader=_FLAT_FS))
        self._lit = keep(ctx.program(vertex_shader=_LIT_VS, fragment_shader=_FLAT_FS))
        self._instanced = keep(ctx.program(vertex_shader=_INSTANCED_VS, fragment_shader=_FLAT_FS))
        self._lamp = keep(ctx.program(vertex_shader=_LAMP_VS, fragment_shader=_FLAT_FS))
        self._building = keep(ctx.program(vertex_shader=_BUILDING_VS, fragment_shader=_BUILDING_FS))
        self._programs = (self._stat, self._lit, self._instanced, self._lamp, self._building)
        self._car_program = self._lit
        sky = geo.rgb(COLORS["sky"])
        self._clear_rgb = sky
        for prog in self._programs:
            _set(prog, "u_fog_color", sky)
            _set(prog, "u_fog", (FOG_NEAR_M, FOG_FAR_M))
            _set(prog, "u_sun_dir", tuple(SUN_DIRECTION))
            _set(prog, "u_sun", tuple(c * SUN_INTENSITY for c in srgb_to_linear(SUN_COLOR)))
            _set(prog, "u_sky", tuple(c * HEMI_INTENSITY for c in srgb_to_linear(HEMI_SKY)))
            _set(prog, "u_ground", tuple(c * HEMI_INTENSITY for c in srgb_to_linear(HEMI_GROUND)))
        _set(self._lit, "u_model", tuple(np.eye(4).T.ravel()))
        _set(self._building, "u_frame", WINDOW_FRAME)
        _set(self._building, "u_pane", WINDOW_PANE)
        _set(self._building, "u_frame_color", srgb_to_linear(0x4A5866))
        _set(self._building, "u_pane_color", srgb_to_linear(0x6F8294))
        _set(self._building, "u_windows", 1.0 if windows else 0.0)
        self._npc_colors = np.array([srgb_to_linear(c) for c in NPC_COLORS], np.float32)
        self._ped_colors = np.array([srgb_to_linear(c) for c in PEDESTRIAN_COLORS], np.float32)

        self._build_scene()
        self._lamp_state: list[geo.LightColor | None] = []
        if self._lamps is not None and self._lamp_data is not None:
            lamps = self._lamp_data
            off = srgb_to_linear(COLORS["lampOff"])
            self._lamp_rows = np.column_stack([lamps.positions, np.tile(off, (len(lamps.radii), 1)), lamps.radii]).astype(np.float32)
            self._lamp_state = [None] * len(lamps.phases)
            self._lamp_on = np.array([srgb_to_linear(COLORS[c]) for c in ("red", "amber", "green")], np.float32)
            self._lamp_off = np.array(off, np.float32)
            self._lamps.set(self._lamp_rows)

    # ---- building the scene ----------------------------------------------------------------------------------------

    def _part_vao(self, part: StaticPart):
        mesh = part.mesh
        if part.facade:  # the tile multiplies the albedo: lit colour per vertex, the rest per fragment
            return self._vao(self._building, [mesh.positions, lambert(mesh.colors, mesh.normals), mesh.uvs, mesh.indices],
                             ("in_pos", "in_lit", "in_uv"))
        # Lit colours baked in (front faces and back faces).
        front = srgb_encode(lambert(mesh.colors, mesh.normals))
        back = srgb_encode(lambert(mesh.colors, -mesh.normals))
        return self._vao(self._stat, [mesh.positions, front, back, mesh.indices], ("in_pos", "in_front", "in_back"))

    def _instances(self, mesh: MeshData) -> _Instances:
        return self._make_instances(self._instanced, mesh, "3f 1f 3f 3f", ("i_pos", "i_heading", "i_scale", "i_color"), 10)

    def _lamp_instances(self, mesh: MeshData) -> _Instances:
        return self._make_instances(self._lamp, mesh, "3f 3f 1f", ("i_pos", "i_color", "i_radius"), 7)

    def _car_vao(self, mesh: MeshData):
        return self._vao(self._lit, [mesh.positions, mesh.normals, mesh.colors, mesh.indices], ("in_pos", "in_normal", "in_color"))

    def _instance_rows(self, rows: np.ndarray, index: np.ndarray, pedestrian: bool) -> np.ndarray:
        palette = self._ped_colors if pedestrian else self._npc_colors
        data = np.empty((len(rows), 10), np.float32)
        data[:, :7] = rows
        data[:, 7:] = palette[np.arange(len(rows)) % len(palette)]  # colour by slot, as the game's instances
        return data

    # ---- per frame ---------------------------------------------------------------------------------------------------

    def _update_lamps(self, t_s: float) -> None:
        if self._lamps is None or self._lamp_data is None:
            return
        states = [geo.light_color(self.world, off, axis, t_s) for off, axis in self._lamp_data.phases]
        if states == self._lamp_state:
            return
        self._lamp_state = list(states)
        lit = np.array([{"red": 0, "yellow": 1, "green": 2}[s] for s in states])[self._lamp_data.phase_of]
        colors = np.broadcast_to(self._lamp_off, (len(lit), 3, 3)).copy()
        colors[np.arange(len(lit)), lit] = self._lamp_on[lit]
        self._lamp_rows[:, 3:6] = colors.reshape(-1, 3)
        self._lamps.set(self._lamp_rows)

    def set_atmosphere(self, sky: int | None = None, fog_near_m: float | None = None, fog_far_m: float | None = None) -> None:
        """Sky (background and fog colour, 0xRRGGBB) and fog distances for the frames that follow; None keeps the
        game's. Used to render the same scene under other weathers and times of day (the diffusion model's data)."""
        color = geo.rgb(COLORS["sky"] if sky is None else sky)
        fog = (FOG_NEAR_M if fog_near_m is None else fog_near_m, FOG_FAR_M if fog_far_m is None else fog_far_m)
        self._clear_rgb = color
        for prog in self._programs:
            _set(prog, "u_fog_color", color)
            _set(prog, "u_fog", fog)

    def render(self, camera, actors: Sequence = (), t_s: float = 0.0, ego=None, draw_ego: bool | None = None) -> np.ndarray:
        """The image of the city from `camera` (a camera.CameraPose or anything with x, y, z, target / yaw, pitch,
        fov_deg) with the moving `actors` (ActorPose-like: kind, x, y, heading, length_m / length, width_m / width;
        or (kind, x, y, heading, length, width) tuples) and the lights at sim time t_s. The player's car (`ego`:
        x, y, theta) is drawn when draw_ego, by default when the camera is off the car (the chase camera; the dash
        camera sits inside it and the game hides the car). Returns a new RGB uint8 array [height, width, 3]."""
        self._draw(camera, actors, t_s, ego, draw_ego)
        return self._read(np.empty((self.height, self.width, 3), np.uint8))

    def render_many(self, cameras: Sequence, actors: Sequence = (), t_s: float = 0.0, egos: Sequence | None = None,
                    draw_ego: bool | None = None) -> np.ndarray:
        """Several cameras over the same actors and time (e.g. one per bot or per camera mode): [N, H, W, 3]."""
        out = np.empty((len(cameras), self.height, self.width, 3), np.uint8)
        self._update_actors(actors)
        for k, camera in enumerate(cameras):
            self._draw(camera, None, t_s, None if egos is None else egos[k], draw_ego)
            self._read(out[k])
        return out

    def _draw(self, camera, actors, t_s: float, ego, draw_ego: bool | None) -> None:
        if actors is not None:
            self._update_actors(actors)
        self._update_lamps(t_s)
        self._draw_scene(self._ms_fbo or self._fbo, (*self._clear_rgb, 1.0), camera, ego, draw_ego)

    def _read(self, out: np.ndarray) -> np.ndarray:
        if self._ms_fbo is not None:
            self.ctx.copy_framebuffer(self._fbo, self._ms_fbo)
        self._fbo.read_into(out, components=3, alignment=1)
        return out


def _set(program, name: str, value) -> None:
    if name in program:
        program[name].value = value

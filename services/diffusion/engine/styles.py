"""The looks the diffusion model learns to paint, and the paired frames it learns them from.

Training pairs come from the city itself: the same camera, scene and time rendered flat (what the game shows) and in
a style (what the player should see). A style is an atmosphere for the renderer (sky colour, fog distances) plus a
colour grade, so every pixel of the target is caused by the input scene: nothing random for the model to memorise.

  photoreal-day  richer contrast and saturation, warm sunlight, light haze in the distance
  dusk           low warm light, pink-orange sky, long orange haze, deep shadows
  night          dark blue, lit windows glowing amber, black sky, short fog
  rain           grey sky, short grey fog, desaturated and darker, wet dark road
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STYLE_NAMES = ("photoreal-day", "dusk", "night", "rain")


@dataclass(frozen=True)
class Look:
    sky: int  # 0xRRGGBB, background and fog colour
    fog_near_m: float
    fog_far_m: float
    gain: tuple[float, float, float]  # per channel, after the render
    contrast: float
    saturation: float
    lift: float  # added after gain (0..1)
    glow_windows: bool = False  # night: window panes (dark blue-grey in the render) turn amber
    darken_ground: float = 0.0  # rain: the lower part of the frame (road) gets darker and shinier


LOOKS: dict[str, Look] = {
    "photoreal-day": Look(0xBFD8F2, 180.0, 900.0, (1.04, 1.0, 0.95), 1.15, 1.25, 0.0),
    "dusk": Look(0xF2A07A, 60.0, 500.0, (1.05, 0.72, 0.6), 1.1, 0.9, 0.02),
    "night": Look(0x0B1026, 25.0, 260.0, (0.28, 0.32, 0.5), 1.2, 0.7, 0.0, glow_windows=True),
    "rain": Look(0x8A9096, 15.0, 220.0, (0.8, 0.83, 0.88), 0.9, 0.45, 0.03, darken_ground=0.35),
}


def grade(flat_rgb: np.ndarray, look: Look) -> np.ndarray:
    """The colour grade of a look applied to an RGB uint8 frame (already rendered with the look's atmosphere)."""
    x = flat_rgb.astype(np.float32) / 255.0
    grey = x.mean(axis=2, keepdims=True)
    x = grey + (x - grey) * look.saturation
    x = (x - 0.5) * look.contrast + 0.5
    out = x * np.array(look.gain, np.float32) + look.lift
    if look.glow_windows:
        # Window panes are the darkest, bluest parts of facades: make them glow amber.
        r, b = x[..., 0], x[..., 2]
        pane = (b > r + 0.04) & (x.mean(axis=2) < 0.45) & (x.mean(axis=2) > 0.12)
        out[pane] = np.array([1.0, 0.72, 0.35], np.float32) * (0.6 + 0.4 * x[pane].mean(axis=1, keepdims=True))
    if look.darken_ground > 0:
        h = out.shape[0]
        ramp = np.clip((np.arange(h, dtype=np.float32) / h - 0.55) / 0.45, 0.0, 1.0)[:, None, None]
        out = out * (1.0 - look.darken_ground * ramp)
    return (np.clip(out, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def render_pair(renderer, camera, actors, t_s: float, style: str) -> tuple[np.ndarray, np.ndarray]:
    """(flat, styled) renders of one scene: the game's look and the style's."""
    look = LOOKS[style]
    renderer.set_atmosphere()
    flat = renderer.render(camera, actors, t_s)
    renderer.set_atmosphere(look.sky, look.fog_near_m, look.fog_far_m)
    styled = grade(renderer.render(camera, actors, t_s), look)
    renderer.set_atmosphere()
    return flat, styled

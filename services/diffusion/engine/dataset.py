"""Paired training clips for the diffusion model, made from the city: a bot drives (the simulator's noisy autopilot
among traffic), and every sampled moment is rendered flat (the game's look) and in every style (styles.py).

    python -m services.diffusion.engine.dataset --clips 64 --clip-frames 8 --out data/diffusion_pairs.npz

Output (npz, uint8): flat [clips, T, H, W, 3], styled [clips, S, T, H, W, 3], styles [S] — clips of consecutive
frames (every `every_s` seconds of driving) because the model is causal over time and trains on sequences.
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path
from typing import TypedDict

import numpy as np

from services.diffusion.engine.styles import STYLE_NAMES, render_pair


class PairedClips(TypedDict):
    """What generate_clips returns and the npz holds (see above)."""

    flat: np.ndarray
    styled: np.ndarray
    styles: np.ndarray


def generate_clips(clips: int, clip_frames: int, size: int = 256, every_s: float = 0.2, seed: int = 0,
                   styles: tuple[str, ...] = STYLE_NAMES, on_clip=None) -> PairedClips:
    from scalediffusion.city.grid import manhattan_grid
    from scalediffusion.sim.autopilot import NoisyAutopilot
    from scalediffusion.sim.bots import random_route
    from scalediffusion.sim.camera import CameraMode, camera_pose
    from scalediffusion.sim.episode import Episode, EpisodeConfig
    from scalediffusion.sim.lanes import LaneMap
    from scalediffusion.sim.render import CityRenderer
    from scalediffusion.sim.suites import RouteSpec, SuiteSpec

    rng = random.Random(seed)
    world = manhattan_grid()
    lanes = LaneMap(world)
    renderer = CityRenderer(world, size, size)
    flat = np.empty((clips, clip_frames, size, size, 3), np.uint8)
    styled = np.empty((clips, len(styles), clip_frames, size, size, 3), np.uint8)
    steps_between = max(1, round(every_s * 20))
    made = 0
    while made < clips:
        route = random_route(lanes, rng, min_length_m=400.0)
        spec = SuiteSpec("pairs", 1, (RouteSpec(f"pairs{made}", route),), 12, 8, rng.randrange(1 << 30))
        episode = Episode(world, lanes, spec.routes[0], spec, spec.seed, config=EpisodeConfig(start_time_s=rng.uniform(0, 60)))
        driver = NoisyAutopilot(rng.randrange(1 << 30))
        for _ in range(rng.randrange(20, 200)):  # start the clip somewhere along the drive
            if not episode.done:
                episode.step(driver(episode.observe()))
        mode: CameraMode = rng.choice(("dash", "chase"))  # players use both cameras
        for k in range(clip_frames):
            camera = camera_pose(episode.ego, mode, 60.0)
            actors = episode.actor_poses(episode.traffic.actors(episode.t))
            for j, style in enumerate(styles):
                f, s = render_pair(renderer, camera, actors, episode.t, style)
                styled[made, j, k] = s
            flat[made, k] = f
            for _ in range(steps_between):
                if not episode.done:
                    episode.step(driver(episode.observe()))
        made += 1
        if on_clip:
            on_clip(made)
    renderer.release()
    return {"flat": flat, "styled": styled, "styles": np.array(styles)}


def main(argv: list[str] | None = None) -> int:
    from rich.progress import Progress

    parser = argparse.ArgumentParser(description="Render paired (flat, styled) clips of the city for the diffusion model.")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--clip-frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--every-s", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    with Progress() as bar:
        task = bar.add_task("rendering clips", total=args.clips)
        data = generate_clips(args.clips, args.clip_frames, args.size, args.every_s, args.seed,
                              on_clip=lambda n: bar.update(task, completed=n))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **data)
    print(f"wrote {args.out}: flat {data['flat'].shape}, styled {data['styled'].shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

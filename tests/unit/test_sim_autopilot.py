"""The autopilot at a traffic light: it stops for the red and, as a person does, takes a moment to go at green
(AutopilotParams.green_reaction_s), so recorded data shows cars standing at greens."""

from __future__ import annotations

import pytest

from scalediffusion.city.grid import manhattan_grid
from scalediffusion.sim.autopilot import Autopilot, AutopilotParams, NoisyAutopilot
from scalediffusion.sim.episode import Episode
from scalediffusion.sim.lanes import LaneMap
from scalediffusion.sim.suites import suite


def wait_after_green(driver) -> tuple[float, float]:
    """(seconds stood at the first red light of traffic@1's route 2, seconds from its green until the car moved)."""
    spec = suite("traffic@1")
    world = manhattan_grid(spec.world)
    episode = Episode(world, LaneMap(world), spec.routes[2], spec, 1002)
    stop = next(s for s in episode.path.stop_lines if episode.lights.color(s.intersection_id, s.axis, 12.0) == "red")
    seen: dict[str, float] = {}

    def on_step(ep: Episode, obs) -> None:
        at_line = 0 <= stop.s - ep.monitor.current_s < 12
        color = ep.lights.color(stop.intersection_id, stop.axis, ep.t)
        if at_line and ep.ego.speed < 0.05 and color == "red":
            seen.setdefault("stood", ep.t)
        if "stood" in seen and color == "green":
            seen.setdefault("green", ep.t)
            if ep.ego.speed > 0.5:
                seen.setdefault("moved", ep.t)

    episode.run(driver, max_steps=1000, on_step=on_step)
    assert {"stood", "green", "moved"} <= seen.keys(), f"the car stood at the red and left at green: {seen}"
    return seen["green"] - seen["stood"], seen["moved"] - seen["green"]


def test_the_autopilot_goes_at_once_at_green_unless_it_has_a_reaction_time():
    stood, prompt = wait_after_green(Autopilot())
    assert stood > 5 and prompt < 1.0
    _, slow = wait_after_green(Autopilot(AutopilotParams(green_reaction_s=(2.5, 2.5))))
    assert slow == pytest.approx(prompt + 2.5, abs=0.2), "it stands 2.5 s longer, then leaves as before"


def test_bots_draw_their_reaction_per_stop_within_the_range():
    waits = [wait_after_green(NoisyAutopilot(seed, green_reaction_s=(1.0, 3.0)))[1] for seed in (1, 2, 3)]
    assert all(1.0 <= w <= 3.0 + 1.0 for w in waits) and max(waits) - min(waits) > 0.1, waits

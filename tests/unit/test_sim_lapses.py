"""The bots' steering lapses in turns (Codevilla et al.'s noise injection placed where policies fail): when they
happen, what they do to the steer, and that the autopilot recovers from them while its clean action stays the label."""

from __future__ import annotations

import random

import pytest

from scalediffusion.city.grid import manhattan_grid
from scalediffusion.sim.autopilot import NoisyAutopilot, TurnLapse, TurnLapseParams
from scalediffusion.sim.episode import Episode, EpisodeConfig
from scalediffusion.sim.lanes import LaneMap
from scalediffusion.sim.suites import suite
from services.processor.targets import TargetSettings

DT = 1 / 60


def lapse_times(lapse: TurnLapse, turning, clean: float = 0.4, seconds: float = 20.0) -> list[float]:
    """Times at which the applied steer is not the clean one."""
    out = []
    for i in range(int(seconds / DT)):
        t = i * DT
        if lapse.steer(t, turning(t), clean) != clean:
            out.append(t)
    return out


def test_a_turn_gets_one_lapse_that_starts_within_the_delay_and_lasts_within_the_duration():
    p = TurnLapseParams(probability=1.0)
    times = lapse_times(TurnLapse(p, random.Random(3)), lambda t: 2.0 <= t < 6.0)
    assert times, "a certain lapse happened"
    assert 2.0 + p.delay_s[0] - DT <= times[0] <= 2.0 + p.delay_s[1] + DT
    assert p.duration_s[0] - 2 * DT <= times[-1] - times[0] <= p.duration_s[1] + DT
    assert all(b - a < 1.5 * DT for a, b in zip(times, times[1:])), "one continuous lapse per turn"


def test_no_lapse_without_a_turn_or_with_probability_zero_and_none_again_within_the_cooldown():
    assert lapse_times(TurnLapse(TurnLapseParams(probability=1.0), random.Random(0)), lambda t: False) == []
    assert lapse_times(TurnLapse(TurnLapseParams(probability=0.0), random.Random(0)), lambda t: 2.0 <= t < 6.0) == []
    # Two turns 0.5 s apart: the second starts inside the first lapse's cooldown and gets none.
    p = TurnLapseParams(probability=1.0, delay_s=(0.0, 0.0), duration_s=(0.5, 0.5), cooldown_s=3.0)
    times = lapse_times(TurnLapse(p, random.Random(0)), lambda t: 1.0 <= t < 1.5 or 2.0 <= t < 2.5 or 6.0 <= t < 7.0)
    assert times[0] == pytest.approx(1.0, abs=DT) and times[-1] == pytest.approx(6.5, abs=2 * DT)
    assert not any(2.0 <= t < 6.0 for t in times)


@pytest.mark.parametrize("over, clean", [(False, 0.4), (False, -0.15), (True, 0.4), (True, -0.15)])
def test_a_lapse_moves_the_steer_by_at_least_its_gap_the_right_way(over, clean):
    p = TurnLapseParams(probability=1.0, delay_s=(0.0, 0.0), over_share=1.0 if over else 0.0)
    lapse = TurnLapse(p, random.Random(1))
    applied = lapse.steer(0.0, True, clean)
    assert abs(applied - clean) >= p.min_gap - 1e-9
    assert abs(applied - clean) > TargetSettings().off_expert_steer, "the processor tells every lapse from a wander"
    grows = abs(applied) > abs(clean) and applied * clean > 0
    assert grows == over, "understeer turns less (or back), oversteer turns more"


def test_probability_is_validated():
    with pytest.raises(ValueError, match="probability"):
        TurnLapseParams(probability=1.5).validate()


def test_the_autopilot_recovers_from_its_lapses_and_keeps_the_clean_action_as_the_label():
    """easy@1's first route turns right at its second intersection. With a lapse in every turn the applied steer
    leaves the clean one there (and only in turns), the car comes back to its lane and completes the route."""
    spec = suite("easy@1")
    world = manhattan_grid(spec.world)
    lanes = LaneMap(world)

    def drive(probability: float):
        episode = Episode(world, lanes, spec.routes[0], spec, 7, config=EpisodeConfig(control_hz=60, physics_hz=60))
        driver = NoisyAutopilot(7, lapses=TurnLapseParams(probability=probability))
        gaps, turning = [], []
        while not episode.done:
            obs = episode.observe()
            control = driver(obs)
            gaps.append(abs(control.steer - driver.last_expert.steer))
            turning.append(driver._route_turns(obs))
            episode.step(control)
        return episode, gaps, turning

    calm, calm_gaps, _ = drive(0.0)
    lapsed, gaps, turning = drive(1.0)
    off = [i for i, g in enumerate(gaps) if g > TargetSettings().off_expert_steer]
    assert max(calm_gaps) < TargetSettings().off_expert_steer, "without lapses only the wander separates them"
    assert len(off) >= 0.4 * 60 * 0.8, "a lapse of at least 0.4 s (wander aside)"
    first = off[0]
    assert any(turning[max(0, first - 60):first + 1]), "the lapse began in a turn"
    for episode in (calm, lapsed):
        run = episode.monitor.finish(episode.t)
        assert run.status == "Completed", run.infractions

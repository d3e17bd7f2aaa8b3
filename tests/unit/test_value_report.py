"""Value reports: read back as written, and combined into one curve only when their points were measured the same way."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from scalediffusion.sim.bots import BotConfig
from scalediffusion.sim.value import Point, ValueConfig, ValueResult, combine_results
from scalediffusion.stack.cli import main

AUTOPILOT = {"driving_score": 83.4, "route_completion": 100.0, "infraction_penalty": 0.834}


def report(tag: str, points: list[tuple[str, float, list[float]]], **config_changes) -> dict:
    config = ValueConfig(minutes=tuple(sorted({m for _, m, _ in points})), presets=tuple(dict.fromkeys(p for p, _, _ in points)),
                         tag=tag, **config_changes)
    result = ValueResult(config=asdict(config), sessions=len(points) * 10, accepted_minutes=10.0 * len(points),
                         points=[Point(preset=preset, minutes=minutes, train_minutes=minutes + 0.3, run_id=f"{tag}-{preset}-{minutes:g}",
                                       epochs=8, train_wall_s=60.0 * minutes, best_val_loss=1.0,
                                       seeds={seed: {"driving_score": ds, "route_completion": 2 * ds, "infraction_penalty": 0.5}
                                              for seed, ds in enumerate(scores, start=1)})
                                 for preset, minutes, scores in points],
                         autopilot=dict(AUTOPILOT), stage_seconds={"training and evaluation": 100.0})
    return json.loads(json.dumps(result.to_dict()))  # as value.json holds it: seeds are string keys


def test_a_report_reads_back_as_it_was_written():
    doc = report("a", [("aim", 5.0, [10.0, 20.0, 30.0])])
    result = ValueResult.from_dict(doc)
    assert result.points[0].seeds[2]["driving_score"] == 20.0  # int seeds again
    assert result.points[0].mean("driving_score") == pytest.approx(20.0)
    assert json.loads(json.dumps(result.to_dict())) == doc


def test_pieces_of_a_curve_combine_in_order_of_minutes():
    small = report("cv", [("aim", 5.0, [10.0, 12.0, 14.0]), ("cilrs", 5.0, [1.0, 2.0, 3.0]),
                          ("aim", 15.0, [20.0, 22.0, 24.0])])
    large = report("lt2", [("aim", 35.0, [48.8, 44.8, 41.3])])
    combined = combine_results([large, small])
    assert [(p.preset, p.minutes) for p in combined.points] == [("aim", 5.0), ("cilrs", 5.0), ("aim", 15.0), ("aim", 35.0)]
    assert combined.config["minutes"] == [5.0, 15.0, 35.0]
    assert combined.config["presets"] == ["aim", "cilrs"]
    assert combined.config["tag"] == "lt2+cv"
    assert combined.accepted_minutes == 30.0 and combined.sessions == 30
    assert combined.stage_seconds == {"training and evaluation": 200.0}
    assert combined.points[-1].mean("driving_score") == pytest.approx(44.967, abs=1e-3)


@pytest.mark.parametrize(("change", "field"), [({"suite": "easy@1"}, "suite"), ({"seeds": (1, 2)}, "seeds"),
                                               ({"epochs": 4}, "epochs"), ({"turn_weight": 3.0}, "turn_weight"),
                                               ({"bot": BotConfig(seconds=30.0)}, "bot")])
def test_reports_measured_differently_are_not_one_curve(change, field):
    a = report("a", [("aim", 5.0, [10.0, 12.0, 14.0])])
    b = report("b", [("aim", 15.0, [20.0, 22.0, 24.0])], **change)
    with pytest.raises(ValueError, match=f"differ in {field}"):
        combine_results([a, b])


def test_a_changed_simulator_or_a_repeated_point_is_refused():
    a = report("a", [("aim", 5.0, [10.0, 12.0, 14.0])])
    b = report("b", [("aim", 15.0, [20.0, 22.0, 24.0])])
    b["autopilot"]["driving_score"] = 80.0
    with pytest.raises(ValueError, match="autopilot's driving_score differs"):
        combine_results([a, b])
    with pytest.raises(ValueError, match="aim at 5 min is in more than one report"):
        combine_results([a, report("c", [("aim", 5.0, [1.0, 1.0, 1.0])])])
    with pytest.raises(ValueError, match="no reports"):
        combine_results([])


def test_value_plot_command_writes_the_combined_report_and_plot(tmp_path, capsys):
    (tmp_path / "a.json").write_text(json.dumps(report("cv", [("aim", 5.0, [10.0, 12.0, 14.0])])))
    (tmp_path / "b.json").write_text(json.dumps(report("lt2", [("aim", 35.0, [48.8, 44.8, 41.3])])))
    assert main(["value-plot", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--out", str(tmp_path / "curve")]) == 0
    doc = json.loads((tmp_path / "curve" / "value.json").read_text())
    assert [p["minutes"] for p in doc["points"]] == [5.0, 35.0]
    assert (tmp_path / "curve" / "value.png").read_bytes()[:4] == b"\x89PNG"
    assert "48.8 44.8 41.3" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["value-plot", str(tmp_path / "bad.json"), "--out", str(tmp_path / "x")]) == 2
    assert "cannot read the value report" in capsys.readouterr().out

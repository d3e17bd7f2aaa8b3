"""Job state folding (pure): progress documents, exit codes and terminal states; CARLA shard reports; eval sharding."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from scalediffusion.v1 import trainer_pb2
from services.trainer import carla_eval, jobs, reports


def fresh() -> trainer_pb2.Job:
    return jobs.new_job("run-1", trainer_pb2.JOB_KIND_TRAINING, trainer_pb2.BACKEND_LOCAL, "models/run-1/")


def test_running_progress_is_folded_in_and_a_repeat_changes_nothing():
    job = fresh()
    doc = {"state": "RUNNING", "progress": 0.5, "message": "epoch 2/4 done", "metrics": {"val_loss": 0.2, "note": "x"}}
    assert jobs.observe_run_progress(job, doc, None)
    assert job.state == trainer_pb2.JOB_STATE_RUNNING and job.progress == 0.5 and dict(job.metrics) == {"val_loss": 0.2}
    assert not jobs.observe_run_progress(job, doc, None)


def test_exit_zero_with_a_succeeded_document_succeeds():
    job = fresh()
    assert jobs.observe_run_progress(job, {"state": "SUCCEEDED", "progress": 1.0, "message": "trained"}, 0)
    assert job.state == trainer_pb2.JOB_STATE_SUCCEEDED and job.progress == 1.0


def test_a_killed_process_fails_with_its_exit_code_and_a_failed_run_with_its_message():
    killed = fresh()
    jobs.observe_run_progress(killed, {"state": "RUNNING", "progress": 0.3}, -9)
    assert killed.state == trainer_pb2.JOB_STATE_FAILED and "code -9" in killed.message
    failed = fresh()
    jobs.observe_run_progress(failed, {"state": "FAILED", "message": "dataset 'x' has no segments"}, 2)
    assert failed.state == trainer_pb2.JOB_STATE_FAILED and failed.message == "dataset 'x' has no segments"
    # Exit 0 without a SUCCEEDED document is not a success.
    odd = fresh()
    jobs.observe_run_progress(odd, {"state": "RUNNING"}, 0)
    assert odd.state == trainer_pb2.JOB_STATE_FAILED


def test_a_terminal_job_never_changes_again():
    job = fresh()
    jobs.apply_update(job, state=trainer_pb2.JOB_STATE_SUCCEEDED)
    assert not jobs.apply_update(job, state=trainer_pb2.JOB_STATE_FAILED, message="late")
    assert job.state == trainer_pb2.JOB_STATE_SUCCEEDED


def test_records_round_trip_through_json():
    record = jobs.JobRecord(fresh(), {"dataset": "d"}, "abc")
    again = jobs.JobRecord.from_doc(json.loads(json.dumps(record.to_doc())))
    assert again.job == record.job and again.request == {"dataset": "d"} and again.fingerprint == "abc"


def _route_record(route_id: str, completion: float, infractions: dict | None = None, length: float = 1000.0) -> dict:
    all_kinds = {k: [] for k in ("collisions_layout", "collisions_pedestrian", "collisions_vehicle", "red_light",
                                 "stop_infraction", "outside_route_lanes", "min_speed_infractions",
                                 "yield_emergency_vehicle_infractions", "scenario_timeouts", "route_dev",
                                 "vehicle_blocked", "route_timeout")}
    all_kinds.update(infractions or {})
    return {"route_id": route_id, "index": 0, "status": "Completed" if completion == 100 else "Failed - Agent got blocked",
            "infractions": all_kinds, "scores": {"score_route": completion, "score_penalty": 1.0, "score_composed": completion},
            "meta": {"route_length": length, "duration_game": 10.0, "duration_system": 20.0}, "num_infractions": 0}


def _checkpoint(records: list[dict], done: int | None = None) -> dict:
    total = len(records)
    return {"_checkpoint": {"records": records, "progress": [total if done is None else done, total], "global_record": {}}}


def test_shard_results_are_scored_together():
    vehicle = "Agent collided against object with type=vehicle.tesla.model3 and id=42 at (x=1.0, y=2.0, z=0.1)"
    shard0 = _checkpoint([_route_record("RouteScenario_0", 100.0, {"collisions_vehicle": [vehicle]})])
    shard1 = _checkpoint([_route_record("RouteScenario_1", 50.0)])
    report = reports.report_from_checkpoints([shard0, shard1], eval_id="e1", model_run="r1", suite="devtest@1")
    # Route 0: RC 100, IP 0.6 -> DS 60. Route 1: RC 50, IP 1 -> DS 50. Means: DS 55, RC 75, IP 0.8.
    assert report.driving_score == pytest.approx(55.0)
    assert report.route_completion == pytest.approx(75.0)
    assert report.infraction_penalty == pytest.approx(0.8)
    vehicle_stat = next(i for i in report.infractions if i.kind == "collisions_vehicle")
    assert vehicle_stat.count == 1 and vehicle_stat.per_km == pytest.approx(1 / 1.5)  # 1 km + 0.5 km driven
    assert [r.route_id for r in report.routes] == ["RouteScenario_0", "RouteScenario_1"]


def test_an_incomplete_or_overlapping_evaluation_is_refused():
    with pytest.raises(reports.IncompleteEvaluation, match="shard 0 ran 1 of its 2"):
        reports.report_from_checkpoints([_checkpoint([_route_record("a", 100.0), _route_record("b", 100.0)], done=1)],
                                        eval_id="e", model_run="r", suite="s@1")
    with pytest.raises(ValueError, match="more than one shard"):
        reports.report_from_checkpoints([_checkpoint([_route_record("a", 100.0)])] * 2, eval_id="e", model_run="r", suite="s@1")


ROUTES = "<routes>" + "".join(f'<route id="{i}" town="Town12"><waypoints/></route>' for i in range(5)) + "</routes>"


def test_shards_partition_the_suite():
    seen = []
    for shard in range(3):
        xml, ids = carla_eval.shard_routes(ROUTES, shard, 3)
        assert [r.get("id") for r in ET.fromstring(xml).findall("route")] == ids
        seen += ids
    assert sorted(seen) == [str(i) for i in range(5)]
    with pytest.raises(carla_eval.SuiteError, match="only 5"):
        carla_eval.shard_routes(ROUTES, 5, 6)
    with pytest.raises(carla_eval.SuiteError, match="no <route>"):
        carla_eval.shard_routes("<routes/>", 0, 1)


def test_suites_resolve_to_leaderboard_route_files_and_the_command_runs_our_agent(tmp_path):
    assert carla_eval.suite_route_file("devtest@1", "/opt/lb").as_posix() == "/opt/lb/data/routes_devtest.xml"
    with pytest.raises(carla_eval.SuiteError, match="known: devtest@1"):
        carla_eval.suite_route_file("devtest@9", "/opt/lb")
    command = carla_eval.leaderboard_command("/opt/lb", tmp_path / "r.xml", tmp_path / "a.json", tmp_path / "c.json",
                                             "127.0.0.1", 2000, 8003, 7)
    assert command[1] == "/opt/lb/leaderboard/leaderboard_evaluator.py"
    assert f"--agent={carla_eval.AGENT_FILE}" in command and "--track=SENSORS" in command and "--traffic-manager-seed=7" in command
    assert carla_eval.AGENT_FILE.exists()

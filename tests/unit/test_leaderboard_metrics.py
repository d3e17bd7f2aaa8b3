"""CARLA Leaderboard metrics (scalediffusion.leaderboard) against hand-computed figures (docs/ARCHITECTURE.md "Data flow",
step 4). DS and RC are percentages (0..100), IP a fraction (0..1)."""

import copy
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scalediffusion import leaderboard as lb
from scalediffusion.leaderboard import Infraction, RouteRun

# Message texts as scenario_runner's atomic_criteria.py writes them.
VEHICLE_HIT = "Agent collided against object with type=vehicle.audi.tt and id=3719 at (x=-254.008, y=3082.698, z=362.48)"
RED_LIGHT = "Agent ran a red light 971 at (x=341.25, y=209.1, z=0.104)"
BLOCKED = "Agent got blocked at (x=8.541, y=326.009, z=0.001)"


def min_speed_message(percent):
    return f"Average speed is {percent}% of the surrounding traffic's one"


def outside_lanes_message(metres, percent):
    return f"Agent went outside its route lanes for about {metres} meters ({percent}% of the completed route)"


def run(*infractions, completion=100.0, length_m=1000.0, route_id="r0", status="Completed"):
    return RouteRun(route_id, length_m, completion, tuple(infractions), status=status)


def ip(*infractions, version="2.0"):
    return lb.score_route(run(*infractions), version).infraction_penalty


def vehicle():
    return Infraction("collisions_vehicle")


def min_speed(percent):
    return Infraction("min_speed_infractions", percent=percent)


def outside_lanes(percent, metres):
    return Infraction("outside_route_lanes", percent=percent, distance_m=metres)


# Per-route infraction penalty, Leaderboard 2.0.


def test_two_vehicle_collisions_multiply_the_factor_twice():
    # IP = 0.6 × 0.6 = 0.36; DS = 100 × 0.36 = 36
    score = lb.score_route(run(vehicle(), vehicle()))
    assert score.infraction_penalty == pytest.approx(0.36)
    assert score.driving_score == pytest.approx(36.0)
    assert score.counts["collisions_vehicle"] == 2


def test_each_fixed_factor_applies_once_per_event():
    # 0.5 (pedestrian) × 0.65 (layout) × 0.7 (red light) × 0.8 (stop) × 0.7 (scenario timeout) × 0.7 (yield)
    # = 0.5 × 0.65 = 0.325; × 0.7 = 0.2275; × 0.8 = 0.182; × 0.7 = 0.1274; × 0.7 = 0.08918
    kinds = ["collisions_pedestrian", "collisions_layout", "red_light", "stop_infraction", "scenario_timeouts",
             "yield_emergency_vehicle_infractions"]
    assert ip(*(Infraction(kind) for kind in kinds)) == pytest.approx(0.08918)


def test_each_min_speed_checkpoint_is_its_own_event():
    # 50 %: 1 − 0.3 × (1 − 0.5) = 0.85; 80 %: 1 − 0.3 × (1 − 0.8) = 0.94; IP = 0.85 × 0.94 = 0.799
    # RC 80 → DS = 80 × 0.799 = 63.92
    score = lb.score_route(run(min_speed(50), min_speed(80), completion=80.0))
    assert score.infraction_penalty == pytest.approx(0.799)
    assert score.driving_score == pytest.approx(63.92)
    assert score.counts["min_speed_infractions"] == 2


def test_min_speed_at_or_above_traffic_speed_costs_nothing():
    # Bench2Drive files record such checkpoints; 1 − p/100 is clamped at 0, so the factor stays 1.
    assert ip(min_speed(100)) == 1.0
    assert ip(min_speed(250)) == 1.0
    assert ip(min_speed(0)) == pytest.approx(0.7)  # standing still: 1 − 0.3 × 1


def test_outside_route_lanes_is_one_cumulative_factor():
    # 10 % of the driven distance outside lanes: IP = 1 − 10/100 = 0.9
    score = lb.score_route(run(outside_lanes(10, 100.0)))
    assert score.infraction_penalty == pytest.approx(0.9)
    assert score.outside_lanes_km == pytest.approx(0.1)
    with pytest.raises(ValueError, match="one cumulative event"):
        run(outside_lanes(5, 50.0), outside_lanes(5, 50.0))


@pytest.mark.parametrize("kind", lb.ROUTE_ENDING_KINDS)
def test_route_ending_events_carry_no_penalty(kind):
    # They end the route, so they cost route completion only: IP = 1, DS = RC = 42.5
    score = lb.score_route(run(Infraction(kind), completion=42.5, status="Failed - Agent got blocked"))
    assert score.infraction_penalty == 1.0
    assert score.driving_score == pytest.approx(42.5)
    assert score.counts[kind] == 1
    assert score.status == "Failed - Agent got blocked"


def test_driving_score_floors_at_zero():
    # All of the route outside lanes: IP = (1 − 100/100) × 0.6 = 0; DS = 0, never negative (not even −0.0)
    score = lb.score_route(run(outside_lanes(100, 1000.0), vehicle(), completion=37.0))
    assert score.infraction_penalty == 0.0
    assert score.driving_score == 0.0 and math.copysign(1.0, score.driving_score) == 1.0


def test_matches_a_published_leaderboard_result():
    # A public Leaderboard 2.0 result file records score_penalty 0.440034 for one vehicle collision and one min-speed
    # checkpoint at 11.13 %: 0.6 × (1 − 0.3 × 0.8887) = 0.6 × 0.73339 = 0.440034; and 0.870627 for checkpoints at
    # 62.43 % and 93.74 %: (1 − 0.3 × 0.3757) × (1 − 0.3 × 0.0626) = 0.88729 × 0.98122 = 0.870627.
    assert ip(vehicle(), min_speed(11.13)) == pytest.approx(0.440034, abs=1e-6)
    assert ip(min_speed(62.43), min_speed(93.74)) == pytest.approx(0.870627, abs=1e-6)


# Leaderboard 2.1: IP = Π(outside-lanes factors) / (1 + Σ weights).


def test_v2_1_adds_weights_instead_of_multiplying_factors():
    # two vehicles: 1 / (1 + 0.7 + 0.7) = 1 / 2.4 = 0.41667 (2.0 gives 0.36)
    assert ip(vehicle(), vehicle(), version="2.1") == pytest.approx(1 / 2.4)
    # one pedestrian: 1 / (1 + 1.0) = 0.5
    assert ip(Infraction("collisions_pedestrian"), version="2.1") == pytest.approx(0.5)
    # three red lights: 1 / (1 + 3 × 0.4) = 1 / 2.2 = 0.4545 (2.0: 0.7³ = 0.343)
    assert ip(*[Infraction("red_light")] * 3, version="2.1") == pytest.approx(1 / 2.2)
    assert ip(*[Infraction("red_light")] * 3) == pytest.approx(0.343)
    # stop sign: 1 / 1.25 = 0.8, the same as 2.0
    assert ip(Infraction("stop_infraction"), version="2.1") == pytest.approx(0.8)


def test_v2_1_min_speed_weight_and_outside_lanes_factor():
    # min speed 50 %: weight 0.4 × (1 − 0.5) = 0.2; red light 0.4; IP = 1 / (1 + 0.6) = 0.625
    assert ip(min_speed(50), Infraction("red_light"), version="2.1") == pytest.approx(0.625)
    # plus 10 % outside lanes: IP = 0.9 / 1.6 = 0.5625; RC 80 → DS = 45
    score = lb.score_route(run(min_speed(50), Infraction("red_light"), outside_lanes(10, 80.0), completion=80.0), "2.1")
    assert score.infraction_penalty == pytest.approx(0.5625)
    assert score.driving_score == pytest.approx(45.0)
    assert score.metric_version == "2.1"
    # route-ending events carry no weight in 2.1 either
    assert ip(*(Infraction(kind) for kind in lb.ROUTE_ENDING_KINDS), version="2.1") == 1.0


# Suite aggregation.


def test_global_driving_score_is_the_mean_of_route_scores_not_the_product_of_means():
    # A: RC 100, one pedestrian → IP 0.5, DS 50. B: RC 50, clean → IP 1, DS 50.
    # mean DS = 50; mean RC = 75; mean IP = 0.75; mean RC × mean IP = 56.25 ≠ 50
    scores = [lb.score_route(run(Infraction("collisions_pedestrian"), route_id="a")),
              lb.score_route(run(completion=50.0, route_id="b"))]
    total = lb.aggregate(scores)
    assert total.driving_score == pytest.approx(50.0)
    assert total.route_completion == pytest.approx(75.0)
    assert total.infraction_penalty == pytest.approx(0.75)
    assert total.route_completion * total.infraction_penalty != pytest.approx(total.driving_score)
    assert total.metric_version == "2.0" and total.route_count == 2


def test_per_km_rates_divide_by_km_actually_driven():
    # A: 2000 m at RC 50 → 1.0 km, two vehicle hits. B: 1000 m at RC 100 → 1.0 km, one vehicle hit and a red light.
    # driven = 2.0 km; collisions_vehicle = 3 / 2.0 = 1.5 per km; red_light = 1 / 2.0 = 0.5 per km
    scores = [lb.score_route(run(vehicle(), vehicle(), completion=50.0, length_m=2000.0, route_id="a")),
              lb.score_route(run(vehicle(), Infraction("red_light"), route_id="b"))]
    total = lb.aggregate(scores)
    assert total.driven_km == pytest.approx(2.0)
    assert total.counts["collisions_vehicle"] == 3
    assert total.per_km["collisions_vehicle"] == pytest.approx(1.5)
    assert total.per_km["red_light"] == pytest.approx(0.5)
    assert total.per_km["collisions_pedestrian"] == 0.0
    assert set(total.per_km) == set(total.counts) == set(lb.INFRACTION_KINDS)


def test_per_km_floors_the_distance_at_one_metre_when_nothing_was_driven():
    # RC 0 on both routes → driven 0 km, floored to 0.001 km; one layout hit → 1 / 0.001 = 1000 per km
    scores = [lb.score_route(run(Infraction("collisions_layout"), completion=0.0, length_m=500.0, route_id="a")),
              lb.score_route(run(completion=0.0, length_m=800.0, route_id="b"))]
    total = lb.aggregate(scores)
    assert total.driven_km == 0.0
    assert total.per_km["collisions_layout"] == pytest.approx(1000.0)
    assert total.driving_score == 0.0


def test_outside_lanes_global_is_km_outside_lanes_not_a_rate():
    # A: 150 m outside lanes, B: 250 m → 0.4 km in total (a rate would be 2 events / 2 km = 1.0)
    scores = [lb.score_route(run(outside_lanes(15, 150.0), route_id="a")),
              lb.score_route(run(outside_lanes(25, 250.0), route_id="b"))]
    total = lb.aggregate(scores)
    assert total.counts["outside_route_lanes"] == 2
    assert total.per_km["outside_route_lanes"] == pytest.approx(0.4)


def test_aggregate_refuses_empty_and_mixed_versions():
    with pytest.raises(ValueError, match="no route scores"):
        lb.aggregate([])
    with pytest.raises(ValueError, match="scored as 2.1"):
        lb.aggregate([lb.score_route(run(), "2.0"), lb.score_route(run(), "2.1")])


@pytest.mark.parametrize("version", ["1.0", "2", "", "2.0 "])
def test_unknown_versions_are_refused(version):
    with pytest.raises(ValueError, match="unknown leaderboard metric version"):
        lb.score_route(run(), version)
    with pytest.raises(ValueError, match="unknown leaderboard metric version"):
        lb.aggregate([lb.score_route(run())], version)


# Input validation.


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda: Infraction("wrong_way"), "unknown infraction kind"),
        (lambda: Infraction("min_speed_infractions"), "needs percent"),
        (lambda: Infraction("min_speed_infractions", percent=-1), "at least 0"),
        (lambda: Infraction("outside_route_lanes", percent=10), "needs percent and distance_m"),
        (lambda: Infraction("outside_route_lanes", percent=120, distance_m=5.0), r"in \[0, 100\]"),
        (lambda: Infraction("collisions_vehicle", percent=50), "percent applies to"),
        (lambda: Infraction("red_light", distance_m=3.0), "distance_m applies to"),
        (lambda: RouteRun("r", 1000.0, 101.0), "completion_percent"),
        (lambda: RouteRun("r", float("nan"), 50.0), "route_length_m"),
        (lambda: RouteRun("", 1000.0, 50.0), "route_id"),
    ],
)
def test_invalid_events_and_runs_are_refused(make, reason):
    with pytest.raises(ValueError, match=reason):
        make()


# Parsing the leaderboard's --checkpoint result file.


def empty_infractions():
    return {kind: [] for kind in lb.INFRACTION_KINDS}


def checkpoint_doc():
    """Two records in the layout statistics_manager.py writes (Results.to_json)."""
    first = empty_infractions()
    first["collisions_vehicle"] = [VEHICLE_HIT]
    first["min_speed_infractions"] = [min_speed_message(50.0), min_speed_message(80.0)]
    second = empty_infractions()
    second["red_light"] = [RED_LIGHT]
    second["outside_route_lanes"] = [outside_lanes_message(120.5, 24.1)]
    second["vehicle_blocked"] = [BLOCKED]
    return {
        "_checkpoint": {
            "global_record": {},
            "progress": [2, 2],
            "records": [
                {
                    "index": 0, "route_id": "RouteScenario_0_rep0", "scenario_name": "Accident_1", "weather_id": 0,
                    "save_name": "RouteScenario_0_rep0_Town12", "status": "Completed", "num_infractions": 3,
                    "infractions": first,
                    "scores": {"score_route": 100.0, "score_penalty": 0.4794, "score_composed": 47.94},
                    "meta": {"route_length": 1000.0, "duration_game": 85.9, "duration_system": 1008.512},
                },
                {
                    "index": 1, "route_id": "RouteScenario_1_rep0", "scenario_name": "ParkingCutIn_2", "weather_id": 3,
                    "save_name": "RouteScenario_1_rep0_Town12", "status": "Failed - Agent got blocked",
                    "num_infractions": 3, "infractions": second,
                    "scores": {"score_route": 50.0, "score_penalty": 0.5313, "score_composed": 26.565},
                    "meta": {"route_length": 1000.0, "duration_game": 180.05, "duration_system": 640.2},
                },
            ],
        },
        "entry_status": "Finished",
        "eligible": True,
        "sensors": ["carla_camera", "carla_speedometer"],
        "values": [],
        "labels": [],
    }


def test_checkpoint_records_parse_into_route_runs():
    runs = lb.parse_leaderboard_checkpoint(checkpoint_doc())
    assert runs == [
        RouteRun(
            "RouteScenario_0_rep0", 1000.0, 100.0,
            (
                Infraction("collisions_vehicle", location=(-254.008, 3082.698, 362.48), message=VEHICLE_HIT),
                Infraction("min_speed_infractions", percent=50.0, message=min_speed_message(50.0)),
                Infraction("min_speed_infractions", percent=80.0, message=min_speed_message(80.0)),
            ),
            status="Completed", duration_game_s=85.9,
        ),
        RouteRun(
            "RouteScenario_1_rep0", 1000.0, 50.0,
            (
                Infraction("red_light", location=(341.25, 209.1, 0.104), message=RED_LIGHT),
                Infraction("outside_route_lanes", percent=24.1, distance_m=120.5,
                           message=outside_lanes_message(120.5, 24.1)),
                Infraction("vehicle_blocked", location=(8.541, 326.009, 0.001), message=BLOCKED),
            ),
            status="Failed - Agent got blocked", duration_game_s=180.05,
        ),
    ]


def test_parsed_checkpoint_reproduces_the_recorded_scores():
    # Route 0: 0.6 × 0.85 × 0.94 = 0.4794, DS 47.94. Route 1: 0.7 × (1 − 0.241) = 0.5313, DS 50 × 0.5313 = 26.565.
    # Global: DS (47.94 + 26.565) / 2 = 37.2525; RC 75; IP (0.4794 + 0.5313) / 2 = 0.50535.
    # Driven 1.0 + 0.5 = 1.5 km: vehicle 1/1.5, min speed 2/1.5, red light 1/1.5, blocked 1/1.5; outside 0.1205 km.
    doc = checkpoint_doc()
    scores = [lb.score_route(r) for r in lb.parse_leaderboard_checkpoint(doc)]
    for score, record in zip(scores, doc["_checkpoint"]["records"]):
        assert score.infraction_penalty == pytest.approx(record["scores"]["score_penalty"])
        assert score.driving_score == pytest.approx(record["scores"]["score_composed"])
    total = lb.aggregate(scores)
    assert total.driving_score == pytest.approx(37.2525)
    assert total.route_completion == pytest.approx(75.0)
    assert total.infraction_penalty == pytest.approx(0.50535)
    assert total.driven_km == pytest.approx(1.5)
    assert total.per_km["collisions_vehicle"] == pytest.approx(1 / 1.5)
    assert total.per_km["min_speed_infractions"] == pytest.approx(2 / 1.5)
    assert total.per_km["vehicle_blocked"] == pytest.approx(1 / 1.5)
    assert total.per_km["outside_route_lanes"] == pytest.approx(0.1205)


def test_older_records_without_every_key_and_the_old_min_speed_wording_parse():
    record = checkpoint_doc()["_checkpoint"]["records"][0]
    record["infractions"] = {"min_speed_infractions": ["Average agent speed is 62.5 of the surrounding traffic's one"]}
    record["route_id"] = 7
    del record["meta"]["duration_game"]
    [parsed] = lb.parse_leaderboard_checkpoint({"_checkpoint": {"records": [record]}})
    assert parsed.route_id == "7" and parsed.duration_game_s == 0.0
    assert parsed.infractions[0].percent == 62.5


def malformed(change):
    doc = checkpoint_doc()
    change(doc)
    return doc


def first_record(doc):
    return doc["_checkpoint"]["records"][0]


@pytest.mark.parametrize(
    "doc, reason",
    [
        ([], "should be a JSON object"),
        ({}, r"\$\._checkpoint is missing"),
        ({"_checkpoint": {"records": {}}}, r"records should be list"),
        ({"_checkpoint": {"records": ["x"]}}, r"records\[0\] should be an object"),
        (malformed(lambda d: first_record(d)["meta"].pop("route_length")), r"records\[0\]\.meta\.route_length is missing"),
        (malformed(lambda d: first_record(d)["scores"].update(score_route="abc")), r"score_route should be int or float"),
        (malformed(lambda d: first_record(d)["scores"].update(score_route=True)), r"score_route should be int or float"),
        (malformed(lambda d: first_record(d).pop("status")), r"records\[0\]\.status is missing"),
        (malformed(lambda d: first_record(d)["scores"].update(score_route=150.0)), r"records\[0\] is invalid: .*completion_percent"),
        (malformed(lambda d: first_record(d)["infractions"].update(wrong_way=[])), "wrong_way is not a known infraction"),
        (malformed(lambda d: first_record(d)["infractions"].update(red_light="ran it")), "should be a list of messages"),
        (malformed(lambda d: first_record(d)["infractions"].update(min_speed_infractions=["slow"])),
         r"min_speed_infractions\[0\] 'slow' has no speed percentage"),
        (malformed(lambda d: first_record(d)["infractions"].update(outside_route_lanes=["Agent went off"])),
         "has no distance and percentage"),
        (malformed(lambda d: first_record(d)["infractions"].update(
            outside_route_lanes=[outside_lanes_message(1.0, 1.0), outside_lanes_message(2.0, 2.0)])),
         "one cumulative event"),
        (malformed(lambda d: first_record(d)["infractions"].update(outside_route_lanes=[outside_lanes_message(9.0, 150.0)])),
         r"outside_route_lanes\[0\] .* is invalid: .*in \[0, 100\]"),
    ],
)
def test_malformed_checkpoints_say_what_is_wrong(doc, reason):
    with pytest.raises(lb.MalformedCheckpoint, match=reason):
        lb.parse_leaderboard_checkpoint(copy.deepcopy(doc))


# The wire form.


def test_report_carries_suite_and_route_figures():
    scores = [lb.score_route(r) for r in lb.parse_leaderboard_checkpoint(checkpoint_doc())]
    total = lb.aggregate(scores)
    report = lb.to_report(total, scores, eval_id="ev1", model_run="run7", suite="town12-val")
    assert (report.eval_id, report.model_run, report.suite, report.metric_version) == ("ev1", "run7", "town12-val", "2.0")
    assert report.driving_score == pytest.approx(37.2525)
    assert report.route_completion == pytest.approx(75.0)
    assert report.infraction_penalty == pytest.approx(0.50535)
    assert [stat.kind for stat in report.infractions] == list(lb.INFRACTION_KINDS)
    stats = {stat.kind: stat for stat in report.infractions}
    assert stats["min_speed_infractions"].count == 2
    assert stats["min_speed_infractions"].per_km == pytest.approx(2 / 1.5)
    assert stats["outside_route_lanes"].per_km == pytest.approx(0.1205)  # km outside lanes
    first, second = report.routes
    assert (first.route_id, first.status) == ("RouteScenario_0_rep0", "Completed")
    assert first.driving_score == pytest.approx(47.94) and first.infraction_penalty == pytest.approx(0.4794)
    assert second.route_completion == 50.0 and second.route_length_km == 1.0
    route_stats = {stat.kind: stat for stat in second.infractions}
    # route 1 drove 0.5 km: one red light → 2 per km
    assert route_stats["red_light"].count == 1 and route_stats["red_light"].per_km == pytest.approx(2.0)
    assert route_stats["outside_route_lanes"].per_km == pytest.approx(0.1205)


def test_report_refuses_routes_scored_under_another_version():
    scores = [lb.score_route(run(), "2.1")]
    with pytest.raises(ValueError, match="scored as 2.1"):
        lb.to_report(lb.aggregate([lb.score_route(run())]), scores, eval_id="e", model_run="m", suite="s")


# Properties.

FIXED_KINDS = sorted(lb.PENALTY_FACTORS) + list(lb.ROUTE_ENDING_KINDS)
percentages = st.floats(min_value=0, max_value=100, allow_nan=False)
single_events = st.one_of(
    st.sampled_from(FIXED_KINDS).map(Infraction),
    st.floats(min_value=0, max_value=300, allow_nan=False).map(min_speed),
)
outside_events = st.builds(outside_lanes, percentages, st.floats(min_value=0, max_value=5000, allow_nan=False))


@st.composite
def route_runs(draw):
    events = draw(st.lists(single_events, max_size=12))
    events += draw(st.lists(outside_events, max_size=1))
    events = draw(st.permutations(events))
    return run(*events, completion=draw(percentages), length_m=draw(st.floats(min_value=0, max_value=1e5)))


versions = st.sampled_from(lb.METRIC_VERSIONS)


@given(route_runs(), versions)
def test_penalty_is_a_fraction_and_driving_score_never_exceeds_completion(route, version):
    score = lb.score_route(route, version)
    assert 0.0 <= score.infraction_penalty <= 1.0
    assert 0.0 <= score.driving_score <= score.route_completion


@given(route_runs(), versions, st.one_of(single_events, outside_events))
def test_adding_an_infraction_never_raises_the_penalty(route, version, extra):
    if extra.kind == "outside_route_lanes" and any(e.kind == "outside_route_lanes" for e in route.infractions):
        extra = vehicle()  # a route has one cumulative outside-lanes event
    before = lb.score_route(route, version)
    after = lb.score_route(run(*route.infractions, extra, completion=route.completion_percent), version)
    assert after.infraction_penalty <= before.infraction_penalty + 1e-12
    assert after.driving_score <= before.driving_score + 1e-9


@given(st.lists(route_runs(), min_size=1, max_size=6), versions)
def test_global_scores_are_means_bounded_by_the_routes(routes, version):
    scores = [lb.score_route(route, version) for route in routes]
    total = lb.aggregate(scores, version)
    driving_scores = [score.driving_score for score in scores]
    assert min(driving_scores) - 1e-9 <= total.driving_score <= max(driving_scores) + 1e-9
    assert 0.0 <= total.infraction_penalty <= 1.0
    assert sum(total.counts.values()) == sum(len(route.infractions) for route in routes)

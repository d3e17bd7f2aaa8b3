"""CARLA Leaderboard driving metrics (docs/ARCHITECTURE.md "Data flow", step 4), implemented once. Pure, no I/O.

Both evaluators use this module: the trainer parses the result file the leaderboard writes with --checkpoint
(parse_leaderboard_checkpoint), and an embedded evaluator builds RouteRuns itself; either way score_route,
aggregate and to_report turn them into the EvaluationReport.

Upstream behaviour followed (carla-simulator/leaderboard, branch leaderboard-2.0):
- leaderboard/utils/statistics_manager.py: compute_route_statistics (per-route IP, DS = max(RC × IP, 0)) and
  compute_global_statistics (plain means over routes; infractions per km driven, km = Σ route_length/1000 × RC/100
  floored at 0.001; outside_route_lanes is km outside lanes, read from word 8 of its message);
- leaderboard/utils/checkpoint_tools.py: the file layout {"_checkpoint": {"records": [...], ...}, ...};
- scenario_runner srunner/scenariomanager/scenarioatomics/atomic_criteria.py: the message texts, e.g.
  MinimumSpeedRouteTest "Average speed is 53.12% of the surrounding traffic's one" and OutsideRouteLanesTest
  "Agent went outside its route lanes for about 12.3 meters (4.1% of the completed route)".

Version "2.0" (default): IP = Π factors, one per event. Fixed factors are PENALTY_FACTORS; a min-speed checkpoint at
p % of traffic speed gives 1 − 0.3·(1 − p/100) (upstream [0.7, 'decreases']; the route test has 4 checkpoints, each
one below 100 % is its own event; the count is not enforced here); the single cumulative outside-lanes event at p % of
the driven distance gives 1 − p/100 (upstream [0, 'increases']). Route deviation, agent blocked and route timeout end
the route and carry no factor.

Version "2.1": IP = Π(outside-lanes factors) / (1 + Σ weights), one weight per event from PENALTY_WEIGHTS_V2_1 and
0.4·(1 − p/100) per min-speed checkpoint. The upstream 2.1 statistics_manager.py was not available to read; the
weights are those of a secondary write-up of it ("Leaderboard 2.1 — additive", with the official rationale "from an
exponential to linear scoring model to prevent early-stopping exploitation"). They are close to, but not exactly,
1/coefficient − 1 of 2.0 (vehicle 0.7 rather than 0.67, layout 0.6 rather than 0.54, red light 0.4 rather than
0.43). Verify against upstream before reporting 2.1 numbers as official.

Differences from upstream, on purpose: nothing is rounded (upstream rounds scores to 6 digits and per-km to 3);
a min-speed checkpoint at or above traffic speed carries no penalty (upstream never records one; Bench2Drive files
do); percentages parsed from messages carry the message's 2-digit rounding (upstream scores the unrounded value).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from scalediffusion.v1 import trainer_pb2

# Upstream JSON key order (RouteRecord.infractions), so tables read like the leaderboard's own.
INFRACTION_KINDS: tuple[str, ...] = (
    "collisions_layout",
    "collisions_pedestrian",
    "collisions_vehicle",
    "red_light",
    "stop_infraction",
    "outside_route_lanes",
    "min_speed_infractions",
    "yield_emergency_vehicle_infractions",
    "scenario_timeouts",
    "route_dev",
    "vehicle_blocked",
    "route_timeout",
)
MIN_SPEED = "min_speed_infractions"
OUTSIDE_LANES = "outside_route_lanes"
# Events that end the route: they cost route completion, never penalty.
ROUTE_ENDING_KINDS: tuple[str, ...] = ("route_dev", "vehicle_blocked", "route_timeout")

# Leaderboard 2.0: each event of these kinds multiplies IP by its factor.
PENALTY_FACTORS: dict[str, float] = {
    "collisions_pedestrian": 0.5,
    "collisions_vehicle": 0.6,
    "collisions_layout": 0.65,
    "red_light": 0.7,
    "stop_infraction": 0.8,
    "scenario_timeouts": 0.7,
    "yield_emergency_vehicle_infractions": 0.7,
}
# Leaderboard 2.0 min speed: factor 1 − (1 − 0.7)·(1 − p/100).
MIN_SPEED_COEFFICIENT = 0.7

# Leaderboard 2.1: each event adds its weight to the denominator 1 + Σ weights (see the module docstring).
PENALTY_WEIGHTS_V2_1: dict[str, float] = {
    "collisions_pedestrian": 1.0,
    "collisions_vehicle": 0.7,
    "collisions_layout": 0.6,
    "red_light": 0.4,
    "stop_infraction": 0.25,
    "scenario_timeouts": 0.4,
    "yield_emergency_vehicle_infractions": 0.4,
}
# Leaderboard 2.1 min speed: weight 0.4·(1 − p/100).
MIN_SPEED_WEIGHT_V2_1 = 0.4

METRIC_VERSIONS: tuple[str, ...] = ("2.0", "2.1")
DEFAULT_METRIC_VERSION = "2.0"
# Upstream's floor on the km driven, so routes that never moved do not divide by zero.
MIN_DRIVEN_KM = 0.001


def check_version(version: str) -> str:
    """Returns version if it is a supported metric version, else raises ValueError."""
    if version not in METRIC_VERSIONS:
        raise ValueError(f"unknown leaderboard metric version {version!r}; expected one of {', '.join(METRIC_VERSIONS)}")
    return version


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_number(what: str, value: float, low: float = 0.0, high: float = math.inf) -> None:
    if not _is_number(value) or not math.isfinite(value) or not low <= value <= high:
        bounds = f"at least {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
        raise ValueError(f"{what} must be a finite number {bounds}, got {value!r}")


@dataclass(frozen=True)
class Infraction:
    """One event on a route, as CARLA's criteria report it."""

    kind: str
    # min_speed_infractions: agent speed as % of surrounding traffic; outside_route_lanes: % of driven distance.
    percent: float | None = None
    # outside_route_lanes: metres driven outside the route's lanes.
    distance_m: float | None = None
    location: tuple[float, float, float] | None = None
    message: str = ""

    def __post_init__(self) -> None:
        if self.kind not in INFRACTION_KINDS:
            raise ValueError(f"unknown infraction kind {self.kind!r}; expected one of {', '.join(INFRACTION_KINDS)}")
        if self.kind == MIN_SPEED:
            if self.percent is None:
                raise ValueError("a min_speed_infractions event needs percent (agent speed as % of traffic speed)")
            _check_number("min_speed_infractions percent", self.percent)
        elif self.kind == OUTSIDE_LANES:
            if self.percent is None or self.distance_m is None:
                raise ValueError("an outside_route_lanes event needs percent and distance_m")
            _check_number("outside_route_lanes percent", self.percent, 0.0, 100.0)
        elif self.percent is not None:
            raise ValueError(f"percent applies to {MIN_SPEED} and {OUTSIDE_LANES} only, not {self.kind}")
        if self.distance_m is not None:
            if self.kind != OUTSIDE_LANES:
                raise ValueError(f"distance_m applies to {OUTSIDE_LANES} only, not {self.kind}")
            _check_number("outside_route_lanes distance_m", self.distance_m)

    @property
    def measured_percent(self) -> float:
        """percent of a min_speed or outside_route_lanes event: __post_init__ lets neither be made without it."""
        assert self.percent is not None, f"a {self.kind} event has no percent"
        return self.percent

    @property
    def measured_distance_m(self) -> float:
        """distance_m of an outside_route_lanes event: __post_init__ lets none be made without it."""
        assert self.distance_m is not None, f"a {self.kind} event has no distance_m"
        return self.distance_m


@dataclass(frozen=True)
class RouteRun:
    """What an evaluator observed on one route: the input to score_route."""

    route_id: str
    route_length_m: float
    completion_percent: float
    infractions: tuple[Infraction, ...] = ()
    # Upstream status strings: "Perfect", "Completed", "Failed - Agent deviated from the route", ...
    status: str = "Completed"
    duration_game_s: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.route_id, str) or not self.route_id:
            raise ValueError(f"route_id must be a non-empty string, got {self.route_id!r}")
        _check_number(f"route {self.route_id} route_length_m", self.route_length_m)
        _check_number(f"route {self.route_id} completion_percent", self.completion_percent, 0.0, 100.0)
        if sum(1 for event in self.infractions if event.kind == OUTSIDE_LANES) > 1:
            raise ValueError(f"route {self.route_id}: outside_route_lanes is one cumulative event per route, not several")


@dataclass(frozen=True)
class RouteScore:
    """One route's scores: DS and RC in 0..100, IP in 0..1."""

    route_id: str
    driving_score: float
    route_completion: float
    infraction_penalty: float
    route_length_km: float
    status: str
    counts: dict[str, int]
    outside_lanes_km: float
    metric_version: str = DEFAULT_METRIC_VERSION

    @property
    def driven_km(self) -> float:
        """The km the agent covered along the route, the per-km denominator."""
        return self.route_length_km * self.route_completion / 100


@dataclass(frozen=True)
class GlobalScore:
    """A suite's scores: each of DS, RC, IP is the plain mean over routes."""

    driving_score: float
    route_completion: float
    infraction_penalty: float
    # Events per km driven; for outside_route_lanes, km driven outside lanes.
    per_km: dict[str, float]
    counts: dict[str, int]
    driven_km: float
    metric_version: str = DEFAULT_METRIC_VERSION
    route_count: int = 0


def _min_speed_shortfall(percent: float) -> float:
    """1 − p/100, clamped to [0, 1]: at or above traffic speed is no shortfall."""
    return min(max(1.0 - percent / 100, 0.0), 1.0)


def _penalty_v2_0(infractions: Sequence[Infraction]) -> float:
    penalty = 1.0
    for event in infractions:
        if event.kind in PENALTY_FACTORS:
            penalty *= PENALTY_FACTORS[event.kind]
        elif event.kind == MIN_SPEED:
            penalty *= 1.0 - (1.0 - MIN_SPEED_COEFFICIENT) * _min_speed_shortfall(event.measured_percent)
        elif event.kind == OUTSIDE_LANES:
            penalty *= 1.0 - event.measured_percent / 100
    return penalty


def _penalty_v2_1(infractions: Sequence[Infraction]) -> float:
    outside_factor = 1.0
    weights = 0.0
    for event in infractions:
        if event.kind in PENALTY_WEIGHTS_V2_1:
            weights += PENALTY_WEIGHTS_V2_1[event.kind]
        elif event.kind == MIN_SPEED:
            weights += MIN_SPEED_WEIGHT_V2_1 * _min_speed_shortfall(event.measured_percent)
        elif event.kind == OUTSIDE_LANES:
            outside_factor *= 1.0 - event.measured_percent / 100
    return outside_factor / (1.0 + weights)


def infraction_penalty(infractions: Sequence[Infraction], version: str = DEFAULT_METRIC_VERSION) -> float:
    """IP in [0, 1] of one route's events; route-ending events carry no penalty."""
    return _penalty_v2_0(infractions) if check_version(version) == "2.0" else _penalty_v2_1(infractions)


def _count(infractions: Sequence[Infraction]) -> dict[str, int]:
    counts = dict.fromkeys(INFRACTION_KINDS, 0)
    for event in infractions:
        counts[event.kind] += 1
    return counts


def score_route(run: RouteRun, version: str = DEFAULT_METRIC_VERSION) -> RouteScore:
    """DS = max(RC × IP, 0) for one route, with its infraction counts."""
    penalty = infraction_penalty(run.infractions, version)
    outside_m = sum(event.measured_distance_m for event in run.infractions if event.kind == OUTSIDE_LANES)
    return RouteScore(
        route_id=run.route_id,
        driving_score=max(run.completion_percent * penalty, 0.0),
        route_completion=float(run.completion_percent),
        infraction_penalty=penalty,
        route_length_km=run.route_length_m / 1000,
        status=run.status,
        counts=_count(run.infractions),
        outside_lanes_km=outside_m / 1000,
        metric_version=version,
    )


def aggregate(scores: Sequence[RouteScore], version: str = DEFAULT_METRIC_VERSION) -> GlobalScore:
    """Suite scores: plain means of route DS, RC and IP (global DS is not mean RC × mean IP); per-km rates."""
    check_version(version)
    if not scores:
        raise ValueError("no route scores to aggregate")
    mixed = sorted({score.metric_version for score in scores} - {version})
    if mixed:
        raise ValueError(f"cannot aggregate {version} scores with routes scored as {', '.join(mixed)}")
    routes = len(scores)
    counts = dict.fromkeys(INFRACTION_KINDS, 0)
    for score in scores:
        for kind, count in score.counts.items():
            counts[kind] += count
    driven_km = sum(score.driven_km for score in scores)
    per_km = {kind: counts[kind] / max(driven_km, MIN_DRIVEN_KM) for kind in INFRACTION_KINDS}
    per_km[OUTSIDE_LANES] = sum(score.outside_lanes_km for score in scores)
    return GlobalScore(
        driving_score=sum(score.driving_score for score in scores) / routes,
        route_completion=sum(score.route_completion for score in scores) / routes,
        infraction_penalty=sum(score.infraction_penalty for score in scores) / routes,
        per_km=per_km,
        counts=counts,
        driven_km=driven_km,
        metric_version=version,
        route_count=routes,
    )


# Parsing the leaderboard's --checkpoint file.


class MalformedCheckpoint(ValueError):
    """A result file without the layout statistics_manager.py writes; the message names the offending path."""


def _malformed(where: str, problem: str) -> MalformedCheckpoint:
    return MalformedCheckpoint(f"malformed leaderboard checkpoint: {where} {problem}")


_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
# MinimumSpeedRouteTest; older scenario_runner wrote "Average agent speed is 53.12 of ..." without the '%'.
_MIN_SPEED_MESSAGE = re.compile(rf"Average (?:agent )?speed is ({_NUMBER})%? of the surrounding traffic's one")
_OUTSIDE_LANES_MESSAGE = re.compile(
    rf"Agent went outside its route lanes for about ({_NUMBER}) meters \(({_NUMBER})% of the completed route\)"
)
_LOCATION = re.compile(rf"\(x=({_NUMBER}), y=({_NUMBER}), z=({_NUMBER})\)")


def _field(mapping: Mapping, key: str, where: str, expected: type | tuple[type, ...]):
    if key not in mapping:
        raise _malformed(f"{where}.{key}", "is missing")
    value = mapping[key]
    if not isinstance(value, expected) or isinstance(value, bool):
        types = expected if isinstance(expected, tuple) else (expected,)
        raise _malformed(f"{where}.{key}", f"should be {' or '.join(t.__name__ for t in types)}, got {value!r}")
    return value


def _parse_infraction(kind: str, message: str, where: str) -> Infraction:
    location_match = _LOCATION.search(message)
    location: tuple[float, float, float] | None = None
    if location_match:
        x, y, z = location_match.groups()
        location = (float(x), float(y), float(z))
    percent = distance_m = None
    if kind == MIN_SPEED:
        match = _MIN_SPEED_MESSAGE.search(message)
        if not match:
            raise _malformed(where, f"{message!r} has no speed percentage")
        percent = float(match.group(1))
    elif kind == OUTSIDE_LANES:
        match = _OUTSIDE_LANES_MESSAGE.search(message)
        if not match:
            raise _malformed(where, f"{message!r} has no distance and percentage")
        distance_m, percent = float(match.group(1)), float(match.group(2))
    try:
        return Infraction(kind, percent=percent, distance_m=distance_m, location=location, message=message)
    except ValueError as error:
        raise _malformed(where, f"{message!r} is invalid: {error}") from error


def _parse_record(record: object, where: str) -> RouteRun:
    if not isinstance(record, Mapping):
        raise _malformed(where, f"should be an object, got {record!r}")
    route_id = _field(record, "route_id", where, (str, int))
    status = _field(record, "status", where, str)
    completion = _field(_field(record, "scores", where, Mapping), "score_route", f"{where}.scores", (int, float))
    meta = _field(record, "meta", where, Mapping)
    route_length = _field(meta, "route_length", f"{where}.meta", (int, float))
    duration = meta.get("duration_game", 0.0)
    if not _is_number(duration):
        raise _malformed(f"{where}.meta.duration_game", f"should be a number, got {duration!r}")
    events: list[Infraction] = []
    for kind, messages in _field(record, "infractions", where, Mapping).items():
        kind_where = f"{where}.infractions.{kind}"
        if kind not in INFRACTION_KINDS:
            raise _malformed(kind_where, "is not a known infraction kind")
        if not isinstance(messages, list) or not all(isinstance(message, str) for message in messages):
            raise _malformed(kind_where, f"should be a list of messages, got {messages!r}")
        events.extend(_parse_infraction(kind, message, f"{kind_where}[{i}]") for i, message in enumerate(messages))
    try:
        return RouteRun(str(route_id), float(route_length), float(completion), tuple(events), status, float(duration))
    except ValueError as error:
        raise _malformed(where, f"is invalid: {error}") from error


def parse_leaderboard_checkpoint(doc: dict) -> list[RouteRun]:
    """The RouteRuns recorded in a leaderboard --checkpoint result file (already JSON-decoded), in file order.

    Raises MalformedCheckpoint (a ValueError) naming the JSON path of the first thing that is not as upstream writes it.
    """
    if not isinstance(doc, Mapping):
        raise _malformed("$", f"should be a JSON object, got {type(doc).__name__}")
    records = _field(_field(doc, "_checkpoint", "$", Mapping), "records", "$._checkpoint", list)
    return [_parse_record(record, f"$._checkpoint.records[{i}]") for i, record in enumerate(records)]


# The wire form.


def _infraction_stats(counts: Mapping[str, int], per_km: Mapping[str, float]) -> list[trainer_pb2.InfractionStat]:
    return [trainer_pb2.InfractionStat(kind=kind, count=counts[kind], per_km=per_km[kind]) for kind in INFRACTION_KINDS]


def to_report(
    global_score: GlobalScore, route_scores: Sequence[RouteScore], *, eval_id: str, model_run: str, suite: str
) -> trainer_pb2.EvaluationReport:
    """The EvaluationReport proto; per_km of outside_route_lanes carries km outside lanes, as upstream reports it."""
    routes = []
    for score in route_scores:
        # A route's own rates use the same rule as the suite's, so one route's report reads like a suite of one.
        route_rates = aggregate([score], global_score.metric_version).per_km
        routes.append(
            trainer_pb2.RouteResult(
                route_id=score.route_id,
                driving_score=score.driving_score,
                route_completion=score.route_completion,
                infraction_penalty=score.infraction_penalty,
                route_length_km=score.route_length_km,
                status=score.status,
                infractions=_infraction_stats(score.counts, route_rates),
            )
        )
    return trainer_pb2.EvaluationReport(
        eval_id=eval_id,
        model_run=model_run,
        suite=suite,
        metric_version=global_score.metric_version,
        driving_score=global_score.driving_score,
        route_completion=global_score.route_completion,
        infraction_penalty=global_score.infraction_penalty,
        infractions=_infraction_stats(global_score.counts, global_score.per_km),
        routes=routes,
    )

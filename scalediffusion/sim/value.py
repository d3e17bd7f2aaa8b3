"""The data-value experiment: how well do policies trained on growing slices of bot play drive?

    scale-diffusion value --minutes 5 15 30 60 --suite traffic@1 --seeds 1 2 3     # against `make up`'s stack

bots play sessions -> ingest -> processor (the dataset) -> for each slice of accepted driving and each model preset:
the trainer trains on the first M minutes (TrainingConfig.data_minutes) -> the trainer's embedded evaluation backend
scores the policy on the suite for each seed -> value.json, value.png (DS / RC / IP against minutes of data, one
line per model, the privileged autopilot as the ceiling) and a table.

Everything goes through the services' public RPCs and the real upload path, like `scale-diffusion loop`; only the
autopilot ceiling is computed here (it is the simulator's own privileged driver, not a policy trained on data).
Recordings are kept in --recordings (one folder per bot configuration), so a rerun with more minutes or other
models re-renders nothing, and runs are named after their settings, so finished trainings and evaluations are reused.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import grpc

from scalediffusion.sim.bots import BotConfig
from scalediffusion.sim.loop import LoopError, run_bots, wait_processed, watch
from scalediffusion.v1 import trainer_pb2, trainer_pb2_grpc

ACCEPT_GUESS = 0.85  # share of a bot session's minutes the processor keeps, for sizing the fleet before playing


@dataclass(frozen=True)
class ValueConfig:
    minutes: tuple[float, ...] = (5.0, 15.0, 30.0, 60.0)  # slices of accepted driving, smallest first
    presets: tuple[str, ...] = ("cilrs-resnet18-wide", "aim-resnet18-wide")  # the models, side by side
    suite: str = "traffic@1"
    seeds: tuple[int, ...] = (1, 2, 3)  # evaluation seeds (traffic differs per seed)
    epochs: int = 8
    max_steps: int = 0  # cap on optimiser steps per epoch (0 = whole epochs): keeps big slices affordable on CPUs
    turn_weight: float = 0.0  # training draws frames whose path turns more often (TrainingConfig.turn_weight)
    batch_size: int = 64
    learning_rate: float = 3e-4
    val_fraction: float = 0.1
    bot: BotConfig = field(default_factory=lambda: BotConfig(seconds=60.0, fps=10, npc_vehicles=20, npc_vehicles_min=0,
                                                            pedestrians=8, pedestrians_min=0))
    tag: str = "value"  # prefix of run and evaluation ids
    eval_tag: str = ""  # suffix of evaluation ids only: a new one re-evaluates finished models (a controller change)

    def validate(self) -> None:
        if not self.minutes or any(m <= 0 for m in self.minutes):
            raise ValueError("--minutes needs one or more positive slice sizes")
        if not self.presets or not self.seeds:
            raise ValueError("--presets and --seeds must not be empty")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("--epochs and --batch-size must be >= 1")
        if not 0 <= self.turn_weight <= 100:
            raise ValueError("--turn-weight must be in [0, 100]")

    def sessions_needed(self) -> int:
        return math.ceil(max(self.minutes) * 60.0 / (self.bot.seconds * ACCEPT_GUESS))


@dataclass
class Point:
    preset: str
    minutes: float  # the slice asked for
    train_minutes: float  # the minutes the run really trained on (whole sessions)
    run_id: str
    epochs: int
    train_wall_s: float
    best_val_loss: float
    seeds: dict[int, dict[str, float]]  # seed -> DS, RC, IP
    eval_wall_s: float = 0.0  # the evaluations of all seeds, run side by side

    def mean(self, metric: str) -> float:
        return statistics.fmean(s[metric] for s in self.seeds.values())


def _slug(value: float) -> str:
    return f"{value:g}".replace(".", "p")


def autopilot_ceiling(suite: str, seeds: tuple[int, ...]) -> dict[str, float]:
    """The privileged autopilot's mean DS, RC and IP over the same suite and seeds."""
    from scalediffusion.sim.autopilot import Autopilot
    from scalediffusion.sim.evaluate import build_report, evaluate_suite
    from scalediffusion.sim.suites import suite as suite_spec

    spec = suite_spec(suite)
    reports = [build_report(evaluate_suite(Autopilot, spec, seed), eval_id="autopilot", model_run="autopilot", suite_key=suite)
               for seed in seeds]
    return {"driving_score": statistics.fmean(r.driving_score for r in reports),
            "route_completion": statistics.fmean(r.route_completion for r in reports),
            "infraction_penalty": statistics.fmean(r.infraction_penalty for r in reports)}


ACTIVE = (trainer_pb2.JOB_STATE_PENDING, trainer_pb2.JOB_STATE_RUNNING)
FAILED = (trainer_pb2.JOB_STATE_FAILED, trainer_pb2.JOB_STATE_CANCELLED)


def _job_state(trainer: trainer_pb2_grpc.TrainerServiceStub, job_id: str) -> int | None:
    """The job's state, None when the trainer has no such job."""
    try:
        return trainer.GetJob(trainer_pb2.GetJobRequest(job_id=job_id)).state
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.NOT_FOUND:
            raise
        return None


def train_and_evaluate(trainer: trainer_pb2_grpc.TrainerServiceStub, config: ValueConfig, dataset: str, preset: str,
                       minutes: float, progress: Callable[[str, float, float], None] | None = None) -> Point:
    """One point of the curve: train `preset` on the first `minutes`, then evaluate it once per seed."""
    run_id = f"{config.tag}-{preset}-{_slug(minutes)}min-e{config.epochs}-s{config.max_steps}"
    if config.turn_weight:
        run_id += f"-tw{_slug(config.turn_weight)}"
    started = time.perf_counter()
    # A finished run with this name is reused (the id carries the settings); one still running (an earlier `value`
    # that was interrupted) is awaited rather than started twice; one that failed (its process was killed, its node
    # went away) is tried again under the next free retry name, since the trainer keeps a failed job's id.
    state = _job_state(trainer, run_id)
    base_id, attempt = run_id, 1
    while state in FAILED:
        attempt += 1
        run_id = f"{base_id}-retry{attempt}"
        state = _job_state(trainer, run_id)
    trained = trainer.GetJob(trainer_pb2.GetJobRequest(job_id=run_id)) if state == trainer_pb2.JOB_STATE_SUCCEEDED else None
    if state in ACTIVE:
        trained = watch(trainer, run_id, (lambda j: progress(f"train {preset} {minutes:g} min", j.progress, 1.0)) if progress else None)
    if trained is None:
        training = trainer_pb2.TrainingConfig(preset=preset, epochs=config.epochs, batch_size=config.batch_size,
                                              learning_rate=config.learning_rate, val_fraction=config.val_fraction,
                                              seed=1, data_minutes=minutes, max_steps_per_epoch=config.max_steps,
                                              turn_weight=config.turn_weight)
        trainer.StartTraining(trainer_pb2.StartTrainingRequest(dataset=dataset, config=training, run_id=run_id,
                                                               backend=trainer_pb2.BACKEND_LOCAL))
        trained = watch(trainer, run_id, (lambda j: progress(f"train {preset} {minutes:g} min", j.progress, 1.0)) if progress else None)
    if trained.state != trainer_pb2.JOB_STATE_SUCCEEDED:
        raise LoopError(f"training {run_id} ended {trainer_pb2.JobState.Name(trained.state)}: {trained.message}")
    train_wall = time.perf_counter() - started
    # Every seed's evaluation is submitted at once (the trainer runs SD_TRAINER_LOCAL_SLOTS of them side by side and
    # queues the rest), then each is awaited.
    started = time.perf_counter()
    pending: dict[int, str] = {}
    reports: dict[int, trainer_pb2.EvaluationReport] = {}
    for seed in config.seeds:
        eval_id = f"{run_id}-{config.suite.replace('@', '-')}-seed{seed}" + (f"-{config.eval_tag}" if config.eval_tag else "")
        try:
            reports[seed] = trainer.GetEvaluationReport(trainer_pb2.GetEvaluationReportRequest(eval_id=eval_id))
        except grpc.RpcError as err:
            if err.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise
            if _job_state(trainer, eval_id) in ACTIVE:  # still running from an interrupted `value`: await it
                pending[seed] = eval_id
                continue
            trainer.StartEvaluation(trainer_pb2.StartEvaluationRequest(
                model_run=run_id, eval_id=eval_id, backend=trainer_pb2.BACKEND_LOCAL,
                config=trainer_pb2.EvaluationConfig(suite=config.suite, seed=seed)))
            pending[seed] = eval_id
    for seed, eval_id in pending.items():
        label = f"evaluate {preset} {minutes:g} min seed {seed}"
        def on_progress(job, label: str = label) -> None:
            if progress:
                progress(label, job.progress, 1.0)

        evaluated = watch(trainer, eval_id, on_progress if progress else None)
        if evaluated.state != trainer_pb2.JOB_STATE_SUCCEEDED:
            raise LoopError(f"evaluation {eval_id} ended {trainer_pb2.JobState.Name(evaluated.state)}: {evaluated.message}")
        reports[seed] = trainer.GetEvaluationReport(trainer_pb2.GetEvaluationReportRequest(eval_id=eval_id))
    eval_wall = round(time.perf_counter() - started, 1)
    seeds = {seed: {"driving_score": reports[seed].driving_score, "route_completion": reports[seed].route_completion,
                    "infraction_penalty": reports[seed].infraction_penalty} for seed in config.seeds}
    metrics = trained.metrics
    # The trainer's own wall time: a reused run took no time here, and a queued one waited for a slot.
    train_wall = float(metrics.get("wall_s", train_wall))
    return Point(preset=preset, minutes=minutes, train_minutes=float(metrics.get("train_minutes", 0.0)), run_id=run_id,
                 epochs=config.epochs, train_wall_s=round(train_wall, 1), best_val_loss=float(metrics.get("best_val_loss", float("nan"))),
                 seeds=seeds, eval_wall_s=eval_wall)


@dataclass
class ValueResult:
    config: dict
    sessions: int
    accepted_minutes: float
    points: list[Point]
    autopilot: dict[str, float]
    stage_seconds: dict[str, float]

    def to_dict(self) -> dict:
        return {"config": self.config, "sessions": self.sessions, "accepted_minutes": round(self.accepted_minutes, 2),
                "autopilot": self.autopilot, "stage_seconds": {k: round(v, 1) for k, v in self.stage_seconds.items()},
                "points": [asdict(p) | {"mean": {m: round(p.mean(m), 3) for m in ("driving_score", "route_completion", "infraction_penalty")}}
                           for p in self.points]}

    @classmethod
    def from_dict(cls, doc: dict) -> ValueResult:
        """A report as `to_dict` wrote it (value.json)."""
        fields = set(Point.__dataclass_fields__)
        points = [Point(**{k: v for k, v in p.items() if k in fields} | {"seeds": {int(s): m for s, m in p["seeds"].items()}})
                  for p in doc["points"]]
        return cls(config=doc["config"], sessions=doc["sessions"], accepted_minutes=doc["accepted_minutes"], points=points,
                   autopilot=doc["autopilot"], stage_seconds=doc.get("stage_seconds", {}))


# What two reports must share for their points to be one curve: how the models were scored and trained and what the
# bots recorded. The slices, the models and the run names may differ (that is what a curve run in pieces adds).
SAME_CURVE = ("suite", "seeds", "epochs", "max_steps", "turn_weight", "batch_size", "learning_rate", "val_fraction", "bot")


def combine_results(reports: list[dict]) -> ValueResult:
    """One curve from value reports run in pieces (other stacks, other machines, an interrupted experiment finished
    later): their points side by side. ValueError when they were not measured the same way or repeat a point."""
    if not reports:
        raise ValueError("no reports to combine")
    results = [ValueResult.from_dict(doc) for doc in reports]
    first = results[0]
    for other in results[1:]:
        differ = [key for key in SAME_CURVE if other.config.get(key) != first.config.get(key)]
        if differ:
            raise ValueError(f"the reports differ in {', '.join(differ)}: their points are not one curve")
        for metric, level in first.autopilot.items():
            if abs(other.autopilot.get(metric, math.nan) - level) > 1e-6 * max(1.0, abs(level)):
                raise ValueError(f"the autopilot's {metric} differs ({level} vs {other.autopilot.get(metric)}): the "
                                 "simulator changed between the reports")
    points: dict[tuple[str, float], Point] = {}
    for result in results:
        for point in result.points:
            key = (point.preset, point.minutes)
            if key in points:
                raise ValueError(f"{point.preset} at {point.minutes:g} min is in more than one report "
                                 f"({points[key].run_id}, {point.run_id})")
            points[key] = point
    ordered = sorted(points.values(), key=lambda p: (p.minutes, p.preset))
    config = dict(first.config) | {
        "minutes": sorted({p.minutes for p in ordered}),
        "presets": list(dict.fromkeys(preset for r in results for preset in r.config["presets"])),
        "tag": "+".join(dict.fromkeys(r.config["tag"] for r in results))}
    stages: dict[str, float] = {}
    for result in results:
        for stage, seconds in result.stage_seconds.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
    return ValueResult(config=config, sessions=max(r.sessions for r in results),
                       accepted_minutes=max(r.accepted_minutes for r in results), points=ordered,
                       autopilot=first.autopilot, stage_seconds=stages)


def plot_value(result: ValueResult, path: Path) -> Path:
    """DS, RC and IP against minutes of data: one line per model (mean over seeds, the seeds' range shaded) and the
    autopilot's level as the ceiling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = (("driving_score", "Driving score"), ("route_completion", "Route completion %"), ("infraction_penalty", "Infraction penalty"))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    presets = sorted({p.preset for p in result.points})
    for ax, (metric, label) in zip(axes, metrics):
        for preset in presets:
            points = sorted((p for p in result.points if p.preset == preset), key=lambda p: p.minutes)
            xs = [p.train_minutes or p.minutes for p in points]
            means = [p.mean(metric) for p in points]
            lows = [min(s[metric] for s in p.seeds.values()) for p in points]
            highs = [max(s[metric] for s in p.seeds.values()) for p in points]
            line = ax.plot(xs, means, "o-", label=preset)[0]
            ax.fill_between(xs, lows, highs, color=line.get_color(), alpha=0.15)
        ax.axhline(result.autopilot[metric], color="black", linestyle="--", linewidth=1, label="autopilot (privileged)")
        ax.set_xlabel("minutes of accepted driving trained on")
        ax.set_xlim(left=0)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if metric == "infraction_penalty":
            ax.set_ylim(0, 1.05)
        else:
            ax.set_ylim(0, 105)
    axes[0].legend(fontsize=8, loc="upper left")
    cfg = result.config
    fig.suptitle(f"Data value on {cfg['suite']} (seeds {', '.join(map(str, cfg['seeds']))}): bots -> ingest -> processor -> trainer -> embedded evaluator")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def run_value(channels: dict[str, grpc.Channel], auth: Callable[[int], tuple], config: ValueConfig, recordings: str | Path,
              out_dir: str | Path, dataset: str = "default", workers: int = 2, first_seed: int = 0,
              progress: Callable[[str, float, float], None] | None = None) -> ValueResult:
    config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stages: dict[str, float] = {}
    count = config.sessions_needed()
    tick = (lambda name, total: (lambda n: progress(name, n, total))) if progress else (lambda name, total: None)
    t = time.perf_counter()
    session_ids = run_bots(channels["ingest"], auth, count, config.bot, workers, first_seed=first_seed,
                           on_done=tick("bots", count), keep_dir=recordings)
    stages["bots play (or replay) and upload"] = time.perf_counter() - t
    t = time.perf_counter()
    reports = wait_processed(channels["processor"], session_ids, timeout_s=1800.0, on_done=tick("processor", count))
    stages["processor builds the dataset"] = time.perf_counter() - t
    accepted = sum(s.duration_s for r in reports for s in r.segments) / 60.0
    if accepted < min(config.minutes):
        raise LoopError(f"the processor accepted {accepted:.1f} min of driving, less than the smallest slice ({min(config.minutes):g} min)")
    t = time.perf_counter()
    ceiling = autopilot_ceiling(config.suite, config.seeds)
    stages["autopilot ceiling"] = time.perf_counter() - t
    trainer = trainer_pb2_grpc.TrainerServiceStub(channels["trainer"])
    result = ValueResult(config=asdict(config), sessions=len(session_ids), accepted_minutes=accepted, points=[],
                         autopilot=ceiling, stage_seconds=stages)
    t = time.perf_counter()
    for minutes in config.minutes:
        for preset in config.presets:
            result.points.append(train_and_evaluate(trainer, config, dataset, preset, min(minutes, accepted), progress))
            stages["training and evaluation"] = time.perf_counter() - t
            write_outputs(result, out)  # after every point: a long experiment shows what it has so far
    return result


def write_outputs(result: ValueResult, out: Path) -> None:
    (out / "value.json").write_text(json.dumps(result.to_dict(), indent=1))
    plot_value(result, out / "value.png")

"""Evaluation reports from CARLA leaderboard result files: one file per route shard -> one EvaluationReport. Pure."""

from __future__ import annotations

from collections.abc import Sequence

from scalediffusion import leaderboard
from scalediffusion.v1 import trainer_pb2


class IncompleteEvaluation(ValueError):
    """A shard's result file says not every route of the shard ran; averaging over fewer routes would flatter."""


def report_from_checkpoints(shard_docs: Sequence[dict], *, eval_id: str, model_run: str, suite: str,
                            metric_version: str = leaderboard.DEFAULT_METRIC_VERSION) -> trainer_pb2.EvaluationReport:
    """Scores every route of every shard with the shared metric code and aggregates over all of them."""
    runs: list[leaderboard.RouteRun] = []
    for index, doc in enumerate(shard_docs):
        shard_runs = leaderboard.parse_leaderboard_checkpoint(doc)
        progress = doc.get("_checkpoint", {}).get("progress") or []
        if len(progress) == 2 and progress[0] < progress[1]:
            raise IncompleteEvaluation(f"shard {index} ran {progress[0]} of its {progress[1]} routes")
        runs.extend(shard_runs)
    if not runs:
        raise IncompleteEvaluation("no route results in any shard")
    ids = [run.route_id for run in runs]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise ValueError(f"routes evaluated in more than one shard: {duplicates}")
    scores = [leaderboard.score_route(run, metric_version) for run in runs]
    return leaderboard.to_report(leaderboard.aggregate(scores, metric_version), scores, eval_id=eval_id,
                                 model_run=model_run, suite=suite)

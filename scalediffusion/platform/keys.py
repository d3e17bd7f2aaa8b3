"""The S3 key layout (docs/ARCHITECTURE.md "Contracts"), in one place. Pure functions, no I/O.

raw bucket:     <player>/<session>/{video.webm, telemetry.pb, labels/<stream>.webm}
                _sessions/<session>.json                 (the session manifest: the record of truth)
clean bucket:   <dataset>/route_<session>_<seg>/{rgb_front/00000.jpg, ..., measurements.json}
                <dataset>/_index/<segment_id>.json      (one small record per accepted segment)
                <dataset>/_reports/<session>/{quality.json, quality.png, done.json}
models bucket:  <run>/{model.pt, model.onnx, metrics.json, checkpoint.pt, progress.json, loss_curves.png, config.json}
                _jobs/<job>.json                         (trainer job records: training and evaluation)
reports bucket: <eval>/{report.json, progress.json, shards/<i>.json, routes/<route>.png}
"""

from __future__ import annotations

import re

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")


class InvalidId(ValueError):
    """An id that cannot be used in an object key."""


def check_id(kind: str, value: str) -> str:
    """Returns value if it is a safe key component (letters, digits, '_' and '-', max 128), else raises InvalidId."""
    if not _ID.match(value or ""):
        raise InvalidId(f"{kind} {value!r} must be 1-128 characters of letters, digits, '_' or '-', starting with a letter or digit")
    return value


def session_prefix(player_id: str, session_id: str) -> str:
    return f"{check_id('player id', player_id)}/{check_id('session id', session_id)}/"


def video_key(player_id: str, session_id: str) -> str:
    return session_prefix(player_id, session_id) + "video.webm"


def telemetry_key(player_id: str, session_id: str) -> str:
    return session_prefix(player_id, session_id) + "telemetry.pb"


def label_key(player_id: str, session_id: str, stream: str) -> str:
    return session_prefix(player_id, session_id) + f"labels/{check_id('label stream', stream)}.webm"


def manifest_key(session_id: str) -> str:
    """The session record; keyed by session alone so GetSession needs no player lookup."""
    return f"_sessions/{check_id('session id', session_id)}.json"


def segment_id(session_id: str, index: int) -> str:
    return f"route_{session_id}_{index:03d}"


def segment_prefix(dataset: str, seg_id: str) -> str:
    return f"{check_id('dataset', dataset)}/{seg_id}/"


def frame_key(dataset: str, seg_id: str, frame_index: int) -> str:
    return segment_prefix(dataset, seg_id) + f"rgb_front/{frame_index:05d}.jpg"


def measurements_key(dataset: str, seg_id: str) -> str:
    return segment_prefix(dataset, seg_id) + "measurements.json"


def dataset_index_prefix(dataset: str) -> str:
    return f"{check_id('dataset', dataset)}/_index/"


def dataset_index_key(dataset: str, seg_id: str) -> str:
    return dataset_index_prefix(dataset) + f"{seg_id}.json"


def report_prefix(dataset: str, session_id: str) -> str:
    return f"{check_id('dataset', dataset)}/_reports/{check_id('session id', session_id)}/"


def label_frame_key(dataset: str, seg_id: str, stream: str, frame_index: int) -> str:
    return segment_prefix(dataset, seg_id) + f"{check_id('label stream', stream)}/{frame_index:05d}.png"


def run_key(run_id: str, name: str) -> str:
    """An object of a training run in the models bucket, e.g. run_key(r, "model.onnx")."""
    return f"{check_id('run id', run_id)}/{name}"


def job_record_key(job_id: str) -> str:
    return f"_jobs/{check_id('job id', job_id)}.json"


def eval_key(eval_id: str, name: str) -> str:
    """An object of an evaluation in the reports bucket, e.g. eval_key(e, "report.json")."""
    return f"{check_id('eval id', eval_id)}/{name}"

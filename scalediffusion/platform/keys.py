"""The S3 key layout (docs/ARCHITECTURE.md "Contracts"), in one place. Pure functions, no I/O.

raw bucket:     <player>/<session>/{video.webm, telemetry.pb, labels/<stream>.webm}
                _sessions/<session>.json                 (the session manifest: the record of truth)
                _index/{player,open}/<player>/<session>  (a player's sessions; those still CREATED)
                _index/pending/<session>                 (verified, being completed: the one-writer claim)
                _videos/<sha256>                         (first session to upload these bytes: duplicates)
                _players/<player>.json, _auth/revoked/<token>
                _rewards/<player>/<segment>.json, _payouts/<player>/<batch>.json   (the ledger)
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


MANIFESTS_PREFIX = "_sessions/"


def manifest_key(session_id: str) -> str:
    """The session record; keyed by session alone so GetSession needs no player lookup."""
    return f"{MANIFESTS_PREFIX}{check_id('session id', session_id)}.json"


def session_of_manifest_key(key: str) -> str:
    return key.removeprefix(MANIFESTS_PREFIX).removesuffix(".json")


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


JOBS_PREFIX = "_jobs/"


def job_record_key(job_id: str) -> str:
    return f"{JOBS_PREFIX}{check_id('job id', job_id)}.json"


def eval_key(eval_id: str, name: str) -> str:
    """An object of an evaluation in the reports bucket, e.g. eval_key(e, "report.json")."""
    return f"{check_id('eval id', eval_id)}/{name}"


# -- ingest's records in the raw bucket (services/ingest/records.py) -------------------------------------------------

def player_sessions_prefix(player_id: str) -> str:
    return f"_index/player/{check_id('player id', player_id)}/"


def player_session_key(player_id: str, session_id: str) -> str:
    return player_sessions_prefix(player_id) + check_id("session id", session_id)


def open_sessions_prefix(player_id: str | None = None) -> str:
    """CREATED sessions of one player, or of all players when player_id is None."""
    return "_index/open/" + (f"{check_id('player id', player_id)}/" if player_id else "")


def open_session_key(player_id: str, session_id: str) -> str:
    return open_sessions_prefix(player_id) + check_id("session id", session_id)


def parse_open_session_key(key: str) -> tuple[str, str]:
    """(player, session) from an open_session_key."""
    _, _, player, session = key.split("/", 3)
    return player, session


PENDING_PREFIX = "_index/pending/"


def pending_key(session_id: str) -> str:
    return PENDING_PREFIX + check_id("session id", session_id)


def video_claim_key(sha256: str) -> str:
    return f"_videos/{check_id('video sha256', sha256)}"


PLAYERS_PREFIX = "_players/"


def player_key(player_id: str) -> str:
    return f"{PLAYERS_PREFIX}{check_id('player id', player_id)}.json"


REVOKED_PREFIX = "_auth/revoked/"


def revoked_token_key(token_id: str) -> str:
    return REVOKED_PREFIX + check_id("token id", token_id)


def rewards_prefix(player_id: str) -> str:
    return f"_rewards/{check_id('player id', player_id)}/"


def reward_key(player_id: str, segment_id: str) -> str:
    return rewards_prefix(player_id) + f"{check_id('segment id', segment_id)}.json"


def payouts_prefix(player_id: str) -> str:
    return f"_payouts/{check_id('player id', player_id)}/"


def payout_key(player_id: str, batch: str) -> str:
    return payouts_prefix(player_id) + f"{check_id('payout batch', batch)}.json"


def last_component(key: str) -> str:
    """The id at the end of an index key (_index/pending/<session> -> <session>)."""
    return key.rsplit("/", 1)[1]

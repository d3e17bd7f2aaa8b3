"""What ingest keeps in the raw bucket besides uploads, all under `_`-prefixed keys (player ids never start
with `_`, so these never collide with `<player>/<session>/…`):

    _sessions/<session>.json               manifest (scalediffusion.platform.manifests), the record of truth
    _index/player/<player>/<session>       marker: a player's sessions, time-ordered (session ids are)
    _index/open/<player>/<session>         marker: CREATED sessions (limits, expiry)
    _index/pending/<session>               marker: verified sessions awaiting an outcome (the reconciler's work list);
                                           created with If-None-Match, so exactly one CompleteSession wins
    _videos/<sha256>                       the first session that uploaded these video bytes (duplicates)
    _players/<player>.json                 Player (wallet, display name)
    _auth/revoked/<token id>               revoked tokens
    _rewards/<player>/<segment id>.json    reward ledger entries: append-only, one per segment (idempotent by key)
    _payouts/<player>/<batch>.json         exported payouts (append-only)
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf import json_format

from scalediffusion.platform import keys
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.v1 import ingest_pb2


@dataclass(frozen=True)
class RewardEntry:
    player_id: str
    segment_id: str
    session_id: str
    points: int
    credited_at_ms: int


class IngestRecords:
    def __init__(self, store: ObjectStore, bucket: str, revocation_cache_s: float = 5.0) -> None:
        self.store = store
        self.bucket = bucket
        self._revoked: set[str] = set()
        self._revoked_loaded_at = 0.0
        self._revocation_cache_s = revocation_cache_s
        self._lock = threading.Lock()

    # -- indexes ----------------------------------------------------------------------------------------------

    def add_player_index(self, player_id: str, session_id: str) -> None:
        self.store.put_bytes(self.bucket, keys.player_session_key(player_id, session_id), b"")

    def player_sessions(self, player_id: str, start_after_session: str = "") -> Iterator[str]:
        prefix = keys.player_sessions_prefix(player_id)
        start = prefix + start_after_session if start_after_session else ""
        for key in self.store.list_keys(self.bucket, prefix, start_after=start):
            yield keys.last_component(key)

    def count_player_sessions_since(self, player_id: str, id_floor: str) -> int:
        return sum(1 for sid in self.player_sessions(player_id) if sid >= id_floor)

    def add_open(self, player_id: str, session_id: str, deadline_ms: int) -> None:
        self.store.put_json(self.bucket, keys.open_session_key(player_id, session_id), {"deadline_ms": deadline_ms})

    def remove_open(self, player_id: str, session_id: str) -> None:
        self.store.client.remove_object(self.bucket, keys.open_session_key(player_id, session_id))

    def open_sessions(self, player_id: str | None = None) -> Iterator[tuple[str, str]]:
        """(player, session) of CREATED sessions, for one player or all."""
        for key in self.store.list_keys(self.bucket, keys.open_sessions_prefix(player_id)):
            yield keys.parse_open_session_key(key)

    def claim_pending(self, session_id: str) -> bool:
        """Marks a session verified; False when another CompleteSession already did (it owns the transition)."""
        return self.store.put_if_absent(self.bucket, keys.pending_key(session_id), b"{}")

    def remove_pending(self, session_id: str) -> None:
        self.store.client.remove_object(self.bucket, keys.pending_key(session_id))

    def pending_sessions(self) -> Iterator[str]:
        for key in self.store.list_keys(self.bucket, keys.PENDING_PREFIX):
            yield keys.last_component(key)

    # -- duplicates -------------------------------------------------------------------------------------------

    def release_video(self, sha256: str, session_id: str) -> None:
        """Forgets the claim on these bytes if this session holds it: a session rejected for what its upload said
        (not for the bytes being a copy) must not use the video up, or the fixed re-upload would be a duplicate."""
        key = keys.video_claim_key(sha256)
        doc = self.store.get_json(self.bucket, key)
        if isinstance(doc, dict) and doc.get("session_id") == session_id:
            self.store.delete_prefix(self.bucket, key)

    def claim_video(self, sha256: str, session_id: str) -> str:
        """Records the first session to upload these bytes; returns that session (this one, or an earlier one)."""
        key = keys.video_claim_key(sha256)
        if self.store.put_if_absent(self.bucket, key, json.dumps({"session_id": session_id}).encode()):
            return session_id
        doc = self.store.get_json(self.bucket, key)
        return str(doc.get("session_id", "")) if isinstance(doc, dict) else ""

    # -- players and tokens -----------------------------------------------------------------------------------

    def load_player(self, player_id: str) -> ingest_pb2.Player:
        doc = self.store.get_json(self.bucket, keys.player_key(player_id))
        if doc is None:
            return ingest_pb2.Player(player_id=player_id)
        return json_format.ParseDict(doc, ingest_pb2.Player())

    def save_player(self, player: ingest_pb2.Player) -> None:
        self.store.put_json(self.bucket, keys.player_key(player.player_id), json_format.MessageToDict(player))

    def players(self) -> Iterator[ingest_pb2.Player]:
        for key in self.store.list_keys(self.bucket, keys.PLAYERS_PREFIX):
            doc = self.store.get_json(self.bucket, key)
            if isinstance(doc, dict):
                yield json_format.ParseDict(doc, ingest_pb2.Player())

    def revoke(self, token_id: str) -> None:
        self.store.put_bytes(self.bucket, keys.revoked_token_key(token_id), b"")
        with self._lock:
            self._revoked.add(token_id)

    def is_revoked(self, token_id: str) -> bool:
        """Revocations from every replica are seen within revocation_cache_s; this replica's own at once."""
        with self._lock:
            stale = time.monotonic() - self._revoked_loaded_at > self._revocation_cache_s
        if stale:
            revoked = {keys.last_component(k) for k in self.store.list_keys(self.bucket, keys.REVOKED_PREFIX)}
            with self._lock:
                self._revoked |= revoked
                self._revoked_loaded_at = time.monotonic()
        with self._lock:
            return token_id in self._revoked

    # -- rewards ----------------------------------------------------------------------------------------------

    def credit(self, entry: RewardEntry) -> bool:
        """Appends a ledger entry; False when this segment was already credited (a redelivered event)."""
        doc = {
            "player_id": entry.player_id,
            "segment_id": entry.segment_id,
            "session_id": entry.session_id,
            "points": entry.points,
            "credited_at_ms": entry.credited_at_ms,
        }
        return self.store.put_if_absent(self.bucket, keys.reward_key(entry.player_id, entry.segment_id), json.dumps(doc).encode())

    def rewards(self, player_id: str) -> list[RewardEntry]:
        entries = []
        for key in self.store.list_keys(self.bucket, keys.rewards_prefix(player_id)):
            doc = self.store.get_json(self.bucket, key)
            if isinstance(doc, dict):
                entries.append(RewardEntry(**doc))
        return sorted(entries, key=lambda e: (e.credited_at_ms, e.segment_id))

    def paid_points(self, player_id: str) -> int:
        total = 0
        for key in self.store.list_keys(self.bucket, keys.payouts_prefix(player_id)):
            doc = self.store.get_json(self.bucket, key)
            if isinstance(doc, dict):
                total += int(doc.get("points", 0))
        return total

    def record_payout(self, player_id: str, batch: str, points: int, wallet: str) -> None:
        doc = {"player_id": player_id, "batch": batch, "points": points, "wallet": wallet}
        if not self.store.put_if_absent(self.bucket, keys.payout_key(player_id, batch), json.dumps(doc).encode()):
            raise ValueError(f"payout batch {batch} was already recorded for {player_id}")

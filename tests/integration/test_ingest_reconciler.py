"""The reconciler's step(now) against a real S3 server, in a bucket of its own (the stack's ingest replicas reconcile
the raw bucket on their own clock). Time is the argument, so each rule is checked on both sides of its threshold."""

from __future__ import annotations

import uuid

from scalediffusion.platform import keys
from scalediffusion.platform.manifests import Manifest, ManifestStore
from scalediffusion.v1 import ingest_pb2
from services.ingest.reconciler import Reconciler, ReconcilerSettings
from services.ingest.records import IngestRecords

NOW = 2_000_000_000.0


def _setup(stack):
    store = stack.store()
    bucket = f"recon-{uuid.uuid4().hex[:10]}"
    store.client.make_bucket(bucket)
    manifests, records = ManifestStore(store, bucket), IngestRecords(store, bucket)
    published: list[str] = []
    settings = ReconcilerSettings(republish_after_s=120.0, processing_timeout_s=900.0, expiry_grace_s=60.0)
    reconciler = Reconciler(store, bucket, manifests, records, lambda m: published.append(m.session.session_id), settings)
    return store, bucket, manifests, records, reconciler, published


def _session(manifests, records, state, updated_at, published=True, player="p1") -> str:
    session_id = uuid.uuid4().hex[:24]
    manifest = Manifest(session=ingest_pb2.Session(session_id=session_id, player_id=player, state=state),
                        event_published=published)
    manifests.save(manifest, now=updated_at)
    if state == ingest_pb2.SESSION_STATE_CREATED:
        manifest.session.upload_deadline.FromSeconds(int(updated_at) + 600)
        manifests.save(manifest, now=updated_at)
        records.add_open(player, session_id, int((updated_at + 600) * 1000))
    records.claim_pending(session_id)
    return session_id


def test_a_step_republishes_lost_events_and_leaves_fresh_ones_alone(stack):
    _, _, manifests, records, reconciler, published = _setup(stack)
    unpublished = _session(manifests, records, ingest_pb2.SESSION_STATE_UPLOADED, NOW - 5, published=False)
    fresh = _session(manifests, records, ingest_pb2.SESSION_STATE_UPLOADED, NOW - 5)
    lost = _session(manifests, records, ingest_pb2.SESSION_STATE_UPLOADED, NOW - 121)
    stuck = _session(manifests, records, ingest_pb2.SESSION_STATE_PROCESSING, NOW - 901)
    busy = _session(manifests, records, ingest_pb2.SESSION_STATE_PROCESSING, NOW - 899)
    done = reconciler.step(NOW)
    assert sorted(published) == sorted([unpublished, lost, stuck]) and done["republished"] == 3
    assert fresh not in published and busy not in published
    assert set(records.pending_sessions()) >= {fresh, busy}


def test_a_step_clears_claims_of_finished_or_vanished_sessions_and_of_completions_that_died(stack):
    store, bucket, manifests, records, reconciler, published = _setup(stack)
    finished = _session(manifests, records, ingest_pb2.SESSION_STATE_ACCEPTED, NOW - 5)
    records.claim_pending("vanished0000000000000000")
    orphan = _session(manifests, records, ingest_pb2.SESSION_STATE_CREATED, NOW - 61)
    young = _session(manifests, records, ingest_pb2.SESSION_STATE_CREATED, NOW - 59)
    done = reconciler.step(NOW)
    pending = set(records.pending_sessions())
    assert finished not in pending and "vanished0000000000000000" not in pending and orphan not in pending
    assert young in pending and done["cleared"] == 3 and published == []


def test_a_step_expires_created_sessions_past_their_deadline_and_grace_with_their_objects(stack):
    store, bucket, manifests, records, reconciler, _ = _setup(stack)
    old = _session(manifests, records, ingest_pb2.SESSION_STATE_CREATED, NOW - 700, player="p2")
    store.put_bytes(bucket, keys.video_key("p2", old), b"partial upload")
    recent = _session(manifests, records, ingest_pb2.SESSION_STATE_CREATED, NOW - 650, player="p2")
    done = reconciler.step(NOW)  # old: deadline NOW-100, +60 s grace passed; recent: deadline NOW-50, within grace
    assert done["expired"] == 1
    assert manifests.load(old).session.state == ingest_pb2.SESSION_STATE_EXPIRED
    assert store.stat(bucket, keys.video_key("p2", old)) is None
    assert manifests.load(recent).session.state == ingest_pb2.SESSION_STATE_CREATED
    assert [s for _, s in records.open_sessions("p2")] == [recent]
    assert reconciler.step(NOW)["expired"] == 0  # idempotent: nothing left to do

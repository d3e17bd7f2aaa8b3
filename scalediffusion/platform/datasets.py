"""Reading the dataset index in the clean bucket (written by the processor, read by processor and trainer)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from google.protobuf import json_format

from scalediffusion.platform import keys
from scalediffusion.platform.s3 import ObjectStore
from scalediffusion.v1 import processor_pb2


@dataclass(frozen=True)
class IndexEntry:
    segment: processor_pb2.SegmentInfo
    speed_hist: list[int]
    player_id: str
    camera: dict = field(default_factory=dict)  # the source camera and the processor's resize ({} in older records)
    targets: dict = field(default_factory=dict)  # waypoint count/spacing of the measurements ({} in older records)


def list_datasets(store: ObjectStore, bucket: str) -> list[str]:
    """Dataset names: top-level prefixes of the clean bucket that hold an _index/ (reports live under _reports/)."""
    names = []
    for prefix in store.list_keys(bucket, "", recursive=False):
        name = prefix.rstrip("/")
        if prefix.endswith("/") and not name.startswith("_"):
            names.append(name)
    return sorted(names)


def iter_index(store: ObjectStore, bucket: str, dataset: str, start_after: str = "") -> Iterator[IndexEntry]:
    """Index entries in segment-id order, optionally after a given index key (for paging)."""
    for key in store.list_keys(bucket, keys.dataset_index_prefix(dataset), start_after=start_after):
        doc = store.get_json(bucket, key)
        if not isinstance(doc, dict):
            continue
        segment = json_format.ParseDict(doc["segment"], processor_pb2.SegmentInfo())
        yield IndexEntry(segment=segment, speed_hist=list(doc.get("speed_hist", [])), player_id=doc.get("player_id", ""),
                         camera=dict(doc.get("camera") or {}), targets=dict(doc.get("targets") or {}))

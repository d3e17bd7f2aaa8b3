"""The embedded S3 server takes writes to every bucket the tests and services make, whatever the disk's free space:
SeaweedFS's automatic volume count (free disk / 1 GiB) once made the eighth fresh bucket answer HTTP 500 on a disk
with 7 GiB free (CI failed in the reconciler tests, which each make a bucket)."""

from __future__ import annotations

import json
import uuid

import urllib3


def test_the_volume_count_does_not_depend_on_free_disk(stack):
    master = f"http://{stack.layout.host}:{stack.layout.weed.master}/dir/status"
    status = json.loads(urllib3.PoolManager().request("GET", master).data)
    assert status["Topology"]["Max"] >= 1000, status["Topology"]


def test_twenty_fresh_buckets_each_take_a_write_and_give_their_volumes_back(stack):
    store = stack.store()
    buckets = [f"fresh-{uuid.uuid4().hex[:10]}" for _ in range(20)]
    try:
        for bucket in buckets:
            store.client.make_bucket(bucket)
            store.put_bytes(bucket, "probe", b"written")
        assert [store.client.get_object(b, "probe").read() for b in buckets] == [b"written"] * 20
    finally:
        for bucket in buckets:
            if store.client.bucket_exists(bucket):
                for obj in store.client.list_objects(bucket, recursive=True):
                    store.client.remove_object(bucket, obj.object_name)
                store.client.remove_bucket(bucket)

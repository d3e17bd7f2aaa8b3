"""Fault injection for crash tests, from outside the production code: a process started with this folder on its
PYTHONPATH imports this at start-up. SD_TEST_CRASH_POINT=after_manifest makes ingest die the moment it would publish
sessions.uploaded, i.e. after CompleteSession wrote the manifest and before the event went out."""

import os

if os.environ.get("SD_TEST_CRASH_POINT") == "after_manifest":
    from services.ingest import completion

    def _crash(self, manifest):
        print('{"event": "test_crash", "point": "after_manifest"}', flush=True)
        os._exit(70)

    completion.Completion.publish_uploaded = _crash

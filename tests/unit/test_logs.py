"""Structured log events: fields become top-level JSON keys, and a field named like a LogRecord attribute is kept
(renamed) instead of making logging raise in the caller (the trainer's job_ended event once failed every finished
job's bookkeeping this way)."""

import io
import json
import logging

from scalediffusion.platform.logs import JsonFormatter, event


def _capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    logger = logging.getLogger("scalediffusion.test_logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, stream


def test_event_fields_are_top_level_json_keys():
    logger, stream = _capture()
    event(logger, "job_ended", job_id="j1", state="SUCCEEDED")
    doc = json.loads(stream.getvalue())
    assert (doc["msg"], doc["event"], doc["job_id"], doc["state"], doc["service"]) == ("job_ended", "job_ended", "j1", "SUCCEEDED", "test")


def test_a_field_named_like_a_log_record_attribute_is_renamed_not_raised():
    logger, stream = _capture()
    event(logger, "job_ended", message="DS 31.5", module="m", args=3)
    doc = json.loads(stream.getvalue())
    assert (doc["message_"], doc["module_"], doc["args_"]) == ("DS 31.5", "m", 3)
    assert doc["msg"] == "job_ended"

"""Kafka payloads: protobuf messages from protos/ with a type header and a schema version. Pure, no I/O."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import DecodeError, Message

M = TypeVar("M", bound=Message)

# Topic base names (docs/ARCHITECTURE.md "Contracts"); KafkaSettings.topic() adds the deployment's prefix.
SESSIONS_UPLOADED = "sessions.uploaded"
SEGMENTS_READY = "segments.ready"
SESSIONS_REJECTED = "sessions.rejected"
TRAINER_EVENTS = "trainer.events"
ALL_TOPICS = (SESSIONS_UPLOADED, SEGMENTS_READY, SESSIONS_REJECTED, TRAINER_EVENTS)

# The schema version every event this code writes carries, and the versions it can read.
SCHEMA_VERSION = 1
READABLE_VERSIONS = frozenset({1})

TYPE_HEADER = "sd-type"


def dead_letter_topic(group: str) -> str:
    """One dead-letter topic per consumer group."""
    return f"{group}.dlq"


class PoisonMessage(ValueError):
    """A record that can never be handled (wrong type, unparsable, unknown schema). It goes to the DLQ at once."""


def encode(message: Message) -> tuple[bytes, list[tuple[str, bytes]]]:
    """Serialized payload and headers; stamps schema_version when the message has one and it is unset."""
    if "schema_version" in message.DESCRIPTOR.fields_by_name and not message.schema_version:
        message.schema_version = SCHEMA_VERSION
    return message.SerializeToString(), [(TYPE_HEADER, message.DESCRIPTOR.full_name.encode())]


def decode(value: bytes | None, headers: list[tuple[str, bytes]] | None, cls: type[M]) -> M:
    """Parses a record value into cls, raising PoisonMessage with the reason when it cannot be one."""
    expected = cls.DESCRIPTOR.full_name
    found = dict(headers or []).get(TYPE_HEADER)
    if found is not None and found.decode(errors="replace") != expected:
        raise PoisonMessage(f"expected {expected}, record says {found.decode(errors='replace')}")
    if value is None:
        raise PoisonMessage(f"empty record where {expected} was expected")
    message = cls()
    try:
        message.ParseFromString(value)
    except DecodeError as err:
        raise PoisonMessage(f"not a valid {expected}: {err}") from None
    version = getattr(message, "schema_version", None)
    if version is not None and version not in READABLE_VERSIONS:
        raise PoisonMessage(f"{expected} schema_version {version} is not one of {sorted(READABLE_VERSIONS)}")
    return message

"""Settings from environment variables only. A missing required setting stops start-up with its name.

Every service reads the same three groups (server, object store, event bus); service-specific settings
live in the service's own module and use the same `env_*` readers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

_REQUIRED = object()


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable and what it expects."""


def env_str(name: str, default: object = _REQUIRED, env: Mapping[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    value = env.get(name)
    if value is None or value == "":
        if default is _REQUIRED:
            raise SettingsError(f"{name} is required but not set")
        return str(default)
    return value


def env_int(name: str, default: object = _REQUIRED, env: Mapping[str, str] | None = None) -> int:
    raw = env_str(name, default, env)
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


def env_float(name: str, default: object = _REQUIRED, env: Mapping[str, str] | None = None) -> float:
    raw = env_str(name, default, env)
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def env_bool(name: str, default: object = _REQUIRED, env: Mapping[str, str] | None = None) -> bool:
    raw = env_str(name, default, env).strip().lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def env_list(name: str, default: str = "", env: Mapping[str, str] | None = None) -> tuple[str, ...]:
    return tuple(item.strip() for item in env_str(name, default, env).split(",") if item.strip())


def _check_port(name: str, port: int, allow_zero: bool = False) -> None:
    if not (0 if allow_zero else 1) <= port <= 65535:
        raise SettingsError(f"{name} must be a TCP port (1-65535{', or 0 to disable' if allow_zero else ''}), got {port}")


@dataclass(frozen=True)
class ServerSettings:
    """Where a service listens and how it stops."""

    host: str  # bind address; 0.0.0.0 in containers, 127.0.0.1 in the local stack
    grpc_port: int  # native gRPC (health + reflection on the same port)
    grpcweb_port: int  # gRPC-Web over HTTP/1.1 for browsers; 0 disables it
    metrics_port: int  # Prometheus /metrics; 0 disables it
    cors_origins: tuple[str, ...]  # origins allowed to call gRPC-Web ("*" allows any)
    shutdown_grace_s: float  # how long in-flight calls may finish after SIGTERM
    log_level: str
    io_threads: int = 64  # threads for blocking S3/Kafka calls made by servicers

    @classmethod
    def from_env(
        cls, *, grpc_port: int, grpcweb_port: int, metrics_port: int, env: Mapping[str, str] | None = None
    ) -> ServerSettings:
        settings = cls(
            host=env_str("SD_HOST", "0.0.0.0", env),
            grpc_port=env_int("SD_GRPC_PORT", grpc_port, env),
            grpcweb_port=env_int("SD_GRPCWEB_PORT", grpcweb_port, env),
            metrics_port=env_int("SD_METRICS_PORT", metrics_port, env),
            cors_origins=env_list("SD_CORS_ORIGINS", "http://127.0.0.1:5173,http://localhost:5173", env),
            shutdown_grace_s=env_float("SD_SHUTDOWN_GRACE_S", 20.0, env),
            log_level=env_str("SD_LOG_LEVEL", "INFO", env).upper(),
            io_threads=env_int("SD_IO_THREADS", 64, env),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        _check_port("SD_GRPC_PORT", self.grpc_port)
        _check_port("SD_GRPCWEB_PORT", self.grpcweb_port, allow_zero=True)
        _check_port("SD_METRICS_PORT", self.metrics_port, allow_zero=True)
        if self.shutdown_grace_s < 0:
            raise SettingsError(f"SD_SHUTDOWN_GRACE_S must be >= 0, got {self.shutdown_grace_s}")
        if self.io_threads < 1:
            raise SettingsError(f"SD_IO_THREADS must be >= 1, got {self.io_threads}")
        if self.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise SettingsError(f"SD_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}")


@dataclass(frozen=True)
class S3Settings:
    """The object store, spoken to only through the minio SDK."""

    endpoint: str  # host:port the services use
    public_endpoint: str  # host:port browsers use for presigned uploads (defaults to endpoint)
    access_key: str
    secret_key: str = field(repr=False)
    secure: bool  # https
    region: str
    bucket_raw: str  # raw/<player>/<session>/...
    bucket_clean: str  # <dataset>/route_<session>_<seg>/...
    bucket_models: str  # <run>/model.onnx ...
    bucket_reports: str  # <eval>/...

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> S3Settings:
        endpoint = env_str("SD_S3_ENDPOINT", "127.0.0.1:8333", env)
        settings = cls(
            endpoint=endpoint,
            public_endpoint=env_str("SD_PUBLIC_S3_ENDPOINT", endpoint, env),
            access_key=env_str("SD_S3_ACCESS_KEY", env=env),
            secret_key=env_str("SD_S3_SECRET_KEY", env=env),
            secure=env_bool("SD_S3_SECURE", "false", env),
            region=env_str("SD_S3_REGION", "us-east-1", env),
            bucket_raw=env_str("SD_BUCKET_RAW", "raw", env),
            bucket_clean=env_str("SD_BUCKET_CLEAN", "clean", env),
            bucket_models=env_str("SD_BUCKET_MODELS", "models", env),
            bucket_reports=env_str("SD_BUCKET_REPORTS", "reports", env),
        )
        settings.validate()
        return settings

    @property
    def buckets(self) -> tuple[str, ...]:
        return (self.bucket_raw, self.bucket_clean, self.bucket_models, self.bucket_reports)

    def validate(self) -> None:
        for name, value in (("SD_S3_ENDPOINT", self.endpoint), ("SD_PUBLIC_S3_ENDPOINT", self.public_endpoint)):
            if "://" in value or "/" in value or ":" not in value:
                raise SettingsError(f"{name} must be host:port without a scheme (use SD_S3_SECURE for https), got {value!r}")


@dataclass(frozen=True)
class KafkaSettings:
    """The event bus (Kafka protocol: Tansu locally, Apache Kafka on clusters)."""

    bootstrap: tuple[str, ...]  # host:port list
    topic_prefix: str  # prepended to every topic name; isolates tests and tenants
    partitions: int  # partitions for topics this service creates
    replication_factor: int = 1  # replicas of topics this service creates (1 = a single-node broker)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KafkaSettings:
        settings = cls(
            bootstrap=env_list("SD_KAFKA_BOOTSTRAP", "127.0.0.1:9092", env),
            topic_prefix=env_str("SD_TOPIC_PREFIX", "", env),
            partitions=env_int("SD_KAFKA_PARTITIONS", 4, env),
            replication_factor=env_int("SD_KAFKA_REPLICATION_FACTOR", 1, env),
        )
        settings.validate()
        return settings

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def validate(self) -> None:
        if not self.bootstrap:
            raise SettingsError("SD_KAFKA_BOOTSTRAP must list at least one host:port")
        if self.partitions < 1:
            raise SettingsError(f"SD_KAFKA_PARTITIONS must be >= 1, got {self.partitions}")
        if self.replication_factor < 1:
            raise SettingsError(f"SD_KAFKA_REPLICATION_FACTOR must be >= 1, got {self.replication_factor}")

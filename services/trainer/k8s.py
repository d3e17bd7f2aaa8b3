"""Kubernetes manifests for training and evaluation runs, built without I/O.

The trainer runs a training run as a batch/v1 Job (an Indexed Job plus a headless Service when it spans several
nodes, so every pod can reach rank 0 by name) and an evaluation as an Indexed Job of route shards, each pod a CARLA
server (native sidecar) beside our evaluator. Everything here is a pure function of its arguments and
`KubeJobSettings`, so the manifests are tested offline by strict schema validation; `kube_backend.py` is the thin
part that sends them to an API server and reads Job status back through `job_state_from_status`.

Operators find what the trainer made with labels (see `label_selector`):
    kubectl get jobs -l app.kubernetes.io/part-of=scale-diffusion,scalediffusion.io/kind=training
    kubectl get jobs,pods -l scalediffusion.io/run=<run id>      (or scalediffusion.io/eval=<eval id>)

One trainer per namespace: Job names derive from run/eval ids only, so two installs sharing a namespace would
share names.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from scalediffusion.platform import keys
from scalediffusion.platform.settings import SettingsError, env_int, env_list, env_str
from scalediffusion.v1 import trainer_pb2

TRAINING = "training"
EVALUATION = "evaluation"

PART_OF = "scale-diffusion"
MANAGED_BY = "scale-diffusion-trainer"
LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_KIND = "scalediffusion.io/kind"
LABEL_JOB_ID = "scalediffusion.io/job-id"
LABEL_RUN = "scalediffusion.io/run"
LABEL_EVAL = "scalediffusion.io/eval"
LABEL_MODEL_RUN = "scalediffusion.io/model-run"
# Label values stop at 63 characters and ids may be 128, so the exact id is also kept in this annotation.
ANNOTATION_JOB_ID = "scalediffusion.io/job-id"

# Set by the Job controller on every pod: the Job's name (a label) and, for Indexed Jobs, the pod's index.
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"

# An Indexed Job's pod is named by the hostname "<job>-<index>", a DNS label (<= 63). 52 leaves room for
# "-" and a 10-digit index, so no completion count can push a hostname over the limit.
JOB_NAME_LIMIT = 52
_NAME_PREFIX = {TRAINING: "sd-train-", EVALUATION: "sd-eval-"}
_ID_LABEL = {TRAINING: LABEL_RUN, EVALUATION: LABEL_EVAL}

MASTER_PORT = 29500  # torch.distributed rendezvous on rank 0
CARLA_RPC_PORT = 2000
CARLA_HOME = "/home/carla"  # WORKDIR of the carlasim/carla images, where CarlaUE4.sh lives
CARLA_UID = 1000  # the images' user "carla"
APP_UID = 10001  # the user of our images (services/*/Dockerfile)

# Settings the job pods need from the trainer's own environment (the chart sets them on the trainer).
POD_ENV_FROM_TRAINER = (
    "SD_S3_ENDPOINT",
    "SD_S3_SECURE",
    "SD_S3_REGION",
    "SD_BUCKET_RAW",
    "SD_BUCKET_CLEAN",
    "SD_BUCKET_MODELS",
    "SD_BUCKET_REPORTS",
    "SD_LOG_LEVEL",
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_RESOURCE_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$")
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SUITE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$")
_PULL_POLICIES = ("Always", "IfNotPresent", "Never")


class ManifestError(ValueError):
    """A run cannot be expressed as Jobs (bad node/GPU/shard counts, suite or version); the message says why."""


@dataclass(frozen=True)
class KubeJobSettings:
    """How the trainer's Jobs look; from SD_TRAINER_* variables (the chart's trainer.jobs values)."""

    image: str  # SD_TRAINER_JOB_IMAGE: runs training and the CARLA evaluator (required)
    s3_secret: str  # SD_TRAINER_S3_SECRET: the Secret with the S3 credentials (required)
    namespace: str = "default"  # SD_TRAINER_NAMESPACE: where Jobs go (the chart passes the pod's own)
    image_pull_policy: str = "IfNotPresent"  # SD_TRAINER_JOB_IMAGE_PULL_POLICY
    image_pull_secrets: tuple[str, ...] = ()  # SD_TRAINER_JOB_IMAGE_PULL_SECRETS (comma-separated names)
    service_account: str = ""  # SD_TRAINER_JOB_SERVICE_ACCOUNT ("" = the namespace default; no token mounted)
    s3_access_key_ref: str = "accessKey"  # SD_TRAINER_S3_ACCESS_KEY_REF: key in the Secret holding the access key
    s3_secret_key_ref: str = "secretKey"  # SD_TRAINER_S3_SECRET_KEY_REF: key in the Secret holding the secret key
    pod_env: Mapping[str, str] = field(default_factory=dict)  # POD_ENV_FROM_TRAINER values, passed to pods as is
    gpu_resource: str = "nvidia.com/gpu"  # SD_TRAINER_GPU_RESOURCE
    ttl_seconds_after_finished: int = 86400  # SD_TRAINER_JOB_TTL_S: finished Jobs (and their pods) linger a day
    training_backoff_limit: int = 2  # SD_TRAINER_TRAINING_BACKOFF_LIMIT: pod retries of a training Job
    eval_backoff_limit_per_index: int = 1  # SD_TRAINER_EVAL_BACKOFF_LIMIT_PER_INDEX: retries of one route shard
    training_deadline_s: int = 0  # SD_TRAINER_TRAINING_DEADLINE_S (0 = none): training may take days
    eval_deadline_s: int = 21600  # SD_TRAINER_EVAL_DEADLINE_S (0 = none): a hung simulator must not hold a GPU
    training_cpu: str = "4"  # SD_TRAINER_TRAINING_CPU: requested per training pod
    training_memory: str = "16Gi"  # SD_TRAINER_TRAINING_MEMORY: request and limit per training pod
    shm_size: str = "8Gi"  # SD_TRAINER_SHM_SIZE: /dev/shm for DataLoader workers (counts against memory)
    scratch_size: str = "20Gi"  # SD_TRAINER_SCRATCH_SIZE: /tmp (checkpoints before upload; the root is read-only)
    eval_cpu: str = "2"  # SD_TRAINER_EVAL_CPU: the evaluator container
    eval_memory: str = "8Gi"  # SD_TRAINER_EVAL_MEMORY
    carla_cpu: str = "4"  # SD_TRAINER_CARLA_CPU: the CARLA server sidecar
    carla_memory: str = "16Gi"  # SD_TRAINER_CARLA_MEMORY
    carla_image: str = "carlasim/carla:{version}"  # SD_TRAINER_CARLA_IMAGE: "{version}" is replaced
    carla_version: str = "0.9.15"  # SD_TRAINER_CARLA_VERSION: when a request names none
    carla_startup_s: int = 300  # SD_TRAINER_CARLA_STARTUP_S: how long CARLA may take to listen
    leaderboard_root: str = "/opt/leaderboard"  # SD_TRAINER_LEADERBOARD_ROOT: in the evaluator image
    node_selector: Mapping[str, str] = field(default_factory=dict)  # SD_TRAINER_JOB_NODE_SELECTOR (JSON object)
    tolerations: tuple[Mapping[str, Any], ...] = ()  # SD_TRAINER_JOB_TOLERATIONS (JSON list)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> KubeJobSettings:
        source = os.environ if env is None else env
        settings = cls(
            image=env_str("SD_TRAINER_JOB_IMAGE", env=env),
            s3_secret=env_str("SD_TRAINER_S3_SECRET", env=env),
            namespace=env_str("SD_TRAINER_NAMESPACE", "default", env),
            image_pull_policy=env_str("SD_TRAINER_JOB_IMAGE_PULL_POLICY", "IfNotPresent", env),
            image_pull_secrets=env_list("SD_TRAINER_JOB_IMAGE_PULL_SECRETS", "", env),
            service_account=env_str("SD_TRAINER_JOB_SERVICE_ACCOUNT", "", env),
            s3_access_key_ref=env_str("SD_TRAINER_S3_ACCESS_KEY_REF", "accessKey", env),
            s3_secret_key_ref=env_str("SD_TRAINER_S3_SECRET_KEY_REF", "secretKey", env),
            pod_env={name: source[name] for name in POD_ENV_FROM_TRAINER if source.get(name)},
            gpu_resource=env_str("SD_TRAINER_GPU_RESOURCE", "nvidia.com/gpu", env),
            ttl_seconds_after_finished=env_int("SD_TRAINER_JOB_TTL_S", 86400, env),
            training_backoff_limit=env_int("SD_TRAINER_TRAINING_BACKOFF_LIMIT", 2, env),
            eval_backoff_limit_per_index=env_int("SD_TRAINER_EVAL_BACKOFF_LIMIT_PER_INDEX", 1, env),
            training_deadline_s=env_int("SD_TRAINER_TRAINING_DEADLINE_S", 0, env),
            eval_deadline_s=env_int("SD_TRAINER_EVAL_DEADLINE_S", 21600, env),
            training_cpu=env_str("SD_TRAINER_TRAINING_CPU", "4", env),
            training_memory=env_str("SD_TRAINER_TRAINING_MEMORY", "16Gi", env),
            shm_size=env_str("SD_TRAINER_SHM_SIZE", "8Gi", env),
            scratch_size=env_str("SD_TRAINER_SCRATCH_SIZE", "20Gi", env),
            eval_cpu=env_str("SD_TRAINER_EVAL_CPU", "2", env),
            eval_memory=env_str("SD_TRAINER_EVAL_MEMORY", "8Gi", env),
            carla_cpu=env_str("SD_TRAINER_CARLA_CPU", "4", env),
            carla_memory=env_str("SD_TRAINER_CARLA_MEMORY", "16Gi", env),
            carla_image=env_str("SD_TRAINER_CARLA_IMAGE", "carlasim/carla:{version}", env),
            carla_version=env_str("SD_TRAINER_CARLA_VERSION", "0.9.15", env),
            carla_startup_s=env_int("SD_TRAINER_CARLA_STARTUP_S", 300, env),
            leaderboard_root=env_str("SD_TRAINER_LEADERBOARD_ROOT", "/opt/leaderboard", env),
            node_selector=_env_json("SD_TRAINER_JOB_NODE_SELECTOR", {}, env),
            tolerations=tuple(_env_json("SD_TRAINER_JOB_TOLERATIONS", [], env)),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        """Refuses at start-up what the API server would refuse at the first run, naming the variable."""
        if not self.image.strip() or any(c.isspace() for c in self.image):
            raise SettingsError(f"SD_TRAINER_JOB_IMAGE must be an image reference, got {self.image!r}")
        for name, value in (
            ("SD_TRAINER_NAMESPACE", self.namespace),
            ("SD_TRAINER_JOB_SERVICE_ACCOUNT", self.service_account or "default"),
            ("SD_TRAINER_S3_SECRET", self.s3_secret),
            *(("SD_TRAINER_JOB_IMAGE_PULL_SECRETS", s) for s in self.image_pull_secrets),
        ):
            pattern = _DNS_LABEL if name == "SD_TRAINER_NAMESPACE" else _DNS_SUBDOMAIN
            if not pattern.match(value):
                raise SettingsError(f"{name} must be a Kubernetes object name (lowercase DNS-1123), got {value!r}")
        if self.image_pull_policy not in _PULL_POLICIES:
            raise SettingsError(f"SD_TRAINER_JOB_IMAGE_PULL_POLICY must be one of {', '.join(_PULL_POLICIES)}, got {self.image_pull_policy!r}")
        if not _RESOURCE_NAME.match(self.gpu_resource):
            raise SettingsError(f"SD_TRAINER_GPU_RESOURCE must be a resource name like nvidia.com/gpu, got {self.gpu_resource!r}")
        for name, number in (
            ("SD_TRAINER_JOB_TTL_S", self.ttl_seconds_after_finished),
            ("SD_TRAINER_TRAINING_BACKOFF_LIMIT", self.training_backoff_limit),
            ("SD_TRAINER_EVAL_BACKOFF_LIMIT_PER_INDEX", self.eval_backoff_limit_per_index),
            ("SD_TRAINER_TRAINING_DEADLINE_S", self.training_deadline_s),
            ("SD_TRAINER_EVAL_DEADLINE_S", self.eval_deadline_s),
        ):
            if number < 0:
                raise SettingsError(f"{name} must be >= 0, got {number}")
        if self.carla_startup_s < 1:
            raise SettingsError(f"SD_TRAINER_CARLA_STARTUP_S must be >= 1, got {self.carla_startup_s}")
        for name, value in (
            ("SD_TRAINER_TRAINING_CPU", self.training_cpu),
            ("SD_TRAINER_TRAINING_MEMORY", self.training_memory),
            ("SD_TRAINER_SHM_SIZE", self.shm_size),
            ("SD_TRAINER_SCRATCH_SIZE", self.scratch_size),
            ("SD_TRAINER_EVAL_CPU", self.eval_cpu),
            ("SD_TRAINER_EVAL_MEMORY", self.eval_memory),
            ("SD_TRAINER_CARLA_CPU", self.carla_cpu),
            ("SD_TRAINER_CARLA_MEMORY", self.carla_memory),
        ):
            if not _QUANTITY.match(value):
                raise SettingsError(f"{name} must be a Kubernetes quantity like 4, 500m or 16Gi, got {value!r}")
        if not _VERSION.match(self.carla_version):
            raise SettingsError(f"SD_TRAINER_CARLA_VERSION must be a version like 0.9.15, got {self.carla_version!r}")
        if not self.leaderboard_root.startswith("/"):
            raise SettingsError(f"SD_TRAINER_LEADERBOARD_ROOT must be an absolute path, got {self.leaderboard_root!r}")
        if not isinstance(self.node_selector, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.node_selector.items()
        ):
            raise SettingsError("SD_TRAINER_JOB_NODE_SELECTOR must be a JSON object of strings")
        if not all(isinstance(t, Mapping) for t in self.tolerations):
            raise SettingsError("SD_TRAINER_JOB_TOLERATIONS must be a JSON list of toleration objects")


def _env_json(name: str, default: Any, env: Mapping[str, str] | None) -> Any:
    raw = env_str(name, "", env)
    if not raw:
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as err:
        raise SettingsError(f"{name} must be JSON ({err.msg} at character {err.pos}), got {raw!r}") from None
    if not isinstance(value, type(default)):
        raise SettingsError(f"{name} must be a JSON {'object' if isinstance(default, dict) else 'list'}, got {raw!r}")
    return value


# --- names, labels and selectors -----------------------------------------------------------------------------


def _short_hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def _kind_name(kind: str | int) -> str:
    """TRAINING or EVALUATION from either spelling, so callers can pass the proto JobKind as is."""
    by_enum: dict[int, str] = {trainer_pb2.JOB_KIND_TRAINING: TRAINING, trainer_pb2.JOB_KIND_EVALUATION: EVALUATION}
    if isinstance(kind, str) and kind in _NAME_PREFIX:
        return kind
    if isinstance(kind, int) and kind in by_enum:
        return by_enum[kind]
    raise ManifestError(f"job kind must be {TRAINING!r}, {EVALUATION!r} or a JobKind, got {kind!r}")


def job_name(kind: str | int, job_id: str) -> str:
    """The Job's name: "sd-train-<id>" / "sd-eval-<id>", lowercased with "_" as "-", at most JOB_NAME_LIMIT.

    Deterministic, so a retried request finds the Job it already made. Where lowercasing, "_"→"-" or truncation
    loses information (ids "Run_1" and "run-1" would meet), an 8-character hash of the exact id is appended, so
    distinct ids do not share a Job (a hash collision is caught by KubeJobs.create, which compares exact ids).
    """
    kind = _kind_name(kind)
    keys.check_id(f"{kind} id", job_id)
    prefix = _NAME_PREFIX[kind]
    slug = job_id.lower().replace("_", "-")
    name = prefix + slug
    if slug == job_id and len(name) <= JOB_NAME_LIMIT and _DNS_LABEL.match(name):
        return name
    suffix = "-" + _short_hash(job_id)
    return prefix + slug[: JOB_NAME_LIMIT - len(prefix) - len(suffix)].rstrip("-") + suffix


def label_value(job_id: str) -> str:
    """The id as a label value: itself where it is a valid one (<= 63, ends alphanumeric), else cut + hash."""
    if len(job_id) <= 63 and _LABEL_VALUE.match(job_id):
        return job_id
    suffix = "-" + _short_hash(job_id)
    return job_id[: 63 - len(suffix)].rstrip("-_.") + suffix


def label_selector(kind: str | int | None = None, job_id: str | None = None) -> str:
    """A label selector for the trainer's Jobs (and their pods), optionally of one kind and/or one run/eval id."""
    parts = [f"{LABEL_PART_OF}={PART_OF}", f"{LABEL_MANAGED_BY}={MANAGED_BY}"]
    if kind is not None:
        parts.append(f"{LABEL_KIND}={_kind_name(kind)}")
    if job_id is not None:
        parts.append(f"{LABEL_JOB_ID}={label_value(keys.check_id('job id', job_id))}")
    return ",".join(parts)


def job_labels(kind: str | int, job_id: str) -> dict[str, str]:
    """Labels of a Job, of its pods and of its Service: what `label_selector` and operators select on."""
    kind = _kind_name(kind)
    value = label_value(job_id)
    return {
        LABEL_NAME: PART_OF,
        LABEL_COMPONENT: kind,
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_KIND: kind,
        LABEL_JOB_ID: value,
        _ID_LABEL[kind]: value,
    }


def service_owner_patch(job_name: str, job_uid: str) -> dict[str, Any]:
    """A merge patch making a Job own its headless Service, so TTL or deletion of the Job removes it too.

    The Service is created before the Job (its DNS must exist when pods start) and so cannot name the Job's uid
    at creation.
    """
    return {"metadata": {"ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job_name, "uid": job_uid}]}}


# --- pod pieces ------------------------------------------------------------------------------------------------


def _literal(arg: str) -> str:
    """Escapes "$" so Kubernetes does not expand "$(NAME)" inside a value we mean literally."""
    return arg.replace("$", "$$")


def _pod_security_context() -> dict[str, Any]:
    """The chart's restricted defaults (values.yaml global.podSecurityContext)."""
    return {
        "runAsNonRoot": True,
        "runAsUser": APP_UID,
        "runAsGroup": APP_UID,
        "fsGroup": APP_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security_context(uid: int = APP_UID, read_only_root: bool = True) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _app_env(settings: KubeJobSettings, *, indexed: bool) -> list[dict[str, Any]]:
    """Env of a container running our image: object store settings, credentials from the Secret, the index."""
    env: list[dict[str, Any]] = [{"name": "HOME", "value": "/tmp"}]  # caches (torch, matplotlib) need a writable home
    env += [{"name": name, "value": value} for name, value in sorted(settings.pod_env.items())]
    for var, key in (("SD_S3_ACCESS_KEY", settings.s3_access_key_ref), ("SD_S3_SECRET_KEY", settings.s3_secret_key_ref)):
        env.append({"name": var, "valueFrom": {"secretKeyRef": {"name": settings.s3_secret, "key": key}}})
    if indexed:
        # The Job controller adds this too; spelled out so "$(JOB_COMPLETION_INDEX)" in the command visibly resolves.
        env.append(
            {
                "name": "JOB_COMPLETION_INDEX",
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}},
            }
        )
    return env


def _resources(cpu: str, memory: str, gpus: int, settings: KubeJobSettings) -> dict[str, Any]:
    """CPU and memory requested, memory capped at the request (no overcommit for batch), GPUs as limits.

    Quantities are strings: the API accepts numbers too, but the official client's models refuse them.
    """
    limits: dict[str, str] = {"memory": memory}
    if gpus > 0:
        limits[settings.gpu_resource] = str(gpus)
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": limits}


def _pod_spec(settings: KubeJobSettings, containers: list[dict[str, Any]], volumes: list[dict[str, Any]], *, gpu: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # Job pods read S3, never the Kubernetes API.
        "automountServiceAccountToken": False,
        # Service links would inject <SERVICE>_PORT-style variables, some with the SD_ prefix of our settings.
        "enableServiceLinks": False,
        "securityContext": _pod_security_context(),
        "containers": containers,
        "volumes": volumes,
    }
    if settings.service_account:
        spec["serviceAccountName"] = settings.service_account
    if settings.image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": name} for name in settings.image_pull_secrets]
    if settings.node_selector:
        spec["nodeSelector"] = dict(settings.node_selector)
    tolerations = [copy.deepcopy(dict(t)) for t in settings.tolerations]
    gpu_toleration = {"key": settings.gpu_resource, "operator": "Exists", "effect": "NoSchedule"}
    if gpu and gpu_toleration not in tolerations:
        tolerations.append(gpu_toleration)  # GPU nodes are commonly tainted with the resource name
    if tolerations:
        spec["tolerations"] = tolerations
    return spec


def _job(
    name: str,
    labels: dict[str, str],
    annotations: dict[str, str],
    pod_spec: dict[str, Any],
    settings: KubeJobSettings,
    completions: int,
    indexed: bool,
    deadline_s: int,
    backoff: dict[str, int],
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "completions": completions,
        "parallelism": completions,
        **backoff,
        "ttlSecondsAfterFinished": settings.ttl_seconds_after_finished,
        # A preempted or evicted pod (node drain, GPU preemption) is retried without using up the retry budget.
        "podFailurePolicy": {
            "rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]
        },
        "template": {"metadata": {"labels": dict(labels), "annotations": dict(annotations)}, "spec": pod_spec},
    }
    if indexed:
        spec["completionMode"] = "Indexed"
    if deadline_s:
        spec["activeDeadlineSeconds"] = deadline_s
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": settings.namespace, "labels": dict(labels), "annotations": dict(annotations)},
        "spec": spec,
    }


def _count(value: Any, what: str) -> int:
    """A non-negative integer from a request; 0 (proto3's unset) is returned as is for the caller's default."""
    value = value or 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ManifestError(f"{what} must be a non-negative integer, got {value!r}")
    return value


# --- training ---------------------------------------------------------------------------------------------------


def training_job_manifests(run_id: str, dataset: str, config: Mapping[str, Any], settings: KubeJobSettings) -> list[dict[str, Any]]:
    """The objects of one training run: a Job, and for nodes > 1 a headless Service first, then an Indexed Job.

    `config` is the TrainingConfig as a dict (proto field names); it reaches services.trainer.train whole as
    --config-json. gpus (per pod) and nodes (pods) shape the Job: 0 GPUs runs plain python on CPU, one node runs
    torchrun --standalone, several nodes run torchrun with rank i on pod i and rank 0 at "<job>-0.<service>".
    """
    keys.check_id("run id", run_id)
    keys.check_id("dataset", dataset)
    gpus = _count(config.get("gpus"), "config.gpus")
    nodes = _count(config.get("nodes"), "config.nodes") or 1
    name = job_name(TRAINING, run_id)
    labels = job_labels(TRAINING, run_id)
    annotations = {ANNOTATION_JOB_ID: run_id, "scalediffusion.io/dataset": dataset}
    config_json = json.dumps(dict(config), sort_keys=True, separators=(",", ":"))
    train = ["-m", "services.trainer.train", "--run-id", run_id, "--dataset", dataset, "--config-json", _literal(config_json)]
    multi_node = nodes > 1
    if multi_node:
        command = [
            "torchrun",
            f"--nnodes={nodes}",
            f"--nproc-per-node={max(gpus, 1)}",
            "--node-rank=$(JOB_COMPLETION_INDEX)",
            f"--master-addr={name}-0.{name}",
            f"--master-port={MASTER_PORT}",
            *train,
        ]
    elif gpus:
        command = ["torchrun", "--standalone", f"--nproc-per-node={gpus}", *train]
    else:
        command = ["python", *train]

    container: dict[str, Any] = {
        "name": "train",
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": command,
        "env": _app_env(settings, indexed=multi_node),
        "resources": _resources(settings.training_cpu, settings.training_memory, gpus, settings),
        "securityContext": _container_security_context(),
        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}, {"name": "dshm", "mountPath": "/dev/shm"}],
    }
    if multi_node:
        container["ports"] = [{"name": "torch-dist", "containerPort": MASTER_PORT, "protocol": "TCP"}]
    volumes = [
        {"name": "scratch", "emptyDir": {"sizeLimit": settings.scratch_size}},
        # The container runtime's 64 MiB /dev/shm is too small for DataLoader workers passing batches.
        {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": settings.shm_size}},
    ]
    pod = _pod_spec(settings, [container], volumes, gpu=gpus > 0)
    if multi_node:
        pod["subdomain"] = name  # with the Service below: "<job>-<index>.<name>" resolves to pod <index>
    backoff = {"backoffLimit": settings.training_backoff_limit}
    job = _job(name, labels, annotations, pod, settings, nodes, multi_node, settings.training_deadline_s, backoff)
    if not multi_node:
        return [job]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": settings.namespace, "labels": dict(labels), "annotations": dict(annotations)},
        "spec": {
            "clusterIP": "None",
            "selector": {JOB_NAME_LABEL: name},
            # Pods have no readiness probe; publish their DNS records as soon as they have an address, since
            # the other ranks look up rank 0 while it starts.
            "publishNotReadyAddresses": True,
            "ports": [{"name": "torch-dist", "port": MASTER_PORT, "targetPort": MASTER_PORT, "protocol": "TCP"}],
        },
    }
    return [service, job]


# --- evaluation --------------------------------------------------------------------------------------------------


def carla_image(settings: KubeJobSettings, version: str) -> str:
    return settings.carla_image.replace("{version}", version)


def evaluation_job_manifests(
    eval_id: str,
    model_run: str,
    suite: str,
    shards: int,
    carla_version: str,
    metric_version: str,
    seed: int,
    settings: KubeJobSettings,
) -> list[dict[str, Any]]:
    """One Indexed Job: pod i evaluates route shard i of `shards` against a CARLA server in the same pod.

    CARLA runs as a native sidecar (an init container with restartPolicy Always) whose startup probe holds the
    evaluator back until the simulator listens, and which stops by itself when the evaluator exits. Each shard
    is retried on its own (backoffLimitPerIndex), so one crashed simulator does not fail the other shards.
    """
    keys.check_id("eval id", eval_id)
    keys.check_id("model run", model_run)
    if not _SUITE.match(suite or ""):
        raise ManifestError(f"suite must look like name@version (letters, digits, '_', '-', '.', '@'), got {suite!r}")
    shards = _count(shards, "shards") or 1
    version = carla_version or settings.carla_version
    if not _VERSION.match(version):
        raise ManifestError(f"carla_version must be a version like 0.9.15, got {carla_version!r}")
    metric_version = metric_version or "2.0"
    if not _VERSION.match(metric_version):
        raise ManifestError(f"metric_version must be like 2.0 or 2.1, got {metric_version!r}")
    seed = _count(seed, "seed")

    name = job_name(EVALUATION, eval_id)
    # Also labelled with the model, so `-l scalediffusion.io/model-run=<run>` lists a model's evaluations.
    labels = {**job_labels(EVALUATION, eval_id), LABEL_MODEL_RUN: label_value(model_run)}
    annotations = {
        ANNOTATION_JOB_ID: eval_id,
        "scalediffusion.io/model-run": model_run,
        "scalediffusion.io/suite": suite,
        "scalediffusion.io/carla-version": version,
    }
    carla = {
        "name": "carla",
        "image": carla_image(settings, version),
        # The simulator images are ~20 GB and immutable per version: never re-pulled.
        "imagePullPolicy": "IfNotPresent",
        "restartPolicy": "Always",
        "workingDir": CARLA_HOME,
        "command": [
            "/bin/bash",
            "./CarlaUE4.sh",
            "-RenderOffScreen",
            "-nosound",
            f"-carla-rpc-port={CARLA_RPC_PORT}",
            "-carla-streaming-port=0",
        ],
        "ports": [{"name": "carla-rpc", "containerPort": CARLA_RPC_PORT, "protocol": "TCP"}],
        "startupProbe": {
            "tcpSocket": {"port": CARLA_RPC_PORT},
            "periodSeconds": 5,
            "timeoutSeconds": 3,
            "failureThreshold": max(1, -(-settings.carla_startup_s // 5)),
        },
        "resources": _resources(settings.carla_cpu, settings.carla_memory, 1, settings),
        # The image runs as its user "carla" (uid 1000), not ours, and Unreal writes its config and logs
        # under its install directory, so its root filesystem stays writable; the rest of the defaults hold.
        "securityContext": _container_security_context(uid=CARLA_UID, read_only_root=False),
    }
    evaluator = {
        "name": "evaluate",
        "image": settings.image,
        "imagePullPolicy": settings.image_pull_policy,
        "command": [
            "python",
            "-m",
            "services.trainer.carla_eval",
            "--eval-id",
            eval_id,
            "--model-run",
            model_run,
            "--suite",
            suite,
            "--shard",
            "$(JOB_COMPLETION_INDEX)",
            "--shards",
            str(shards),
            "--carla-host",
            "127.0.0.1",
            "--carla-port",
            str(CARLA_RPC_PORT),
            "--metric-version",
            metric_version,
            "--seed",
            str(seed),
        ],
        "env": [*_app_env(settings, indexed=True), {"name": "SD_LEADERBOARD_ROOT", "value": settings.leaderboard_root}],
        "resources": _resources(settings.eval_cpu, settings.eval_memory, 0, settings),
        "securityContext": _container_security_context(),
        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
    }
    volumes = [{"name": "scratch", "emptyDir": {"sizeLimit": settings.scratch_size}}]
    pod = _pod_spec(settings, [evaluator], volumes, gpu=True)
    pod["initContainers"] = [carla]
    backoff = {"backoffLimitPerIndex": settings.eval_backoff_limit_per_index}
    return [_job(name, labels, annotations, pod, settings, shards, True, settings.eval_deadline_s, backoff)]


# --- status ------------------------------------------------------------------------------------------------------


def _field(obj: Any, snake: str, camel: str | None = None) -> Any:
    """A field of a kubernetes client model, of its to_dict() (snake_case) or of API JSON (camelCase)."""
    if obj is None:
        return None
    if isinstance(obj, Mapping):
        return obj.get(snake, obj.get(camel or snake))
    return getattr(obj, snake, None)


def _true_condition(status: Any, *types: str) -> Any:
    for condition in _field(status, "conditions") or ():
        if _field(condition, "type") in types and _field(condition, "status") == "True":
            return condition
    return None


def _condition_text(condition: Any) -> str:
    reason, message = _field(condition, "reason") or "", _field(condition, "message") or ""
    return f"{reason}: {message}" if reason and message else reason or message


def job_state_from_status(status: Any, completions: int) -> tuple[int, float, str]:
    """(trainer_pb2.JobState, progress 0..1, message) of a Job from its status (V1JobStatus or a dict).

    Failed (or FailureTarget, the condition Kubernetes sets while the failed Job's pods stop) → FAILED with the
    condition's reason and message; Complete (or SuccessCriteriaMet) → SUCCEEDED; ready pods, or finished ones
    while others are still active, → RUNNING; otherwise PENDING, which includes pods that exist but wait for a
    node or an image (`active` counts those too, so it alone does not mean running). Progress is
    succeeded / completions: finished route shards of an evaluation, 0 or 1 for training.
    """
    completions = max(int(completions or 1), 1)
    succeeded = int(_field(status, "succeeded") or 0)
    failed = int(_field(status, "failed") or 0)
    active = int(_field(status, "active") or 0)
    ready = _field(status, "ready")
    progress = min(succeeded / completions, 1.0)

    failure = _true_condition(status, "Failed", "FailureTarget")
    if failure is not None:
        return trainer_pb2.JOB_STATE_FAILED, progress, _condition_text(failure) or "the Job failed"
    success = _true_condition(status, "Complete", "SuccessCriteriaMet")
    if success is not None:
        return trainer_pb2.JOB_STATE_SUCCEEDED, 1.0, _condition_text(success) or f"{succeeded}/{completions} pods succeeded"
    failed_indexes = _field(status, "failed_indexes", "failedIndexes")
    retries = f"; failed indexes {failed_indexes}" if failed_indexes else (f"; {failed} failed pods" if failed else "")
    if _true_condition(status, "Suspended") is not None:
        return trainer_pb2.JOB_STATE_PENDING, progress, "the Job is suspended"
    # `ready` is absent only on API servers older than 1.24; there, active pods are the best sign of running.
    running = (int(ready) > 0) if ready is not None else active > 0
    if running or (active > 0 and (succeeded or failed)):
        return trainer_pb2.JOB_STATE_RUNNING, progress, f"{active} active, {succeeded}/{completions} succeeded{retries}"
    if active > 0:
        return trainer_pb2.JOB_STATE_PENDING, progress, f"{active} pods waiting to start{retries}"
    return trainer_pb2.JOB_STATE_PENDING, progress, f"waiting for pods{retries}"


@dataclass(frozen=True)
class JobUpdate:
    """What a watcher learns about one of the trainer's Jobs."""

    name: str  # the Kubernetes Job
    job_id: str  # the run or eval id (exact, from the annotation)
    kind: str  # TRAINING or EVALUATION ("" for a Job without our labels)
    state: int  # trainer_pb2.JobState
    progress: float
    message: str
    deleted: bool = False


def describe_job(job: Any, deleted: bool = False) -> JobUpdate:
    """The JobUpdate of a Job object (V1Job or a dict), as watch events and lists return them."""
    metadata = _field(job, "metadata")
    labels = _field(metadata, "labels") or {}
    annotations = _field(metadata, "annotations") or {}
    completions = _field(_field(job, "spec"), "completions") or 1
    state, progress, message = job_state_from_status(_field(job, "status"), completions)
    if deleted and state not in (trainer_pb2.JOB_STATE_SUCCEEDED, trainer_pb2.JOB_STATE_FAILED):
        state, message = trainer_pb2.JOB_STATE_CANCELLED, "the Job was deleted before it finished"
    return JobUpdate(
        name=_field(metadata, "name") or "",
        job_id=annotations.get(ANNOTATION_JOB_ID) or labels.get(LABEL_JOB_ID, ""),
        kind=labels.get(LABEL_KIND, ""),
        state=state,
        progress=progress,
        message=message,
        deleted=deleted,
    )

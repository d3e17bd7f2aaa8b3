"""The trainer's Kubernetes Jobs, offline: manifests pass strict schema validation for the Kubernetes versions we
support and have the structure the trainer and operators rely on; Job status maps to JobState; without any
cluster configuration KubeJobs says so. What is not tested: talking to an API server (none runs here)."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client import (
    ApiClient,
    V1Job,
    V1JobCondition,
    V1JobSpec,
    V1JobStatus,
    V1ObjectMeta,
    V1PodTemplateSpec,
)

from scalediffusion.platform.keys import InvalidId
from scalediffusion.platform.settings import SettingsError
from scalediffusion.v1 import trainer_pb2
from services.trainer import k8s
from services.trainer.kube_backend import KubeJobs, KubernetesUnavailable

KUBE_VERSIONS = ("1.33", "1.37")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LONG_ID = "Run_" + "x" * 120 + "_END"  # 128 characters, mixed case, "_": the worst a valid id can be

TRAINER_ENV = {
    "SD_TRAINER_JOB_IMAGE": "ghcr.io/scale-diffusion/trainer:0.1.0",
    "SD_TRAINER_S3_SECRET": "sd-object-store",
    "SD_TRAINER_NAMESPACE": "scale-diffusion",
    "SD_S3_ENDPOINT": "sd-seaweedfs.scale-diffusion.svc.cluster.local:8333",
    "SD_S3_SECURE": "false",
    "SD_BUCKET_CLEAN": "clean",
    "SD_BUCKET_MODELS": "models",
    "SD_KAFKA_BOOTSTRAP": "kafka:9092",  # not for job pods
}
SETTINGS = k8s.KubeJobSettings.from_env(TRAINER_ENV)

TRAINING_CASES = {
    "1-node-cpu": ("run-cpu", {"epochs": 1, "gpus": 0, "nodes": 1}),
    "1-node-4-gpus": ("run-gpu4", {"epochs": 10, "batch_size": 64, "gpus": 4, "nodes": 1}),
    "3-nodes-8-gpus": ("run-multi", {"epochs": 30, "gpus": 8, "nodes": 3, "preset": "cilrs-resnet34"}),
    "long-id": (LONG_ID, {"gpus": 2, "nodes": 2}),
}
EVAL_CASES = {
    "1-shard": ("eval-1", 1, ""),
    "8-shards": ("eval-8", 8, ""),
    "carla-0.9.14": ("eval-old-carla", 2, "0.9.14"),
    "long-id": (LONG_ID, 3, ""),
}


def training(case: str, settings: k8s.KubeJobSettings = SETTINGS) -> list[dict[str, Any]]:
    run_id, config = TRAINING_CASES[case]
    return k8s.training_job_manifests(run_id, "nyc-2026", config, settings)


def evaluation(case: str, settings: k8s.KubeJobSettings = SETTINGS) -> list[dict[str, Any]]:
    eval_id, shards, carla = EVAL_CASES[case]
    return k8s.evaluation_job_manifests(eval_id, "run-gpu4", "easy@1", shards, carla, "2.0", 7, settings)


def all_manifests() -> list[tuple[str, dict[str, Any]]]:
    custom = k8s.KubeJobSettings(
        image="registry.example.com/sd/trainer-cuda:1.0",
        s3_secret="s3-creds",
        s3_access_key_ref="AWS_ACCESS_KEY_ID",
        s3_secret_key_ref="AWS_SECRET_ACCESS_KEY",
        image_pull_secrets=("regcred",),
        service_account="sd-jobs",
        node_selector={"node.kubernetes.io/instance-type": "p5.48xlarge"},
        tolerations=({"key": "dedicated", "operator": "Equal", "value": "training", "effect": "NoSchedule"},),
        training_deadline_s=86400 * 3,
        eval_deadline_s=0,
    )
    docs = [(f"training/{c}", d) for c in TRAINING_CASES for d in training(c)]
    docs += [(f"evaluation/{c}", d) for c in EVAL_CASES for d in evaluation(c)]
    docs += [("training/custom-settings", d) for d in training("3-nodes-8-gpus", custom)]
    docs += [("evaluation/custom-settings", d) for d in evaluation("8-shards", custom)]
    return docs


def only(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (match,) = [d for d in docs if d["kind"] == kind]
    return match


def pod_of(job: dict[str, Any]) -> dict[str, Any]:
    return job["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# --- schema validation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize(("case", "doc"), all_manifests(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_every_manifest_passes_strict_schema_validation(case: str, doc: dict[str, Any], kube_version: str) -> None:
    kubernetes_validate.validate(doc, kube_version, strict=True)


def test_strict_validation_catches_a_broken_manifest() -> None:
    job = only(training("1-node-4-gpus"), "Job")
    misspelled = copy.deepcopy(job)
    misspelled["spec"]["ttlSecondAfterFinished"] = 60
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(misspelled, KUBE_VERSIONS[0], strict=True)
    mistyped = copy.deepcopy(job)
    pod_of(mistyped)["containers"][0]["command"] = "torchrun --standalone"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(mistyped, KUBE_VERSIONS[0], strict=True)


# --- training ----------------------------------------------------------------------------------------------------


def test_single_node_cpu_training_is_one_plain_python_job() -> None:
    docs = training("1-node-cpu")
    assert [d["kind"] for d in docs] == ["Job"]
    job = docs[0]
    assert job["metadata"]["name"] == "sd-train-run-cpu"
    assert job["metadata"]["namespace"] == "scale-diffusion"
    assert "completionMode" not in job["spec"]
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 1
    (c,) = pod_of(job)["containers"]
    assert c["command"][:3] == ["python", "-m", "services.trainer.train"]
    assert c["command"][3:7] == ["--run-id", "run-cpu", "--dataset", "nyc-2026"]
    assert json.loads(c["command"][8]) == {"epochs": 1, "gpus": 0, "nodes": 1}
    assert "nvidia.com/gpu" not in c["resources"]["limits"]
    assert "tolerations" not in pod_of(job)
    assert "JOB_COMPLETION_INDEX" not in env_of(c)


def test_single_node_gpu_training_runs_torchrun_standalone_with_the_gpu_limit() -> None:
    job = only(training("1-node-4-gpus"), "Job")
    (c,) = pod_of(job)["containers"]
    assert c["command"][:5] == ["torchrun", "--standalone", "--nproc-per-node=4", "-m", "services.trainer.train"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert c["resources"]["requests"] == {"cpu": SETTINGS.training_cpu, "memory": SETTINGS.training_memory}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod_of(job)["tolerations"]


def test_multi_node_training_is_an_indexed_job_behind_a_headless_service() -> None:
    service, job = training("3-nodes-8-gpus")
    assert (service["kind"], job["kind"]) == ("Service", "Job"), "the Service first: its DNS must exist when pods start"
    name = job["metadata"]["name"]
    assert name == service["metadata"]["name"] == "sd-train-run-multi"
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 3
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["publishNotReadyAddresses"] is True
    # The Service selects exactly this Job's pods by the label the Job controller puts on them.
    assert service["spec"]["selector"] == {k8s.JOB_NAME_LABEL: name}
    pod = pod_of(job)
    # Pod i of an Indexed Job has hostname "<job>-<i>"; with subdomain = the Service, rank 0 is "<job>-0.<svc>".
    assert pod["subdomain"] == service["metadata"]["name"]
    (c,) = pod["containers"]
    assert c["command"][:6] == [
        "torchrun",
        "--nnodes=3",
        "--nproc-per-node=8",
        "--node-rank=$(JOB_COMPLETION_INDEX)",
        f"--master-addr={name}-0.{name}",
        "--master-port=29500",
    ]
    assert c["command"][6:8] == ["-m", "services.trainer.train"]
    assert env_of(c)["JOB_COMPLETION_INDEX"] == {
        "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
    }
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "8"
    assert c["ports"] == [{"name": "torch-dist", "containerPort": 29500, "protocol": "TCP"}]


def test_multi_node_cpu_training_runs_one_process_per_pod() -> None:
    job = only(k8s.training_job_manifests("r", "d", {"nodes": 2}, SETTINGS), "Job")
    command = pod_of(job)["containers"][0]["command"]
    assert command[:3] == ["torchrun", "--nnodes=2", "--nproc-per-node=1"]
    assert "nvidia.com/gpu" not in pod_of(job)["containers"][0]["resources"]["limits"]


def test_training_pods_get_s3_from_the_secret_and_the_rest_as_values() -> None:
    (c,) = pod_of(only(training("1-node-4-gpus"), "Job"))["containers"]
    env = env_of(c)
    assert env["SD_S3_ACCESS_KEY"] == {"secretKeyRef": {"name": "sd-object-store", "key": "accessKey"}}
    assert env["SD_S3_SECRET_KEY"] == {"secretKeyRef": {"name": "sd-object-store", "key": "secretKey"}}
    assert env["SD_S3_ENDPOINT"] == TRAINER_ENV["SD_S3_ENDPOINT"]
    assert env["SD_BUCKET_MODELS"] == "models"
    assert "SD_KAFKA_BOOTSTRAP" not in env, "job pods do not publish events"
    assert "SD_BUCKET_RAW" not in env, "unset in the trainer: left to the pod's defaults"


def test_training_pods_are_secure_and_have_scratch_and_shared_memory() -> None:
    job = only(training("1-node-4-gpus"), "Job")
    pod = pod_of(job)
    assert pod["restartPolicy"] == "Never"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"] == {"drop": ["ALL"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes[mounts["/dev/shm"]]["emptyDir"]["medium"] == "Memory"
    assert "emptyDir" in volumes[mounts["/tmp"]]


def test_training_job_lifetime_settings() -> None:
    spec = only(training("1-node-4-gpus"), "Job")["spec"]
    assert spec["ttlSecondsAfterFinished"] == 86400
    assert spec["backoffLimit"] == 2
    assert "activeDeadlineSeconds" not in spec, "no deadline by default: training may take days"
    assert spec["podFailurePolicy"]["rules"][0] == {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    }


def test_a_config_value_is_never_expanded_by_kubernetes() -> None:
    job = only(k8s.training_job_manifests("r", "d", {"preset": "x$(HOME)"}, SETTINGS), "Job")
    arg = pod_of(job)["containers"][0]["command"][-1]
    assert "$$(HOME)" in arg  # Kubernetes turns "$$" into "$": the trainer reads the preset as written


@pytest.mark.parametrize(
    "config", [{"gpus": -1}, {"nodes": "3"}, {"gpus": True}, {"gpus": 1.5}], ids=["negative", "string", "bool", "float"]
)
def test_bad_counts_are_refused_with_the_field(config: dict[str, Any]) -> None:
    with pytest.raises(k8s.ManifestError, match="config\\.(gpus|nodes)"):
        k8s.training_job_manifests("r", "d", config, SETTINGS)


def test_bad_ids_are_refused() -> None:
    with pytest.raises(InvalidId):
        k8s.training_job_manifests("../etc", "d", {}, SETTINGS)
    with pytest.raises(InvalidId):
        k8s.evaluation_job_manifests("e", "run/1", "easy@1", 1, "", "2.0", 0, SETTINGS)


# --- evaluation --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(EVAL_CASES))
def test_evaluation_is_one_indexed_job_per_suite_with_a_shard_per_index(case: str) -> None:
    eval_id, shards, carla_version = EVAL_CASES[case]
    (job,) = evaluation(case)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == shards
    assert spec["backoffLimitPerIndex"] == 1 and "backoffLimit" not in spec
    assert spec["activeDeadlineSeconds"] == 21600
    assert spec["ttlSecondsAfterFinished"] == 86400

    pod = pod_of(job)
    (carla,) = pod["initContainers"]
    assert carla["restartPolicy"] == "Always", "a native sidecar: it runs beside the evaluator and stops after it"
    assert carla["image"] == f"carlasim/carla:{carla_version or '0.9.15'}"
    assert carla["command"] == [
        "/bin/bash",
        "./CarlaUE4.sh",
        "-RenderOffScreen",
        "-nosound",
        "-carla-rpc-port=2000",
        "-carla-streaming-port=0",
    ]
    assert carla["workingDir"] == "/home/carla"
    assert carla["startupProbe"]["tcpSocket"] == {"port": 2000}
    assert carla["startupProbe"]["periodSeconds"] * carla["startupProbe"]["failureThreshold"] >= 300
    assert carla["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert carla["securityContext"]["runAsUser"] == 1000 and carla["securityContext"]["runAsNonRoot"] is True
    assert carla["securityContext"]["allowPrivilegeEscalation"] is False

    (evaluator,) = pod["containers"]
    assert evaluator["image"] == SETTINGS.image
    assert evaluator["command"] == [
        "python", "-m", "services.trainer.carla_eval",
        "--eval-id", eval_id, "--model-run", "run-gpu4", "--suite", "easy@1",
        "--shard", "$(JOB_COMPLETION_INDEX)", "--shards", str(shards),
        "--carla-host", "127.0.0.1", "--carla-port", "2000",
        "--metric-version", "2.0", "--seed", "7",
    ]  # fmt: skip
    env = env_of(evaluator)
    assert env["SD_LEADERBOARD_ROOT"] == "/opt/leaderboard"
    assert env["SD_S3_SECRET_KEY"] == {"secretKeyRef": {"name": "sd-object-store", "key": "secretKey"}}
    assert "JOB_COMPLETION_INDEX" in env
    assert "nvidia.com/gpu" not in evaluator["resources"]["limits"], "the GPU is CARLA's"
    assert evaluator["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["restartPolicy"] == "Never"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]


def test_a_custom_carla_image_template_and_gpu_resource() -> None:
    settings = k8s.KubeJobSettings.from_env(
        {**TRAINER_ENV, "SD_TRAINER_CARLA_IMAGE": "registry.example.com/carla-lb2:{version}-cu12", "SD_TRAINER_GPU_RESOURCE": "amd.com/gpu"}
    )
    (job,) = k8s.evaluation_job_manifests("e1", "r1", "hard@2", 4, "0.9.16", "2.1", 0, settings)
    (carla,) = pod_of(job)["initContainers"]
    assert carla["image"] == "registry.example.com/carla-lb2:0.9.16-cu12"
    assert carla["resources"]["limits"] == {"memory": settings.carla_memory, "amd.com/gpu": "1"}
    assert job["metadata"]["annotations"]["scalediffusion.io/carla-version"] == "0.9.16"


@pytest.mark.parametrize(
    ("suite", "shards", "carla", "metric"),
    [("", 1, "", "2.0"), ("easy 1", 1, "", "2.0"), ("easy@1", -2, "", "2.0"), ("easy@1", 1, "0.9.15;rm", "2.0"), ("easy@1", 1, "", "$(X)")],
)
def test_bad_evaluation_requests_are_refused(suite: str, shards: int, carla: str, metric: str) -> None:
    with pytest.raises(k8s.ManifestError):
        k8s.evaluation_job_manifests("e", "r", suite, shards, carla, metric, 0, SETTINGS)


# --- names, labels, selectors ----------------------------------------------------------------------------------


def test_every_object_is_labelled_for_operators_and_selectable_by_the_trainer() -> None:
    for case, doc in all_manifests():
        kind = case.split("/")[0]
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "scale-diffusion", case
        assert labels["app.kubernetes.io/managed-by"] == "scale-diffusion-trainer", case
        assert labels["app.kubernetes.io/component"] == kind, case
        assert labels["app.kubernetes.io/name"] == "scale-diffusion", case
        assert labels["scalediffusion.io/kind"] == kind, case
        job_id = doc["metadata"]["annotations"]["scalediffusion.io/job-id"]
        assert labels["scalediffusion.io/job-id"] == k8s.label_value(job_id)
        assert labels["scalediffusion.io/run" if kind == "training" else "scalediffusion.io/eval"] == k8s.label_value(job_id)
        if doc["kind"] == "Job":
            assert doc["spec"]["template"]["metadata"]["labels"] == labels, "pods carry the Job's labels"
            assert doc["spec"]["template"]["metadata"]["annotations"]["scalediffusion.io/job-id"] == job_id
        for selector in (k8s.label_selector(), k8s.label_selector(kind), k8s.label_selector(kind, job_id)):
            assert selects(selector, labels), (case, selector)
        other = "evaluation" if kind == "training" else "training"
        assert not selects(k8s.label_selector(other), labels)
        assert not selects(k8s.label_selector(kind, "someone-else"), labels)


def selects(selector: str, labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in (term.split("=", 1) for term in selector.split(",")))


def test_selector_strings() -> None:
    base = "app.kubernetes.io/part-of=scale-diffusion,app.kubernetes.io/managed-by=scale-diffusion-trainer"
    assert k8s.label_selector() == base
    assert k8s.label_selector("training") == base + ",scalediffusion.io/kind=training"
    assert k8s.label_selector(trainer_pb2.JOB_KIND_EVALUATION) == base + ",scalediffusion.io/kind=evaluation"
    assert k8s.label_selector(job_id="run-1") == base + ",scalediffusion.io/job-id=run-1"
    assert k8s.label_selector("training", LONG_ID).endswith(",scalediffusion.io/job-id=" + k8s.label_value(LONG_ID))
    with pytest.raises(k8s.ManifestError):
        k8s.label_selector("serving")


def test_evaluations_are_also_labelled_with_their_model() -> None:
    (job,) = evaluation("8-shards")
    assert job["metadata"]["labels"]["scalediffusion.io/model-run"] == "run-gpu4"


@pytest.mark.parametrize("kind", ["training", "evaluation"])
def test_job_names_are_short_dns_labels_derived_from_the_id(kind: str) -> None:
    for job_id in ("r", "run-1", "Run_1", "run_1", "run-", LONG_ID, LONG_ID.lower(), "9" * 128):
        name = k8s.job_name(kind, job_id)
        assert DNS_LABEL.match(name) and len(name) <= k8s.JOB_NAME_LIMIT, name
        assert name == k8s.job_name(kind, job_id), "deterministic"
        assert name.startswith("sd-train-" if kind == "training" else "sd-eval-")
        # The longest hostname of an Indexed Job's pods still fits a DNS label.
        assert len(f"{name}-{2**31 - 1}") <= 63
    assert k8s.job_name(kind, "run-1").endswith("-run-1"), "a plain id is used as is"
    names = {k8s.job_name(kind, i) for i in ("Run_1", "run_1", "run-1", "RUN-1", LONG_ID, LONG_ID.lower())}
    assert len(names) == 6, "ids that lowercasing, '_'→'-' or truncation would merge get distinct names"


def test_long_ids_keep_their_exact_value_in_the_annotation() -> None:
    for docs in (training("long-id"), evaluation("long-id")):
        for doc in docs:
            assert doc["metadata"]["annotations"]["scalediffusion.io/job-id"] == LONG_ID
            value = doc["metadata"]["labels"]["scalediffusion.io/job-id"]
            assert len(value) <= 63 and value != LONG_ID
    service, job = training("long-id")
    name = job["metadata"]["name"]
    assert pod_of(job)["subdomain"] == service["metadata"]["name"] == name
    assert f"--master-addr={name}-0.{name}" in pod_of(job)["containers"][0]["command"]


def test_service_owner_patch_names_the_job() -> None:
    patch = k8s.service_owner_patch("sd-train-x", "1234-uid")
    assert patch == {"metadata": {"ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": "sd-train-x", "uid": "1234-uid"}]}}


# --- settings ----------------------------------------------------------------------------------------------------


def test_settings_defaults() -> None:
    s = k8s.KubeJobSettings.from_env({"SD_TRAINER_JOB_IMAGE": "img:1", "SD_TRAINER_S3_SECRET": "s3"})
    assert (s.namespace, s.gpu_resource, s.ttl_seconds_after_finished) == ("default", "nvidia.com/gpu", 86400)
    assert (s.training_backoff_limit, s.eval_backoff_limit_per_index) == (2, 1)
    assert (s.carla_image, s.carla_version, s.leaderboard_root) == ("carlasim/carla:{version}", "0.9.15", "/opt/leaderboard")
    assert (s.s3_access_key_ref, s.s3_secret_key_ref) == ("accessKey", "secretKey")
    assert s.pod_env == {} and s.node_selector == {} and s.tolerations == ()


def test_settings_read_json_node_selector_and_tolerations() -> None:
    s = k8s.KubeJobSettings.from_env(
        {
            **TRAINER_ENV,
            "SD_TRAINER_JOB_NODE_SELECTOR": '{"pool": "gpu"}',
            "SD_TRAINER_JOB_TOLERATIONS": '[{"key": "gpu", "operator": "Exists"}]',
            "SD_TRAINER_JOB_IMAGE_PULL_SECRETS": "a, b",
        }
    )
    pod = pod_of(only(training("1-node-cpu", s), "Job"))
    assert pod["nodeSelector"] == {"pool": "gpu"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists"}]
    assert pod["imagePullSecrets"] == [{"name": "a"}, {"name": "b"}]


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SD_TRAINER_JOB_IMAGE": ""}, "SD_TRAINER_JOB_IMAGE is required"),
        ({"SD_TRAINER_S3_SECRET": ""}, "SD_TRAINER_S3_SECRET is required"),
        ({"SD_TRAINER_NAMESPACE": "Not_A_Namespace"}, "SD_TRAINER_NAMESPACE"),
        ({"SD_TRAINER_JOB_IMAGE_PULL_POLICY": "Sometimes"}, "SD_TRAINER_JOB_IMAGE_PULL_POLICY"),
        ({"SD_TRAINER_JOB_TTL_S": "-1"}, "SD_TRAINER_JOB_TTL_S"),
        ({"SD_TRAINER_TRAINING_MEMORY": "16 GB"}, "SD_TRAINER_TRAINING_MEMORY"),
        ({"SD_TRAINER_JOB_NODE_SELECTOR": "pool=gpu"}, "SD_TRAINER_JOB_NODE_SELECTOR must be JSON"),
        ({"SD_TRAINER_JOB_TOLERATIONS": '{"key": "gpu"}'}, "SD_TRAINER_JOB_TOLERATIONS must be a JSON list"),
        ({"SD_TRAINER_GPU_RESOURCE": "nvidia gpu"}, "SD_TRAINER_GPU_RESOURCE"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(SettingsError, match=named):
        k8s.KubeJobSettings.from_env({**TRAINER_ENV, **env})


# --- status mapping ----------------------------------------------------------------------------------------------


def condition(kind: str, status: str = "True", reason: str | None = None, message: str | None = None) -> V1JobCondition:
    return V1JobCondition(type=kind, status=status, reason=reason, message=message)


@pytest.mark.parametrize(
    ("status", "completions", "expected"),
    [
        (V1JobStatus(), 1, (trainer_pb2.JOB_STATE_PENDING, 0.0)),
        (V1JobStatus(active=3, ready=0), 3, (trainer_pb2.JOB_STATE_PENDING, 0.0)),  # pods wait for GPUs
        (V1JobStatus(active=3, ready=3), 3, (trainer_pb2.JOB_STATE_RUNNING, 0.0)),
        (V1JobStatus(active=1), 1, (trainer_pb2.JOB_STATE_RUNNING, 0.0)),  # API server without `ready`
        (V1JobStatus(active=2, ready=0, succeeded=6), 8, (trainer_pb2.JOB_STATE_RUNNING, 0.75)),
        (
            V1JobStatus(succeeded=8, conditions=[condition("SuccessCriteriaMet"), condition("Complete")]),
            8,
            (trainer_pb2.JOB_STATE_SUCCEEDED, 1.0),
        ),
        (V1JobStatus(succeeded=1, conditions=[condition("Complete")]), 1, (trainer_pb2.JOB_STATE_SUCCEEDED, 1.0)),
        (
            V1JobStatus(failed=3, conditions=[condition("Failed", reason="BackoffLimitExceeded", message="Job has reached the specified backoff limit")]),
            1,
            (trainer_pb2.JOB_STATE_FAILED, 0.0),
        ),
        (
            V1JobStatus(active=1, succeeded=2, conditions=[condition("FailureTarget", reason="DeadlineExceeded", message="Job was active longer than specified deadline")]),
            4,
            (trainer_pb2.JOB_STATE_FAILED, 0.5),
        ),
        (V1JobStatus(conditions=[condition("Failed", status="False"), condition("Suspended")]), 1, (trainer_pb2.JOB_STATE_PENDING, 0.0)),
    ],
    ids=["new", "unscheduled", "ready", "no-ready-field", "shards-done", "success-criteria", "complete", "failed", "failure-target", "suspended"],
)
def test_job_status_maps_to_job_state(status: V1JobStatus, completions: int, expected: tuple[int, float]) -> None:
    state, progress, message = k8s.job_state_from_status(status, completions)
    assert (state, progress) == expected
    assert message
    # The same status as API JSON (camelCase) and as the client's to_dict() (snake_case) maps the same way.
    as_json = ApiClient().sanitize_for_serialization(status)
    assert k8s.job_state_from_status(as_json, completions) == (state, progress, message)
    assert k8s.job_state_from_status(status.to_dict(), completions) == (state, progress, message)


def test_failure_message_carries_the_condition_reason_and_message() -> None:
    status = V1JobStatus(failed=3, failed_indexes="1,3", conditions=[condition("Failed", reason="FailedIndexes", message="Job has failed indexes")])
    assert k8s.job_state_from_status(status, 4)[2] == "FailedIndexes: Job has failed indexes"
    running = V1JobStatus(active=2, ready=2, failed=1, failed_indexes="3")
    assert "failed indexes 3" in k8s.job_state_from_status(running, 4)[2]


def test_describe_job_reads_ids_and_marks_unfinished_deleted_jobs_cancelled() -> None:
    (manifest,) = evaluation("long-id")
    meta = manifest["metadata"]
    job = V1Job(
        metadata=V1ObjectMeta(name=meta["name"], labels=meta["labels"], annotations=meta["annotations"]),
        spec=V1JobSpec(template=V1PodTemplateSpec(), completions=3),
        status=V1JobStatus(active=1, ready=1, succeeded=1),
    )
    update = k8s.describe_job(job)
    assert (update.name, update.job_id, update.kind) == (meta["name"], LONG_ID, "evaluation")
    assert (update.state, round(update.progress, 3)) == (trainer_pb2.JOB_STATE_RUNNING, 0.333)
    assert k8s.describe_job(job, deleted=True).state == trainer_pb2.JOB_STATE_CANCELLED
    job.status = V1JobStatus(succeeded=3, conditions=[condition("Complete")])
    assert k8s.describe_job(job, deleted=True).state == trainer_pb2.JOB_STATE_SUCCEEDED, "TTL deletion keeps the outcome"


# --- the client wrapper ------------------------------------------------------------------------------------------


def test_kube_jobs_without_any_cluster_configuration_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.setenv("HOME", str(tmp_path))  # and no ~/.kube/config either
    with pytest.raises(KubernetesUnavailable, match="not running in a cluster.*no usable kubeconfig"):
        KubeJobs(SETTINGS)


def _offline_api_server() -> Any:
    """tests/deploy's in-memory API server (discovery, echoed writes, every object absent), loaded by path."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "deploy" / "helm_render.py"
    spec = importlib.util.spec_from_file_location("helm_render_for_trainer_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.DiscoveryOnlyApiServer()


def test_kube_jobs_sends_the_service_then_the_job_and_makes_the_job_own_the_service(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Against an API server that stores nothing: what goes over the wire, in which order, is accepted."""
    with _offline_api_server() as server:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(server.kubeconfig)
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        jobs = KubeJobs(SETTINGS)
        try:
            service, job = training("3-nodes-8-gpus")
            assert jobs.create([job, service]) == [job["metadata"]["name"]]
            writes = server._server.writes
            assert [w.get("kind") for w in writes[:2]] == ["Service", "Job"]
            owner = writes[2]["metadata"]["ownerReferences"][0]
            assert (owner["kind"], owner["name"], owner["uid"]) == ("Job", job["metadata"]["name"], writes[1]["metadata"]["uid"])
            with pytest.raises(LookupError):
                jobs.status(job["metadata"]["name"])  # this server keeps nothing
            assert jobs.list(k8s.label_selector("training")) == []
            assert jobs.delete(job["metadata"]["name"]) is True
        finally:
            jobs.close()

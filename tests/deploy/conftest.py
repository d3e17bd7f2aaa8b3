"""Fixtures for the deployment tests: the chart rendered by the real Helm engine, offline.

``render_chart`` is a session-scoped factory: ``render_chart({"kafka": {"enabled": False, ...}})`` returns the
list of rendered objects (dicts) for those values; renders are cached per values, so tests that share a
scenario pay for it once. See helm_render.py for how Helm's install action is run without a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_render import DiscoveryOnlyApiServer, RenderChart, render_manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "deploy" / "helm" / "scale-diffusion"


@pytest.fixture(scope="session")
def chart_dir() -> Path:
    return CHART_DIR


@pytest.fixture(scope="session")
def offline_api() -> Iterator[DiscoveryOnlyApiServer]:
    """One offline API server (discovery + stateless writes) for every render of the session."""
    with DiscoveryOnlyApiServer() as server:
        yield server


@pytest.fixture(scope="session")
def render_release(offline_api: DiscoveryOnlyApiServer) -> Callable[..., dict[str, Any]]:
    """Factory: values -> Helm's release record (manifest, notes, ...), cached per values and release name."""
    cache: dict[str, dict[str, Any]] = {}

    def render(values: dict[str, Any] | None = None, *, release_name: str = "sd",
               namespace: str = "scale-diffusion") -> dict[str, Any]:
        key = json.dumps([values or {}, release_name, namespace], sort_keys=True)
        if key not in cache:
            cache[key] = render_manifest(
                CHART_DIR, values=values, release_name=release_name, namespace=namespace, server=offline_api
            )
        return cache[key]

    return render


@pytest.fixture(scope="session")
def render_chart(render_release: Callable[..., dict[str, Any]]) -> RenderChart:
    """Factory: values -> the rendered objects (dicts), in Helm's install order."""

    def render(values: dict[str, Any] | None = None, **kwargs: Any) -> list[dict[str, Any]]:
        manifest = render_release(values, **kwargs).get("manifest", "")
        return [doc for doc in yaml.safe_load_all(manifest) if doc]

    return render

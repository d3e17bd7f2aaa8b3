"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def ctx():
    """An OpenGL 3.3 context through EGL (Mesa llvmpipe here) for the renderer tests of a module."""
    from scalediffusion.sim.render import create_context

    try:
        context = create_context()
    except Exception as exc:  # noqa: BLE001 - any failure to get a context means there is no usable EGL here
        pytest.skip(f"no OpenGL 3.3 context through EGL on this machine: {exc}")
    yield context
    context.release()

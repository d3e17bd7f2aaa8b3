"""Process lifetime helpers for services and the jobs they start."""

from __future__ import annotations

import os
import signal


def exit_with_parent(parent_pid: int) -> None:
    """Makes this process die with process parent_pid (Linux PR_SET_PDEATHSIG): a trainer's local runs end with the
    trainer, so a restarted trainer that starts a run again never races an orphan writing the same objects."""
    import ctypes
    import sys

    pr_set_pdeathsig = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the trainer's stop() still terminates its runs
        return
    if os.getppid() != parent_pid:  # the parent was already gone before the signal was armed
        sys.exit(3)

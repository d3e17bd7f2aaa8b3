"""Plots of a training run (PNG): loss curves per epoch and validation control error per command branch."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from services.trainer.model import BRANCH_NAMES


def plot_training(history: list[dict[str, float]], path: str | Path, title: str = "", initial_val_loss: float | None = None) -> Path:
    path = Path(path)
    epochs = [h["epoch"] + 1 for h in history]
    fig, (curves, branches) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [3, 2]})
    for key, style in (("train_loss", "-o"), ("val_loss", "-s"), ("train_control_l1", "--"), ("val_control_l1", "--")):
        points = [(e, h[key]) for e, h in zip(epochs, history) if key in h]
        if points:
            curves.plot(*zip(*points), style, label=key, markersize=4)
    if initial_val_loss is not None:  # the untrained model at epoch 0: the baseline training is measured against
        curves.plot([0], [initial_val_loss], "k*", markersize=9, label="val_loss untrained")
    curves.set_xlabel("epoch")
    curves.set_ylabel("L1")
    curves.set_title("losses")
    curves.grid(alpha=0.3)
    curves.legend()
    last = history[-1] if history else {}
    names = [n for n in BRANCH_NAMES if f"val_l1_{n}" in last]
    branches.bar(names, [last[f"val_l1_{n}"] for n in names], color="#4c72b0")
    branches.set_title("val control L1 per command (last epoch)")
    branches.tick_params(axis="x", rotation=30)
    if not names:
        branches.text(0.5, 0.5, "no validation split", ha="center", va="center", transform=branches.transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

"""PNG plots people would rather look at: training curves, spike rasters, spike-rate distributions,
sparsity-accuracy frontiers."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import torch  # noqa: E402


def spike_raster(layers: Mapping[str, torch.Tensor], path: str | Path, max_neurons: int = 128) -> Path:
    """One raster per layer: spikes (time, neurons) of one utterance, colour = spike value.

    Example
    -------
    >>> import tempfile, os
    >>> out = spike_raster({"layer 1": torch.randn(50, 8).clamp(min=0)}, tempfile.mkdtemp() + "/r.png")
    >>> os.path.getsize(out) > 0
    True
    """
    fig, axes = plt.subplots(len(layers), 1, figsize=(10, 2.6 * len(layers)), squeeze=False)
    for ax, (name, spikes) in zip(axes[:, 0], layers.items()):
        values = spikes[:, :max_neurons].detach().float().cpu().T
        limit = float(values.abs().max()) or 1.0
        image = ax.imshow(
            values, aspect="auto", interpolation="nearest", cmap="RdBu_r", vmin=-limit, vmax=limit
        )
        rate = float((spikes != 0).float().mean())
        ax.set_title(f"{name}: spike rate {rate:.3f}")
        ax.set_ylabel("neuron")
        fig.colorbar(image, ax=ax, pad=0.01)
    axes[-1, 0].set_xlabel("frame")
    return _save(fig, path)


def spike_rate_histogram(rates: Mapping[str, torch.Tensor], path: str | Path) -> Path:
    """Distribution over neurons of each layer's firing rate (fraction of frames with a spike)."""
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, per_neuron in rates.items():
        values = per_neuron.detach().float().cpu().numpy()
        ax.hist(values, bins=40, range=(0, 1), alpha=0.55, label=f"{name} (mean {values.mean():.3f})")
    ax.set_xlabel("spike rate per neuron")
    ax.set_ylabel("neurons")
    ax.legend()
    return _save(fig, path)


def training_curves(epochs: Sequence[int], series: Mapping[str, Sequence[float]], path: str | Path) -> Path:
    """Loss and error-rate curves per epoch; each series gets its own panel."""
    fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 3.6), squeeze=False)
    for ax, (name, values) in zip(axes[0], series.items()):
        ax.plot(list(epochs)[: len(values)], list(values), marker="o")
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return _save(fig, path)


def frontier(
    panels: Mapping[str, Sequence[dict]], path: str | Path, targets: Mapping[str, float] | None = None
) -> Path:
    """Sparsity-accuracy frontier: error rate against multiplications relative to a same-size GRU.

    Each panel (e.g. ``"dev WER"``, ``"test WER"``) holds points ``{"label", "x", "y", "x_sd",
    "y_sd", "kind"}``: ``kind`` ``"sweep"`` (the spiking settings, joined by their Pareto front) or
    ``"baseline"`` (LSTM, GRU: squares); ``*_sd`` are error bars over seeds (0 for one seed).
    ``targets`` draws vertical lines (e.g. ``{"10x fewer": 0.10}``).

    Example
    -------
    >>> import tempfile, os
    >>> pts = [{"label": "a", "x": 0.2, "y": 40, "kind": "sweep"}, {"label": "LSTM", "x": 1.33, "y": 35,
    ...        "y_sd": 2, "kind": "baseline"}]
    >>> os.path.getsize(frontier({"dev WER": pts}, tempfile.mkdtemp() + "/f.png")) > 0
    True
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(6.2 * len(panels), 4.6), squeeze=False)
    for ax, (title, points) in zip(axes[0], panels.items()):
        sweep = sorted((p for p in points if p.get("kind") == "sweep"), key=lambda p: p["x"])
        front, best = [], float("inf")
        for p in sweep:  # the Pareto front: each point better than every cheaper one
            if p["y"] < best:
                front.append(p)
                best = p["y"]
        if front:
            ax.plot([p["x"] for p in front], [p["y"] for p in front], "-", color="C0", alpha=0.5)
        for p in points:
            marker, color = ("s", "C3") if p.get("kind") == "baseline" else ("o", "C0")
            ax.errorbar(
                p["x"],
                p["y"],
                xerr=p.get("x_sd", 0),
                yerr=p.get("y_sd", 0),
                fmt=marker,
                color=color,
                capsize=3,
            )
            ax.annotate(p["label"], (p["x"], p["y"]), textcoords="offset points", xytext=(4, 4), fontsize=7)
        for name, x in (targets or {}).items():
            ax.axvline(x, color="grey", linestyle="--", linewidth=1)
            ax.text(x, ax.get_ylim()[1], f" {name}", va="top", fontsize=8, color="grey")
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([0.05, 0.1, 0.2, 0.5, 1, 2]))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("multiplications per frame / a same-size GRU's")
        ax.set_ylabel(title)
        ax.set_title(title)
        ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    """Saves through a temporary file and a rename: a killed run never leaves half a PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    partial = path.with_name(f".{path.stem}.tmp{os.getpid()}{path.suffix}")
    fig.savefig(partial, dpi=110)
    plt.close(fig)
    os.replace(partial, path)
    return path

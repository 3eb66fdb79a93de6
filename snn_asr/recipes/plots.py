"""PNG plots people would rather look at: training curves, spike rasters, spike-rate distributions."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
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

"""The compiled loops: the fused recurrence's (``csrc/recurrence.cpp``) and the event-driven layer's
(``csrc/event_driven.cpp``), built on first use.

Why C++: per frame, the Python loop of :mod:`snn_asr.fastpaths.fused` dispatches a few torch ops and
a numba kernel (about 15 us of overhead), and the kernels, bound by memory traffic, run on
one core while the other waits. The compiled loop calls the same torch ops from C++ and
splits each frame's kernel over batch rows with ``at::parallel_for``, torch's own OpenMP
pool (numba's parallel layers would start a second pool, or reset torch's thread count).

The event-driven layer (:mod:`snn_asr.fastpaths.event_driven`) splits each frame's neurons over the same
pool: its cost is reading weight rows, and one core's cache bandwidth does not serve them fast.

The sources are built with ``torch.utils.cpp_extension.load`` (a C++ compiler and ``ninja``;
about 30 s once per machine, then cached by torch). Where that fails, or with
``SNN_ASR_COMPILED=0``, :func:`compiled_loops` returns ``None`` and the numba loops run:
the same results, bit for bit (``tests/test_fused.py`` and ``tests/test_event_driven.py``
run both).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import warnings
from pathlib import Path
from types import ModuleType

SOURCES = [Path(__file__).with_name("csrc") / name for name in ("recurrence.cpp", "event_driven.cpp")]
FLAGS = ["-O3", "-ffp-contract=off", "-fno-trapping-math", "-fopenmp", "-march=native"]
"""``-ffp-contract=off``: no fused multiply-adds, so each float operation rounds as numba's and
torch's do. ``-fno-trapping-math`` changes no result (it lets ``trunc`` and the selects
vectorize). ``-march=native``: the kernels vectorize for this CPU (the build is cached per CPU)."""

logger = logging.getLogger(__name__)


def _cpu_tag() -> str:
    """A short hash of this CPU's feature flags: a cached ``-march=native`` build serves its CPU only."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        flags = next(line for line in lines if line.startswith("flags"))
    except (OSError, StopIteration):
        import platform

        flags = platform.machine() + platform.processor()
    return hashlib.sha1(flags.encode()).hexdigest()[:10]


@functools.cache
def compiled_loops() -> ModuleType | None:
    """The compiled module (``forward``, ``backward``, ``event_layer``), or ``None`` where it cannot be built.

    Example
    -------
    >>> loops = compiled_loops()
    >>> loops is None or callable(loops.forward)
    True
    """
    if os.environ.get("SNN_ASR_COMPILED", "1") == "0":
        return None
    # its import warns on every machine without CUDA ("No CUDA runtime is found"), beside the point here
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    try:
        from torch.utils.cpp_extension import load

        logger.info("snn_asr: building the C++ loops (once per machine, about 30 s)")
        return load(
            name=f"snn_asr_recurrence_{_cpu_tag()}",
            sources=[str(source) for source in SOURCES],
            extra_cflags=FLAGS,
            extra_ldflags=["-fopenmp"],
        )
    except Exception as error:  # no compiler, no ninja, a failed build: the numba loops are the fallback
        warnings.warn(
            f"snn_asr: the C++ loops (fused recurrence, event-driven layer) did not build "
            f"({str(error).strip()[:300]}); running the numba loops, which are slower. Install a C++ "
            "compiler and ninja to build them, or set SNN_ASR_COMPILED=0 to skip the attempt.",
            stacklevel=2,
        )
        return None

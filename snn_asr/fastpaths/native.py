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
about 30 s once per CPU, then cached in torch's extensions folder, ``TORCH_EXTENSIONS_DIR``).
The build is named by a hash of the sources, flags and CPU, and builds copies of the sources
kept in its folder, so checkouts and environments sharing the cache share one build; the
"building" line is printed only when a build is about to happen. Where that fails, or with
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


def _build_folder() -> tuple[str, Path]:
    """The build's name (a hash of the sources, flags and CPU) and its folder in torch's cache."""
    from torch.utils.cpp_extension import get_default_build_root

    digest = hashlib.sha1(" ".join([*FLAGS, _cpu_tag()]).encode())
    for source in [*SOURCES, *_headers()]:
        digest.update(source.name.encode() + source.read_bytes())
    name = f"snn_asr_loops_{digest.hexdigest()[:12]}"
    return name, Path(os.environ.get("TORCH_EXTENSIONS_DIR") or get_default_build_root()) / name


def _headers() -> list[Path]:
    """The headers beside the sources (``csrc/*.h``), which they include."""
    return sorted({header for source in SOURCES for header in source.parent.glob("*.h")})


def _kept_sources(folder: Path) -> list[str]:
    """The sources (and headers) copied into ``folder``, rewritten only if they differ (ninja sees
    no change); the copied sources' paths."""
    for source in [*SOURCES, *_headers()]:
        copy, text = folder / source.name, source.read_bytes()
        if not copy.is_file() or copy.read_bytes() != text:
            partial = copy.with_name(f"{copy.name}.{os.getpid()}")
            partial.write_bytes(text)
            os.replace(partial, copy)  # atomic: another process may be reading it
    return [str(folder / source.name) for source in SOURCES]


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

        name, folder = _build_folder()
        if not (folder / f"{name}.so").is_file():
            logger.warning("snn_asr: building the C++ loops for this CPU (once, about 30 s)")
        folder.mkdir(parents=True, exist_ok=True)
        return load(
            name=name,
            sources=_kept_sources(folder),
            build_directory=str(folder),
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

"""snn_asr.fastpaths.native: the compiled time loops, and the numba fallback where they cannot be built."""

import logging

import pytest

from snn_asr.fastpaths import native


@pytest.fixture
def fresh_build(monkeypatch):
    """``compiled_loops`` asked afresh, under a name of its own (never the real build's directory)."""
    native.compiled_loops.cache_clear()
    monkeypatch.setattr(native, "_cpu_tag", lambda: "test_fallback")
    yield
    native.compiled_loops.cache_clear()


def test_switched_off_by_the_environment(fresh_build, monkeypatch):
    monkeypatch.setenv("SNN_ASR_COMPILED", "0")
    assert native.compiled_loops() is None


def test_a_failed_build_warns_once_and_falls_back(fresh_build, monkeypatch, tmp_path):
    broken = tmp_path / "recurrence.cpp"
    broken.write_text("this is not C++\n")
    monkeypatch.setattr(native, "SOURCES", [broken])
    with pytest.warns(UserWarning, match="did not build.*numba loop"):
        assert native.compiled_loops() is None
    assert native.compiled_loops() is None  # cached: no second attempt, no second warning


TINY = """#include <pybind11/pybind11.h>
int answer() { return 42; }
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("answer", &answer); }
"""


def test_checkouts_sharing_the_cache_build_once_and_only_a_build_is_announced(
    fresh_build, monkeypatch, tmp_path, caplog
):
    """Two checkouts (same sources, other paths) and one ``TORCH_EXTENSIONS_DIR``: one build."""
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "cache"))
    announced, built = [], []
    for checkout in ("a", "b"):
        source = tmp_path / checkout / "tiny.cpp"
        source.parent.mkdir()
        source.write_text(TINY)
        monkeypatch.setattr(native, "SOURCES", [source])
        native.compiled_loops.cache_clear()
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=native.__name__):
            assert native.compiled_loops().answer() == 42
        announced.append("building the C++ loops" in caplog.text)
        name, folder = native._build_folder()
        built.append((folder / f"{name}.so").stat().st_mtime_ns)
    assert announced == [True, False]
    assert built[0] == built[1]  # the second checkout loaded the first one's build

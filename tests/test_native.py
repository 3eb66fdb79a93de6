"""snn_asr.fastpaths.native: the compiled time loops, and the numba fallback where they cannot be built."""

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

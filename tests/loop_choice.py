"""A fixture that runs every test of a file twice: with snn_asr's compiled loops (skipped where they
do not build) and with the numba loops that stand in for them."""

from types import ModuleType

import pytest

from snn_asr.fastpaths.native import compiled_loops


def compiled_and_numba(module: ModuleType):
    """An autouse fixture, ``"compiled"`` or ``"numba"``; ``"numba"`` patches ``module.compiled_loops``."""

    @pytest.fixture(autouse=True, params=["compiled", "numba"])
    def loop(request, monkeypatch):
        if request.param == "compiled" and compiled_loops() is None:
            pytest.skip("the C++ loops did not build here")
        if request.param == "numba":
            monkeypatch.setattr(module, "compiled_loops", lambda: None)
        return request.param

    return loop

"""A fixture that runs every test of a file twice: with snn_asr's compiled loops (skipped where they
do not build) and with the numba loops that stand in for them."""

import shutil
from types import ModuleType

import pytest

from snn_asr.fastpaths.native import compiled_loops


def compiled_and_numba(module: ModuleType):
    """An autouse fixture, ``"compiled"`` or ``"numba"``; ``"numba"`` patches ``module.compiled_loops``."""

    @pytest.fixture(autouse=True, params=["compiled", "numba"])
    def loop(request, monkeypatch):
        if request.param == "compiled" and compiled_loops() is None:
            if shutil.which("c++") or shutil.which("g++"):  # a compiler is here: the build must work
                pytest.fail("the C++ loops did not build, though a C++ compiler is here (see the warning)")
            pytest.skip("needs a C++ compiler (apt-get install g++) to build the C++ loops")
        if request.param == "numba":
            monkeypatch.setattr(module, "compiled_loops", lambda: None)
        return request.param

    return loop

"""The two cores for the test suites, and the one answer to "was the compiled core built?".

``tests/conftest.py`` and ``benchmarks/conftest.py`` both take the cores from
here: where the compiled core is missing, a test that needs it is skipped,
or failed when the build must have made it (``MUCKRACK_HMR_REQUIRE_EXTENSIONS=1``,
as in CI: a silent skip would hide a broken build).
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from muckrack_hmr import _core_py

try:
    from muckrack_hmr import _hmr_core as _compiled
except ImportError:  # built without a compiler
    _compiled = None  # type: ignore[assignment]

REQUIRE_EXTENSION = os.environ.get("MUCKRACK_HMR_REQUIRE_EXTENSIONS", "") not in ("", "0")

#: Both cores as parameters: "c" carries the c_extension mark (--no-c-extensions drops it),
#: "py" the pure_core mark (.ci/run's forced-twin pass drops the end-to-end ones: their
#: children ran with MUCKRACK_HMR_NO_EXTENSIONS=1 already).
CORE_PARAMS = [
    pytest.param("c", marks=pytest.mark.c_extension, id="c"),
    pytest.param("py", marks=pytest.mark.pure_core, id="py"),
]


def core_module(name: str) -> ModuleType:
    """The core called ``name`` ("c" or "py"); skips (or fails) the test if "c" was not built."""
    if name == "py":
        return _core_py
    if _compiled is None:
        if REQUIRE_EXTENSION:
            pytest.fail("the compiled core was not built (MUCKRACK_HMR_REQUIRE_EXTENSIONS=1)")
        pytest.skip("the compiled core was not built")
    return _compiled

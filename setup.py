"""Build the optional compiled core ``muckrack_hmr._hmr_core``.

Everything else lives in pyproject.toml.  When Cython or a C compiler is
missing, the build warns and installs the pure-Python twin instead of failing
(the fallback PyYAML uses).  ``MUCKRACK_HMR_NO_EXTENSIONS=1`` at build time
skips the extension on purpose.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NO_EXTENSIONS = os.environ.get("MUCKRACK_HMR_NO_EXTENSIONS", "") not in ("", "0")


class OptionalBuildExt(build_ext):
    """A build_ext whose failure is a warning, not an error."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # any failure means "no compiler"
            self._warn(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self._warn(exc)

    @staticmethod
    def _warn(exc: BaseException) -> None:
        sys.stderr.write(
            "\nWARNING: muckrack-python-hmr could not compile its Cython core "
            f"({type(exc).__name__}: {exc}).\n"
            "WARNING: falling back to the pure-Python core; everything works, "
            "imports and reloads are just slower.\n\n"
        )


def extensions() -> list[Extension]:
    if NO_EXTENSIONS:
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        OptionalBuildExt._warn(ImportError("Cython is not installed"))
        return []
    ext = Extension("muckrack_hmr._hmr_core", ["src/_hmr_core.pyx"])
    return list(
        cythonize(
            [ext],
            language_level=3,
            compiler_directives={
                "boundscheck": False,
                "embedsignature": True,
            },
        )
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})

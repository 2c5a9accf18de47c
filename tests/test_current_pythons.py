"""What is new in the Pythons we support last: deferred annotations (PEP 649/749, 3.14+).

Each test asserts what a fresh import gives, edits the real file, reloads, and
asserts what the new code gives, through references held from before the edit.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import typing
from typing import Any

import pytest

from tests.conftest import Project

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 14), reason="deferred annotations (PEP 649): Python 3.14+"
)

ANNOTATED = """\
import dataclasses


def f(x: {T}) -> {T}:
    return x


class C:
    a: {T}

    def m(self, y: {T}) -> {T}:
        return y


@dataclasses.dataclass
class D:
    z: {T} = 0


def uses_later(v: Later) -> Later:
    return v


class Later:
    pass
"""


def test_a_changed_annotation_is_what_every_reader_sees_after_the_reload(
    project: Project, hmr: Any
) -> None:
    import annotationlib

    path = project.write("annotated.py", ANNOTATED.format(T="int"))
    module = importlib.import_module("annotated")
    f, cls, method, data = module.f, module.C, module.C.m, module.D
    # Deferred: a name defined after the function is resolved when asked for.
    assert typing.get_type_hints(module.uses_later) == {
        "v": module.Later,
        "return": module.Later,
    }
    assert inspect.get_annotations(f) == {"x": int, "return": int}

    path.write_text(ANNOTATED.format(T="str"))
    hmr.reload_module("annotated")

    assert module.f is f  # patched in place, not replaced
    assert inspect.get_annotations(f) == {"x": str, "return": str}
    assert typing.get_type_hints(f) == {"x": str, "return": str}
    assert annotationlib.get_annotations(f, format=annotationlib.Format.FORWARDREF) == {
        "x": str,
        "return": str,
    }
    assert inspect.get_annotations(method) == {"y": str, "return": str}
    assert typing.get_type_hints(cls) == {"a": str}
    assert inspect.get_annotations(data) == {"z": str}
    assert f("kept") == "kept"
    # The function's __annotate__ is the new code's, as its body is.
    assert f.__annotate__(annotationlib.Format.VALUE) == {"x": str, "return": str}


def test_annotations_that_only_a_type_checker_resolves_do_not_break_a_reload(
    project: Project, hmr: Any
) -> None:
    """``if TYPE_CHECKING: import ...``: python never evaluates such annotations unless
    asked; neither does a reload (copying them would raise NameError there)."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from decimal import Decimal\n\n\n"
        "def price(amount: Decimal) -> Decimal:\n"
        "    return amount * {N}\n"
    )
    path = project.write("typed.py", source.format(N=2))
    module = importlib.import_module("typed")
    price = module.price
    assert price(3) == 6

    path.write_text(source.format(N=3).replace("-> Decimal", "-> 'Decimal | None'"))
    reloaded, _ = hmr.reload_module("typed")

    assert reloaded == ["typed"]
    assert price(3) == 9  # the held function runs the new body
    with pytest.raises(NameError):
        inspect.get_annotations(price)  # as python does: Decimal is not defined
    import annotationlib

    assert annotationlib.get_annotations(price, format=annotationlib.Format.STRING) == {
        "amount": "Decimal",
        "return": "Decimal | None",
    }

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


CLASSES = """\
import dataclasses


class C:
    a: {T}
    b: Later


@dataclasses.dataclass
class D:
    z: {T} = 0
    w: Later | None = None


class Later:
    pass
"""


def test_class_and_dataclass_field_annotations_through_every_format(
    project: Project, hmr: Any
) -> None:
    """A class's ``__annotate__`` is patched with the class: annotationlib's formats, the
    dataclass's fields and the ``__init__`` it generated follow, for the class objects
    (and instances) held from before the edit."""
    import dataclasses

    import annotationlib

    formats = annotationlib.Format
    path = project.write("classes.py", CLASSES.format(T="int"))
    module = importlib.import_module("classes")
    cls, data = module.C, module.D
    instance = data(1)
    assert annotationlib.get_annotations(cls, format=formats.STRING) == {
        "a": "int",
        "b": "Later",
    }
    # ``Later`` is defined after D: dataclasses keeps a forward reference for ``w``.
    assert [f.name for f in dataclasses.fields(data)] == ["z", "w"]
    assert dataclasses.fields(data)[0].type is int

    path.write_text(CLASSES.format(T="str"))
    reloaded, _ = hmr.reload_module("classes")

    assert reloaded == ["classes"]
    assert (cls, data) == (module.C, module.D)  # patched in place
    assert annotationlib.get_annotations(cls, format=formats.STRING) == {
        "a": "str",
        "b": "Later",
    }
    assert annotationlib.get_annotations(cls, format=formats.FORWARDREF) == {
        "a": str,
        "b": module.Later,
    }
    assert annotationlib.get_annotations(cls) == {"a": str, "b": module.Later}
    assert typing.get_type_hints(data) == {"z": str, "w": module.Later | None}
    assert [f.name for f in dataclasses.fields(data)] == ["z", "w"]
    assert dataclasses.fields(data)[0].type is str
    assert inspect.signature(data.__init__).parameters["z"].annotation is str
    assert dataclasses.fields(instance)[0].type is str
    assert isinstance(instance, module.D)

"""In-place patching: old references run the new code, classes keep their identity.

Each test holds references the way programs do, checks they run the old code,
edits the module's file, reloads, and checks the same references run the new
code.  On both cores (the ``hmr`` fixture).
"""

from __future__ import annotations

import functools
import gc
import importlib
import inspect
import logging
import sys
import warnings
from typing import Any

import pytest

from tests.conftest import Project


def test_every_kind_of_function_reference_runs_the_new_body(project: Project, hmr: Any) -> None:
    source = """\
        def f(x=1):
            return ("{tag}", x)
        """
    project.write("a.py", source.format(tag="old"))
    a = importlib.import_module("a")
    f = a.f
    held = {
        "name": f,
        "dict": {"k": a.f}["k"],
        "list": [a.f][0],
        "set": next(iter({a.f})),
        "partial": functools.partial(a.f, 2),
    }

    class Holder:
        callback = staticmethod(a.f)

    def default_arg(cb: Any = a.f) -> Any:
        return cb()

    assert [h() for h in held.values()] == [("old", 1)] * 4 + [("old", 2)]
    assert Holder.callback() == ("old", 1)
    assert default_arg() == ("old", 1)

    project.write("a.py", source.format(tag="new").replace("x=1", "x=5"))
    reloaded, _ = hmr.reload_module("a")

    assert reloaded == ["a"]
    assert a.f is f  # identity kept
    assert [h() for h in held.values()] == [("new", 5)] * 4 + [("new", 2)]
    assert Holder.callback() == ("new", 5)
    assert default_arg() == ("new", 5)


def test_decorated_functions_and_changed_closure_values(project: Project, hmr: Any) -> None:
    project.write(
        "deco.py",
        """\
        import functools

        def wrapping(func):
            @functools.wraps(func)
            def wrapper(*args):
                return ("wrapped", func(*args))
            return wrapper

        def bare(func):
            def wrapper(*args):
                return ("bare", func(*args))
            return wrapper

        def tagged(tag):
            def decorator(func):
                def wrapper(*args):
                    return (tag, func(*args))
                return wrapper
            return decorator
        """,
    )
    source = """\
        from deco import bare, tagged, wrapping

        @wrapping
        def w():
            return "{body}"

        @bare
        def b():
            return "{body}"

        @tagged("{tag}")
        def t():
            return "{body}"
        """
    project.write("a.py", source.format(body="old", tag="v1"))
    a = importlib.import_module("a")
    refs = (a.w, a.b, a.t)
    assert [r() for r in refs] == [("wrapped", "old"), ("bare", "old"), ("v1", "old")]

    project.write("a.py", source.format(body="new", tag="v2"))
    assert hmr.reload_module("a")[0] == ["a"]

    assert (a.w, a.b, a.t) == refs
    assert [r() for r in refs] == [("wrapped", "new"), ("bare", "new"), ("v2", "new")]
    assert a.w.__wrapped__() == "new"


def test_async_functions_and_generators(project: Project, hmr: Any) -> None:
    import asyncio

    source = """\
        async def fetch():
            return "{tag}"

        def numbers():
            yield from {values}
        """
    project.write("a.py", source.format(tag="old", values="[1, 2]"))
    a = importlib.import_module("a")
    fetch, numbers = a.fetch, a.numbers
    assert asyncio.run(fetch()) == "old"
    assert list(numbers()) == [1, 2]
    project.write("a.py", source.format(tag="new", values="[3]"))
    hmr.reload_module("a")
    assert asyncio.run(fetch()) == "new"
    assert list(numbers()) == [3]


CLASS_V1 = """\
class Base:
    def hello(self):
        return "base-v1"

class C(Base):
    KIND = "v1"

    def __init__(self):
        self.state = "kept"

    def method(self):
        return "method-v1"

    def removed(self):
        return "gone soon"

    @property
    def prop(self):
        return "prop-v1"

    @classmethod
    def cm(cls):
        return ("cm-v1", cls.__name__)

    @staticmethod
    def sm():
        return "sm-v1"

    def hello(self):
        return ("child-v1", super().hello())
"""

CLASS_V2 = """\
class Base:
    def hello(self):
        return "base-v2"

class C(Base):
    KIND = "v2"

    def __init__(self):
        self.state = "kept"

    def method(self):
        return "method-v2"

    def added(self):
        return ("added", super().hello())

    @property
    def prop(self):
        return "prop-v2"

    @classmethod
    def cm(cls):
        return ("cm-v2", cls.__name__)

    @staticmethod
    def sm():
        return "sm-v2"

    def hello(self):
        return ("child-v2", super().hello())
"""


def test_classes_keep_their_identity_and_instances_see_the_new_members(
    project: Project, hmr: Any
) -> None:
    project.write("a.py", CLASS_V1)
    project.write(
        "b.py",
        """\
        from a import C

        class Sub(C):
            def hello(self):
                return ("sub", super().hello())
        """,
    )
    a = importlib.import_module("a")
    b = importlib.import_module("b")
    C, Sub = a.C, b.Sub
    instance, sub = a.C(), b.Sub()
    bound = instance.method
    assert (bound(), instance.prop, C.cm(), C.sm(), C.KIND) == (
        "method-v1",
        "prop-v1",
        ("cm-v1", "C"),
        "sm-v1",
        "v1",
    )
    assert sub.hello() == ("sub", ("child-v1", "base-v1"))
    assert instance.removed() == "gone soon"

    project.write("a.py", CLASS_V2)
    reloaded, _ = hmr.reload_module("a")

    assert reloaded == ["a", "b"]
    assert a.C is C
    assert b.Sub is Sub
    assert isinstance(instance, a.C)
    assert isinstance(sub, a.C)
    assert issubclass(b.Sub, a.C)
    assert instance.state == "kept"
    assert (bound(), instance.prop, C.cm(), C.sm(), C.KIND) == (
        "method-v2",
        "prop-v2",
        ("cm-v2", "C"),
        "sm-v2",
        "v2",
    )
    assert instance.added() == ("added", "base-v2")  # super() in a new method
    assert sub.hello() == ("sub", ("child-v2", "base-v2"))
    assert not hasattr(instance, "removed")


def test_dataclasses_and_named_tuples(project: Project, hmr: Any) -> None:
    source = """\
        from dataclasses import dataclass
        from typing import NamedTuple

        @dataclass
        class Point:
            x: int
            y: int = {default}

            def norm(self):
                return {norm}

        class Pair(NamedTuple):
            left: int
            right: int

            def total(self):
                return {total}
        """
    project.write("a.py", source.format(default=0, norm="abs(self.x) + abs(self.y)", total="0"))
    a = importlib.import_module("a")
    Point, Pair = a.Point, a.Pair
    p, pair = a.Point(3, -4), a.Pair(1, 2)
    assert (p.norm(), a.Point(1).y, pair.total()) == (7, 0, 0)
    project.write(
        "a.py",
        source.format(default=10, norm="(self.x**2 + self.y**2) ** 0.5", total="self.left + 2"),
    )
    result = hmr.reload("a")
    assert result.reloaded == ["a"]
    assert (a.Point, a.Pair) == (Point, Pair)
    assert (p.norm(), a.Point(1).y, pair.total()) == (5.0, 10, 3)
    assert isinstance(p, a.Point)
    # Methods the dataclass made are reported as members of their class.
    assert "a.Point.__init__" in result.patched
    assert "a.Point.norm" in result.patched
    assert not [name for name in result.patched if "<locals>" in name], result.patched


def test_enum_members_keep_their_identity(project: Project, hmr: Any) -> None:
    source = """\
        import enum

        class Color(enum.Enum):
            RED = 1
            GREEN = 2

            def describe(self):
                return "{tag} " + self.name.lower()
        """
    project.write("a.py", source.format(tag="old"))
    a = importlib.import_module("a")
    red = a.Color.RED
    assert red.describe() == "old red"
    project.write("a.py", source.format(tag="new"))
    hmr.reload_module("a")
    assert a.Color.RED is red
    assert a.Color(1) is red
    assert red.describe() == "new red"


@pytest.mark.parametrize("whole", [False, True], ids=["statements", "whole"])
def test_what_another_module_set_on_a_class_stays_when_its_statement_runs_again(
    project: Project, hmr: Any, whole: bool
) -> None:
    """Django's ``ForeignKey("blog.Post", related_name="notes")`` in another app sets
    ``Post.notes`` (a reverse accessor) from outside the class statement.  Before, a
    method added to ``Post`` ran its statement again and the live class lost every
    member the new statement did not bind: ``post.notes`` raised AttributeError until a
    restart.  What the old statement bound and the new one does not still goes."""
    source = (
        "class Post:\n    TITLE = 't'\n{gone}\n    def body(self):\n        return 'b1'\n{extra}"
    )
    gone = "    SUBTITLE = 's'\n"
    project.write("blog.py", source.format(gone=gone, extra=""))
    project.write(
        "notes.py",
        # (Found by name, as Django's app registry finds "blog.Post": no import.)
        "import sys\n\n\nclass Accessor:\n    def __get__(self, obj, owner):\n"
        "        return ['n1']\n\n\nsys.modules['blog'].Post.notes = Accessor()\n",
    )
    blog = importlib.import_module("blog")
    importlib.import_module("notes")
    Post, post = blog.Post, blog.Post()
    assert (post.notes, post.SUBTITLE) == (["n1"], "s")
    extra = "\n    def extra(self):\n        return 'x'\n"
    project.write("blog.py", source.format(gone="", extra=extra))
    assert hmr.reload_module("blog", force=whole)[0] == ["blog"]
    assert blog.Post is Post
    assert (post.extra(), post.body(), post.notes) == ("x", "b1", ["n1"])
    assert not hasattr(Post, "SUBTITLE")


@pytest.mark.parametrize("base", ["enum.Enum", "enum.IntEnum", "str, enum.Enum", "enum.Flag"])
def test_members_added_to_an_enum_join_the_live_class(
    project: Project, hmr: Any, base: str
) -> None:
    source = """\
        import enum

        class Color({base}):
            RED = 1
            GREEN = 2
            {added}

            def describe(self):
                return "{tag} " + self.name.lower()

        FAVOURITE = Color.RED
        """
    values = {"enum.Enum": 4, "enum.IntEnum": 4, "str, enum.Enum": "blue", "enum.Flag": 4}
    blue = values[base]
    project.write("a.py", source.format(base=base, added="", tag="old"))
    project.write(
        "b.py", "from a import Color\n\ndef names():\n    return [c.name for c in Color]\n"
    )
    a = importlib.import_module("a")
    b = importlib.import_module("b")
    Color, red = a.Color, a.Color.RED
    assert b.names() == ["RED", "GREEN"]
    assert not hasattr(Color, "BLUE")
    added = f"BLUE = {blue!r}\n            CRIMSON = 1"  # a new member and an alias of RED
    project.write("a.py", source.format(base=base, added=added, tag="new"))
    hmr.reload_module("a")
    assert a.Color is Color
    assert Color.RED is red
    assert Color.CRIMSON is red
    assert a.FAVOURITE is red
    assert b.names() == ["RED", "GREEN", "BLUE"]
    new = Color.BLUE
    assert isinstance(new, Color)
    assert type(new) is Color
    assert Color(blue) is new
    assert Color["BLUE"] is new
    assert new.describe() == "new blue"
    assert red.describe() == "new red"
    assert len(Color) == 3

    # A member added between two others takes its place there, as a fresh start has it
    # (it was iterated last); the aliases stay where the statement has them.
    pink = "pink" if base == "str, enum.Enum" else 8
    between = source.format(base=base, added=added, tag="new").replace(
        "RED = 1\n", f"RED = 1\n            PINK = {pink!r}\n"
    )
    project.write("a.py", between)
    hmr.reload_module("a")
    assert b.names() == ["RED", "PINK", "GREEN", "BLUE"]
    assert list(Color.__members__) == ["RED", "PINK", "GREEN", "BLUE", "CRIMSON"]
    assert Color.PINK.describe() == "new pink"

    # The same members in another order: iterated in that order (it was said to apply,
    # and the old order stayed), each member the same object.
    pink_member = Color.PINK
    reordered = between.replace(f"            PINK = {pink!r}\n", "").replace(
        "            CRIMSON = 1", f"            CRIMSON = 1\n            PINK = {pink!r}"
    )
    reordered = reordered.replace(
        "RED = 1\n            GREEN = 2\n", "GREEN = 2\n            RED = 1\n"
    )
    project.write("a.py", reordered)
    assert hmr.reload_module("a")[0] == ["a"]
    assert b.names() == ["GREEN", "RED", "BLUE", "PINK"]
    assert list(Color.__members__) == ["GREEN", "RED", "BLUE", "CRIMSON", "PINK"]
    assert Color.RED is red
    assert Color.PINK is pink_member
    assert Color.CRIMSON is red
    assert Color.PINK.describe() == "new pink"


def test_a_flag_that_gains_a_member_forgets_the_combinations_it_worked_out(
    project: Project, hmr: Any
) -> None:
    """``~Opt.A`` and ``Perm(7)``, worked out before the edit, are cached by the enum:
    after a member is added they are worked out again, as a fresh start has them."""
    source = """\
        import enum

        class Opt(enum.Flag):
            A = enum.auto()
            B = enum.auto()
            {more_opt}

        class Perm(enum.IntFlag):
            R = 4
            W = 2
            {more_perm}
        """
    project.write("a.py", source.format(more_opt="", more_perm=""))
    (a,) = fresh(hmr, "a")
    assert (~a.Opt.A, a.Perm(7).value) == (a.Opt.B, 7)
    project.write("a.py", source.format(more_opt="C = enum.auto()", more_perm="X = 1"))
    assert hmr.reload("a").reloaded == ["a"]
    assert ~a.Opt.A == a.Opt.B | a.Opt.C
    assert a.Perm(7) == a.Perm.R | a.Perm.W | a.Perm.X
    assert a.Perm(7).name == (a.Perm.R | a.Perm.W | a.Perm.X).name

    # A member whose value is a combination worked out before (``Perm(7)``): that value
    # is the member now (it stayed the combination: ``Perm(7) is Perm.RWX`` was False).
    project.write(
        "a.py", source.format(more_opt="C = enum.auto()", more_perm="X = 1\n            RWX = 7")
    )
    assert hmr.reload("a").reloaded == ["a"]
    assert a.Perm(7) is a.Perm.RWX
    assert a.Perm(6) | a.Perm.X is a.Perm.RWX
    assert repr(a.Perm(7)) == "<Perm.RWX: 7>"


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "statements"])
def test_statements_after_a_class_see_the_live_class(
    project: Project, hmr: Any, whole: bool
) -> None:
    source = """\
        import enum

        class C:
            LIMIT = {limit}

            def limit(self):
                return self.LIMIT

        class D(C):
            pass

        INSTANCE = C()
        CHILD = D()
        KINDS = {{"c": C}}

        class Color(enum.Enum):
            RED = 1
            {added}

        DEFAULT = Color.RED
        """
    project.write("a.py", source.format(limit=1, added=""))
    a = importlib.import_module("a")
    C, D, red = a.C, a.D, a.Color.RED
    assert (a.INSTANCE.limit(), a.CHILD.limit()) == (1, 1)
    project.write("a.py", source.format(limit=2, added="GREEN = 2"))
    assert hmr.reload_module("a", force=whole)[0] == ["a"]
    assert a.C is C
    assert a.D is D
    assert a.Color.RED is red
    # Made again by statements that consumed the class: instances of the live one.
    assert type(a.INSTANCE) is C
    assert type(a.CHILD) is D
    assert a.KINDS["c"] is C
    assert a.DEFAULT is red
    assert issubclass(D, C)
    assert (a.INSTANCE.limit(), a.CHILD.limit()) == (2, 2)
    assert a.Color.GREEN.value == 2


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "statements"])
def test_a_class_that_registers_itself_is_registered_once_as_the_live_class(
    project: Project, hmr: Any, whole: bool, caplog: pytest.LogCaptureFixture
) -> None:
    project.write(
        "reg.py",
        """\
        BY_NAME = {}
        LISTED = []
        KINDS = set()

        def register(cls):
            BY_NAME[cls.__name__] = cls
            LISTED.append(cls)
            KINDS.add(cls)
            return cls

        class Plugin:
            plugins = []

            def __init_subclass__(cls, **kwargs):
                super().__init_subclass__(**kwargs)
                Plugin.plugins.append(cls)
        """,
    )
    source = """\
        from reg import Plugin, register

        @register
        class C:
            def f(self):
                return {value}
            {added}

        class P(Plugin):
            {added}
        """
    project.write("a.py", source.format(value=1, added="pass"))
    a = importlib.import_module("a")
    reg = importlib.import_module("reg")
    C, P = a.C, a.P
    assert (reg.BY_NAME, reg.LISTED, reg.KINDS, reg.Plugin.plugins) == ({"C": C}, [C], {C}, [P])
    # A member added: the class statements run again, and with them the
    # decorator and ``__init_subclass__``, on the new class objects.
    project.write("a.py", source.format(value=2, added="def g(self):\n                return 3"))
    with caplog.at_level(logging.DEBUG, logger="muckrack_hmr"):
        assert hmr.reload_module("a", force=whole)[0] == ["a"]
    assert (a.C, a.P) == (C, P)
    assert reg.BY_NAME["C"] is C
    assert [id(cls) for cls in reg.LISTED] == [id(C)]
    assert [id(cls) for cls in reg.KINDS] == [id(C)]
    assert [id(cls) for cls in reg.Plugin.plugins] == [id(P)]
    made = reg.BY_NAME["C"]()
    assert isinstance(made, C)
    assert (made.f(), made.g(), P().g()) == (2, 3, 3)
    assert "registrations of the new a.C" in caplog.text


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "statements"])
def test_a_failure_after_a_class_statement_puts_the_class_back(
    project: Project, hmr: Any, whole: bool
) -> None:
    source = """\
        import enum

        class C:
            LIMIT = {limit}

            def limit(self):
                return ("{tag}", self.LIMIT)

        class Color(enum.Enum):
            RED = 1
            {added}

        VALUE = {value}
        """
    project.write("a.py", source.format(limit=1, tag="old", added="", value=1))
    a = importlib.import_module("a")
    C, instance, limit = a.C, a.C(), a.C.limit
    edit = source.format(limit=2, tag="new", added="GREEN = 2", value="1 / 0")
    project.write("a.py", edit)
    reloaded, _ = hmr.reload_module("a", force=whole)
    assert reloaded == []
    assert a.C is C
    assert C.LIMIT == 1
    assert C.limit is limit
    assert instance.limit() == ("old", 1)
    assert not hasattr(a.Color, "GREEN")
    assert list(a.Color) == [a.Color.RED]
    assert a.VALUE == 1


def test_single_dispatch_registrations_from_other_modules_survive(
    project: Project, hmr: Any
) -> None:
    source = """\
        import functools

        @functools.singledispatch
        def show(value):
            return "{tag} default"

        @show.register(int)
        def _(value):
            return "{tag} int"
        """
    project.write("a.py", source.format(tag="old"))
    project.write(
        "plugin.py",
        "import a\n\n@a.show.register(str)\ndef _(value):\n    return 'plugin str'\n",
    )
    a = importlib.import_module("a")
    importlib.import_module("plugin")
    show = a.show
    assert (show(1.5), show(1), show("s")) == ("old default", "old int", "plugin str")
    project.write("a.py", source.format(tag="new"))
    # Body edits are patched in place; forced, the singledispatch statement
    # itself runs again, and the live dispatcher keeps plugin's registration.
    reloaded, _ = hmr.reload_module("a", force=True)
    assert reloaded == ["a", "plugin"]
    assert a.show is show
    assert (show(1.5), show(1), show("s")) == ("new default", "new int", "plugin str")


@pytest.mark.parametrize("whole", [False, True], ids=["statements", "whole"])
@pytest.mark.parametrize(
    ("before", "after", "kind", "reason"),
    [
        (
            "class C:\n    pass\n",
            "class C(Exception):\n    pass\n",
            "class layout",
            "changed its bases (now Exception)",
        ),
        (
            "class C:\n    __slots__ = ('a',)\n",
            "class C:\n    __slots__ = ('a', 'b')\n",
            "class layout",
            "changed its __slots__",
        ),
        (
            "import abc\nclass C:\n    pass\n",
            "import abc\nclass C(metaclass=abc.ABCMeta):\n    pass\n",
            "class layout",
            "changed its metaclass (type -> ABCMeta)",
        ),
        (
            "import enum\nclass C:\n    A = 1\n",
            "import enum\nclass C(enum.Enum):\n    A = 1\n",
            "enum <-> class",
            "became an enum (type -> EnumType)",
        ),
        (
            "import enum\nclass C(enum.Enum):\n    A = 1\n",
            "import enum\nclass C:\n    A = 1\n",
            "enum <-> class",
            "became a plain class (EnumType -> type)",
        ),
        (
            "import enum\nclass C(enum.Enum):\n    A = 1\n    B = 2\n",
            "import enum\nclass C(enum.Enum):\n    A = 1\n    B = 3\n",
            "enum members",
            "changed its members (B given a new value: 2 -> 3)",
        ),
        (
            "import enum\nclass C(enum.Enum):\n    A = 1\n    B = 2\n",
            "import enum\nclass C(enum.Enum):\n    A = 1\n",
            "enum members",
            "changed its members (B removed or renamed)",
        ),
    ],
)
def test_structural_class_changes_refuse_the_whole_module_edit(
    project: Project,
    hmr: Any,
    caplog: pytest.LogCaptureFixture,
    before: str,
    after: str,
    kind: str,
    reason: str,
    whole: bool,
) -> None:
    from muckrack_hmr.reload.refusals import Refusal

    if sys.version_info < (3, 11):
        reason = reason.replace("EnumType", "EnumMeta")
    project.write("a.py", before + "\ndef f():\n    return 'old'\n\nX = 1\n")
    a = importlib.import_module("a")
    C, f = a.C, a.f
    members = dict(vars(C))
    project.write("a.py", after + "\ndef f():\n    return 'new'\n\nX = 2\n")
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        result = hmr.reload("a", force=whole)
    assert result.reloaded == []
    # The line of the member it names, else of the class.
    marker = "__slots__" if "__slots__" in reason else "B = 3" if "B given" in reason else "class C"
    line = next(at for at, text in enumerate(after.splitlines(), 1) if marker in text)
    at = f"{a.__file__}:{line}"
    assert result.refused == [Refusal(kind, "a", f"a.C {reason}", "", at)]
    # Nothing of the module's edit applied: the class, the function, the constant.
    assert a.C is C
    assert dict(vars(C)) == members
    assert (a.f, f(), a.X) == (f, "old", 1)
    messages = [r.getMessage() for r in caplog.records]
    assert f"restart to apply: a.C {reason} at {at} ({kind})" in messages


def test_closure_shape_change_is_warned_about(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    source = """\
        def make(n):
            def inner():
                return {body}
            return inner

        handler = make(1)
        """
    project.write("a.py", source.format(body="'old'"))
    a = importlib.import_module("a")
    handler = a.handler
    assert handler() == "old"
    # ``inner`` now closes over ``n``: its closure has a new shape.
    project.write("a.py", source.format(body="('new', n)"))
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        hmr.reload_module("a")
    assert a.handler() == ("new", 1)
    assert handler() == "old"
    assert any(
        "make.<locals>.inner is a new function object" in r.getMessage() for r in caplog.records
    )


@pytest.mark.parametrize(
    ("before", "after", "kind"),
    [
        ("def f():\n    return [1]\n", "async def f():\n    return [2]\n", "a coroutine"),
        ("def f():\n    return [1]\n", "def f():\n    yield 2\n", "a generator"),
        ("async def f():\n    return [1]\n", "def f():\n    return [2]\n", "a plain"),
        ("def f():\n    yield 1\n", "async def f():\n    yield 2\n", "an async generator"),
        (
            "import functools\n\n\n@functools.lru_cache\ndef f():\n    return [1]\n",
            "import functools\n\n\n@functools.lru_cache\ndef f():\n    yield 2\n",
            "a generator",
        ),
        (
            "class K:\n    def f(self):\n        return [1]\n",
            "class K:\n    async def f(self):\n        return [2]\n",
            "a coroutine",
        ),
    ],
    ids=["async", "yield", "plain", "async-generator", "cached", "method"],
)
def test_a_function_that_changed_kind_is_a_new_object_and_no_code_is_forced_on_the_old(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture, before: str, after: str, kind: str
) -> None:
    """A ``def`` that became ``async def``, or gained a ``yield`` (or the reverse): a function
    object keeps its kind.  Its old object was given the code of the other kind (Python
    3.13 deprecates that, and a framework told the kinds apart when it registered it):
    now the module holds the new function, references taken before keep the old one,
    and the line says why."""
    project.write("a.py", before)
    a = importlib.import_module("a")
    hmr.remember_sources()
    owner = a.K() if hasattr(a, "K") else a
    held = owner.f
    flags = (
        held.__code__.co_flags if hasattr(held, "__code__") else held.__wrapped__.__code__.co_flags
    )
    project.write("a.py", after)
    with warnings.catch_warnings(), caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        warnings.simplefilter("error")  # (3.13+: "Assigning a code object of non-matching type")
        assert hmr.reload_module("a")[0] == ["a"]
    now = (a.K() if hasattr(a, "K") else a).f
    unwrapped = getattr(now, "__wrapped__", now)
    assert unwrapped.__code__.co_flags != flags
    assert inspect.isgeneratorfunction(unwrapped) == ("generator" in kind and "async" not in kind)
    assert inspect.iscoroutinefunction(unwrapped) == (kind == "a coroutine")
    assert inspect.isasyncgenfunction(unwrapped) == (kind == "an async generator")
    # What was held before runs its old code, of its old kind.
    old = getattr(held, "__wrapped__", held)
    assert old.__code__.co_flags == flags
    assert any(
        "f is a new function object (it became " + kind in record.getMessage()
        for record in caplog.records
    ), [record.getMessage() for record in caplog.records]


def test_a_failing_edit_patches_nothing(project: Project, hmr: Any) -> None:
    project.write(
        "a.py", "def f():\n    return 'old'\n\nclass C:\n    def m(self):\n        return 1\n"
    )
    a = importlib.import_module("a")
    f, C = a.f, a.C
    code = f.__code__
    project.write(
        "a.py",
        "def f():\n    return 'new'\n\nclass C:\n    def m(self):\n        return 2\n\n1/0\n",
    )
    assert hmr.reload_module("a")[0] == []
    assert (a.f, a.C) == (f, C)
    assert f.__code__ is code
    assert (f(), C().m()) == ("old", 1)


def test_closures_made_before_the_edit_run_the_new_code(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    source = """\
        def make(n):
            def inner(x):
                return ("{tag}", n, x)
            return inner

        def counter():
            count = 0
            def step():
                nonlocal count
                count += {step}
                return count
            return step
        """
    project.write("a.py", source.format(tag="old", step=1))
    a = importlib.import_module("a")
    made = a.make(3)  # at run time, as a request handler would be
    step = a.counter()
    assert (made(1), step(), step()) == (("old", 3, 1), 1, 2)
    project.write("a.py", source.format(tag="new", step=10))
    with caplog.at_level(logging.DEBUG, logger="muckrack_hmr"):
        hmr.reload_module("a")
    assert made(1) == ("new", 3, 1)  # new code, its own closure values
    assert step() == 12  # the count it had kept, the new step
    assert any("heap walk" in r.getMessage() for r in caplog.records)


def test_each_closure_of_a_factory_follows_its_edits_after_another_s(
    project: Project, hmr: Any
) -> None:
    """``init(app)`` makes two closures (a Flask factory's ``before_request`` and
    ``errorhandler``).  An edit of the first brought a new compile of the second, equal
    but another object; the next edit, of the second, looked for the closures of that
    object, and the live one kept its old code under a "reloaded" line."""
    source = """\
        def helper():
            return "h"

        def init(registry):
            def first():
                return "first {first}"

            def second():
                return "second {second} " + helper()

            registry["first"] = first
            registry["second"] = second
        """
    project.write("hooks.py", source.format(first=1, second=1))
    hooks = importlib.import_module("hooks")
    registry: dict[str, Any] = {}
    hooks.init(registry)
    assert (registry["first"](), registry["second"]()) == ("first 1", "second 1 h")
    for first, second in [(2, 1), (2, 2), (3, 2), (3, 3)]:
        project.write("hooks.py", source.format(first=first, second=second))
        assert hmr.reload_module("hooks")[0] == ["hooks"]
        assert (registry["first"](), registry["second"]()) == (
            f"first {first}",
            f"second {second} h",
        )


def test_cache_wrappers_held_elsewhere_run_the_new_code(project: Project, hmr: Any) -> None:
    source = """\
        import functools

        @functools.lru_cache(maxsize=None)
        def square(x):
            return ("{tag}", x * x)

        @functools.cache
        def cube(x):
            return ("{tag}", x ** 3)
        """
    project.write("a.py", source.format(tag="old"))
    a = importlib.import_module("a")
    held = {"square": a.square, "cube": a.cube}
    assert (held["square"](3), held["cube"](2)) == (("old", 9), ("old", 8))
    project.write("a.py", source.format(tag="new"))
    hmr.reload_module("a")
    assert a.square is held["square"]
    assert (held["square"](3), held["cube"](2)) == (("new", 9), ("new", 8))  # caches emptied


def test_body_edit_of_a_cached_function_empties_its_cache(project: Project, hmr: Any) -> None:
    """The body-only path (sources kept, as the watcher does) empties caches too."""
    source = """\
        import functools

        @functools.lru_cache(maxsize=None)
        def label():
            return "{tag}"

        class Shape:
            @functools.cache
            def name(self):
                return "{tag}"

            @staticmethod
            @functools.cache
            def kind():
                return "{tag}"
        """
    project.write("a.py", source.format(tag="old"))
    a = importlib.import_module("a")
    hmr.remember_sources()
    held, shape = a.label, a.Shape()
    assert (held(), shape.name(), a.Shape.kind()) == ("old", "old", "old")
    project.write("a.py", source.format(tag="new"))
    result = hmr.reload("a")
    # Only bodies changed: no decorator ran again, the wrappers are the old ones.
    assert a.label is held
    assert sorted(result.patched) == ["a.Shape.kind", "a.Shape.name", "a.label"]
    assert (held(), shape.name(), a.Shape.kind()) == ("new", "new", "new")


# -- one definition, several function objects -------------------------------------------

REGISTRY = """\
PREFIX = "{prefix}"
REG = {{}}

def register(key):
    def deco(f):
        REG[key] = f
        return f
    return deco
"""


def fresh(hmr: Any, *names: str) -> list[Any]:
    """Import ``names`` and keep their sources, as the watcher does: edits run statements."""
    modules = [importlib.import_module(name) for name in names]
    hmr.remember_sources()
    return modules


def test_every_function_a_def_made_runs_the_latest_code(project: Project, hmr: Any) -> None:
    """A decorator whose argument changed runs again: it is given the live function."""
    source = """\
        import core

        @core.register(core.PREFIX + ":{suffix}")
        def f(x={default}):
            \"\"\"{tag}\"\"\"
            return ("{tag}", x)

        {tail}
        """

    def write(tag: str, suffix: str = "f", default: int = 1, tail: str = "") -> None:
        project.write("m.py", source.format(tag=tag, suffix=suffix, default=default, tail=tail))

    project.write("core.py", REGISTRY.format(prefix="a"))
    write("v1")
    core, m = fresh(hmr, "core", "m")
    f = m.f
    assert {"a:f": f} == core.REG

    # The decorator's argument changed: the def runs again, REG takes the live object
    # under the new key alone, as a fresh start has it.
    project.write("core.py", REGISTRY.format(prefix="b"))
    assert hmr.reload_module("core")[0] == ["core", "m"]
    assert m.f is f
    assert {"b:f": f} == core.REG
    assert f() == ("v1", 1)

    # A body-only edit reaches it.
    write("v2")
    assert hmr.reload_module("m")[0] == ["m"]
    assert [g() for g in core.REG.values()] == [("v2", 1)]
    assert f.__doc__ == "v2"

    # The def runs again (another key, another default): still the one object.
    write("v3", suffix="g", default=5)
    assert hmr.reload_module("m")[0] == ["m"]
    assert sorted(core.REG) == ["b:g"]
    assert all(g is f for g in core.REG.values())
    assert [g() for g in core.REG.values()] == [("v3", 5)]
    write("v4", suffix="g", default=5)
    assert hmr.reload_module("m")[0] == ["m"]
    assert [g() for g in core.REG.values()] == [("v4", 5)]

    # A failed reload puts it back.
    write("v5", suffix="g", default=5, tail="1 / 0")
    assert hmr.reload_module("m")[0] == []
    assert [g() for g in core.REG.values()] == [("v4", 5)]
    assert {g.__doc__ for g in core.REG.values()} == {"v4"}


def test_a_method_a_class_statement_made_again_follows_the_live_one(
    project: Project, hmr: Any
) -> None:
    source = """\
        import core

        class C:
            @core.register("{key}")
            def m(self):
                return "{tag}"

        {tail}
        """
    project.write("core.py", REGISTRY.format(prefix="a"))
    project.write("m.py", source.format(key="m1", tag="v1", tail=""))
    core, m = fresh(hmr, "core", "m")
    C, method = m.C, m.C.m
    project.write("m.py", source.format(key="m2", tag="v2", tail=""))
    assert hmr.reload_module("m")[0] == ["m"]
    assert (m.C, m.C.m) == (C, method)
    assert [g(C()) for g in core.REG.values()] == ["v2", "v2"]
    # A class statement that ran again before a failing statement: the undo of
    # the class patch puts back every function the def made.
    project.write("m.py", source.format(key="m3", tag="v3", tail="1 / 0"))
    assert hmr.reload_module("m")[0] == []
    assert m.C.m is method
    assert [g(C()) for g in core.REG.values()] == ["v2", "v2", "v2"]
    project.write("m.py", source.format(key="m3", tag="v4", tail=""))
    assert hmr.reload_module("m")[0] == ["m"]
    assert [g(C()) for g in core.REG.values()] == ["v4", "v4", "v4"]


def test_wrappers_a_decorator_made_again_share_the_latest_closure_values(
    project: Project, hmr: Any
) -> None:
    tagged = """\
        PREFIX = "{prefix}"
        REG = {{}}

        def tagged(tag):
            def deco(f):
                def wrapper():
                    return (tag, f())
                REG[tag] = wrapper
                return wrapper
            return deco
        """
    source = """\
        import core

        @core.tagged(core.PREFIX)
        def f():
            return "{tag}"
        """
    project.write("core.py", tagged.format(prefix="a"))
    project.write("m.py", source.format(tag="v1"))
    core, m = fresh(hmr, "core", "m")
    wrapper = m.f
    for prefix in "bc":
        project.write("core.py", tagged.format(prefix=prefix))
        assert hmr.reload_module("core")[0] == ["core", "m"]
    assert m.f is wrapper
    assert sorted(core.REG) == ["a", "b", "c"]
    assert [w() for w in core.REG.values()] == [("c", "v1")] * 3
    project.write("m.py", source.format(tag="v2"))
    assert hmr.reload_module("m")[0] == ["m"]
    assert [w() for w in core.REG.values()] == [("c", "v2")] * 3


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "statements"])
def test_a_class_made_again_by_a_changed_decorator_argument_stays_one_class(
    project: Project, hmr: Any, whole: bool
) -> None:
    source = """\
        import core

        @core.register(core.PREFIX + ":C")
        class C:
            def m(self):
                return "{tag}"
        """
    project.write("core.py", REGISTRY.format(prefix="a"))
    project.write("m.py", source.format(tag="v1"))
    core = importlib.import_module("core")
    m = importlib.import_module("m")
    C = m.C
    instance = C()
    project.write("core.py", REGISTRY.format(prefix="b"))
    assert hmr.reload_module("core", force=whole)[0] == ["core", "m"]
    assert m.C is C
    # (Run whole, core made a new REG; run by statements, the class's one other key there,
    # its old registration, goes: it stayed beside the new one.)
    assert {"b:C": C} == core.REG
    project.write("m.py", source.format(tag="v2"))
    assert hmr.reload_module("m")[0] == ["m"]
    made = core.REG["b:C"]()
    assert isinstance(instance, core.REG["b:C"])
    assert (made.m(), instance.m()) == ("v2", "v2")


# -- nested classes -----------------------------------------------------------------------

NESTED = """\
import enum
from dataclasses import dataclass

class Outer:
    KIND = "{tag}"

    class Inner:
        def hello(self):
            return "{tag} inner"
        {added}

    class Mid:
        class Inner:
            def hello(self):
                return "{tag} deep"

    class Color(enum.Enum):
        RED = 1
        {member}

        def describe(self):
            return "{tag} " + self.name.lower()

    @dataclass
    class Point:
        x: int
        y: int = {default}

        def norm(self):
            return {norm}

{tail}
"""


def write_nested(project: Project, tag: str, **parts: str) -> None:
    values = {"added": "", "member": "", "default": "0", "norm": "self.x + self.y", "tail": ""}
    project.write("a.py", NESTED.format(tag=tag, **{**values, **parts}))


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "statements"])
def test_nested_classes_are_patched_in_place(project: Project, hmr: Any, whole: bool) -> None:
    write_nested(project, "v1")
    a = importlib.import_module("a")
    Outer = a.Outer
    Inner, Deep, Color, Point = Outer.Inner, Outer.Mid.Inner, Outer.Color, Outer.Point
    inner, deep, red, point = Inner(), Deep(), Color.RED, Point(3, 4)
    assert (inner.hello(), deep.hello(), red.describe(), point.norm()) == (
        "v1 inner",
        "v1 deep",
        "v1 red",
        7,
    )
    write_nested(
        project,
        "v2",
        added="def added(self):\n            return 'added'",
        member="GREEN = 2",
        default="10",
        norm="(self.x**2 + self.y**2) ** 0.5",
    )
    result = hmr.reload("a", force=whole)
    assert result.reloaded == ["a"]
    assert result.refused == []
    assert a.Outer is Outer
    assert (Outer.Inner, Outer.Mid.Inner, Outer.Color, Outer.Point) == (Inner, Deep, Color, Point)
    assert isinstance(inner, a.Outer.Inner)
    assert isinstance(deep, a.Outer.Mid.Inner)
    assert isinstance(point, a.Outer.Point)
    assert (inner.hello(), inner.added(), deep.hello()) == ("v2 inner", "added", "v2 deep")
    assert Color.RED is red
    assert Color(2) is Color.GREEN
    assert (red.describe(), Color.GREEN.describe()) == ("v2 red", "v2 green")
    assert (point.norm(), Point(1).y) == (5.0, 10)
    assert {"a.Outer", "a.Outer.Inner", "a.Outer.Mid.Inner", "a.Outer.Point"} <= set(result.patched)


@pytest.mark.parametrize(
    ("nested", "edit", "reason"),
    [
        ("Inner", ("class Inner:", "class Inner(Exception):"), "changed its bases"),
        (
            "Mid.Inner",
            ("        class Inner:", "        class Inner:\n            __slots__ = ()"),
            "changed its __slots__",
        ),
        ("Color", ("RED = 1", "RED = 3"), "changed its members"),
    ],
)
def test_a_nested_class_that_cannot_be_patched_refuses_its_outer_class_whole(
    project: Project,
    hmr: Any,
    caplog: pytest.LogCaptureFixture,
    nested: str,
    edit: tuple[str, str],
    reason: str,
) -> None:
    write_nested(project, "v1", tail="def f():\n    return 'v1'")
    a = importlib.import_module("a")
    Outer, f = a.Outer, a.f
    inner = Outer.Inner()
    members = dict(vars(Outer))
    source = NESTED.format(
        tag="v2", added="", member="", default="0", norm="0", tail="def f():\n    return 'v2'"
    )
    project.write("a.py", source.replace(*edit))
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        result = hmr.reload("a")
    assert result.reloaded == []
    assert a.Outer is Outer
    assert dict(vars(Outer)) == members  # nothing half-applied
    assert (Outer.KIND, inner.hello(), Outer.Mid.Inner().hello()) == ("v1", "v1 inner", "v1 deep")
    assert Outer.Color.RED.describe() == "v1 red"
    assert a.f is f
    assert f() == "v1"  # nothing of the module applied
    assert len(result.refused) == 1
    assert result.refused[0].what.startswith(f"a.Outer.{nested} {reason}")
    assert "restart to apply: a.Outer." in caplog.text


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "statements"])
def test_a_failure_after_an_outer_class_puts_its_nested_classes_back(
    project: Project, hmr: Any, whole: bool
) -> None:
    write_nested(project, "v1")
    a = importlib.import_module("a")
    Outer = a.Outer
    Inner, Deep, Color, Point = Outer.Inner, Outer.Mid.Inner, Outer.Color, Outer.Point
    hello, deep_hello, norm = Inner.hello, Deep.hello, Point.norm
    inner, point = Inner(), Point(3, 4)
    write_nested(
        project,
        "v2",
        added="def added(self):\n            return 'added'",
        member="GREEN = 2",
        default="10",
        norm="0",
        tail="1 / 0",
    )
    assert hmr.reload_module("a", force=whole)[0] == []
    assert a.Outer is Outer
    assert (Outer.Inner, Outer.Mid.Inner, Outer.Color, Outer.Point) == (Inner, Deep, Color, Point)
    assert (Inner.hello, Deep.hello, Point.norm) == (hello, deep_hello, norm)
    assert (Outer.KIND, inner.hello(), Deep().hello(), point.norm()) == (
        "v1",
        "v1 inner",
        "v1 deep",
        7,
    )
    assert not hasattr(Inner, "added")
    assert list(Color) == [Color.RED]
    assert Point(1).y == 0


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "statements"])
def test_a_nested_class_that_registers_itself_stays_registered_as_the_live_class(
    project: Project, hmr: Any, whole: bool
) -> None:
    project.write(
        "reg.py",
        """\
        class Plugin:
            plugins = []

            def __init_subclass__(cls, **kwargs):
                super().__init_subclass__(**kwargs)
                Plugin.plugins.append(cls)
        """,
    )
    source = """\
        from reg import Plugin

        class Outer:
            KIND = "{tag}"

            class Inner(Plugin):
                def hello(self):
                    return "{tag}"
        """
    project.write("a.py", source.format(tag="v1"))
    a = importlib.import_module("a")
    reg = importlib.import_module("reg")
    Inner = a.Outer.Inner
    project.write("a.py", source.format(tag="v2"))
    assert hmr.reload_module("a", force=whole)[0] == ["a"]
    assert a.Outer.Inner is Inner
    assert [id(cls) for cls in reg.Plugin.plugins] == [id(Inner)]
    assert reg.Plugin.plugins[0]().hello() == "v2"


@pytest.mark.parametrize("whole", [True, False], ids=["whole", "statements"])
def test_a_refused_nested_class_leaves_its_outer_class_untouched_beside_other_patches(
    project: Project, hmr: Any, whole: bool
) -> None:
    # Defined in a block, the class is patched with the module's other
    # definitions, after every statement ran: one plan for all of them.
    source = """\
        def f():
            return "{tag}"

        if True:
            class Outer:
                def m(self):
                    return "{tag}"

                class Inner{bases}:
                    def hello(self):
                        return "{tag}"

        def g():
            return "{tag}"
        """
    project.write("a.py", source.format(tag="v1", bases=""))
    a = importlib.import_module("a")
    Outer, Inner, m = a.Outer, a.Outer.Inner, a.Outer.m
    project.write("a.py", source.format(tag="v2", bases="(Exception)"))
    result = hmr.reload("a", force=whole)
    assert result.reloaded == []
    assert (a.Outer, a.Outer.Inner, a.Outer.m) == (Outer, Inner, m)
    assert (Outer().m(), Inner().hello()) == ("v1", "v1")
    assert (a.f(), a.g()) == ("v1", "v1")
    assert [str(refusal) for refusal in result.refused] == [
        f"restart to apply: a.Outer.Inner changed its bases (now Exception) at {a.__file__}:9 "
        "(class layout)"
    ]


def test_a_new_method_using_its_class_cell_follows_later_edits_where_a_decorator_stored_it(
    project: Project, hmr: Any
) -> None:
    # The live class gets a copy of a new method that uses ``__class__`` (or
    # ``super()``), closing over the live class; the decorator stored the original.
    source = """\
        import core

        class C:
            {added}
        """
    added = """@core.register("name")
            def name(self):
                return ("{tag}", __class__.__name__)"""
    project.write("core.py", REGISTRY.format(prefix="a"))
    project.write("m.py", source.format(added="pass"))
    core, m = fresh(hmr, "core", "m")
    instance = m.C()
    project.write("m.py", source.format(added=added.format(tag="v1")))
    assert hmr.reload_module("m")[0] == ["m"]
    assert (instance.name(), core.REG["name"](instance)) == (("v1", "C"), ("v1", "C"))
    project.write("m.py", source.format(added=added.format(tag="v2")))
    assert hmr.reload_module("m")[0] == ["m"]
    assert (instance.name(), core.REG["name"](instance)) == (("v2", "C"), ("v2", "C"))


SLOTTED = """\
{above}from dataclasses import dataclass


class Point:
    __slots__ = ("x", "y")
    KIND = "{kind}"

    def __init__(self, x, y):
        self.x = x
        self.y = y

    def norm(self):
        return {norm}


@dataclass(slots=True)
class Pair:
    a: int
    b: int = {default}

    def total(self):
        return self.a + self.b
"""


@pytest.mark.parametrize("edit", ["lines above", "class attribute", "run whole"])
def test_a_slotted_class_made_again_keeps_its_instances_working(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture, edit: str
) -> None:
    """A class with ``__slots__`` (or a ``@dataclass(slots=True)``) whose statement runs
    again: old and new instances read and write their slots, and run the new methods."""
    values = {"above": "", "kind": "v1", "norm": "self.x + self.y", "default": "0"}
    project.write("a.py", SLOTTED.format(**values))
    (a,) = fresh(hmr, "a")
    Point, Pair = a.Point, a.Pair
    point, pair = Point(3, 4), Pair(1, 2)
    assert (point.norm(), pair.total()) == (7, 3)

    values["norm"] = "(self.x**2 + self.y**2) ** 0.5"
    if edit == "lines above":
        values["above"] = "import os\n\nSEP = os.sep\n\n"
    else:
        values["kind"] = "v2"
        values["default"] = "5"
    project.write("a.py", SLOTTED.format(**values))
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        assert hmr.reload_module("a", force=edit == "run whole")[0] == ["a"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (a.Point, a.Pair) == (Point, Pair)
    assert point.norm() == 5.0
    point.x = 6
    point.y = 8
    assert point.norm() == 10.0
    fresh_point = a.Point(5, 12)
    assert fresh_point.norm() == 13.0
    assert isinstance(fresh_point, Point)
    assert pair.total() == 3
    pair.b = 10
    assert pair.total() == 11
    assert a.Pair(1).total() == (1 if edit == "lines above" else 6)
    assert ("v1" if edit == "lines above" else "v2") == Point.KIND


def test_a_slotted_class_whose_slots_changed_is_refused(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """New slots need a new instance layout: the live class and its instances stay as
    they were, nothing of the module applies, and the log says a restart is needed."""
    values = {"above": "", "kind": "v1", "norm": "self.x + self.y", "default": "0"}
    project.write("a.py", SLOTTED.format(**values) + "\ndef f():\n    return 'old'\n")
    (a,) = fresh(hmr, "a")
    Point, point = a.Point, a.Point(3, 4)
    source = SLOTTED.format(**values).replace('("x", "y")', '("x", "y", "z")')
    project.write("a.py", source + "\ndef f():\n    return 'new'\n")
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        hmr.reload_module("a")
    assert a.Point is Point
    assert point.norm() == 7
    assert a.f() == "old"
    messages = [r.getMessage() for r in caplog.records]
    line = next(at for at, text in enumerate(source.splitlines(), 1) if "__slots__" in text)
    where = f"{a.__file__}:{line}"
    assert f"restart to apply: a.Point changed its __slots__ at {where} (class layout)" in messages


INSTANCE_PROPERTY = """\
from operator import attrgetter


class instanceproperty(property):
    \"\"\"A property whose class-level value is ``classval`` (as toolz's).\"\"\"

    def __init__(self, fget=None, classval=None):
        self.classval = classval
        property.__init__(self, fget)

    def __get__(self, obj, type=None):
        return self.classval if obj is None else property.__get__(self, obj, type)


class Compose:
    __slots__ = ("first",)
{extra}
    def __init__(self, first):
        self.first = first

    first_name = instanceproperty(attrgetter("first.__name__"), classval="Compose")
"""


def test_a_property_subclass_keeps_its_type_and_state_when_its_class_changes(
    project: Project, hmr: Any
) -> None:
    """toolz's ``instanceproperty`` holds a class-level value: a class edit that installs
    the new descriptor must keep the subclass, not make a plain ``property`` of it."""
    project.write("a.py", INSTANCE_PROPERTY.format(extra=""))
    (a,) = fresh(hmr, "a")
    item = a.Compose(len)
    assert (a.Compose.first_name, item.first_name) == ("Compose", "len")
    project.write("a.py", INSTANCE_PROPERTY.format(extra="    LIMIT = 1\n"))
    assert hmr.reload_module("a")[0] == ["a"]
    assert a.Compose.LIMIT == 1
    assert type(a.Compose.__dict__["first_name"]).__name__ == "instanceproperty"
    assert (a.Compose.first_name, item.first_name) == ("Compose", "len")


@pytest.mark.skipif(sys.version_info < (3, 12), reason="type parameters (PEP 695): 3.12+")
def test_a_generic_function_takes_its_new_type_parameters(project: Project, hmr: Any) -> None:
    """``def first[T]`` edited to ``def first[T, S]``: the live function kept ``(T,)``,
    while its new annotations named the new ``T`` and ``S``."""
    source = "def first[{params}](xs: list[T]) -> T:\n    return xs[0]\n"
    project.write("generic.py", source.format(params="T"))
    generic = importlib.import_module("generic")
    first = generic.first
    assert [param.__name__ for param in first.__type_params__] == ["T"]
    project.write("generic.py", source.format(params="T, S"))
    hmr.reload_module("generic")
    assert generic.first is first
    assert [param.__name__ for param in first.__type_params__] == ["T", "S"]
    assert first.__annotations__["return"] is first.__type_params__[0]
    assert first([4, 5]) == 4


def test_a_class_made_again_is_its_base_s_subclass_once(project: Project, hmr: Any) -> None:
    """A class statement run again: the class it made (left for the live one) stayed in
    ``Plugin.__subclasses__()`` until a garbage collection, and plugin discovery that
    walks them found the class twice."""
    project.write("base.py", "class Plugin:\n    pass\n")
    source = "from base import Plugin\n\n\nclass Alpha(Plugin):\n    kind = {kind}\n{more}"
    project.write("plugins.py", source.format(kind=1, more=""))
    base = importlib.import_module("base")
    plugins = importlib.import_module("plugins")
    alpha = plugins.Alpha
    gc.disable()  # no collection between the edit and the look
    try:
        project.write(
            "plugins.py", source.format(kind=2, more="\n    def m(self):\n        pass\n")
        )
        hmr.reload_module("plugins")
        assert base.Plugin.__subclasses__() == [alpha]
    finally:
        gc.enable()
    assert plugins.Alpha is alpha
    assert alpha.kind == 2


def test_an_attrs_converter_validator_or_factory_changed_reaches_the_live_class(
    project: Project, hmr: Any
) -> None:
    """attrs writes ``__init__`` with globals of its own that hold each field's converter,
    validator and default factory: a field given another one (the same ``__init__`` code)
    runs the new one, as after a cold start, for instances made from now on."""
    attrs = pytest.importorskip("attrs")
    source = """\
        import attrs


        def to_int(v):
            return int(v)


        def to_int10(v):
            return int(v) * 10


        def anything(inst, attribute, value):
            pass


        def positive(inst, attribute, value):
            if value < 0:
                raise ValueError("negative")


        @attrs.define
        class A:
            x: int = attrs.field(converter=to_int)
            y: int = attrs.field(validator=anything)
            z: list = attrs.field(factory=list)
        """
    project.write("m.py", source)
    (m,) = fresh(hmr, "m")
    A = m.A
    assert attrs.asdict(A("3", -1)) == {"x": 3, "y": -1, "z": []}
    edited = (
        source.replace("converter=to_int)", "converter=to_int10)")
        .replace("validator=anything", "validator=positive")
        .replace("factory=list", "factory=lambda: [1]")
    )
    project.write("m.py", edited)
    assert hmr.reload("m").reloaded == ["m"]
    assert m.A is A
    assert attrs.asdict(A("3", 5)) == {"x": 30, "y": 5, "z": [1]}
    with pytest.raises(ValueError, match="negative"):
        A("3", -1)


@pytest.mark.parametrize(
    ("decorator", "says"),
    [
        ("@attrs.define", "so the __slots__ that @attrs.define makes"),
        ("@dataclasses.dataclass(slots=True)", "so the __slots__ that @dataclass(slots=True)"),
    ],
    ids=["attrs", "dataclass"],
)
def test_a_field_added_to_a_slotted_class_a_decorator_made_says_so(
    project: Project, hmr: Any, decorator: str, says: str
) -> None:
    pytest.importorskip("attrs")
    source = f"import attrs\nimport dataclasses\n\n\n{decorator}\nclass P:\n    x: int = 0\n"
    project.write("m.py", source)
    (m,) = fresh(hmr, "m")
    live = m.P
    project.write("m.py", source + "    y: int = 1\n")
    result = hmr.reload("m")
    assert (result.reloaded, m.P) == ([], live)
    (refusal,) = result.refused
    assert refusal.what.startswith(f"m.P changed its fields, {says}"), refusal.what

"""Definitions that only moved are not run again; their line numbers follow, on both cores.

Lines added above a decorated definition used to run it again, so that its
tracebacks pointed at the right lines: the decorators then ran a second
time (Flask refuses a route once it served a request; FastAPI registers it
twice).  Now the live functions take the new line numbers in place.
"""

from __future__ import annotations

import inspect
import linecache
import textwrap
import traceback
from typing import Any

from tests.conftest import Project
from tests.test_incremental import fresh

REGISTRY = """\
ROUTES = []
SEALED = False


def route(path):
    def deco(f):
        if SEALED:
            raise AssertionError("The setup method 'route' can no longer be called")
        ROUTES.append((path, f))
        return f
    return deco
"""

VIEWS = """\
import registry
{above}

@registry.route("/a")
def a():
    return "a v1"


@registry.route("/b")
def b():
    {b_body}


class Handler:
    def first(self):
        return 1

    def boom(self):
        raise ValueError("boom")


def fail():
    raise KeyError("fail")
"""


def _views(above: str = "", b_body: str = 'return "b v1"') -> str:
    return VIEWS.format(above=above, b_body=b_body)


def _line_of(path: Any, text: str) -> int:
    lines = path.read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if text in line)


def _raised_at(function: Any) -> int:
    try:
        function()
    except Exception as exc:
        return traceback.extract_tb(exc.__traceback__)[-1].lineno or 0
    raise AssertionError("did not raise")


def test_lines_added_above_decorated_defs_do_not_run_them_again(project: Project, hmr: Any) -> None:
    project.write("registry.py", REGISTRY)
    path = project.write("views.py", _views())
    registry, views = fresh(hmr, "registry", "views")
    registry.SEALED = True  # like Flask after its first request
    a, b, handler = views.a, views.b, views.Handler
    assert [p for p, _ in registry.ROUTES] == ["/a", "/b"]
    assert _raised_at(views.fail) == _line_of(path, 'raise KeyError("fail")')

    # Three lines above everything, and /b gains a line.
    project.write("views.py", _views("\nLIMIT = 3\n\n", 'text = "b v2"\n    return text'))
    result = hmr.reload("views")

    assert result.failed == {}
    assert result.reloaded == ["views"]
    assert [p for p, _ in registry.ROUTES] == ["/a", "/b"]  # no route registered twice
    assert (views.a, views.b, views.Handler) == (a, b, handler)
    assert (a(), b(), views.LIMIT) == ("a v1", "b v2", 3)
    linecache.checkcache()
    # Tracebacks, inspect and debuggers see where the code now stands.
    assert _raised_at(views.fail) == _line_of(path, 'raise KeyError("fail")')
    assert _raised_at(handler().boom) == _line_of(path, 'raise ValueError("boom")')
    assert inspect.getsource(a).startswith('@registry.route("/a")\ndef a():')
    # A body edit compiles the def alone, decorators left out, at its own lines.
    assert inspect.getsource(b).startswith('@registry.route("/b")\ndef b():')
    assert inspect.getsource(views.fail).startswith("def fail():")
    assert inspect.getsourcelines(handler.boom)[1] == _line_of(path, "def boom(self):")


def test_a_method_that_grows_moves_the_methods_below_it(project: Project, hmr: Any) -> None:
    source = textwrap.dedent(
        """\
        class Handler:
            def first(self):
                {body}

            def boom(self):
                raise ValueError("boom")
        """
    )
    path = project.write("h.py", source.format(body="return 1"))
    (h,) = fresh(hmr, "h")
    handler = h.Handler
    project.write("h.py", source.format(body="x = 2\n        y = 3\n        return x + y"))
    assert hmr.reload_module("h")[0] == ["h"]
    assert h.Handler is handler
    assert handler().first() == 5
    assert _raised_at(handler().boom) == _line_of(path, 'raise ValueError("boom")')


def test_a_moved_lambda_and_nested_function_follow(project: Project, hmr: Any) -> None:
    source = textwrap.dedent(
        """\
        {above}
        fail = lambda: 1 / 0

        def outer():
            def inner():
                raise KeyError("inner")
            return inner
        """
    )
    path = project.write("m.py", source.format(above=""))
    (m,) = fresh(hmr, "m")
    fail, outer = m.fail, m.outer
    project.write("m.py", source.format(above="\n\n# two lines more\n"))
    hmr.reload_module("m")
    assert (m.fail, m.outer) == (fail, outer)
    assert _raised_at(fail) == _line_of(path, "fail = lambda")
    assert _raised_at(outer()) == _line_of(path, 'raise KeyError("inner")')


def test_closures_made_before_a_move_follow_later_edits(project: Project, hmr: Any) -> None:
    """A factory or a decorator moved by lines added above it, then edited: the closures
    and wrappers it made before the move run the new code (before, they kept the old
    code for good, silently: they held the nested code from before the move)."""
    source = textwrap.dedent(
        """        import functools
        {above}

        def make_adder(n):
            def add(x):
                return x + n + {add}
            return add


        def deco(f):
            @functools.wraps(f)
            def wrapper(*a):
                return "{tag}<" + f(*a) + ">"
            return wrapper


        @deco
        def greet(name):
            return "hi " + name
        """
    )
    path = project.write("m.py", source.format(above="", add=0, tag="D1"))
    (m,) = fresh(hmr, "m")
    add5, greet = m.make_adder(5), m.greet
    assert (add5(1), greet("bob")) == (6, "D1<hi bob>")
    moves = ["# one\n", "# one\n# two\n\n", "\n"]  # moved twice, then back up
    for version, above in enumerate(moves, start=2):
        project.write("m.py", source.format(above=above, add=0, tag=f"D{version - 1}"))
        hmr.reload_module("m")
        project.write("m.py", source.format(above=above, add=version * 100, tag=f"D{version}"))
        assert hmr.reload_module("m")[0] == ["m"]
        assert (add5(1), greet("bob")) == (6 + version * 100, f"D{version}<hi bob>")
        assert m.greet is greet
        assert _raised_at(lambda: add5("x")) == _line_of(path, "return x + n")


def test_a_decorator_whose_argument_changed_still_runs_again(project: Project, hmr: Any) -> None:
    project.write("registry.py", REGISTRY)
    project.write("views.py", _views())
    registry, _ = fresh(hmr, "registry", "views")
    project.write("views.py", _views().replace('route("/b")', 'route("/bee")'))
    assert hmr.reload_module("views")[0] == ["views"]
    # Its old entry, the one it held, goes, as a fresh start has it (it stayed beside).
    assert [p for p, _ in registry.ROUTES] == ["/a", "/bee"]


def test_only_moved_module_reaches_no_dependent(project: Project, hmr: Any) -> None:
    project.write("base.py", "def f():\n    return 1\n")
    project.write("user.py", "import base\n\nVALUE = base.f()\n")
    _, user = fresh(hmr, "base", "user")
    project.write("base.py", "# a comment\n\ndef f():\n    return 1\n")
    assert hmr.reload_module("base")[0] == ["base"]
    assert user.VALUE == 1


def test_an_overloaded_method_moved_takes_its_new_lines(project: Project, hmr: Any) -> None:
    """Methods declared with ``@overload`` stubs: the class holds the implementation, the
    last definition of its name; lines added above move it too (tracebacks, getsource)."""
    source = textwrap.dedent(
        """\
        {above}from typing import overload


        class Registry:
            @overload
            def get(self, key: int) -> int: ...
            @overload
            def get(self, key: str) -> str: ...
            def get(self, key):
                raise KeyError(key)

            def plain(self):
                raise KeyError("plain")
        """
    )
    path = project.write("r.py", source.format(above=""))
    (r,) = fresh(hmr, "r")
    registry = r.Registry
    project.write("r.py", source.format(above="# one\n# two\n# three\n"))
    assert hmr.reload_module("r")[0] == ["r"]
    assert r.Registry is registry
    assert _raised_at(lambda: registry().get(1)) == _line_of(path, "raise KeyError(key)")
    assert _raised_at(registry().plain) == _line_of(path, 'raise KeyError("plain")')
    assert inspect.getsourcelines(registry.get)[0][0].strip() == "def get(self, key):"


def test_lines_added_inside_definitions_give_them_their_new_lines(
    project: Project, hmr: Any
) -> None:
    """A comment or a blank line added inside a function, a method, a nested function or
    a block's definitions changes no code, and nothing runs again; but the lines below it
    within the definition moved, and their code takes the new line numbers (before,
    tracebacks and debuggers kept the old ones, and showed the wrong source lines)."""
    source = textwrap.dedent(
        """\
        import registry


        @registry.route("/p")
        def plain(x):
            y = x + 1{inside}
            raise ValueError(y)


        class K:
            def m(self):{inside}
                raise KeyError("m")

            def below(self):
                raise KeyError("below")


        def outer():{inside}
            def inner():
                raise KeyError("inner")
            return inner


        if True:{inside}
            def in_if():
                raise KeyError("in_if")
        """
    )
    project.write("registry.py", REGISTRY)
    path = project.write("views.py", source.format(inside=""))
    registry, views = fresh(hmr, "registry", "views")
    registry.SEALED = True  # a second registration raises
    plain, k, outer, in_if = views.plain, views.K, views.outer, views.in_if
    inner = outer()

    for inside in ("\n    # a comment\n", "\n\n\n    # two blank lines and a comment"):
        project.write("views.py", source.format(inside=inside.replace("\n    ", "\n        ")))
        result = hmr.reload("views")
        assert result.failed == {}
        assert result.reloaded == ["views"]
        assert (views.plain, views.K, views.outer, views.in_if) == (plain, k, outer, in_if)
        assert [p for p, _ in registry.ROUTES] == ["/p"]
        linecache.checkcache()
        assert _raised_at(lambda: plain(1)) == _line_of(path, "raise ValueError(y)")
        assert _raised_at(k().m) == _line_of(path, 'raise KeyError("m")')
        assert _raised_at(k().below) == _line_of(path, 'raise KeyError("below")')
        assert _raised_at(outer()) == _line_of(path, 'raise KeyError("inner")')
        assert _raised_at(in_if) == _line_of(path, 'raise KeyError("in_if")')
        assert inspect.getsource(plain).endswith("    raise ValueError(y)\n")
        # A closure made before keeps running; its lines are those it was made with.
        assert _raised_at(inner) > 0
    # Nothing changed since: asked again, nothing runs.
    assert hmr.reload_module("views")[0] == []


def test_a_method_edited_beside_one_that_gained_a_comment_gives_both_their_lines(
    project: Project, hmr: Any
) -> None:
    source = textwrap.dedent(
        """\
        class Handler:
            def first(self):
                return {value}

            def boom(self):{inside}
                raise ValueError("boom")
        """
    )
    path = project.write("h.py", source.format(value=1, inside=""))
    (h,) = fresh(hmr, "h")
    handler = h.Handler
    project.write("h.py", source.format(value=2, inside="\n        # why it fails\n"))
    assert hmr.reload_module("h")[0] == ["h"]
    assert h.Handler is handler
    assert handler().first() == 2
    assert _raised_at(handler().boom) == _line_of(path, 'raise ValueError("boom")')

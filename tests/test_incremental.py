"""Statement-level reloads and early cutoff (cascade "auto"), on both cores.

The ``fresh`` helper imports modules and remembers their sources, as the
watcher does right after a program's imports: an edit is then compared with
the source that ran.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import py_compile
import sys
import textwrap
import threading
import time
import traceback
import types
from pathlib import Path
from typing import Any

import pytest

import muckrack_hmr.tracking
from tests.conftest import Project


def fresh(hmr: Any, *names: str) -> list[Any]:
    modules = [importlib.import_module(name) for name in names]
    hmr.remember_sources()
    return modules


def test_module_state_that_the_edit_did_not_touch_survives(project: Project, hmr: Any) -> None:
    project.write("registry.py", "HANDLERS = []\ndef register(f):\n    HANDLERS.append(f)\n")
    source = """\
        import registry

        CACHE = {{}}
        COUNT = 0

        def bump():
            global COUNT
            COUNT += 1
            CACHE[COUNT] = "hit"

        def handler():
            return "{tag}"

        registry.register(handler)
        """
    project.write("a.py", source.format(tag="old"))
    a, registry = fresh(hmr, "a", "registry")
    a.bump()
    a.bump()
    cache = a.CACHE
    assert (a.COUNT, cache, [h() for h in registry.HANDLERS]) == (2, {1: "hit", 2: "hit"}, ["old"])

    project.write("a.py", source.format(tag="new"))
    reloaded, _ = hmr.reload_module("a")

    assert reloaded == ["a"]
    assert a.COUNT == 2
    assert a.CACHE is cache
    assert cache == {1: "hit", 2: "hit"}
    # The register(...) call did not change: it did not run again.
    assert [h() for h in registry.HANDLERS] == ["new"]


def test_dependents_run_again_only_when_they_consumed_a_change(project: Project, hmr: Any) -> None:
    project.write(
        "a.py",
        """\
        LIMIT = 10

        def build():
            return [1, 2]

        def compute():
            return 5

        def helper():
            return "helper-v1"

        def deco(func):
            func.tag = "v1"
            return func

        def register(item):
            return item
        """,
    )
    project.write("uses_in_body.py", "from a import helper\n\ndef g():\n    return helper()\n")
    project.write("calls_build.py", "from a import build\n\nTABLE = build()\n")
    project.write("reads_limit.py", "import a\n\nDOUBLE = a.LIMIT * 2\n")
    project.write(
        "through_own_function.py",
        "import a\n\ndef local():\n    return a.compute() + 1\n\nVALUE = local()\n",
    )
    project.write("decorated.py", "from a import deco\n\n@deco\ndef h():\n    return 1\n")
    project.write("registers.py", "import a\n\na.register('me')\nX = 1\n")
    mods = fresh(
        hmr,
        "a",
        "uses_in_body",
        "calls_build",
        "reads_limit",
        "through_own_function",
        "decorated",
        "registers",
    )
    _a, uses_in_body, calls_build, reads_limit, through, decorated, _registers = mods
    assert (uses_in_body.g(), calls_build.TABLE, reads_limit.DOUBLE, through.VALUE) == (
        "helper-v1",
        [1, 2],
        20,
        6,
    )

    def edit(old: str, new: str) -> list[str]:
        path = project.root / "a.py"
        path.write_text(path.read_text().replace(old, new))
        reloaded, _ = hmr.reload_module("a")
        return reloaded

    # A body used only inside another module's function: nobody runs again.
    assert edit('"helper-v1"', '"helper-v2"') == ["a"]
    assert uses_in_body.g() == "helper-v2"
    # A function called at import time.
    assert edit("[1, 2]", "[3]") == ["a", "calls_build"]
    assert calls_build.TABLE == [3]
    # A value read at import time.
    assert edit("LIMIT = 10", "LIMIT = 7") == ["a", "reads_limit"]
    assert reads_limit.DOUBLE == 14
    # A changed function called through the dependent's own function.
    assert edit("return 5", "return 50") == ["a", "through_own_function"]
    assert through.VALUE == 51
    # A decorator applied at import time.
    assert edit('func.tag = "v1"', 'func.tag = "v2"') == ["a", "decorated"]
    assert decorated.h.tag == "v2"
    # register(...) is called by a dependent at import time: when it changes,
    # that dependent runs the call again; other edits leave it alone.
    assert edit("return item", "return (item,)") == ["a", "registers"]


def test_subclasses_follow_structural_changes_only(project: Project, hmr: Any) -> None:
    project.write("a.py", "class Base:\n    KIND = 1\n\n    def m(self):\n        return 1\n")
    project.write("b.py", "from a import Base\n\nclass Sub(Base):\n    pass\n\nSEEN = Sub.KIND\n")
    a, b = fresh(hmr, "a", "b")
    sub = b.Sub
    # A method body: the class is patched in place, b does not run again.
    (project.root / "a.py").write_text(
        "class Base:\n    KIND = 1\n\n    def m(self):\n        return 2\n"
    )
    assert hmr.reload_module("a")[0] == ["a"]
    assert b.Sub().m() == 2
    # Its structure (a class attribute): b reads it at import time, so it runs again.
    (project.root / "a.py").write_text(
        "class Base:\n    KIND = 5\n\n    def m(self):\n        return 2\n"
    )
    assert hmr.reload_module("a")[0] == ["a", "b"]
    assert b.SEEN == 5
    assert b.Sub is sub  # re-run, and patched in place
    assert issubclass(b.Sub, a.Base)


BASE = """\
class Base:
    SPEED = {speed}

    def hello(self):
        return "hello"
{more}"""
COUNTER = """\
class Counter(Base):
    def __init__(self):
        self.n = 0

    def inc(self):
        self.n += 1
        return self.n


DEFAULT = Counter()
LIMIT = Counter.SPEED * 2
"""


@pytest.mark.parametrize("where", ["same module", "another module"])
def test_a_subclass_of_a_base_that_gained_a_method_keeps_its_instances(
    project: Project, hmr: Any, where: str
) -> None:
    """A base gains a method (or a plain class attribute changes): the subclass's class
    statement ran again, and so did ``DEFAULT = Counter()``: its instance was made
    again, its state lost, and what held the old one held another object.  The live
    subclass inherits the new members as it is; what reads a changed one follows."""
    if where == "same module":
        project.write("base.py", BASE.format(speed=1, more="") + "\n\n" + COUNTER)
        (base,) = fresh(hmr, "base")
        svc = base
    else:
        project.write("base.py", BASE.format(speed=1, more=""))
        project.write("svc.py", "from base import Base\n\n\n" + COUNTER)
        base, svc = fresh(hmr, "base", "svc")
    held, counter = svc.DEFAULT, svc.Counter
    held.inc()
    more = "\n    def extra(self):\n        return self.n * 10\n"
    project.write(
        "base.py", BASE.format(speed=3, more=more) + ("\n\n" + COUNTER if svc is base else "")
    )
    hmr.reload("base")
    assert (svc.DEFAULT, svc.Counter) == (held, counter)
    assert (held.inc(), held.extra(), svc.LIMIT) == (2, 20, 6)
    assert isinstance(held, base.Base)


def test_a_subclass_runs_again_when_its_base_changed_what_makes_a_class(
    project: Project, hmr: Any
) -> None:
    """A base that gained ``__init_subclass__`` acts on each subclass as it is made: the
    subclass's statement runs again, as it would in a fresh run."""
    project.write("base.py", BASE.format(speed=1, more=""))
    project.write("svc.py", "from base import Base\n\n\n" + COUNTER)
    _, svc = fresh(hmr, "base", "svc")
    more = "\n    def __init_subclass__(cls):\n        cls.REGISTERED = True\n"
    project.write("base.py", BASE.format(speed=1, more=more))
    hmr.reload("base")
    assert svc.Counter.REGISTERED is True


def test_a_subclass_of_an_abc_that_gained_an_abstract_method_is_made_again(
    project: Project, hmr: Any
) -> None:
    """An ABC's subclass takes its abstract methods as it is made: after the base gained
    one, making an instance fails, as in a fresh run."""
    abc = "import abc\n\n\nclass Base(abc.ABC):\n    def hello(self):\n        return 1\n"
    project.write("base.py", abc)
    project.write("svc.py", "from base import Base\n\n\nclass Counter(Base):\n    pass\n")
    _, svc = fresh(hmr, "base", "svc")
    assert svc.Counter().hello() == 1
    more = "\n    @abc.abstractmethod\n    def must(self):\n        pass\n"
    project.write("base.py", abc + more)
    hmr.reload("base")
    with pytest.raises(TypeError, match="abstract"):
        svc.Counter()


def test_from_import_of_a_changed_value_is_rebound(project: Project, hmr: Any) -> None:
    project.write("a.py", "LIMIT = 1\nNAMES = ['x']\n")
    project.write("b.py", "from a import LIMIT, NAMES\n\ndef limit():\n    return LIMIT\n")
    _a, b = fresh(hmr, "a", "b")
    assert (b.LIMIT, b.limit(), b.NAMES) == (1, 1, ["x"])
    (project.root / "a.py").write_text("LIMIT = 2\nNAMES = ['x', 'y']\n")
    assert hmr.reload_module("a")[0] == ["a", "b"]
    assert (b.LIMIT, b.limit(), b.NAMES) == (2, 2, ["x", "y"])


def test_an_unchanged_value_does_not_cascade(project: Project, hmr: Any) -> None:
    project.write("a.py", "LIMIT = 1\n\ndef f():\n    return 1\n")
    project.write("b.py", "from a import LIMIT\n\nDOUBLE = LIMIT * 2\n")
    a, b = fresh(hmr, "a", "b")
    assert (a.f(), b.DOUBLE) == (1, 2)
    b.DOUBLE = "kept"  # state b would lose if it ran again
    # LIMIT moved down a line (same text: it does not run again); only f changed.
    (project.root / "a.py").write_text("\nLIMIT = 1\n\ndef f():\n    return 2\n")
    assert hmr.reload_module("a")[0] == ["a"]
    assert a.f() == 2
    assert b.DOUBLE == "kept"


def test_removed_names_disappear_and_importers_fail_atomically(project: Project, hmr: Any) -> None:
    project.write("a.py", "def keep():\n    return 1\n\ndef helper():\n    return 2\n")
    project.write("b.py", "from a import helper\n\nSTATE = []\n")
    a, b = fresh(hmr, "a", "b")
    b.STATE.append("kept")
    before = dict(b.__dict__)
    errors: list[tuple[str, BaseException]] = []
    hmr.add_error_handler(lambda name, exc: errors.append((name, exc)))
    (project.root / "a.py").write_text("def keep():\n    return 1\n")
    assert hmr.reload_module("a")[0] == ["a"]
    assert not hasattr(a, "helper")
    assert [name for name, _ in errors] == ["b"]
    assert isinstance(errors[0][1], ImportError)
    assert "helper" in str(errors[0][1])
    assert b.__dict__ == before  # b keeps its old namespace
    assert b.STATE == ["kept"]


def test_a_failing_statement_leaves_everything_as_it_was(project: Project, hmr: Any) -> None:
    project.write("a.py", "X = 1\n\ndef f():\n    return 'old'\n")
    (a,) = fresh(hmr, "a")
    f, code = a.f, a.f.__code__
    (project.root / "a.py").write_text("X = 1 / 0\n\ndef f():\n    return 'new'\n")
    assert hmr.reload_module("a")[0] == []
    assert (a.X, a.f, a.f.__code__) == (1, f, code)
    assert f() == "old"
    (project.root / "a.py").write_text("X = 2\n\ndef f():\n    return 'new'\n")
    assert hmr.reload_module("a")[0] == ["a"]
    assert (a.X, f()) == (2, "new")


def test_moved_definitions_report_the_right_lines(project: Project, hmr: Any) -> None:
    project.write("a.py", "def boom():\n    raise ValueError('boom')\n")
    (a,) = fresh(hmr, "a")
    (project.root / "a.py").write_text(
        "# a comment\n\nEXTRA = 1\n\n\ndef boom():\n    raise ValueError('boom')\n"
    )
    assert hmr.reload_module("a")[0] == ["a"]
    with pytest.raises(ValueError, match="boom") as caught:
        a.boom()
    last = traceback.extract_tb(caught.value.__traceback__)[-1]
    assert (last.lineno, last.line) == (7, "raise ValueError('boom')")


@pytest.mark.parametrize(
    ("policy", "expected"), [("auto", ["a", "b"]), ("always", ["a", "b", "c"]), ("never", ["a"])]
)
def test_cascade_policies(project: Project, hmr: Any, policy: str, expected: list[str]) -> None:
    project.write("a.py", "X = 1\n")
    project.write("b.py", "import a\n\nY = a.X\n")
    project.write("c.py", "import a\n")
    _, b, _ = fresh(hmr, "a", "b", "c")
    assert b.Y == 1
    hmr.cascade = policy
    (project.root / "a.py").write_text("X = 2\n")
    assert sorted(hmr.reload_module("a")[0]) == expected
    assert (1 if policy == "never" else 2) == b.Y
    with pytest.raises(ValueError, match="cascade must be one of"):
        hmr.cascade = "sometimes"


def test_a_reload_request_applies_only_what_changed_and_force_runs_it_whole(
    project: Project, hmr: Any
) -> None:
    project.write("counter.py", "RUNS = 0\n")
    project.write("a.py", "import counter\n\ncounter.RUNS += 1\nSTATE = []\n")
    counter, a = fresh(hmr, "counter", "a")
    state = a.STATE
    assert counter.RUNS == 1
    # Nothing changed on disk: a request runs nothing, however often it comes.
    for _ in range(2):
        assert hmr.reload_module("a")[0] == []
        assert hmr.reload("a").reloaded == []
    assert counter.RUNS == 1
    assert a.STATE is state
    # An edit applies once: a second request for the same save runs nothing.
    project.write("a.py", "import counter\n\ncounter.RUNS += 1\nSTATE = []\nX = 1\n")
    assert hmr.reload_module("a")[0] == ["a"]
    assert hmr.reload_module("a")[0] == []
    assert (counter.RUNS, a.X) == (1, 1)
    assert a.STATE is state
    # force=True runs it again whole: everything it binds is new.
    assert hmr.reload_module("a", force=True)[0] == ["a"]
    assert counter.RUNS == 2
    assert a.STATE is not state


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
def test_changes_reach_users_through_package_attribute_chains(
    project: Project, hmr: Any, warm: bool
) -> None:
    project.write("pkg/__init__.py", "")
    project.write("pkg/sub.py", "X = 1\n\ndef other():\n    return 0\n")
    project.write("chain.py", "import pkg.sub\n\nY = pkg.sub.X * 2\n")
    project.write("aliased.py", "import pkg.sub as s\n\ndef f():\n    return s.X\n\nZ = f()\n")
    project.write("unrelated.py", "import pkg.sub\n\nW = pkg.sub.other\n")
    _, _, chain, aliased, _ = fresh(hmr, "pkg", "pkg.sub", "chain", "aliased", "unrelated")
    if warm:
        assert hmr.warm() >= 4
    (project.root / "pkg" / "sub.py").write_text("X = 5\n\ndef other():\n    return 0\n")
    assert sorted(hmr.reload_module("pkg.sub")[0]) == ["aliased", "chain", "pkg.sub"]
    assert (chain.Y, aliased.Z) == (10, 5)


def test_after_warm_a_reload_searches_no_importers_source(
    project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``warm()`` leaves nothing for a reload to look up: every module is analyzed and
    its ``.name`` spellings indexed, so a body edit of a module every other one imports
    reads no importer's source (before, each was searched at that reload)."""
    project.write("core.py", "def f():\n    return 1\n\nLABEL = 'a'\n")
    names = [f"user{index}" for index in range(20)]
    for name in names:
        project.write(f"{name}.py", "import core\n\nVALUE = core.LABEL\n")
    modules = fresh(hmr, "core", *names)
    held = modules[0].f
    hmr.warm()
    assert not hmr.sources.mentions.pending
    looked: list[str] = []
    ran = type(hmr.sources).ran

    def counting(store: Any, name: str) -> Any:
        looked.append(name)
        return ran(store, name)

    monkeypatch.setattr(type(hmr.sources), "ran", counting)
    (project.root / "core.py").write_text("def f():\n    return 2\n\nLABEL = 'a'\n")
    assert hmr.reload_module("core")[0] == ["core"]
    assert held() == 2
    assert set(looked) <= {"core"}


def test_graph_version_moves_with_edges(core: Any) -> None:
    graph = core.DependencyGraph()
    start = graph.version
    graph.add_edge("b", "a")
    after_edge = graph.version
    assert after_edge > start
    graph.add_edge("b", "a")  # not new
    graph.add_binding("b", "a", "f")  # bindings are not edges
    assert graph.version == after_edge
    saved = graph.clear_dependencies("b")
    assert graph.version > after_edge
    graph.restore_dependencies("b", saved)
    cleared = graph.version
    graph.remove_module("a")
    assert graph.version > cleared


def test_the_rich_result_says_what_the_reload_did(project: Project, hmr: Any) -> None:
    import sys

    project.write("a.py", "LIMIT = 1\n\ndef f():\n    return 1\n")
    project.write("b.py", "from a import LIMIT\n\nDOUBLE = LIMIT * 2\n")
    project.write("c.py", "from a import LIMIT\n\nassert LIMIT < 5, 'too big'\n")
    project.write("d.py", "import c\n\nX = c.LIMIT\n")
    fresh(hmr, "a", "b", "c", "d")
    saved_main = sys.modules["__main__"]
    main = type(sys)("__main__")
    main.__file__ = str(project.write("script.py", "from a import LIMIT\n"))
    exec("from a import LIMIT", main.__dict__)
    sys.modules["__main__"] = main
    try:
        (project.root / "a.py").write_text("LIMIT = 9\n\ndef f():\n    return 2\n")
        result = hmr.reload("a")
    finally:
        sys.modules["__main__"] = saved_main
    assert result.reloaded == ["a", "b"]
    assert result.patched == ["a.f"]
    assert result.rebound == ["__main__.LIMIT"]
    assert list(result.failed) == ["c"]
    assert isinstance(result.failed["c"], AssertionError)
    assert result.left_alone == ["d"]
    assert set(result.module_ms) == {"a", "b"}
    assert result.total_ms >= sum(result.module_ms.values())
    assert result.summary() == "a (+1 dependent, 1 patched, 1 rebound, 1 failed)"
    assert main.LIMIT == 9


def test_editing_a_decorated_body_does_not_run_the_decorator_again(
    project: Project, hmr: Any
) -> None:
    project.write(
        "routes.py",
        """\
        ROUTES = {}

        def route(path):
            def register(view):
                if path in ROUTES:  # as Flask does once it served a request
                    raise AssertionError(f"{path} is already routed")
                ROUTES[path] = view
                return view
            return register
        """,
    )
    source = """\
        from routes import route

        @route("/")
        def index():
            return "{tag}"

        SEEN = index()
        """
    project.write("views.py", source.format(tag="index-v1"))
    routes, views = fresh(hmr, "routes", "views")
    handler = routes.ROUTES["/"]
    assert handler() == "index-v1"
    (project.root / "views.py").write_text(textwrap.dedent(source.format(tag="index-v2")))
    result = hmr.reload("views")
    assert result.failed == {}
    assert result.reloaded == ["views"]
    assert {"/": handler} == routes.ROUTES  # registered once, the same view
    assert handler() == "index-v2"
    assert views.SEEN == "index-v2"  # a statement that calls it ran again


def test_a_body_replaced_before_a_failing_statement_is_put_back(project: Project, hmr: Any) -> None:
    project.write("a.py", "def f():\n    return 'old'\n\nX = 1\n")
    (a,) = fresh(hmr, "a")
    f = a.f
    (project.root / "a.py").write_text("def f():\n    return 'new'\n\nX = 1 / 0\n")
    assert hmr.reload_module("a")[0] == []
    assert (a.f, f()) == (f, "old")


@pytest.mark.parametrize(
    "docstring", ["", '"""Plugin für Übersetzungen."""'], ids=["ascii", "utf8"]
)
def test_editing_method_bodies_does_not_run_the_class_statement_again(
    project: Project, hmr: Any, docstring: str
) -> None:
    # With non-ASCII text, positions (UTF-8 bytes) do not cut the text:
    # the class is compared as trees instead of by its frame, to the same end.
    project.write(
        "plugins.py",
        """\
        PLUGINS = []
        DECORATED = []
        RUNS = []  # names, not classes: a count nothing can redirect

        class Plugin:
            def __init_subclass__(cls, **kwargs):
                super().__init_subclass__(**kwargs)
                PLUGINS.append(cls)
                RUNS.append("init_subclass")

            def name(self):
                return "base"

        def decorated(cls):
            DECORATED.append(cls)
            RUNS.append("decorator")
            return cls
        """,
    )
    source = """\
        from plugins import Plugin, decorated

        @decorated
        class Mine(Plugin):
            {docstring}

            def name(self):
                return ("{tag}", super().name())

            @property
            def label(self):
                return "{tag}-label"

            # (A property's setter: one name, two methods; it made the class statement
            # run again, its decorator and __init_subclass__ with it.)
            @label.setter
            def label(self, value):
                self.given = ("{tag}", value)

            @staticmethod
            def helper():
                return "{tag}-helper"
        """
    project.write("mine.py", source.format(tag="v1", docstring=docstring or "pass"))
    plugins, mine = fresh(hmr, "plugins", "mine")
    instance = mine.Mine()
    assert (instance.name(), instance.label, mine.Mine.helper()) == (
        ("v1", "base"),
        "v1-label",
        "v1-helper",
    )
    edited = textwrap.dedent(source.format(tag="v2", docstring=docstring or "pass"))
    (project.root / "mine.py").write_text(edited)
    result = hmr.reload("mine")
    assert result.reloaded == ["mine"]
    # __init_subclass__ and the class decorator ran once, for the class that stays.
    assert plugins.RUNS == ["init_subclass", "decorator"]
    assert (len(plugins.PLUGINS), len(plugins.DECORATED)) == (1, 1)
    assert plugins.PLUGINS[0] is plugins.DECORATED[0] is mine.Mine
    assert (instance.name(), instance.label, mine.Mine.helper()) == (
        ("v2", "base"),
        "v2-label",
        "v2-helper",
    )
    instance.label = 7
    assert instance.given == ("v2", 7)


def test_a_summary_reuses_the_analysis_of_unchanged_statements() -> None:
    from muckrack_hmr.reload.analysis import summarize

    before = "import a\n\nX = a.f(1)\n\n\ndef g():\n    return a.h()\n"
    after = "import a\n\nX = a.f(2)\n\n\ndef g():\n    return a.h()\n\nY = g()\n"
    old = summarize(before, "m.py", None)
    reused = summarize(after, "m.py", None, old)
    fresh = summarize(after, "m.py", None)

    def facts(summary: Any) -> list[tuple[Any, ...]]:
        return [
            (s.text, s.binds, s.reads, s.calls, s.body_reads, s.body_calls, s.node.lineno)
            for s in summary.statements
        ]

    assert facts(reused) == facts(fresh)
    assert reused.imports == fresh.imports
    # The unchanged ``def g`` was not analyzed again; the edited statement was.
    assert reused.statements[2].body_calls is old.statements[2].body_calls
    assert reused.statements[1].reads is not old.statements[1].reads
    assert reused.statements[2].node is not old.statements[2].node


def test_a_dependent_edited_to_use_other_names_is_reached_by_those_only(
    project: Project, hmr: Any
) -> None:
    # The index of what modules use follows each reload of a user: what it
    # stopped using no longer reaches it, what it started using does.
    source = "def f():\n    return {f}\n\ndef g():\n    return {g}\n"
    project.write("a.py", source.format(f=1, g=10))
    project.write("b.py", "import a\n\nTABLE = [a.f()]\n")
    _, b = fresh(hmr, "a", "b")
    hmr.reloader.warm()
    assert b.TABLE == [1]

    project.write("b.py", "import a\n\nTABLE = [a.g()]\n")
    assert hmr.reload_module("b")[0] == ["b"]
    assert b.TABLE == [10]

    project.write("a.py", source.format(f=2, g=10))
    assert hmr.reload_module("a")[0] == ["a"]  # b no longer calls f at import
    assert b.TABLE == [10]

    project.write("a.py", source.format(f=2, g=20))
    assert hmr.reload_module("a")[0] == ["a", "b"]
    assert b.TABLE == [20]


def test_a_module_analyzed_while_it_imports_is_not_cut_off(project: Project, hmr: Any) -> None:
    """Sources are kept from the moment a module's loader reads them: the watcher's
    background analysis may reach a module still running its top level, before the
    modules it imports are loaded (and known as project code)."""
    project.write("b.py", "X = 1\n")
    project.write(
        "a.py", "import builtins\n\nbuiltins.__hmr__.warm()\nfrom b import X\nY = X * 10\n"
    )
    a = importlib.import_module("a")
    assert a.Y == 10
    project.write("b.py", "X = 2\n")
    assert hmr.reload_module("b")[0] == ["b", "a"]
    assert a.Y == 20


WRAPPING = """\
import functools


def gzip(f):
    @functools.wraps(f)
    def inner(*args, **kwargs):
        return "{left}" + f(*args, **kwargs) + "{right}"

    return inner


def twice(f):
    def helper():
        return {helper}

    return f() * helper()
"""

WRAPPED = """\
import registry
from wrapping import gzip, twice


@registry.route("/a")
@gzip
def a():
    return "a"


@registry.route("/b")
@gzip
def b():
    return "b"


FIRST = a()
DOUBLED = twice(lambda: 3)
"""


def test_a_decorator_wrapper_edit_reaches_its_wrappers_without_running_them_again(
    project: Project, hmr: Any
) -> None:
    from tests.test_line_moves import REGISTRY

    project.write("registry.py", REGISTRY)
    project.write("wrapping.py", WRAPPING.format(left="[", right="]", helper=2))
    project.write("views.py", WRAPPED)
    registry, _, views = fresh(hmr, "registry", "wrapping", "views")
    registry.SEALED = True  # like Flask after its first request
    routes = list(registry.ROUTES)
    assert (views.a(), views.b(), views.FIRST, views.DOUBLED) == ("[a]", "[b]", "[a]", 6)

    project.write("wrapping.py", WRAPPING.format(left="<", right=">", helper=2))
    result = hmr.reload("wrapping")
    assert result.failed == {}
    # The decorated definitions did not run again: no route registered twice.
    assert routes == registry.ROUTES
    assert (views.a(), views.b()) == ("<a>", "<b>")
    assert [view() for _, view in registry.ROUTES] == ["<a>", "<b>"]
    # What called a wrapped function at import time did run again.
    assert views.FIRST == "<a>"

    # A nested function the decorator calls itself is part of what it computes.
    project.write("wrapping.py", WRAPPING.format(left="<", right=">", helper=5))
    assert hmr.reload("wrapping").failed == {}
    assert views.DOUBLED == 15
    assert routes == registry.ROUTES


def test_a_body_edit_of_a_module_everyone_imports_looks_at_no_dependent(
    project: Project, hmr: Any
) -> None:
    """The first edit right after the imports costs what later ones cost: the dependents
    that cannot have consumed the change (no ``from core import marker``, no ``.marker``
    in their source) are not analyzed, and none runs."""
    project.write(
        "core.py",
        "REG = {}\n\ndef register(f):\n    REG[f.__name__] = f\n    return f\n\n"
        "def marker():\n    return 'v1'\n\ndef helper():\n    return 1\n",
    )
    for index in range(40):
        style = "import core\n" if index % 2 else "from core import register, helper\n"
        prefix = "core." if index % 2 else ""
        project.write(
            f"m{index}.py",
            f"{style}\ndef marker():\n    return 'own'\n\n"
            f"@{prefix}register\ndef f{index}():\n"
            f"    return {prefix}helper() + marker().count('o')\n",
        )
    project.write("uses.py", "import core\n\nFIRST = core.marker()\n")
    modules = [importlib.import_module(f"m{index}") for index in range(40)]
    uses = importlib.import_module("uses")
    core = sys.modules["core"]
    assert len(core.REG) == 40
    sources = hmr.reloader.sources
    analyzed_before = set(sources._consumptions)

    project.write("core.py", core.__loader__.get_data(core.__file__).decode().replace("v1", "v2"))
    assert hmr.reload_module("core")[0] == ["core", "uses"]
    assert uses.FIRST == "v2"
    assert set(sources._consumptions) - analyzed_before - {"core"} == {"uses"}
    assert [m.marker() for m in modules[:2]] == ["own", "own"]


STAR_SOURCE = """\
__all__ = [{exports}]


def f():
    return "f"


def {second}():
    return "{second}"
"""


@pytest.mark.parametrize("edit", ["dropped from __all__", "renamed", "no __all__"])
def test_a_star_import_follows_what_the_module_exports_now(
    project: Project, hmr: Any, edit: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``from .m import *`` in a package: a name ``m`` no longer exports leaves the
    package, as in a cold start; a new one joins it."""
    project.write("pkg/__init__.py", "from .m import *\n\nLOADED = True\n")
    project.write("pkg/m.py", STAR_SOURCE.format(exports='"f", "g"', second="g"))
    (pkg,) = fresh(hmr, "pkg")
    assert (pkg.f(), pkg.g()) == ("f", "g")

    if edit == "dropped from __all__":
        source = STAR_SOURCE.format(exports='"f"', second="g")
        gone, new = ["g"], []
    elif edit == "renamed":
        source = STAR_SOURCE.format(exports='"f", "h"', second="h")
        gone, new = ["g"], ["h"]
    else:
        source = STAR_SOURCE.format(exports="", second="h").replace("__all__ = []\n", "")
        gone, new = ["g"], ["h"]
    project.write("pkg/m.py", source)
    with caplog.at_level(logging.INFO, logger="muckrack_hmr"):
        hmr.reload_module("pkg.m")
    # Said with the statement that brought it (a gunicorn trial read "pkg.g is gone" as
    # a route of its own lost).
    assert "pkg.g removed: its `from pkg.m import *` no longer brings it" in caplog.messages
    for name in gone:
        assert not hasattr(pkg, name), name
    for name in new:
        assert getattr(pkg, name)() == name
    assert pkg.f() == "f"
    assert pkg.LOADED


@pytest.mark.parametrize("recorded", [False, True], ids=["imports-waiting", "recorded"])
def test_an_edit_before_the_imports_are_recorded_reaches_what_a_later_one_does(
    project: Project, hmr: Any, recorded: bool
) -> None:
    """Moments after start-up the imports wait to be recorded in the graph (the
    program's idle time does it).  A reload then records only the imports of the
    modules that bind or spell a name that changed, not the whole start-up's, and
    reaches exactly the modules it reaches once everything is recorded."""
    core = "def f():\n    return {f}\n\nX = {x}\n\ndef k():\n    return {k}\n"
    project.write("core.py", core.format(f=1, x=1, k=0))
    project.write("caller.py", "import core\n\nY = core.f()\n")  # uses f at import
    project.write("binder.py", "from core import X\n")
    project.write("aliased.py", "import core as c\n\ndef h():\n    return c.f()\n\nH = h()\n")
    quiet = [f"quiet{index}" for index in range(8)]
    for name in quiet:
        project.write(f"{name}.py", "import core\nfrom core import f\n\nQ = 1\n")
    names = ["core", "caller", "binder", "aliased", *quiet]
    # Their sources are kept as their imports read them (no remember_sources).
    modules = {name: importlib.import_module(name) for name in names}
    graph = hmr.tracker.graph
    if recorded:
        hmr.tracker.apply_pending()
    assert (graph.pending > 0) is not recorded
    held = modules["core"].k

    project.write("core.py", core.format(f=1, x=1, k=3))
    assert hmr.reload_module("core")[0] == ["core"]
    assert held() == 3
    # Nothing uses ``k``: the imports of the other modules still wait.
    assert (graph.pending > 0) is not recorded

    project.write("core.py", core.format(f=2, x=1, k=3))
    assert sorted(hmr.reload_module("core")[0]) == ["aliased", "caller", "core"]
    assert (modules["caller"].Y, modules["aliased"].H) == (2, 2)

    project.write("core.py", core.format(f=2, x=5, k=3))
    assert sorted(hmr.reload_module("core")[0]) == ["binder", "core"]
    assert modules["binder"].X == 5
    # Once everything is recorded the graph is the one a settled start-up has.
    hmr.tracker.apply_pending()
    assert sorted(graph.dependents_of("core")) == sorted(names[1:])
    assert graph.binders("core", ["f"]) == quiet


def test_recording_the_waiting_imports_of_some_modules_keeps_the_others_in_order(
    project: Project, hmr: Any
) -> None:
    project.write("a.py", "X = 1\nY = 2\nXY = 3\n")
    project.write("b.py", "import a\nfrom a import Y\n")
    project.write("c.py", "import b\nfrom a import X\n")
    # Names in a list, not the code's tuple (kept as they came), and a name that
    # holds X without being it.
    project.write("e.py", "__import__('a', globals(), None, ['Y'], 0)\nfrom a import XY\n")
    project.write("d.py", "from a import *\nimport c\nimport e\n")
    importlib.import_module("d")
    tracker = hmr.tracker
    graph = tracker.graph
    asked: list[str] = []

    def wanted(module: str) -> bool:
        asked.append(module)
        return module == "b"

    assert graph.pending == 9
    # b's two statements, c's ``from a import X``, e's list, d's ``from a import *``.
    assert tracker.apply_pending_of(wanted, ["X"]) == 5
    assert sorted(asked) == ["b", "c", "d", "e"]  # once a module
    assert graph.pending == 4
    assert graph.dependents_of("a", settle=False) == ["d", "b", "c", "e"]  # as they ran
    assert graph.dependencies_of("c", settle=False) == ["a"]  # ``import b`` waits
    assert graph.binders("a", ["X"], settle=False) == ["d", "c"]
    assert tracker.apply_pending(limit=1) == 1  # the oldest left: c's ``import b``
    assert graph.dependencies_of("c", settle=False) == ["a", "b"]
    assert graph.pending == 3
    assert graph.bound_names("e", "a") == ["Y", "XY"]  # a read: everything recorded
    assert graph.pending == 0
    assert graph.dependencies_of("d") == ["a", "c", "e"]
    assert tracker.apply_pending_of(wanted, ["X"]) == 0


def test_the_importers_found_among_the_waiting_imports_are_every_one_the_graph_records(
    project: Project, hmr: Any
) -> None:
    """A reload moments after start-up asks which waiting import statements may make an
    edge to (or a binding from) the module it changed, by its name's last part, and
    records only those: every form of import that makes one is found, and a module
    that imports others alone is not."""
    project.write("pkg/__init__.py", "")
    project.write("pkg/sub/__init__.py", "")
    project.write("pkg/sub/target.py", "X = 1\n")
    project.write("pkg/sub/other.py", "Y = 1\n")
    project.write("legacy_shim.py", "import sys\nimport pkg.sub.target\n")
    forms = {
        "absolute": "import pkg.sub.target\n",
        "renamed": "import pkg.sub.target as t\n",
        "from_it": "from pkg.sub.target import X\n",
        "from_parent": "from pkg.sub import target\n",
        "relative": "from . import target\n",
        "relative_from": "from .target import X\n",
        "dynamic": "import importlib\nM = importlib.import_module('pkg.sub.target')\n",
        "dynamic_relative": "import importlib\nM = importlib.import_module('.target', 'pkg.sub')\n",
        "listed": "M = __import__('pkg.sub.target', globals(), None, ['X'], 0)\n",
        "aliased": "import legacy\n",
    }
    unrelated = {
        "plain": "import pkg.sub.other\nfrom pkg.sub.other import Y\n",
        "sibling": "from . import other\nfrom .other import Y\n",
        "package": "import pkg.sub\n",
    }
    for name, source in {**forms, **unrelated}.items():
        project.write(f"pkg/sub/{name}.py", source)
    importlib.import_module("legacy_shim")
    sys.modules["legacy"] = sys.modules["pkg.sub.target"]  # a renamed module's shim
    try:
        for name in [*forms, *unrelated]:
            importlib.import_module(f"pkg.sub.{name}")
        tracker, graph = hmr.tracker, hmr.tracker.graph
        assert graph.pending
        found = tracker.pending_importers_of({"target", "legacy"})
        assert found >= {f"pkg.sub.{name}" for name in forms}
        assert found.isdisjoint(f"pkg.sub.{name}" for name in unrelated)
        # (Names in a list, kept as they came, are not read: that one is always found.)
        assert tracker.pending_importers_of({"nothing_spells_this"}) == {"pkg.sub.listed"}
        assert graph.pending  # none recorded
        tracker.apply_pending()
        importers = set(graph.dependents_of("pkg.sub.target"))
        assert importers - {"legacy_shim"} == {f"pkg.sub.{name}" for name in forms}
    finally:
        del sys.modules["legacy"]


def test_a_star_import_of_a_package_that_star_imports_follows_the_module(
    project: Project, hmr: Any
) -> None:
    """``pkg/__init__.py`` takes ``*`` from ``pkg.core``, ``client`` takes ``*`` from
    ``pkg``: the package's names were rebound, but its importers never followed (it had
    not run, and what it held had changed before its look)."""
    project.write("pkg/__init__.py", "from .core import *\n")
    core = "__all__ = [{names}]\nCONST = {const}\nbeta = 'b'\n"
    project.write("pkg/core.py", core.format(names="'CONST', 'beta'", const=10))
    project.write("client.py", "from pkg import *\n\nDOUBLE = CONST * 2\n")
    pkg, client = fresh(hmr, "pkg", "client")
    assert (client.CONST, client.DOUBLE, client.beta) == (10, 20, "b")
    project.write("pkg/core.py", core.format(names="'CONST'", const=21))
    hmr.reload_module("pkg.core")
    assert (pkg.CONST, client.CONST, client.DOUBLE) == (21, 21, 42)
    # A name no longer exported leaves the package and its importer, as a fresh start has it.
    assert not hasattr(pkg, "beta")
    assert not hasattr(client, "beta")


def test_what_a_star_import_brings_is_consumed_as_a_from_import(project: Project, hmr: Any) -> None:
    """``from core import *`` binds each name ``core`` exports: a statement that reads
    one runs again when it changes (before, ``S = X`` kept the old value), and only
    that statement (the module's state stays)."""
    core = "def f():\n    return {f}\n\nX = {x}\n_PRIVATE = {p}\n"
    project.write("core.py", core.format(f=1, x=1, p=0))
    project.write(
        "starred.py",
        "from core import *\n\nS = X * 10\nT = f()\nRUNS = []\nRUNS.append(1)\n",
    )
    starred = fresh(hmr, "starred")[0]
    runs = starred.RUNS
    assert (starred.S, starred.T) == (10, 1)

    project.write("core.py", core.format(f=1, x=5, p=0))
    assert sorted(hmr.reload_module("core")[0]) == ["core", "starred"]
    assert (starred.X, starred.S, starred.T) == (5, 50, 1)

    project.write("core.py", core.format(f=2, x=5, p=0))
    assert sorted(hmr.reload_module("core")[0]) == ["core", "starred"]
    assert starred.T == 2

    project.write("core.py", core.format(f=2, x=5, p=3))  # not exported
    assert hmr.reload_module("core")[0] == ["core"]
    assert starred.RUNS is runs
    assert runs == [1]


def test_a_removed_top_level_call_is_reported_with_its_file_and_line(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    project.write("registry.py", "NAMES = []\ndef register(*names):\n    NAMES.extend(names)\n")
    source = textwrap.dedent("""\
        import registry

        registry.register("kept")
        registry.register("dropped")
        registry.register(
            "moved"
        )
        "a docstring-like string"

        def f():
            return {tag!r}
        """)
    path = project.write("a.py", source.format(tag="old"))
    a, registry = fresh(hmr, "a", "registry")
    assert registry.NAMES == ["kept", "dropped", "moved"]

    # A body edit and a call moved up a line: nothing to report.
    edited = source.replace('registry.register(\n    "moved"\n)', 'registry.register("moved")')
    project.write("a.py", edited.format(tag="new"))
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        assert hmr.reload_module("a")[0] == ["a"]
    assert a.f() == "new"
    assert [r.getMessage() for r in caplog.records if "no longer" in r.getMessage()] == []

    # The call removed: what it did stays, and the log says where it was.
    project.write("a.py", edited.replace('registry.register("dropped")\n', "").format(tag="new"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        assert hmr.reload_module("a")[0] == ["a"]
    assert registry.NAMES == ["kept", "dropped", "moved"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"{path}:4: registry.register('dropped') is no longer in the file; "
        "what it did when it ran stays until a restart"
    ]

    # A call edited (other arguments): it runs again, and is not said to be gone.
    again = edited.replace('registry.register("dropped")\n', "")
    project.write("a.py", again.replace('"kept"', '"kept", "again"').format(tag="new"))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        assert hmr.reload_module("a")[0] == ["a"]
    assert registry.NAMES == ["kept", "dropped", "moved", "kept", "again"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


def test_what_reads_a_list_a_statement_extends_in_place_follows_it(
    project: Project, hmr: Any
) -> None:
    """``INSTALLED += [...]`` below ``from .base import *``, edited: it extends the list
    it holds (base's, as at import), and ``APPS = tuple(INSTALLED)`` below runs again
    on what it holds now (it kept the old items)."""
    project.write("conf/__init__.py", "")
    project.write("conf/base.py", 'INSTALLED = ["a", "b"]\n')
    source = "from .base import *\n\nINSTALLED += {extra}\nAPPS = tuple(INSTALLED)\n"
    project.write("conf/dev.py", source.format(extra='["dev"]'))
    (dev,) = fresh(hmr, "conf.dev")
    assert dev.APPS == ("a", "b", "dev")
    project.write("conf/dev.py", source.format(extra='["x"]'))
    assert hmr.reload_module("conf.dev")[0] == ["conf.dev"]
    assert tuple(dev.INSTALLED) == dev.APPS
    assert dev.APPS[-1] == "x"


def test_a_call_on_a_container_made_again_is_not_said_to_stay(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``DD = defaultdict(list)`` then ``DD["a"].append(N)``, both edited
    (``defaultdict(set)``, ``.add``): the container is made again, so what the old
    call added went with it, and no line says it stays.  The same call removed
    while its container is kept does stay, and is said to."""
    source = "from collections import defaultdict\nN = {n}\nDD = {maker}\n{fill}\n"
    path = project.write(
        "a.py", source.format(n=1, maker="defaultdict(list)", fill="DD['a'].append(N)")
    )
    (a,) = fresh(hmr, "a")
    assert dict(a.DD) == {"a": [1]}
    live = a.DD
    edits = [
        (2, "defaultdict(set)", "DD['a'].add(N)", {"a": {2}}),
        (2, "defaultdict(list)", "DD['a'].append(1)", {"a": [1]}),
        (3, "defaultdict(list)", "DD['b'].append(1)", {"b": [1]}),
    ]
    for n, maker, fill, want in edits:
        project.write("a.py", source.format(n=n, maker=maker, fill=fill))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
            assert hmr.reload_module("a")[0] == ["a"]
        assert (dict(a.DD), a.DD) == (want, live)
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []

    # An item of it set again in place, and a call on it gone: the item the call added
    # stays (the container was not made again), and the line says so.
    hooks = "HOOKS = ['a']\nHOOKS[0] = {first!r}\n{append}"
    path = project.write("h.py", hooks.format(first="A", append="HOOKS.append('c')\n"))
    (h,) = fresh(hmr, "h")
    project.write("h.py", hooks.format(first="B", append=""))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        assert hmr.reload_module("h")[0] == ["h"]
    assert h.HOOKS == ["B", "c"]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"{path}:3: HOOKS.append('c') is no longer in the file; "
        "what it did when it ran stays until a restart"
    ]
    path = project.root / "a.py"

    # The maker kept, the call gone: its item stays, as the line says.
    project.write("a.py", source.format(n=3, maker="defaultdict(list)", fill=""))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        assert hmr.reload_module("a")[0] == []  # (nothing to run)
    assert dict(a.DD) == {"b": [1]}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"{path}:4: DD['b'].append(1) is no longer in the file; "
        "what it did when it ran stays until a restart"
    ]


def test_a_removed_class_and_function_put_back_are_the_objects_their_importers_hold(
    project: Project, hmr: Any
) -> None:
    core_source = "class Base:\n    pass\n\ndef helper():\n    return 'h1'\n"
    project.write("core.py", core_source)
    project.write(
        "users.py",
        """\
        from core import Base, helper

        class Sub(Base):
            pass

        def use():
            return helper()
        """,
    )
    project.write("star.py", "from core import *\n\ndef via():\n    return helper()\n")
    core, users, star = fresh(hmr, "core", "users", "star")
    base, helper, sub = core.Base, core.helper, users.Sub
    instance = users.Sub()
    # Removed (renamed): the importer that names them fails, and keeps them.
    project.write("core.py", core_source.replace("Base", "Base2").replace("helper", "helper2"))
    result = hmr.reload("core")
    assert (result.reloaded, list(result.failed)) == (["core"], ["users"])
    assert not hasattr(core, "helper")
    assert not hasattr(star, "helper")
    # Put back: the objects everyone held are the module's again, given the new
    # definitions, and the importer that failed recovers.
    project.write("core.py", core_source)
    result = hmr.reload("core")
    assert result.recovered == ["users"]
    assert (core.Base, core.helper, users.Base, users.helper) == (base, helper, base, helper)
    assert users.Sub is sub
    assert isinstance(instance, core.Base)
    assert star.via() == "h1"
    # And they follow later edits, wherever they are held.
    project.write("core.py", core_source.replace("'h1'", "'h2'"))
    assert hmr.reload_module("core")[0] == ["core"]
    assert (users.use(), star.via(), helper()) == ("h2", "h2", "h2")


@pytest.mark.parametrize("edit", ["added", "removed"])
def test_a_function_added_or_removed_alone_reaches_star_importers(
    project: Project, hmr: Any, edit: str
) -> None:
    """A new helper in ``utils`` and its first use in a module that takes ``from utils
    import *`` are two saves: the first binds the new name in the importer, as a
    fresh start would (before, the second save's call raised NameError).  A helper
    removed alone leaves it too."""
    one = "def old():\n    return 'old'\n"
    two = one + "\ndef new():\n    return 'new'\n"
    project.write("utils.py", one if edit == "added" else two)
    views_source = "from utils import *\n\nRUNS = [1]\n\ndef handle():\n    return {}()\n"
    project.write("views.py", views_source.format("old"))
    views = fresh(hmr, "utils", "views")[1]
    runs = views.RUNS
    assert hasattr(views, "new") == (edit == "removed")

    project.write("utils.py", two if edit == "added" else one)
    assert hmr.reload_module("utils")[0] == ["utils"]
    assert hasattr(views, "new") == (edit == "added")
    if edit == "added":
        project.write("views.py", views_source.format("new"))
        assert hmr.reload_module("views")[0] == ["views"]
        assert views.handle() == "new"
    assert views.RUNS is runs


REGISTRY_CLASS = """\
LIMIT = {limit}


class Registry:
    items = []
    count = 0
    limit = LIMIT * 10
    A = {a}
    B = A * 2

    def size(self):
        return len(Registry.items)
{more}
"""


def test_an_unchanged_class_attribute_keeps_its_live_value_when_the_class_runs_again(
    project: Project, hmr: Any
) -> None:
    """A method added runs the class statement again: ``items = []`` and ``count = 0``,
    unchanged, keep what the program put there, as a module's ``CACHE = {}`` does
    (before, the registry was emptied and the counter reset).  What reads a change
    is computed again."""
    source = REGISTRY_CLASS.format(limit=1, a=1, more="")
    project.write("m.py", source)
    (m,) = fresh(hmr, "m")
    cls, items = m.Registry, m.Registry.items
    items.extend([1, 2, 3])
    m.Registry.count = 5
    more = "\n    def first(self):\n        return Registry.items[0]\n"
    project.write("m.py", REGISTRY_CLASS.format(limit=1, a=1, more=more))
    assert hmr.reload_module("m")[0] == ["m"]
    assert m.Registry is cls
    assert (m.Registry.items, m.Registry.count) == ([1, 2, 3], 5)
    assert m.Registry.items is items
    assert (m.Registry().size(), m.Registry().first()) == (3, 1)
    # What reads a change runs again: a module constant, a class attribute above.
    project.write("m.py", REGISTRY_CLASS.format(limit=3, a=2, more=more))
    assert hmr.reload_module("m")[0] == ["m"]
    assert (m.Registry.limit, m.Registry.A, m.Registry.B) == (30, 2, 4)
    assert m.Registry.items is items
    assert m.Registry.count == 5
    # An edited assignment takes its new value.
    edited = REGISTRY_CLASS.format(limit=3, a=2, more=more).replace("count = 0", "count = 9")
    project.write("m.py", edited)
    assert hmr.reload_module("m")[0] == ["m"]
    assert (m.Registry.count, m.Registry.items) == (9, [1, 2, 3])


def test_a_class_attribute_filled_in_the_class_body_takes_what_the_new_body_made(
    project: Project, hmr: Any
) -> None:
    """``items = []`` then ``for i in range(N): items.append(i)`` (and ``total = 0`` then
    ``total += N``) in a class body: ``N`` edited ran the class statement again, but the
    attribute kept its live value (``[0, 1]`` where a fresh start has ``[0, 1, 2]``), as
    its assignment was unchanged.  Filled on what changed, it takes the new body's; one
    the program fills (``cache = {}``) keeps its live value."""
    source = (
        "N = {n}\n\n\nclass K:\n    items = []\n    for i in range(N):\n        items.append(i)\n"
        "    total = 0\n    total += N\n    cache = {{}}\n\n    def size(self):\n"
        "        return len(self.items)\n"
    )
    project.write("m.py", source.format(n=2))
    (m,) = fresh(hmr, "m")
    cls, cache = m.K, m.K.cache
    cache["kept"] = 1
    assert (m.K.items, m.K.total) == ([0, 1], 2)
    project.write("m.py", source.format(n=3))
    assert hmr.reload_module("m")[0] == ["m"]
    assert m.K is cls
    assert (m.K.items, m.K.total, m.K().size()) == ([0, 1, 2], 3, 3)
    assert m.K.cache is cache
    assert cache == {"kept": 1}


@pytest.mark.parametrize("through", ["its body", "a value it reads"])
def test_a_class_attribute_computed_by_a_call_follows_the_function(
    project: Project, hmr: Any, through: str
) -> None:
    """``LIMIT = scale(3)`` in a class body, ``scale`` edited (or a ``RATE`` it reads):
    the module's ``TOP = scale(3)`` was computed again, the class attribute kept."""
    conf = "RATE = {rate}\n\n\ndef scale(x):\n    return x * {factor}\n"
    project.write("conf.py", conf.format(rate=2, factor=2))
    project.write(
        "derived.py",
        "from conf import scale\n\nTOP = scale(3)\n\n\nclass Cfg:\n    LIMIT = scale(3)\n",
    )
    local = (
        "RATE = {rate}\n\n\ndef scale(x):\n    return x * RATE\n\n\n"
        "class Cfg:\n    LIMIT = scale(3)\n"
    )
    project.write("local.py", local.format(rate=2))
    _, derived, local_module = fresh(hmr, "conf", "derived", "local")
    assert (derived.TOP, derived.Cfg.LIMIT, local_module.Cfg.LIMIT) == (6, 6, 6)
    if through == "its body":
        project.write("conf.py", conf.format(rate=2, factor=3))
        hmr.reload_module("conf")
        assert (derived.TOP, derived.Cfg.LIMIT) == (9, 9)
    else:
        project.write("local.py", local.format(rate=4))
        hmr.reload_module("local")
        assert local_module.Cfg.LIMIT == 12


def test_a_metaclass_keeps_its_registry_through_an_edit_of_its_methods(
    project: Project, hmr: Any
) -> None:
    source = """\
        class Meta(type):
            created = []

            def __new__(mcls, name, bases, ns):
                cls = super().__new__(mcls, name, bases, ns)
                Meta.created.append(name + "{tag}"[:0])
                return cls

            def describe(cls):
                return "{tag}:" + cls.__name__


        class Widget(metaclass=Meta):
            pass
        """
    project.write("m.py", source.replace("{tag}", "v1"))
    (m,) = fresh(hmr, "m")
    created = m.Meta.created
    assert created == ["Widget"]
    project.write("m.py", source.replace("{tag}", "v2"))
    assert hmr.reload_module("m")[0] == ["m"]
    assert m.Widget.describe() == "v2:Widget"
    assert m.Meta.created is created
    assert created == ["Widget"]


def test_isinstance_answers_of_protocols_and_abcs_follow_the_edit(
    project: Project, hmr: Any
) -> None:
    """``isinstance`` against a runtime-checkable protocol or an ABC answers from a
    cache: it kept the old code's answer (a fresh start says otherwise)."""
    protocols = textwrap.dedent(
        """\
        import abc
        from typing import Protocol, runtime_checkable


        @runtime_checkable
        class Speaker(Protocol):
            def speak(self) -> str: ...
        {more}

        class Sized(abc.ABC):
            @classmethod
            def __subclasshook__(cls, other):
                return {hook}
        """
    )
    project.write("protocols.py", protocols.format(more="", hook="hasattr(other, '__len__')"))
    project.write("dogs.py", "class Dog:\n    def speak(self):\n        return 'woof'\n")
    protocols_module, dogs = fresh(hmr, "protocols", "dogs")
    assert isinstance(dogs.Dog(), protocols_module.Speaker)
    assert issubclass(list, protocols_module.Sized)
    # The protocol gains a member; the ABC's hook changes its answer.
    more = "\n    def sit(self) -> None: ..."
    project.write("protocols.py", protocols.format(more=more, hook="False"))
    assert hmr.reload_module("protocols")[0] == ["protocols"]
    assert not isinstance(dogs.Dog(), protocols_module.Speaker)
    assert not issubclass(list, protocols_module.Sized)
    # The class gains the member, in its own module: the protocol's answer follows.
    dog = "class Dog:\n    def speak(self):\n        return 'woof'\n"
    project.write("dogs.py", dog + "\n    def sit(self):\n        pass\n")
    assert hmr.reload_module("dogs")[0] == ["dogs"]
    assert isinstance(dogs.Dog(), protocols_module.Speaker)
    # And loses one, in a module that imports the protocol (to annotate with it).
    project.write(
        "dogs.py",
        "from protocols import Speaker\n\n\n"
        + dog.replace("speak", "bark")
        + "\n    def sit(self) -> None:\n        pass\n",
    )
    assert hmr.reload_module("dogs")[0] == ["dogs"]
    assert not isinstance(dogs.Dog(), protocols_module.Speaker)


def test_a_class_attribute_that_reads_a_module_attribute_follows_its_change(
    project: Project, hmr: Any
) -> None:
    """``unit = core.BASE * 2`` in a class of another module: the class runs again when
    ``core.BASE`` changes, and the attribute is computed again (it kept its old value,
    taken for an unchanged assignment that read nothing that changed)."""
    project.write("core.py", "BASE = 2\n")
    project.write("shapes.py", "import core\n\n\nclass Triangle:\n    unit = core.BASE * 2\n")
    shapes = fresh(hmr, "core", "shapes")[1]
    assert shapes.Triangle.unit == 4
    project.write("core.py", "BASE = 4\n")
    assert hmr.reload_module("core")[0] == ["core", "shapes"]
    assert shapes.Triangle.unit == 8


def test_an_edit_of_what_a_decorator_factory_returns_runs_the_defs_it_decorates(
    project: Project, hmr: Any
) -> None:
    """``@register("tag")`` calls what ``register`` returns on the def, at import: an edit
    of that inner ``deco`` is no wrapper's edit (a wrapper runs later, when called), so
    the decorated defs run again, here and in other modules (they did not: the registry
    kept what the old ``deco`` put in it)."""
    core = """\
        REGISTRY = {{}}


        def register(tag):
            def deco(fn):
                REGISTRY[{key}] = tag
                return fn

            return deco


        @register("core")
        def reg_a(x):
            return x
        """
    project.write("core.py", core.format(key="fn.__name__"))
    project.write("user.py", "import core\n\n\n@core.register('user')\ndef mine():\n    return 1\n")
    core_module, user = fresh(hmr, "core", "user")
    assert sorted(core_module.REGISTRY) == ["mine", "reg_a"]
    mine = user.mine
    project.write("core.py", core.format(key="fn.__name__.upper()"))
    assert sorted(hmr.reload_module("core")[0]) == ["core", "user"]
    assert {"MINE": "user", "REG_A": "core"}.items() <= core_module.REGISTRY.items()
    assert user.mine is mine


@pytest.mark.parametrize("import_as", ["from deco import register", "import deco"])
def test_an_edit_of_the_wrapper_a_decorator_factory_makes_runs_no_def_it_decorates(
    project: Project, hmr: Any, import_as: str
) -> None:
    """``@register("g")``, where ``register(name)`` returns ``outer(fn)``, which returns
    the wrapper ``inner``: an edit of ``inner`` alone reaches the wrapper ``g`` holds,
    in place, and no decorated ``def`` runs again (``outer``, which ran at import, is
    the same code).  They ran again: the registry took every name twice."""
    deco = """\
        REG = []


        def register(name):
            def outer(fn):
                REG.append(name)

                def inner(*args):
                    return ({tag!r}, fn(*args))

                return inner

            return outer
        """
    project.write("deco.py", deco.format(tag="v1"))
    spelled = "register" if import_as.startswith("from") else "deco.register"
    project.write("user.py", f"{import_as}\n\n\n@{spelled}('g')\ndef g(x):\n    return x\n")
    deco_module, user = fresh(hmr, "deco", "user")
    held = user.g
    assert (held(1), deco_module.REG) == (("v1", 1), ["g"])
    for tag in ("v2", "v3"):
        project.write("deco.py", deco.format(tag=tag))
        assert hmr.reload_module("deco")[0] == ["deco"]
        assert (held(1), user.g(1), deco_module.REG) == ((tag, 1), (tag, 1), ["g"])


@pytest.mark.parametrize("level", ["three", "two", "one", "wrapper"])
def test_a_three_level_decorator_factory_edit_runs_the_defs_it_decorates_as_deep_as_it_lies(
    project: Project, hmr: Any, level: str
) -> None:
    """``@three(1)(2)`` calls ``three``, what it returns, and what that returns on the def,
    at import; so does ``@three(3)(4)`` on a method, in a class body.  An edit of any of
    those levels runs the decorated definitions again (a fresh start's registry holds
    the new tag); an edit of only the wrapper ``one`` returns runs none (it takes the new
    code in place).  The edit of ``one`` ran none (taken for a wrapper's), and an edit
    of ``two`` did not reach the method."""
    deco = """\
        REG = {{}}


        def three(a):
            tag3 = {three!r}

            def two(b):
                tag2 = {two!r}

                def one(fn):
                    REG[fn.__name__] = (tag3, tag2, {one!r})

                    def wrapper(*args):
                        return ({wrapper!r}, fn(*args))

                    return wrapper

                return one

            return two
        """
    tags = {"three": "a", "two": "b", "one": "c", "wrapper": "w"}
    project.write("deco.py", deco.format(**tags))
    project.write(
        "user.py",
        "from deco import three\n\n\n@three(1)(2)\ndef f():\n    return 1\n\n\n"
        "class K:\n    @three(3)(4)\n    def m(self):\n        return 2\n",
    )
    deco_module, user = fresh(hmr, "deco", "user")
    assert deco_module.REG == {"f": ("a", "b", "c"), "m": ("a", "b", "c")}
    held = user.f
    tags[level] = tags[level] * 2
    project.write("deco.py", deco.format(**tags))
    reloaded = hmr.reload_module("deco")[0]
    expected = tuple(tags[name] for name in ("three", "two", "one"))
    assert {"f": expected, "m": expected} == deco_module.REG
    assert (held(), user.K().m()) == ((tags["wrapper"], 1), (tags["wrapper"], 2))
    assert reloaded == (["deco"] if level == "wrapper" else ["deco", "user"])


@pytest.mark.parametrize("edit", ["a value it reads", "a function it calls"])
def test_a_cache_of_results_that_read_what_changed_is_emptied(
    project: Project, hmr: Any, edit: str
) -> None:
    """``lru_cache`` results computed from the old ``FACTOR``, or by the old ``helper``,
    were kept (a fresh start computes the new ones)."""
    source = """\
        import functools

        FACTOR = {factor}


        def helper(x):
            return x + {plus}


        @functools.lru_cache(maxsize=None)
        def cached(x):
            return helper(x) * FACTOR
        """
    project.write("m.py", source.format(factor=3, plus=0))
    (m,) = fresh(hmr, "m")
    assert m.cached(4) == 12
    factor, plus = (5, 0) if edit == "a value it reads" else (3, 1)
    project.write("m.py", source.format(factor=factor, plus=plus))
    assert hmr.reload_module("m")[0] == ["m"]
    assert m.cached(4) == (4 + plus) * factor


def test_a_lambda_held_from_a_table_runs_the_new_code(project: Project, hmr: Any) -> None:
    """``HANDLERS = {"k": lambda x: ...}`` edited: the statement runs again and makes a new
    table of new lambdas; a lambda taken from the old table (a callback registered
    elsewhere) ran the old code for good, where ``lam = lambda x: ...`` was patched.  The
    old ones take the new code, and go back in their places (identity kept); a tuple keeps
    the new ones, which the old follow."""
    source = """\
        def named(x):
            return ("named", x)


        HANDLERS = {{"k": lambda x: ("{tag}", x), "named": named}}
        ORDER = [lambda: "{tag}", lambda: "second {tag}"]
        FIXED = (lambda: "{tag}",)
        lam = lambda x: ("{tag}", x)
        """
    project.write("m.py", source.format(tag="v1"))
    (m,) = fresh(hmr, "m")
    handler, first, fixed, lam = m.HANDLERS["k"], m.ORDER[0], m.FIXED[0], m.lam
    assert (handler(1), first(), fixed(), lam(1)) == (("v1", 1), "v1", "v1", ("v1", 1))
    project.write("m.py", source.format(tag="v2"))
    assert hmr.reload_module("m")[0] == ["m"]
    assert (handler(1), first(), fixed(), lam(1)) == (("v2", 1), "v2", "v2", ("v2", 1))
    assert m.HANDLERS["k"] is handler
    assert m.ORDER[0] is first
    assert m.lam is lam
    assert m.HANDLERS["named"] is m.named
    assert m.ORDER[1]() == "second v2"
    assert m.FIXED[0]() == "v2"


@pytest.mark.parametrize("wrapper", ["wraps", "closure"])
def test_the_cache_under_another_decorator_of_a_function_edited_is_emptied(
    project: Project, hmr: Any, wrapper: str
) -> None:
    """``@logged`` over ``@functools.lru_cache`` over ``def price``: a body edit of
    ``price`` emptied a bare ``lru_cache``, not one another decorator wrapped (found
    through ``__wrapped__``, or the wrapper's closure): ``price(1)`` answered the old
    code's result for good."""
    source = """\
        import functools

        CALLS = []


        def logged(f):
            {wraps}
            def inner(*args):
                CALLS.append(args)
                return f(*args)
            return inner


        @functools.lru_cache(maxsize=None)
        def other(x):
            return x


        @logged
        @functools.lru_cache(maxsize=None)
        def price(x):
            return ("{tag}", x)
        """
    wraps = "@functools.wraps(f)" if wrapper == "wraps" else ""
    project.write("m.py", source.format(wraps=wraps, tag="v1"))
    (m,) = fresh(hmr, "m")
    price = m.price
    assert (price(1), m.other(1)) == (("v1", 1), 1)
    project.write("m.py", source.format(wraps=wraps, tag="v2"))
    assert hmr.reload_module("m")[0] == ["m"]
    assert m.price is price
    assert (price(1), price(2)) == (("v2", 1), ("v2", 2))
    assert m.other.cache_info().currsize == 1  # another cache: kept


@pytest.mark.parametrize("where", ["imported", "own"])
def test_a_method_cache_of_results_that_read_a_changed_value_is_emptied(
    project: Project, hmr: Any, where: str
) -> None:
    """A cached method (``@lru_cache`` on an instance method, ``@staticmethod
    @functools.cache``) kept the results of the old ``RATE`` (a user's report: ``method
    20`` live, ``method 40`` fresh), whether ``RATE`` was edited in the module it came
    from or in the class's own module; a cached function beside it was emptied.  And a
    module that called a static method reading ``RATE`` at import kept its old result."""
    calc = """\
        import functools
        {rate}


        class Calc:
            @functools.lru_cache(maxsize=None)
            def rated(self, x):
                return x * RATE

            @staticmethod
            @functools.cache
            def srated(x):
                return x * RATE

            @staticmethod
            def plain(x):
                return x * RATE

            @functools.cache
            def other(self, x):
                return x
        """
    own = where == "own"
    project.write("conf.py", "RATE = 10\n")
    project.write("calc.py", calc.format(rate="RATE = 10" if own else "from conf import RATE"))
    project.write("user.py", "from calc import Calc\n\nX = Calc.plain(2)\n")
    calc_module, user = fresh(hmr, "calc", "user")
    c = calc_module.Calc()
    assert (c.rated(2), calc_module.Calc.srated(2), c.other(2), user.X) == (20, 20, 2, 20)
    if own:
        project.write("calc.py", calc.format(rate="RATE = 20"))
        assert hmr.reload_module("calc")[0] == ["calc", "user"]
    else:
        project.write("conf.py", "RATE = 20\n")
        assert hmr.reload_module("conf")[0] == ["conf", "calc", "user"]
    assert (c.rated(2), calc_module.Calc.srated(2), user.X) == (40, 40, 40)
    assert calc_module.Calc.other.cache_info().currsize == 1  # (reads no RATE: kept)


def test_the_log_line_names_the_saved_modules_and_counts_the_dependents(
    project: Project, hmr: Any
) -> None:
    """Two independent modules saved in one burst were logged as ``a (+1 dependent)``."""
    project.write("a.py", "def f():\n    return 1\n")
    project.write("b.py", "LIMIT = 1\n")
    project.write("c.py", "from b import LIMIT\n\nDOUBLE = LIMIT * 2\n")
    fresh(hmr, "a", "b", "c")
    (project.root / "a.py").write_text("def f():\n    return 2\n")
    (project.root / "b.py").write_text("LIMIT = 2\n")
    result = hmr.reloader.reload_result(["a", "b"])
    assert sorted(result.reloaded) == ["a", "b", "c"]
    assert result.summary() in ("a, b (+1 dependent, 1 patched)", "b, a (+1 dependent, 1 patched)")
    assert sys.modules["c"].DOUBLE == 4


def test_an_import_that_brings_another_function_or_class_reruns_what_read_the_old_one(
    project: Project, hmr: Any
) -> None:
    """``from util import fmt`` made ``from other import fmt`` (a module renamed, its
    importers fixed): the statements that stored the old function (a table, a class
    attribute) run again, as after a cold start; so for a class."""
    project.write("util.py", "def fmt(x):\n    return f'<{x}>'\n\n\nclass Shape:\n    pass\n")
    project.write("other.py", "def fmt(x):\n    return f'[{x}]'\n\n\nclass Shape:\n    pass\n")
    source = """\
        from util import Shape, fmt

        FORMATS = {"x": fmt}
        KINDS = [Shape]


        class R:
            formats = {"x": fmt}


        def render(x):
            return FORMATS["x"](x), R.formats["x"](x), fmt(x), KINDS[0].__module__
        """
    project.write("core.py", source)
    (core,) = fresh(hmr, "core")
    assert core.render("a") == ("<a>", "<a>", "<a>", "util")
    project.write("core.py", source.replace("from util import", "from other import"))
    assert hmr.reload("core").reloaded == ["core"]
    assert core.render("a") == ("[a]", "[a]", "[a]", "other")


def test_a_new_body_is_given_once_what_it_uses_is_defined(project: Project, hmr: Any) -> None:
    """Other threads call the live function while a reload runs: ``f`` edited to call a
    ``g`` added below it gets its new body once ``g`` is bound, not before (a thread would
    meet ``NameError: name 'g' is not defined``, which neither version raises)."""
    source = (
        "SEEN = []\n\n\n"
        "def note(function):\n"  # (it calls nothing: any call may reach f)
        "    global SEEN\n"
        "    try:\n"
        "        g  # noqa: B018\n"
        "        bound = True\n"
        "    except NameError:\n"
        "        bound = False\n"
        '    SEEN = [*SEEN, (bound, "g" in f.__code__.co_names)]\n'
        "    return function\n\n\n"
        "def f():\n"
        "    {body}\n"
        "{more}"
    )
    project.write("m.py", source.format(body="return 1", more=""))
    (m,) = fresh(hmr, "m")
    project.write(
        "m.py", source.format(body="return g()", more="\n\n@note\ndef g():\n    return 2\n")
    )
    assert hmr.reload("m").reloaded == ["m"]
    # When g's decorator ran (g not bound yet), f still had its old body.
    assert m.SEEN == [(False, False)]
    assert m.f() == 2


def test_a_class_gains_the_method_a_patched_method_calls_before_that_method_changes(
    project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muckrack_hmr.reload import patching

    source = "class C:\n    def a(self):\n        return {body}\n{more}"
    project.write("c.py", source.format(body="1", more=""))
    (c,) = fresh(hmr, "c")
    steps: list[str] = []
    set_member, apply_function = patching._Patcher._set_member, patching._Patcher._apply_function

    def noted_member(self: Any, cls: type, key: str, value: object) -> None:
        steps.append(key)
        set_member(self, cls, key, value)

    def noted_function(self: Any, old: Any, new: Any) -> None:
        steps.append(old.__name__)
        apply_function(self, old, new)

    monkeypatch.setattr(patching._Patcher, "_set_member", noted_member)
    monkeypatch.setattr(patching._Patcher, "_apply_function", noted_function)
    more = "\n    def b(self):\n        return 2\n"
    project.write("c.py", source.format(body="self.b()", more=more))
    assert hmr.reload("c").reloaded == ["c"]
    assert steps.index("b") < steps.index("a")
    assert c.C().a() == 2


def test_a_call_running_the_old_code_still_finds_a_name_the_edit_removed(
    project: Project, hmr: Any
) -> None:
    """A call already running finishes with its old code, in another thread too: a
    name that code reads, which the edit removed, stays until no running code reads it
    (it raised NameError, which neither version does), then goes."""
    source = (
        "import threading\n\n"
        "started, go = threading.Event(), threading.Event()\n\n\n"
        "def f():\n"
        "    started.set()\n"
        "    go.wait(10)\n"
        "    return {body}\n"
        "{more}"
    )
    project.write("m.py", source.format(body="g()", more="\n\ndef g():\n    return 1\n"))
    (m,) = fresh(hmr, "m")
    results: list[object] = []

    def call() -> None:
        try:
            results.append(m.f())
        except Exception as exc:  # what the test is about
            results.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    assert m.started.wait(10)
    project.write("m.py", source.format(body="2", more=""))
    assert hmr.reload("m").reloaded == ["m"]
    m.go.set()
    worker.join(10)
    assert results == [1]
    deadline = time.monotonic() + 10
    while hasattr(m, "g") and time.monotonic() < deadline:
        time.sleep(0.01)  # a bounded wait for the removal (the reloader's own thread)
    assert not hasattr(m, "g")
    assert m.f() == 2


def test_a_call_running_another_module_s_old_code_finds_what_a_rename_took(
    project: Project, hmr: Any
) -> None:
    """An IDE rename saved in two files (``config.LR`` became ``LEARNING_RATE``, and its
    user ``model``) while a loop runs ``model.step``: the call running when the save
    went in finishes with its old code, which reads ``config.LR``.  Only names the
    module's own running code read stayed: the loop died (``AttributeError: module
    'config' has no attribute 'LR'``) in 8 of 8 runs.  It stays until no running code
    reads it, then goes."""
    project.write("config.py", "LR = 0.05\n")
    model = (
        "import threading\n\nimport config\n\n"
        "started, go = threading.Event(), threading.Event()\n\n\n"
        "def step():\n"
        "    started.set()\n"
        "    go.wait(10)\n"
        "    return config.{name}\n"
    )
    project.write("model.py", model.format(name="LR"))
    config, model_module = fresh(hmr, "config", "model")
    results: list[object] = []

    def call() -> None:
        try:
            results.append(model_module.step())
        except Exception as exc:  # what the test is about
            results.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    assert model_module.started.wait(10)
    project.write("config.py", "LEARNING_RATE = 0.05\n")
    project.write("model.py", model.format(name="LEARNING_RATE"))
    assert sorted(hmr.reloader.reload_result(["config", "model"]).reloaded) == ["config", "model"]
    model_module.go.set()
    worker.join(10)
    assert results == [0.05]
    deadline = time.monotonic() + 10
    while hasattr(config, "LR") and time.monotonic() < deadline:
        time.sleep(0.01)  # a bounded wait for the removal (the reloader's own thread)
    assert not hasattr(config, "LR")
    assert model_module.step() == 0.05


def test_a_call_running_the_old_code_still_finds_a_method_the_edit_removed(
    project: Project, hmr: Any
) -> None:
    """The same for a method its class lost: a worker's call running the old code, which
    calls ``self.finish_1()``, renamed ``finish_2`` by the save, finds it (it raised
    AttributeError, and the worker thread died); once no running code reads it, it goes.
    A method put back by a later edit meanwhile stays."""
    source = (
        "import threading\n\n"
        "started, go = threading.Event(), threading.Event()\n\n\n"
        "class Pipeline:\n"
        "    def process(self):\n"
        "        started.set()\n"
        "        go.wait(10)\n"
        "        return self.finish_{k}()\n\n"
        "    def finish_{k}(self):\n"
        "        return {k}\n"
    )
    project.write("m.py", source.format(k=1))
    (m,) = fresh(hmr, "m")
    live = m.Pipeline
    results: list[object] = []

    def call() -> None:
        try:
            results.append(m.Pipeline().process())
        except Exception as exc:  # what the test is about
            results.append(exc)

    worker = threading.Thread(target=call)
    worker.start()
    assert m.started.wait(10)
    project.write("m.py", source.format(k=2))
    assert hmr.reload("m").reloaded == ["m"]
    assert m.Pipeline is live
    m.go.set()
    worker.join(10)
    assert results == [1]
    deadline = time.monotonic() + 10
    while hasattr(live, "finish_1") and time.monotonic() < deadline:
        time.sleep(0.01)  # a bounded wait for the removal (the reloader's own thread)
    assert not hasattr(live, "finish_1")
    assert live().process() == 2

    # Renamed back while a call runs the code that reads finish_2: both names stay.
    m.started.clear()
    m.go.clear()
    worker = threading.Thread(target=call)
    worker.start()
    assert m.started.wait(10)
    both = source.format(k=1).replace(
        "        return 1\n", "        return 1\n\n    def finish_2(self):\n        return 2\n"
    )
    project.write("m.py", source.format(k=1))
    assert hmr.reload("m").reloaded == ["m"]  # finish_2 lingers for the running call
    project.write("m.py", both)
    assert hmr.reload("m").reloaded == ["m"]  # ... and is defined again
    m.go.set()
    worker.join(10)
    assert results == [1, 2]
    # The removal's thread ends once nothing is left to remove: finish_2 is defined.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(
        thread.name == "muckrack-hmr-removed-members" for thread in threading.enumerate()
    ):
        time.sleep(0.01)
    assert not any(t.name == "muckrack-hmr-removed-members" for t in threading.enumerate())
    # (By their names: code that spells them, this test's too, keeps them while it runs.)
    assert (getattr(live(), "finish_1")(), getattr(live(), "finish_2")()) == (1, 2)  # noqa: B009


def test_a_paused_generator_or_coroutine_resumes_with_the_names_its_code_reads(
    project: Project, hmr: Any
) -> None:
    """A ``for row in rows()`` between two rows, a request awaiting I/O: paused, on no
    thread's stack.  A save that renamed the helper they call deleted the old name at
    once, and each died with NameError as it resumed (a server's requests in flight,
    every one).  The name stays while they may resume, then goes."""
    import asyncio

    source = (
        "def label_{n}(x):\n"
        "    return 'v{n}-' + str(x)\n\n\n"
        "def rows():\n"
        "    for i in range(3):\n"
        "        yield label_{n}(i)\n\n\n"
        "async def handle(gate):\n"
        "    await gate\n"
        "    return label_{n}('done')\n"
    )
    project.write("feed.py", source.format(n=1))
    (feed,) = fresh(hmr, "feed")
    rows = feed.rows()
    assert next(rows) == "v1-0"
    loop = asyncio.new_event_loop()
    try:
        gate = loop.create_future()
        task = loop.create_task(feed.handle(gate))
        loop.run_until_complete(asyncio.sleep(0))  # the request awaits its gate
        project.write("feed.py", source.format(n=2))
        assert hmr.reload("feed").reloaded == ["feed"]
        assert list(rows) == ["v1-1", "v1-2"]  # the old code to its end
        gate.set_result(None)
        assert loop.run_until_complete(task) == "v1-done"
    finally:
        loop.close()
    assert list(feed.rows()) == ["v2-0", "v2-1", "v2-2"]
    deadline = time.monotonic() + 10
    while hasattr(feed, "label_1") and time.monotonic() < deadline:
        time.sleep(0.01)  # a bounded wait for the removal (the reloader's own thread)
    assert not hasattr(feed, "label_1")


CLASS_KEPT = """\
CREATED = []


class Counter:
    STEP = {step}

    def __init__(self):
        self.n = 0
        CREATED.append(1)

    def hit(self):
        self.n += self.STEP
        return self.n
{more}

OWN = Counter()
"""


def test_a_class_gaining_a_method_or_a_new_attribute_value_keeps_the_instances_made_of_it(
    project: Project, hmr: Any
) -> None:
    """A statement that only makes an instance of the class (``C = svc.Counter()``, in its
    module or another) keeps its instance, which has the new members from the live
    class: state stays (a game's positions were reset, a logging handler added again
    at each save).  Every other reader of the class runs again, as before, and so does
    what reads a changed member through such an instance (``C.STEP``)."""
    project.write("svc.py", CLASS_KEPT.format(step=1, more=""))
    project.write(
        "app.py",
        """\
        import svc
        from svc import Counter

        C = svc.Counter()
        D = Counter()
        DOUBLE = svc.Counter.STEP * 2
        THROUGH = C.STEP + 1
        NAMES = sorted(name for name in vars(Counter) if not name.startswith("_"))
        """,
    )
    svc, app = fresh(hmr, "svc", "app")
    held, own, other = app.C, svc.OWN, app.D
    held.hit()
    held.hit()
    assert (held.n, len(svc.CREATED), app.DOUBLE, app.THROUGH) == (2, 3, 2, 2)

    more = "\n    def reset(self):\n        self.n = 0\n"
    project.write("svc.py", CLASS_KEPT.format(step=1, more=more))
    assert hmr.reload("svc").reloaded == ["svc", "app"]
    assert app.C is held
    assert svc.OWN is own
    assert app.D is other
    assert (held.n, len(svc.CREATED)) == (2, 3)
    assert app.NAMES == ["STEP", "hit", "reset"]  # read the class: ran again
    held.reset()
    assert held.n == 0

    project.write("svc.py", CLASS_KEPT.format(step=5, more=more))
    assert hmr.reload("svc").reloaded == ["svc", "app"]
    assert app.C is held
    assert svc.OWN is own
    assert (held.hit(), len(svc.CREATED), app.DOUBLE, app.THROUGH) == (5, 3, 10, 6)


@pytest.mark.parametrize(
    ("binding", "spelled"),
    [
        ("from pkg import svc", "svc"),
        ("from pkg import svc as other", "other"),
        ("from . import svc", "svc"),
        ("import pkg.svc", "pkg.svc"),
    ],
)
def test_an_instance_made_through_a_submodule_imported_from_its_package_is_kept(
    project: Project, hmr: Any, binding: str, spelled: str
) -> None:
    """``from pkg import svc`` then ``C = svc.Counter()``: a method added to the class
    made the instance again (its state reset: a resource's counter, a client), where
    ``import pkg.svc`` kept it."""
    project.write("pkg/__init__.py", "")
    project.write("pkg/svc.py", CLASS_KEPT.format(step=1, more=""))
    project.write("pkg/app.py", f"{binding}\n\nC = {spelled}.Counter()\n")
    svc, app = fresh(hmr, "pkg.svc", "pkg.app")
    held = app.C
    held.hit()
    assert (held.n, len(svc.CREATED)) == (1, 2)

    more = "\n    def reset(self):\n        self.n = 0\n"
    project.write("pkg/svc.py", CLASS_KEPT.format(step=1, more=more))
    assert hmr.reload("pkg.svc").reloaded == ["pkg.svc"]
    assert app.C is held
    assert (held.n, len(svc.CREATED)) == (1, 2)
    held.reset()
    assert held.n == 0


def test_a_class_whose_structure_changed_is_made_again_by_its_readers(
    project: Project, hmr: Any
) -> None:
    """A field added to a dataclass, or a member to an Enum, is no plain attribute:
    what made instances of the class or read its members runs again."""
    source = """\
        import dataclasses
        import enum


        @dataclasses.dataclass
        class Config:
            host: str = "localhost"
        {field}

        class Color(enum.Enum):
            RED = 1
        {member}
        """
    project.write("conf.py", source.format(field="", member=""))
    project.write(
        "use.py",
        "import conf\n\nCFG = conf.Config()\nNAMES = [c.name for c in conf.Color]\n",
    )
    _conf, use = fresh(hmr, "conf", "use")
    assert (vars(use.CFG), use.NAMES) == ({"host": "localhost"}, ["RED"])

    project.write("conf.py", source.format(field="    port: int = 80", member=""))
    assert hmr.reload("conf").reloaded == ["conf", "use"]
    assert vars(use.CFG) == {"host": "localhost", "port": 80}

    project.write("conf.py", source.format(field="    port: int = 80", member="    BLUE = 2"))
    assert hmr.reload("conf").reloaded == ["conf", "use"]
    assert use.NAMES == ["RED", "BLUE"]


def test_a_module_in_an_import_cycle_follows_what_the_other_ran_after_it(
    project: Project, hmr: Any
) -> None:
    """``a`` binds ``B`` from ``b``, which reads ``a.A``: an edit of ``A`` runs ``b``
    again after ``a``, and ``a`` then follows ``B`` as a fresh start has it (it kept
    the old ``B``, and what it computed from it)."""
    project.write("a.py", "A = 1\n\nfrom b import B\n\nSUM = A + B\n")
    project.write("b.py", "from a import A\n\nB = A * 10\n")
    a, b = fresh(hmr, "a", "b")
    assert (a.B, b.B, a.SUM) == (10, 10, 11)
    (project.root / "a.py").write_text("A = 2\n\nfrom b import B\n\nSUM = A + B\n")
    assert hmr.reload("a").reloaded == ["a", "b"]
    assert (a.B, b.B, a.SUM) == (20, 20, 22)
    # A body edit of b's: nothing follows, once.
    (project.root / "b.py").write_text("from a import A\n\nB = A * 10\n\ndef f():\n    return 1\n")
    assert hmr.reload("b").reloaded == ["b"]
    assert (a.B, a.SUM) == (20, 22)


def test_a_module_followed_again_in_a_cycle_runs_only_what_the_newer_changes_reach(
    project: Project, hmr: Any
) -> None:
    """``factory.make`` takes ``Config`` as a default and defines a handler that imports
    ``wiring`` when it runs; ``wiring`` runs ``value = make()``.  Once the handler ran,
    the run-time import makes a cycle: after ``wiring`` ran again, ``factory`` followed
    once more, took ``config``'s change again as new, made ``make`` anew, and
    ``value = make()`` ran a second time for one save (a Flask ``create_app()``: a third
    app).  A module that follows again takes only the changes made since."""
    project.write("config.py", "class Config:\n    GREETING = 'v1'\n")
    project.write(
        "factory.py",
        "from config import Config\n\nCALLS = []\n\n\n"
        "def make(config_class=Config):\n    CALLS.append(config_class.GREETING)\n\n"
        "    def handler():\n        import wiring\n\n        return wiring.value\n\n"
        "    return handler\n",
    )
    project.write("wiring.py", "from factory import make\n\nvalue = make()\n")
    factory, wiring = fresh(hmr, "factory", "wiring")
    assert wiring.value() is wiring.value  # the handler ran: wiring is imported at run time
    assert "factory" in hmr.dependents_of("wiring")
    project.write("config.py", "class Config:\n    GREETING = 'v2'\n")
    assert hmr.reload("config").reloaded == ["config", "factory", "wiring"]
    assert factory.CALLS == ["v1", "v2"]


def _followed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The modules reloads follow from now on, in order (each dependent looked at)."""
    from muckrack_hmr.reload import reloader

    followed: list[str] = []
    follow = reloader.Reloader._follow

    def noted(self: Any, name: str, changes: Any) -> Any:
        followed.append(name)
        return follow(self, name, changes)

    monkeypatch.setattr(reloader.Reloader, "_follow", noted)
    return followed


def _index_as(hmr: Any, index: str) -> None:
    """The index of what import-time code calls as a reload may find it: whole from
    every module's analysis (``indexed``), whole from the modules' code alone, as in
    the first moments after start-up (``code-indexed``), or left to the reload
    (``walked``)."""
    if index == "indexed":
        hmr.warm()
    elif index == "code-indexed":
        hmr.reloader.index_reach()


def _helper_users(project: Project, count: int) -> None:
    """``core.helper``, which ``count`` modules call in their functions, and ``build``,
    which ``table`` calls at import time through ``mid.compute``."""
    project.write("core.py", "def helper(x):\n    return x + 1\n\n\ndef unused():\n    return 0\n")
    for at in range(count):
        project.write(
            f"user{at}.py",
            f"import core\nfrom core import helper\n\n\ndef f{at}(x):\n"
            f"    return core.helper(x) + helper(x)\n",
        )
    project.write("mid.py", "import core\n\n\ndef compute():\n    return core.helper(10)\n")
    project.write("table.py", "import mid\n\nTABLE = [mid.compute()]\n")


def test_a_body_edit_of_a_function_many_modules_call_in_their_functions_follows_none(
    project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No import-time code calls ``helper`` (once every module is analyzed): its body edit
    concerns no other module, and the reload looks at none of the 40 that call it in
    their functions (each was followed, and each then walked every changed one)."""
    _helper_users(project, 40)
    modules = fresh(hmr, "core", "mid", *[f"user{at}" for at in range(40)])
    hmr.warm()
    followed = _followed(monkeypatch)
    project.write("core.py", "def helper(x):\n    return x + 2\n\n\ndef unused():\n    return 0\n")
    assert hmr.reload("core").reloaded == ["core"]
    assert followed == []
    assert modules[2].f0(1) == 6  # the callers run the new body
    # Imported now, a module whose top level calls helper (through mid): its next body
    # edit follows to it, and TABLE is computed again.
    table = importlib.import_module("table")
    hmr.remember_sources()
    hmr.warm()
    assert table.TABLE == [12]
    project.write("core.py", "def helper(x):\n    return x + 3\n\n\ndef unused():\n    return 0\n")
    assert hmr.reload("core").reloaded == ["core", "table"]
    assert table.TABLE == [13]
    followed.clear()
    project.write("core.py", "def helper(x):\n    return x + 3\n\n\ndef unused():\n    return 1\n")
    assert hmr.reload("core").reloaded == ["core"]
    assert followed == []


def test_modules_loaded_from_their_bytecode_caches_enter_the_index_as_from_their_code(
    project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second start loads the modules from their bytecode caches (``__pycache__``).
    Each capture listener gets the cache's bytes with the code (None for a module
    compiled from its source); both cores keep those bytes until idle time indexes
    them.  The index made of them tells what the one made of the code does."""
    _helper_users(project, 4)
    users = [f"user{at}" for at in range(4)]
    # A function the namespace holds in a wrapper: the index keeps the names it holds.
    project.write(
        "wrapped.py",
        "import functools\n\nimport core\n\n\ndef deco(f):\n    @functools.wraps(f)\n"
        "    def inner():\n        return f()\n\n    return inner\n\n\n"
        "@deco\ndef compute():\n    return core.helper(20)\n",
    )
    project.write("table2.py", "import wrapped\n\nVALUE = wrapped.compute()\n")
    for name in ("core", "mid", "table", "wrapped", "table2", *users):
        source = project.root / f"{name}.py"
        py_compile.compile(str(source), cfile=importlib.util.cache_from_source(str(source)))
    project.write("fresh.py", "import core\n\nVALUE = core.helper(0)\n")  # no cache
    seen: dict[str, bytes | None] = {}
    capture = muckrack_hmr.tracking.capture()
    assert capture is not None

    def listener(code: Any, cached: bytes | None) -> None:
        seen[os.path.basename(code.co_filename)] = cached

    capture.listeners.append(listener)
    try:
        modules = fresh(hmr, "core", "table", "fresh", "table2", *users)
    finally:
        capture.listeners.remove(listener)
    cache = Path(importlib.util.cache_from_source(str(project.root / "table.py")))
    assert seen["table.py"] == cache.read_bytes()
    assert seen["fresh.py"] is None
    assert all(seen[f"{name}.py"] is not None for name in ("core", "mid", *users))
    hmr.reloader.index_reach()
    assert {"core", "mid", "table", "fresh", "wrapped", *users} <= hmr.reloader.sources.reach.known
    followed = _followed(monkeypatch)
    project.write("core.py", "def helper(x):\n    return x + 2\n\n\ndef unused():\n    return 0\n")
    assert sorted(hmr.reload("core").reloaded) == ["core", "fresh", "table", "table2"]
    assert (modules[1].TABLE, modules[2].VALUE, modules[3].VALUE) == ([12], 2, 22)
    assert modules[4].f0(1) == 6
    assert not set(followed) & set(users)


def test_a_module_of_many_names_that_calls_its_function_at_import_follows_what_it_calls(
    project: Project, hmr: Any
) -> None:
    """A module with more names than one byte indexes (a generated module) calls one of
    its own functions at its top level, below them: a body edit of what that function
    calls runs that statement again.  (CPython 3.11-3.12 push the call's NULL before
    the EXTENDED_ARG prefixes of the name's index: the call was taken for a read, and
    the module did not follow.)"""
    project.write("core.py", "def helper():\n    return 1\n")
    many = "".join(f"V{i} = {i}\n" for i in range(300))
    project.write(
        "big.py",
        f"import core\n{many}\n\ndef late():\n    return core.helper()\n\n\nX = [late()]\n",
    )
    big = fresh(hmr, "core", "big")[1]
    hmr.reloader.index_reach()
    assert big.X == [1]
    project.write("core.py", "def helper():\n    return 20\n")
    assert sorted(hmr.reload("core").reloaded) == ["big", "core"]
    assert big.X == [20]


@pytest.mark.parametrize("cache", ["kept", "rewritten", "removed"])
def test_the_index_reads_the_code_a_module_ran_when_its_bytecode_cache_changed_since(
    project: Project, hmr: Any, cache: str
) -> None:
    """Of a module loaded from its bytecode cache, both cores keep the cache's bytes
    the loader read until the index takes the module in, when the program rests (no
    file is read then: each read would hand a program that computes the interpreter).
    A cache that another process wrote meanwhile (for a save it imported), or one
    removed, changes nothing: the index reads the code the module ran, and a body
    edit of what that code called at import time still runs the module again."""
    _helper_users(project, 1)
    table = project.root / "table.py"
    for name in ("core", "mid", "table"):
        source = project.root / f"{name}.py"
        py_compile.compile(str(source), cfile=importlib.util.cache_from_source(str(source)))
    caches = {
        str(project.root / f"{name}.py"): Path(
            importlib.util.cache_from_source(str(project.root / f"{name}.py"))
        ).read_bytes()
        for name in ("core", "mid", "table")
    }
    modules = fresh(hmr, "core", "table")
    assert modules[1].TABLE == [11]
    sources = hmr.reloader.sources
    kept = {key: value for key, value in sources._codes.items() if isinstance(value, bytes)}
    assert kept == caches
    cached = Path(importlib.util.cache_from_source(str(table)))
    if cache == "rewritten":
        # The cache of an edit whose top level calls nothing.
        other = project.write("other.py", "import mid\n\nTABLE = []\n")
        py_compile.compile(str(other), cfile=str(cached))
    elif cache == "removed":
        cached.unlink()
    hmr.reloader.index_reach()
    assert {"core", "mid", "table"} <= sources.reach.known
    project.write("core.py", "def helper(x):\n    return x + 2\n\n\ndef unused():\n    return 0\n")
    assert sorted(hmr.reload("core").reloaded) == ["core", "table"]
    assert modules[1].TABLE == [12]


@pytest.mark.parametrize("index", ["walked", "indexed", "code-indexed"])
def test_a_function_a_package_re_exports_reaches_what_calls_it_through_the_package(
    project: Project, hmr: Any, index: str
) -> None:
    """``pkg`` re-exports ``kernel.helper`` (``from .kernel import helper``, and as
    ``shout = kernel.helper``): modules that call it through the package at import
    time run again after its body edit, whether the reload walks the callers or reads
    the index of what import-time code calls (every module analyzed, or only its
    code read: the first moments after start-up).  Before, both kept the old
    results: the package passed no behaviour on, and the index knew ``pkg.helper``,
    not ``pkg.kernel.helper``.  The index from the code alone then still missed the
    package between a caller and the function: it passed nothing on, and the callers
    through it kept their old results."""
    project.write(
        "pkg/__init__.py",
        "from . import kernel\nfrom .kernel import helper, unused\n\nshout = kernel.helper\n"
        "from .twice import twice\n",
    )
    # A submodule named as the function it holds: ``pkg.twice`` is the function.
    project.write(
        "pkg/twice.py", "from .kernel import helper\n\n\ndef twice():\n    return 2 * helper()\n"
    )
    project.write("e.py", "import pkg\n\nW = pkg.twice()\n")
    kernel = "def helper():\n    return {}\n\n\ndef unused():\n    return 0\n"
    project.write("pkg/kernel.py", kernel.format(1))
    project.write("a.py", "from pkg import helper\n\nX = helper()\n")
    project.write("b.py", "import pkg\n\nY = pkg.helper()\n")
    project.write("d.py", "import pkg\n\nZ = pkg.shout()\n")
    project.write("c.py", "import pkg\n\n\ndef f():\n    return pkg.helper() + pkg.shout()\n")
    _, _, a, b, d, c, e = fresh(hmr, "pkg", "pkg.kernel", "a", "b", "d", "c", "e")
    _index_as(hmr, index)
    assert (a.X, b.Y, d.Z, c.f(), e.W) == (1, 1, 1, 2, 2)
    project.write("pkg/kernel.py", kernel.format(2))
    assert sorted(hmr.reload("pkg.kernel").reloaded) == ["a", "b", "d", "e", "pkg.kernel"]
    assert (a.X, b.Y, d.Z, c.f(), e.W) == (2, 2, 2, 4, 4)
    project.write("pkg/kernel.py", kernel.format(3))
    assert sorted(hmr.reload("pkg.kernel").reloaded) == ["a", "b", "d", "e", "pkg.kernel"]
    assert (a.X, b.Y, d.Z, c.f(), e.W) == (3, 3, 3, 6, 6)
    # A function nothing calls at import time, re-exported too: no module runs again.
    project.write("pkg/kernel.py", kernel.format(3).replace("return 0", "return 5"))
    assert hmr.reload("pkg.kernel").reloaded == ["pkg.kernel"]
    assert (a.X, b.Y, d.Z, c.f(), e.W) == (3, 3, 3, 6, 6)


@pytest.mark.parametrize("index", ["walked", "indexed", "code-indexed"])
def test_a_package_that_only_imports_a_function_passes_its_body_edit_on(
    project: Project, hmr: Any, index: str
) -> None:
    """``pkg/__init__.py`` holds only ``from .kernel import helper``: the modules that
    call ``helper`` at import time through ``pkg`` (``from pkg import helper``,
    ``pkg.helper(2)``, through a function of ``mid`` that imports it from ``pkg``) run again
    after its body edit, also when the index of what import-time code calls knows
    the modules' code alone (the first moments after start-up).  There ``pkg`` did
    not follow: it passed nothing on, and each of them kept its old value."""
    project.write("pkg/__init__.py", "from .kernel import helper\n")
    kernel = "def helper(x):\n    return x + {}\n"
    project.write("pkg/kernel.py", kernel.format(1))
    project.write("u1.py", "from pkg import helper\n\nV = helper(1)\n")
    project.write("u2.py", "import pkg\n\nW = pkg.helper(2)\n")
    project.write("mid.py", "from pkg import helper as hh\n\n\ndef f():\n    return hh(3)\n")
    project.write("u4.py", "import mid\n\nQ = mid.f()\n")
    project.write("leaf.py", "from pkg import helper\n\n\ndef g():\n    return helper(0)\n")
    _, u1, u2, _, u4, leaf = fresh(hmr, "pkg", "u1", "u2", "mid", "u4", "leaf")
    _index_as(hmr, index)
    assert (u1.V, u2.W, u4.Q, leaf.g()) == (2, 3, 4, 1)
    for step in (22, 333):
        project.write("pkg/kernel.py", kernel.format(step))
        reloaded = hmr.reload("pkg.kernel").reloaded
        assert (u1.V, u2.W, u4.Q, leaf.g()) == (1 + step, 2 + step, 3 + step, step)
        assert {"u1", "u2", "u4"} <= set(reloaded)
        assert "leaf" not in reloaded


@pytest.mark.parametrize("index", ["code-indexed", "indexed"])
def test_a_class_body_that_calls_its_own_function_follows_what_that_calls(
    project: Project, hmr: Any, index: str
) -> None:
    """``class L:`` defines ``_make()``, which calls ``core.helper``, and calls it in its
    body (``v = _make()``): a body edit of ``helper`` runs the class statement again,
    as it does for a module-level function called at import.  The class body's own
    functions were left out of the index of what import-time code calls: ``L.v``
    kept the old value."""
    project.write("core.py", "def helper(x):\n    return x + 1\n")
    project.write(
        "k.py",
        "import core\n\n\nclass L:\n    def _make():\n        return core.helper(1)\n\n"
        "    v = _make()\n\n    def method(self):\n        return core.helper(5)\n",
    )
    project.write("user.py", "import core\n\n\ndef f():\n    return core.helper(0)\n")
    _, k, user = fresh(hmr, "core", "k", "user")
    _index_as(hmr, index)
    assert (k.L.v, k.L().method(), user.f()) == (2, 6, 1)
    for step in (22, 333):
        project.write("core.py", f"def helper(x):\n    return x + {step}\n")
        reloaded = hmr.reload("core").reloaded
        assert (k.L.v, k.L().method(), user.f()) == (1 + step, 5 + step, step)
        assert reloaded == ["core", "k"]


@pytest.mark.parametrize("index", ["code-indexed", "indexed"])
def test_a_function_defined_in_an_if_or_a_try_and_called_at_import_follows_what_it_calls(
    project: Project, hmr: Any, index: str
) -> None:
    """``if DEBUG: def build(): ...`` (or under ``try:``, or ``else:``), then ``X =
    build()`` (in the block or after it): a body edit of what ``build`` calls runs
    the call again, as for a function defined at the module's level.  The statement
    was not seen to call it: ``X`` kept the old value."""
    project.write("core.py", "def helper(x):\n    return x + 1\n")
    project.write(
        "m.py",
        "import os\n\nimport core\n\nif True:\n\n    def h2():\n        return core.helper(9)\n\n"
        "    X1 = h2()\n\nX2 = h2()\n\ntry:\n\n    def h3():\n        return core.helper(10)\n\n"
        "except ImportError:\n    pass\n\nX3 = h3()\n\nif os.environ.get('NOPE_NOT_SET'):\n\n"
        "    def f():\n        return 0\n\nelse:\n\n    def f():\n"
        "        return core.helper(1)\n\n\nX4 = f()\n",
    )
    _, m = fresh(hmr, "core", "m")
    _index_as(hmr, index)
    assert (m.X1, m.X2, m.X3, m.X4) == (10, 10, 11, 2)
    for step in (22, 333):
        project.write("core.py", f"def helper(x):\n    return x + {step}\n")
        assert hmr.reload("core").reloaded == ["core", "m"]
        got = (m.X1, m.X2, m.X3, m.X4)
        assert got == (9 + step, 9 + step, 10 + step, 1 + step)


_IMPORT_TIME_CALLS = {
    "top-level": "import core\n\nX = core.helper(1)\n",
    "alias": "from core import helper as h\n\nX = h(1)\n",
    "local-function": "import core\n\n\ndef build():\n    return core.helper(1)\n\n\nX = build()\n",
    "comprehension": "import core\n\nX = [core.helper(i) for i in (1,)][0]\n",
    "class-body": "import core\n\n\nclass K:\n    Y = core.helper(1)\n\n\nX = K.Y\n",
    "other-module": "import mid\n\nX = mid.compute() - 9\n",
}


@pytest.mark.parametrize("shape", list(_IMPORT_TIME_CALLS))
def test_the_first_body_edit_moments_after_the_imports_follows_only_import_time_callers(
    project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch, shape: str
) -> None:
    """Right after the imports (no module analyzed yet), a body edit of ``helper``, which
    80 modules call in their functions, follows none of them: the code each module's
    loader made, taken into the index of what import-time code may call, tells it at
    once.  Before, each was followed (and parsed).  The module that calls it at import
    time, whatever the shape of the call, still runs again."""
    _helper_users(project, 80)
    project.write("user.py", _IMPORT_TIME_CALLS[shape])
    modules = fresh(hmr, "core", "mid", "user", *[f"user{at}" for at in range(80)])
    user = modules[2]
    assert user.X == 2
    followed = _followed(monkeypatch)
    project.write("core.py", "def helper(x):\n    return x + 2\n\n\ndef unused():\n    return 0\n")
    reloaded = hmr.reload("core").reloaded
    assert user.X == 3
    assert "user" in reloaded
    assert modules[3].f0(1) == 6  # the callers in functions run the new body
    assert not any(name.startswith("user") and name != "user" for name in followed)


@pytest.mark.parametrize("analyzed", [False, True], ids=["walked", "indexed"])
def test_a_body_edit_empties_the_cache_of_a_function_in_another_module_that_calls_it(
    project: Project, hmr: Any, analyzed: bool
) -> None:
    """``u.f``, an ``lru_cache`` function, calls ``core.helper`` (through ``u.g`` too), as
    do ``u.c`` (a cache applied by a call) and ``K.m`` (a cached static method): a body
    edit of ``helper`` empties their caches, whether the reload walks the callers or
    reads the index of what import-time code calls.  The index said no module
    followed, and the caches kept the old results until a restart."""
    project.write("core.py", "def helper(x):\n    return x + 1\n")
    project.write(
        "u.py",
        "import functools\nimport core\n\n\ndef g(x):\n    return core.helper(x)\n\n\n"
        "@functools.lru_cache\ndef f(x):\n    return g(x)\n\n\n"
        "def _impl(x):\n    return core.helper(x) * 10\n\n\n"
        "c = functools.lru_cache(maxsize=None)(_impl)\n\n\n"
        "class K:\n    @staticmethod\n    @functools.lru_cache(maxsize=None)\n"
        "    def m(x):\n        return core.helper(x) * 100\n",
    )
    _, u = fresh(hmr, "core", "u")
    if analyzed:
        hmr.warm()
    else:
        # What the program's first moments leave: the index is not whole (a module
        # imported since is not in it), and the reload takes the rest in first.
        hmr.reloader.index_reach()
        project.write("other.py", "import core\n")
        importlib.import_module("other")
    assert (u.f(1), u.c(1), u.K.m(1)) == (2, 20, 200)
    for step in (2, 3):
        project.write("core.py", f"def helper(x):\n    return x + {step}\n")
        hmr.reload("core")
        assert (u.f(1), u.c(1), u.K.m(1)) == (1 + step, 10 + step * 10, 100 + step * 100)


def test_an_augmented_assignment_that_runs_again_starts_from_the_value_above_it(
    project: Project, hmr: Any
) -> None:
    """``V = 0`` then ``V += core.helper(26)`` (and ``if ...: urlpatterns += [...]`` alike):
    when the ``+=`` line runs again for a changed input, it adds to what the statements
    above it make, as a fresh start does.  It added to the value the last run left:
    the sum grew at every save (58, 91, 128 where a fresh start has 31, 33, 37)."""
    project.write("core.py", "def helper(x):\n    return x + 1\n")
    project.write(
        "m.py",
        "import core\n\nV = 0\nW = V\nV += core.helper(26)\nV += 100\nROUTES = ['a']\n"
        "ROUTES += [core.helper(0)]\nurlpatterns = ['x']\nif core.helper(0):\n"
        "    urlpatterns += ['static']\n",
    )
    _, m = fresh(hmr, "core", "m")
    assert (m.V, m.W, m.ROUTES, m.urlpatterns) == (127, 0, ["a", 1], ["x", "static"])
    for step in (5, 7):
        project.write("core.py", f"def helper(x):\n    return x + {step}\n")
        assert hmr.reload("core").reloaded == ["core", "m"]
        got = (m.V, m.W, m.ROUTES, m.urlpatterns)
        assert got == (126 + step, 0, ["a", step], ["x", "static"])


def test_items_updated_from_their_own_value_start_again_from_the_value_above_them(
    project: Project, hmr: Any
) -> None:
    """``A[:] *= FACTOR`` and ``DF["x"] = DF["x"] * FACTOR`` (numpy's and pandas' everyday
    idioms, here on a list and a dict) ran again alone after ``FACTOR`` changed: they
    scaled what they had scaled (2 * 3 where a fresh run has 3).  They start again from
    the statement that made the object, with the updates between."""
    source = (
        "FACTOR = {factor}\n"
        "TABLE = {{'x': 1.0, 'y': 5.0}}\n"
        "TABLE['x'] = TABLE['x'] * FACTOR\n"
        "SCALED = [1, 2]\n"
        "SCALED[0] += 1\n"
        "SCALED[0] *= FACTOR\n"
        "KEEP = {{'k': 1}}\n"
        "KEEP['v'] = FACTOR\n"
    )
    project.write("prep.py", source.format(factor=2))
    (prep,) = fresh(hmr, "prep")
    keep = prep.KEEP
    assert (prep.TABLE, prep.SCALED, prep.KEEP) == ({"x": 2.0, "y": 5.0}, [4, 2], {"k": 1, "v": 2})
    project.write("prep.py", source.format(factor=3))
    assert hmr.reload_module("prep")[0] == ["prep"]
    assert (prep.TABLE, prep.SCALED) == ({"x": 3.0, "y": 5.0}, [6, 2])
    # An item set from another value only (``KEEP['v'] = FACTOR``): the same object.
    assert prep.KEEP is keep
    assert prep.KEEP == {"k": 1, "v": 3}


def test_a_statement_that_runs_again_has_the_helper_a_del_took_away_after_its_run(
    project: Project, hmr: Any
) -> None:
    """``def _make(): ...``, ``MADE = _make()``, ``del _make``: ``MADE`` runs again after
    ``N`` changed, and failed (``NameError: name '_make' is not defined``), the old
    values kept.  The def runs first, the ``del`` after, as in a fresh start."""
    source = (
        "N = {n}\n\ndef _make():\n    return N * 10\n\nMADE = _make()\ndel _make\n"
        "def _other():\n    return 1\n\nKEPT = _other()\n"
        "def _a():\n    return N\n\ndef _b():\n    return 2\n\nA = _a()\nB = _b()\ndel _a, _b\n"
    )
    project.write("prep.py", source.format(n=2))
    (prep,) = fresh(hmr, "prep")
    assert (prep.N, prep.MADE, hasattr(prep, "_make")) == (2, 20, False)
    project.write("prep.py", source.format(n=3))
    result = hmr.reload("prep")
    assert (result.reloaded, result.failed) == (["prep"], {})
    assert (prep.N, prep.MADE, hasattr(prep, "_make"), prep.KEPT) == (3, 30, False, 1)
    # One ``del`` of several, ``_b``'s def not run again: ``_b`` is gone already.
    assert (prep.A, prep.B, hasattr(prep, "_a"), hasattr(prep, "_b")) == (3, 2, False, False)


def test_a_save_that_fails_leaves_what_its_statements_changed_in_place_as_it_was(
    project: Project, hmr: Any
) -> None:
    """``CONFIG["n"] = N``, ``SEEN.append(N)``, ``core.REGISTRY.append(N)``, ``core.FLAG =
    N``, ``K.size = N`` ran again before a later line raised: the save was said to change
    nothing ("the old code keeps running"), ``N`` was 2 again, but the dict, the lists
    and the attributes held the new code's values.  They are put back; the next good
    save applies."""
    project.write(
        "core.py",
        "REGISTRY = []\nFLAG = 0\nSETTINGS = {'db': {'port': 0}}\n\n\nclass Conn:\n"
        "    port = 0\n\n\nCONN = Conn()\n",
    )
    source = (
        "import core\n"
        "N = {n}\n"
        "CONFIG = {{'n': 0}}\n"
        "CONFIG['n'] = N\n"
        "SEEN = []\n"
        "SEEN.append(N)\n"
        "core.REGISTRY.append(N)\n"
        "core.FLAG = N\n"
        "class K:\n"
        "    size = 0\n"
        "K.size = N\n"
        "core.SETTINGS['db']['port'] = N\n"
        "core.SETTINGS.update(n=N)\n"
        "core.CONN.port = N\n"
        "{broken}\n"
    )
    project.write("prep.py", source.format(n=2, broken=""))
    core, prep = fresh(hmr, "core", "prep")
    config, seen = prep.CONFIG, prep.SEEN

    def state() -> tuple[object, ...]:
        return (prep.N, prep.CONFIG, prep.SEEN, core.REGISTRY, core.FLAG, prep.K.size)

    def deeper() -> tuple[object, ...]:
        return (core.SETTINGS, core.CONN.port)

    assert state() == (2, {"n": 2}, [2], [2], 2, 2)
    assert deeper() == ({"db": {"port": 2}, "n": 2}, 2)
    project.write("prep.py", source.format(n=3, broken="BROKEN = 1 / 0"))
    result = hmr.reload("prep")
    assert list(result.failed) == ["prep"]
    assert state() == (2, {"n": 2}, [2], [2], 2, 2)
    # An item of a dict inside one, an update, an instance's attribute: alike.
    assert deeper() == ({"db": {"port": 2}, "n": 2}, 2)
    assert (config, seen) == (prep.CONFIG, prep.SEEN)
    project.write("prep.py", source.format(n=3, broken=""))
    assert hmr.reload("prep").reloaded == ["prep"]
    assert state()[:3] + state()[4:] == (3, {"n": 3}, [3], 3, 3)
    assert core.REGISTRY[-1] == 3  # (appended to another module's list: again)


def test_a_table_edited_gives_its_new_items_to_what_holds_the_old_one(
    project: Project, hmr: Any
) -> None:
    """``TABLE = {...}`` edited: a singleton built from it at run time (sqlparse's lexer
    from ``keywords.KEYWORDS``), a default argument and a cache kept the old dict for
    good, and answered with the old items.  The old container takes the new items, as a
    function takes its new code, and the module's name holds it again.  A failed save
    gives nothing."""
    source = (
        "import collections\n\nTABLE = {{'select': '{kind}'}}\nWORDS = [{words}]\n"
        "ORDERED = collections.OrderedDict(select='{kind}')\n"
        "NESTED = {{'sql': {{'select': '{kind}'}}}}\n"
    )
    project.write("kw.py", source.format(kind="dml", words="'a'"))
    project.write(
        "lexer.py",
        "import kw\nfrom kw import TABLE\n\n_LEXER = None\n\n\n"
        "def get():\n    global _LEXER\n    if _LEXER is None:\n"
        "        _LEXER = {'table': kw.TABLE, 'words': kw.WORDS, 'ordered': kw.ORDERED,\n"
        "                  'sql': kw.NESTED['sql']}\n    return _LEXER\n\n\n"
        "def kind(word, table=TABLE):\n    return table[word]\n",
    )
    kw, lexer = fresh(hmr, "kw", "lexer")
    built = lexer.get()
    assert (built["table"]["select"], built["words"], lexer.kind("select")) == ("dml", ["a"], "dml")
    project.write("kw.py", source.format(kind="keyword", words="'a', 'b'"))
    # (``lexer`` follows: its default argument reads ``TABLE``.)
    assert hmr.reload("kw").reloaded == ["kw", "lexer"]
    assert (built["table"]["select"], built["words"], lexer.kind("select")) == (
        "keyword",
        ["a", "b"],
        "keyword",
    )
    # An OrderedDict, and a dict inside one (``NESTED["sql"]``), alike.
    assert (built["ordered"]["select"], built["sql"]["select"]) == ("keyword", "keyword")
    assert kw.NESTED["sql"] is built["sql"]
    # The module and its importers hold the live one again: later changes are shared.
    assert lexer.TABLE is kw.TABLE is built["table"]
    assert kw.WORDS is built["words"]
    project.write("kw.py", source.format(kind="broken", words="'c'") + "1 / 0\n")
    assert list(hmr.reload("kw").failed) == ["kw"]
    assert (built["table"]["select"], built["words"]) == ("keyword", ["a", "b"])


def test_a_registry_a_function_fills_and_a_table_another_name_holds_are_left_as_they_are(
    project: Project, hmr: Any
) -> None:
    """``HANDLERS = []`` filled by ``@handler`` (a function that appends) and by a top-level
    ``HANDLERS.append(lambda: ...)`` that an edit changed: made again from ``HANDLERS =
    []``, it lost what the decorated def registered.  And ``B = A`` edited to ``B = [9]``
    gave A's list the new items.  Neither is made again nor refilled; ``del _helpr``, a
    typo an edit made, fails as in a fresh start."""
    source = (
        "HANDLERS = []\n\n\ndef handler(f):\n    HANDLERS.append(f)\n    return f\n\n\n"
        "@handler\ndef h1():\n    return 'h1'\n\n\nHANDLERS.append(lambda: '{lam}')\n"
        "A = [1, 2]\nB = {b}\n"
    )
    project.write("reg.py", source.format(lam="v1", b="A"))
    (reg,) = fresh(hmr, "reg")
    assert [f() for f in reg.HANDLERS] == ["h1", "v1"]
    project.write("reg.py", source.format(lam="v2", b="[9]"))
    assert hmr.reload("reg").reloaded == ["reg"]
    assert [f() for f in reg.HANDLERS][:1] == ["h1"]
    assert (reg.A, reg.B) == ([1, 2], [9])
    project.write("del.py", "def _helper():\n    return 1\n\nX = _helper()\ndel _helper\n")
    (module,) = fresh(hmr, "del")
    project.write("del.py", "def _helper():\n    return 2\n\nX = _helper()\ndel _helpr\n")
    assert list(hmr.reload("del").failed) == ["del"]
    assert (module.X, hasattr(module, "_helper")) == (1, False)


def test_a_class_attribute_table_edited_gives_its_new_items_to_the_live_one(
    project: Project, hmr: Any
) -> None:
    """``class Tables: KEYWORDS = {...}`` edited: what took the class's table (a lexer) read
    the old items for good; the live table takes the new ones, as a module's does."""
    source = (
        "class Tables:\n    KEYWORDS = {{'select': '{kind}'}}\n    WORDS = [{words}]\n\n"
        "    def first(self):\n        return self.WORDS[0]\n"
    )
    project.write("kw.py", source.format(kind="dml", words="'a'"))
    (kw,) = fresh(hmr, "kw")
    table, words = kw.Tables.KEYWORDS, kw.Tables.WORDS
    project.write("kw.py", source.format(kind="keyword", words="'b', 'c'"))
    assert hmr.reload("kw").reloaded == ["kw"]
    assert (table["select"], words, kw.Tables().first()) == ("keyword", ["b", "c"], "b")
    assert kw.Tables.KEYWORDS is table
    # A later line that raises: the class is put back, its table's items with it.
    project.write("kw.py", source.format(kind="broken", words="'d'") + "\n1 / 0\n")
    assert list(hmr.reload("kw").failed) == ["kw"]
    assert (table["select"], words, kw.Tables.KEYWORDS is table) == ("keyword", ["b", "c"], True)


def test_a_container_filled_by_a_method_starts_again_from_the_statement_that_made_it(
    project: Project, hmr: Any
) -> None:
    """``LOOP = []`` then ``for i in range(N): LOOP.append(i)`` (``.extend``, ``.add``,
    ``.setdefault``, one ``.append(N)``): run again after ``N`` changed, each added what it
    had added (``[0, 1, 0, 1, 2]`` where a fresh start has ``[0, 1, 2]``).  They start
    again from the statement that made the container, as ``+=`` does; an importer of it
    takes the new one, and what another module added to it at import follows.  A
    container made by something else (``app = App()``) is filled again as it is."""
    source = (
        "N = {n}\n"
        "LOOP = []\n"
        "for i in range(N):\n"
        "    LOOP.append(i)\n"
        "EXT = []\n"
        "EXT.extend(range(N))\n"
        "APP: list[int] = []\n"
        "APP.append(N)\n"
        "SEEN = set()\n"
        "SEEN.add(N)\n"
        "FIRST = {{}}\n"
        "FIRST.setdefault('n', N)\n"
        "BASE = ['base']\n"
        "COPIED = BASE.copy()\n"
        "COPIED.extend(range(N))\n"
        "class App:\n"
        "    def __init__(self):\n"
        "        self.hooks = []\n"
        "    def append(self, hook):\n"
        "        self.hooks.append(hook)\n"
        "app = App()\n"
        "app.append(N)\n"
    )
    project.write("prep.py", source.format(n=2))
    project.write("plugin.py", "import prep\nfrom prep import LOOP\n\nprep.EXT.append('plugin')\n")
    prep, plugin = fresh(hmr, "prep", "plugin")
    app = prep.app
    assert (
        [0, 1],
        [0, 1, "plugin"],
        [2],
        {2},
        {"n": 2},
    ) == (prep.LOOP, prep.EXT, prep.APP, prep.SEEN, prep.FIRST)
    for n in (3, 1):
        project.write("prep.py", source.format(n=n))
        assert hmr.reload("prep").reloaded == ["prep", "plugin"]
        assert list(range(n)) == prep.LOOP
        assert [*range(n), "plugin"] == prep.EXT
        assert ([n], {n}, {"n": n}) == (prep.APP, prep.SEEN, prep.FIRST)
        assert ["base", *range(n)] == prep.COPIED
        assert plugin.LOOP is prep.LOOP
        # Not a container it made: the live object, filled again.
        assert prep.app is app


@pytest.mark.parametrize(
    "edit",
    [("def bump():", "def bump(n=1):"), ("@tag('a')", "@tag('b')")],
    ids=["signature", "decorator"],
)
def test_a_def_that_adds_to_a_global_in_its_body_runs_again_without_resetting_it(
    project: Project, hmr: Any, edit: tuple[str, str]
) -> None:
    """``HITS = 0`` and a ``def`` whose body says ``global HITS; HITS += 1``: when the
    ``def`` runs again (its signature or decorator changed), the counter keeps its
    count, as for any other edit.  ``HITS = 0`` ran again first, as for a top-level
    ``HITS += 1``: the count went back to 0."""
    source = (
        "HITS = 0\n\n\ndef tag(label):\n    def apply(fn):\n        fn.label = label\n"
        "        return fn\n\n    return apply\n\n\n@tag('a')\ndef bump():\n"
        "    global HITS\n    HITS += 1\n    return HITS\n"
    )
    project.write("counter.py", source)
    (counter,) = fresh(hmr, "counter")
    for _ in range(3):
        counter.bump()
    assert counter.HITS == 3
    project.write("counter.py", source.replace(*edit))
    assert hmr.reload("counter").reloaded == ["counter"]
    assert counter.HITS == 3
    assert counter.bump() == 4
    assert counter.HITS == 4


def test_a_lambda_called_at_import_time_follows_what_its_body_calls(
    project: Project, hmr: Any
) -> None:
    """``L = lambda: core.helper(16)`` and ``V = L()``: a body edit of ``helper`` runs
    ``V = L()`` again, as for a ``def``.  It kept the old value."""
    project.write("core.py", "def helper(x):\n    return x + 1\n")
    project.write("m.py", "import core\n\nL = lambda: core.helper(16)  # noqa: E731\nV = L()\n")
    _, m = fresh(hmr, "core", "m")
    assert m.V == 17
    project.write("core.py", "def helper(x):\n    return x + 5\n")
    assert hmr.reload("core").reloaded == ["core", "m"]
    assert m.V == 21


@pytest.mark.parametrize("analyzed", [False, True], ids=["walked", "indexed"])
def test_a_static_or_class_method_called_at_import_time_follows_what_it_calls(
    project: Project, hmr: Any, analyzed: bool
) -> None:
    """``V_x = K.s()`` and ``V_y = K.c()`` (a static and a class method that call
    ``core.helper``) run again after a body edit of ``helper``; ``K()``, an instance,
    is kept (the class rule).  They kept the old values."""
    project.write("core.py", "def helper(x):\n    return x + 1\n")
    project.write(
        "m.py",
        "import core\n\n\nclass K:\n    @staticmethod\n    def s():\n"
        "        return core.helper(14)\n\n    @classmethod\n    def c(cls):\n"
        "        return core.helper(15)\n\n\n"
        "V_x = K.s()\nV_y = K.c()\nI = K()\n",
    )
    _, m = fresh(hmr, "core", "m")
    if analyzed:
        hmr.warm()
    instance = m.I
    assert (m.V_x, m.V_y) == (15, 16)
    project.write("core.py", "def helper(x):\n    return x + 5\n")
    assert hmr.reload("core").reloaded == ["core", "m"]
    assert (m.V_x, m.V_y, m.I) == (19, 20, instance)


@pytest.mark.parametrize("analyzed", [False, True], ids=["walked", "indexed"])
def test_a_class_static_or_cached_function_whose_own_body_changed_runs_its_callers_again(
    project: Project, hmr: Any, analyzed: bool
) -> None:
    """``W = K.build()``, ``S = K.sbuild()`` (a class and a static method) and ``T =
    table()`` (an ``lru_cache`` function), called at import, here and in other modules
    (``from a import K``, ``import a``): a body edit of the method or function itself
    runs them again, as a fresh start would.  They kept the old values (the class is
    patched in place, and ``T = table()`` ran before the cache was emptied)."""
    source = """\
        import functools


        class K:
            @classmethod
            def build(cls):
                return {n}

            @staticmethod
            def sbuild():
                return {n} * 10


        @functools.lru_cache(maxsize=None)
        def table():
            return {n} * 100


        W = K.build()
        S = K.sbuild()
        T = table()
        """
    project.write("a.py", source.format(n=1))
    project.write("b.py", "from a import K, table\n\nB = K.build() + K.sbuild() + table()\n")
    project.write("c.py", "import a\n\nC = a.K.build() + a.K.sbuild()\n")
    a, b, c = fresh(hmr, "a", "b", "c")
    if analyzed:
        hmr.warm()
    assert (a.W, a.S, a.T, b.B, c.C) == (1, 10, 100, 111, 11)
    for n in (2, 3):
        project.write("a.py", source.format(n=n))
        assert sorted(hmr.reload("a").reloaded) == ["a", "b", "c"]
        assert (n, n * 10, n * 100, n * 111, n * 11) == (a.W, a.S, a.T, b.B, c.C)


_METHOD_CASES = {
    # case: (the module's source with {n}, the statement reading it, a dependent or None)
    "helper-a-class-method-calls": (
        "def _helper():\n    return {n}\n\n\nclass K:\n    @classmethod\n"
        "    def build(cls):\n        return _helper()\n",
        "",
        "from m import K\n\nV = K.build()\n",
    ),
    "nested-class-method": (
        "class Outer:\n    class Inner:\n        @staticmethod\n        def build():\n"
        "            return {n}\n",
        "A = Outer.Inner.build()\n",
        "import m\n\nV = m.Outer.Inner.build()\n",
    ),
    "inherited-class-method": (
        "class K:\n    @classmethod\n    def build(cls):\n        return {n}\n\n\n"
        "class Sub(K):\n    pass\n",
        "A = Sub.build()\n",
        "from m import Sub\n\nV = Sub.build()\n",
    ),
    "cached-static-method": (
        "import functools\n\n\nclass C:\n    @staticmethod\n    @functools.cache\n"
        "    def build():\n        return {n}\n",
        "A = C.build()\n",
        None,
    ),
    "enum-member-method": (
        "import enum\n\n\nclass Color(enum.Enum):\n    RED = 1\n\n"
        "    def label(self):\n        return {n}\n",
        "A = Color.RED.label()\n",
        None,
    ),
    "instance-method": (
        "class K:\n    def compute(self):\n        return {n}\n\n\ninst = K()\n",
        "A = inst.compute()\n",
        None,
    ),
    "sibling-through-cls": (
        "class K:\n    @classmethod\n    def build(cls):\n        return cls._part()\n\n"
        "    @staticmethod\n    def _part():\n        return {n}\n",
        "A = K.build()\n",
        "from m import K\n\nV = K.build()\n",
    ),
    "sibling-through-self": (
        "class K:\n    def compute(self):\n        return self.helper()\n\n"
        "    def helper(self):\n        return {n}\n\n\ninst = K()\n",
        "A = inst.compute()\n",
        None,
    ),
    "instance-method-called-for-its-effect": (
        "class Bus:\n    def __init__(self):\n        self.seen = []\n\n"
        "    def subscribe(self, tag):\n        self.seen.append(tag * {n})\n"
        "        return len(self.seen)\n\n\nbus = Bus()\nbus.subscribe(1)\n",
        "A = len(bus.seen)\n",
        None,
    ),
}


@pytest.mark.parametrize("analyzed", [False, True], ids=["walked", "indexed"])
@pytest.mark.parametrize("case", sorted(_METHOD_CASES))
def test_a_method_whose_code_changed_runs_its_calls_at_import_again(
    project: Project, hmr: Any, case: str, analyzed: bool
) -> None:
    """A method called at import time whose code changed, or that calls a function whose
    code did: of a nested class (``Outer.Inner.build()``), inherited (``Sub.build()``),
    cached (``@staticmethod @functools.cache``), of an enum member (``Color.RED.label()``)
    or of an instance made above (``inst.compute()``), here and in a module that imports
    it.  The values stayed the old ones (the class was patched in place)."""
    source, reader, dependent = _METHOD_CASES[case]
    project.write("m.py", source.format(n=1) + "\n\n" + reader)
    names = ["m"]
    if dependent is not None:
        project.write("dep.py", dependent)
        names.append("dep")
    modules = fresh(hmr, *names)
    if analyzed:
        hmr.warm()
    m = modules[0]
    instance = getattr(m, "inst", None)

    def values() -> tuple[object, ...]:
        return (getattr(m, "A", None), *(getattr(other, "V", None) for other in modules[1:]))

    before = values()
    assert all(value in (None, 1) for value in before)
    effect = case.endswith("for-its-effect")
    for n in (2, 3):
        project.write("m.py", source.format(n=n) + "\n\n" + reader)
        assert sorted(hmr.reload("m").reloaded) == sorted(names)
        if effect:  # ``bus.subscribe(1)`` is not made twice: the bus holds one tag
            assert list(m.bus.seen) == [1]
            assert (m.bus.subscribe(1), m.bus.seen[-1]) == (2, n)  # the new code
            m.bus.seen.pop()
            continue
        assert values() == tuple(None if value is None else n for value in before)
    assert getattr(m, "inst", None) is instance  # an instance is kept


@pytest.mark.parametrize("analyzed", [False, True], ids=["walked", "indexed"])
@pytest.mark.parametrize("spelled", ["import pkg", "from pkg import K"])
def test_a_method_edit_reaches_the_importers_of_a_package_that_re_exports_its_class(
    project: Project, hmr: Any, spelled: str, analyzed: bool
) -> None:
    """``pkg/__init__.py`` says ``from .base import K``; ``S = pkg.K.sb()`` (or ``from pkg
    import K``, ``S = K.sb()``) elsewhere: a body edit of ``K.sb`` runs it again, as for a
    function re-exported so.  It kept the old value (the package passed nothing on)."""
    project.write("pkg/__init__.py", "from .base import K\n")
    base = "class K:\n    @staticmethod\n    def sb():\n        return {n}\n"
    project.write("pkg/base.py", base.format(n=1))
    call = "pkg.K.sb()" if spelled == "import pkg" else "K.sb()"
    project.write("user.py", f"{spelled}\n\nS = {call}\n")
    _, _, user = fresh(hmr, "pkg", "pkg.base", "user")
    if analyzed:
        hmr.warm()
    assert user.S == 1
    for n in (2, 3):
        project.write("pkg/base.py", base.format(n=n))
        assert "user" in hmr.reload("pkg.base").reloaded
        assert n == user.S


@pytest.mark.parametrize("analyzed", [False, True], ids=["walked", "indexed"])
def test_a_method_body_edit_reaches_no_module_that_only_calls_it_in_functions(
    project: Project, hmr: Any, analyzed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Model.save``'s body edited, where other modules subclass ``Model`` and spell
    ``.save()`` in their functions: none of them runs (nor parses) again, as before the
    methods called at import time were followed; a class method they call at import
    does make them follow."""
    core = (
        "class Model:\n    def save(self):\n        return {n}\n\n"
        "    @classmethod\n    def make(cls):\n        return {m}\n"
    )
    project.write("core.py", core.format(n=1, m=1))
    users = [f"user{index}" for index in range(6)]
    for user in users:
        project.write(
            f"{user}.py",
            "from core import Model\n\n\nclass Mine(Model):\n    pass\n\n\n"
            "def handle():\n    return Mine().save() + Model.make()\n",
        )
    project.write("maker.py", "from core import Model\n\nMADE = Model.make()\n")
    modules = fresh(hmr, "core", *users, "maker")
    if analyzed:
        hmr.warm()
    followed = _followed(monkeypatch)
    project.write("core.py", core.format(n=2, m=1))
    assert hmr.reload("core").reloaded == ["core"]
    assert followed == []
    assert modules[1].handle() == 3
    project.write("core.py", core.format(n=2, m=5))
    assert hmr.reload("core").reloaded == ["core", "maker"]
    assert (modules[-1].MADE, modules[1].handle()) == (5, 7)


@pytest.mark.parametrize("analyzed", [False, True], ids=["walked", "indexed"])
def test_a_body_edit_reaches_no_module_while_a_module_has_a_second_name(
    project: Project, hmr: Any, analyzed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A module under a second name in ``sys.modules`` (what ``import multiprocessing``
    does to the script: ``__mp_main__``) left the index of what import-time code calls
    incomplete for good: every body edit of a helper that modules call in their
    functions followed each of them (0.5 s at 1,000 modules).  Now it follows none."""
    project.write("core.py", "def helper():\n    return 1\n")
    users = [f"user{index}" for index in range(6)]
    for user in users:
        project.write(f"{user}.py", "import core\n\n\ndef handle():\n    return core.helper()\n")
    project.write("maker.py", "import core\n\nMADE = core.helper()\n")
    modules = fresh(hmr, "core", *users, "maker")
    monkeypatch.setitem(sys.modules, "second_name", modules[1])
    if analyzed:
        hmr.warm()
    followed = _followed(monkeypatch)
    project.write("core.py", "def helper():\n    return 2\n")
    assert hmr.reload("core").reloaded == ["core", "maker"]
    assert followed == ["maker"]
    assert (modules[1].handle(), modules[-1].MADE) == (2, 2)


def test_a_spawned_worker_s_script_leaves_the_index_whole(
    project: Project, hmr: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker that ``multiprocessing`` spawns runs the program's script again as
    ``__mp_main__`` (also its ``__main__``).  Its source was kept like a module's, so
    the index of what import-time code calls counted one module it never takes in:
    until idle time had analyzed the script (seconds, at 1,000 modules), every body
    edit of a helper walked the modules that call it (1.4-3.7 s for a worker's first
    save).  The script is left out, as under its own name."""
    project.write("core.py", "def helper():\n    return 1\n")
    for index in range(6):
        project.write(
            f"user{index}.py", "import core\n\n\ndef handle():\n    return core.helper()\n"
        )
    path = project.write("script.py", "import core\n\nprint(core.helper)\n")
    fresh(hmr, "core", *[f"user{index}" for index in range(6)])
    script = types.ModuleType("__mp_main__")
    script.__file__ = str(path)
    monkeypatch.setitem(sys.modules, "__main__", script)
    monkeypatch.setitem(sys.modules, "__mp_main__", script)
    status = path.stat()
    hmr.project.loaded[str(path)] = ("__mp_main__", (status.st_mtime_ns, status.st_size))
    hmr.remember_sources()
    assert hmr.reloader.sources.ran("__mp_main__") is None
    hmr.reloader.index_reach()
    followed = _followed(monkeypatch)
    project.write("core.py", "def helper():\n    return 2\n")
    assert hmr.reload("core").reloaded == ["core"]
    assert followed == []


def test_a_default_value_computed_by_a_changed_function_reaches_its_readers(
    project: Project, hmr: Any
) -> None:
    """``def f(a=core.helper(7))``: a body edit of ``helper`` makes ``f`` anew, and
    ``V_x = f.__defaults__[0]``, which read the default, follows (it kept the old one)."""
    project.write("core.py", "def helper(x):\n    return x + 1\n")
    project.write(
        "m.py",
        "import core\n\n\ndef f(a=core.helper(7)):\n    return a\n\n\n"
        "V_x = f.__defaults__[0]\nV_y = f()\n",
    )
    _, m = fresh(hmr, "core", "m")
    assert (m.V_x, m.V_y) == (8, 8)
    project.write("core.py", "def helper(x):\n    return x + 5\n")
    assert hmr.reload("core").reloaded == ["core", "m"]
    assert (m.V_x, m.V_y, m.f()) == (12, 12, 12)


_LAZY = """\
import functools

import core


class Proxy:
    # A lazy proxy (Django's settings, a context-local) whose ``__class__`` raises outside
    # its context: ``isinstance`` asks it when the type does not match.
    @property
    def __class__(self):
        raise RuntimeError("working outside of a context")

    def __call__(self):
        return 1


THING = Proxy()
X = core.helper(1)


class K:
    def m(self):
        return {m}


@functools.lru_cache
def cached():
    return core.helper(0)


def f():
    return {f}
"""


@pytest.mark.parametrize("analyzed", [False, True], ids=["walked", "indexed"])
def test_a_module_holding_a_proxy_whose_class_raises_reloads(
    project: Project, hmr: Any, analyzed: bool
) -> None:
    """A module holds an object whose ``__class__`` raises (``isinstance`` asks it when the
    type does not match): its statements run again after a body edit of what they
    call, and its own edits apply.  The reload failed at the first ``isinstance`` on
    it (``RuntimeError: working outside of a context``), and so did the index of what
    import-time code calls."""
    project.write("core.py", "def helper(x):\n    return x + 1\n")
    project.write("lazy.py", _LAZY.format(m=1, f=1))
    project.write("user.py", "import lazy\n\nY = lazy.THING\n")
    _, lazy, _ = fresh(hmr, "core", "lazy", "user")
    if analyzed:
        hmr.warm()
    instance = lazy.K()
    assert (lazy.X, lazy.cached()) == (2, 1)
    project.write("core.py", "def helper(x):\n    return x + 5\n")
    assert hmr.reload("core").reloaded == ["core", "lazy"]
    assert (lazy.X, lazy.cached()) == (6, 5)
    project.write("lazy.py", _LAZY.format(m=2, f=2))
    assert hmr.reload("lazy").reloaded == ["lazy"]
    assert (instance.m(), lazy.f()) == (2, 2)


def test_a_future_import_added_or_taken_away_runs_every_statement_as_it_compiles_now(
    project: Project, hmr: Any
) -> None:
    """``from __future__ import annotations`` taken away: the defs, whose text did not
    change, kept string annotations, and one whose annotation names nothing "reloaded"
    fine where a fresh start raises.  Each statement compiles to other code: it runs."""
    body = "STATE = []\n\n\ndef g(x: int) -> str:\n    return str(x)\n{more}"
    future = "from __future__ import annotations\n\n"
    project.write("annotated.py", future + body.format(more=""))
    (annotated,) = fresh(hmr, "annotated")
    g = annotated.g
    assert g.__annotations__ == {"x": "int", "return": "str"}

    project.write("annotated.py", body.format(more=""))
    assert not hmr.reload("annotated").failed
    assert annotated.g is g
    assert g.__annotations__ == {"x": int, "return": str}  # as a fresh start has them

    project.write(
        "annotated.py", future + body.format(more="\n\ndef f(x: Undefined) -> int:\n    return 1\n")
    )
    assert not hmr.reload("annotated").failed
    assert g.__annotations__ == {"x": "int", "return": "str"}
    project.write(
        "annotated.py", body.format(more="\n\ndef f(x: Undefined) -> int:\n    return 1\n")
    )
    failed = hmr.reload("annotated").failed
    if sys.version_info >= (3, 14):
        # (PEP 649: annotations are evaluated when asked for; a fresh start imports too.)
        assert failed == {}
        assert g.__annotations__ == {"x": int, "return": str}
        return
    assert list(failed) == ["annotated"]
    assert "Undefined" in str(failed["annotated"])
    assert g.__annotations__ == {"x": "int", "return": "str"}  # the old code runs on

"""A decorated ``def`` that runs again hands its decorators the live function.

Its signature or a decorator's argument changed, so its statement runs
again; registries that dedupe by identity (a plain list, Django's signals)
must then keep one entry, which runs the new code.  On both cores.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

import pytest

from tests.conftest import Project

REGISTRY = """\
HANDLERS = []


def register(f):
    if f not in HANDLERS:
        HANDLERS.append(f)
    return f


def tagged(tag):
    def deco(f):
        f.tag = tag
        return register(f)
    return deco
"""


def fresh(hmr: Any, *names: str) -> list[Any]:
    """Import ``names`` and keep their sources, as the watcher does: edits run statements."""
    modules = [importlib.import_module(name) for name in names]
    hmr.remember_sources()
    return modules


def test_registry_keeps_one_entry_over_signature_and_decorator_edits(
    project: Project, hmr: Any
) -> None:
    project.write("registry.py", REGISTRY)
    project.write(
        "handlers.py",
        """\
        from registry import register, tagged

        @register
        def h(x):
            return ("h v1", x)

        @tagged("one")
        def g(x):
            return ("g v1", x)
        """,
    )
    registry, handlers = fresh(hmr, "registry", "handlers")
    h, g = handlers.h, handlers.g
    assert [h, g] == registry.HANDLERS
    assert g.tag == "one"

    # The signature changes: the def runs again, its decorator gets the live function.
    project.write(
        "handlers.py",
        """\
        from registry import register, tagged

        @register
        def h(x, y=0):
            return ("h v2", x, y)

        @tagged("two")
        def g(x, *, z=3):
            return ("g v2", x, z)
        """,
    )
    assert hmr.reload_module("handlers")[0] == ["handlers"]
    assert [h, g] == registry.HANDLERS
    assert (handlers.h, handlers.g) == (h, g)
    assert [f(1) for f in registry.HANDLERS] == [("h v2", 1, 0), ("g v2", 1, 3)]
    assert (g.tag, g.__kwdefaults__) == ("two", {"z": 3})

    # A body edit afterwards reaches the one entry.
    project.write(
        "handlers.py",
        """\
        from registry import register, tagged

        @register
        def h(x, y=0):
            return ("h v3", x, y)

        @tagged("two")
        def g(x, *, z=3):
            return ("g v3", x, z)
        """,
    )
    assert hmr.reload_module("handlers")[0] == ["handlers"]
    assert [f(1) for f in registry.HANDLERS] == [("h v3", 1, 0), ("g v3", 1, 3)]


def test_a_wrapping_decorator_wraps_the_live_function(project: Project, hmr: Any) -> None:
    """``functools.wraps``: the name holds a wrapper; the function inside it is the live one."""
    project.write(
        "m.py",
        """\
        import functools

        INNER = []

        def traced(label):
            def deco(f):
                if f not in INNER:
                    INNER.append(f)
                @functools.wraps(f)
                def wrapper(*args, **kwargs):
                    return (label, f(*args, **kwargs))
                return wrapper
            return deco

        @traced("a")
        def h(x):
            return "v1"
        """,
    )
    (m,) = fresh(hmr, "m")
    wrapper, inner = m.h, m.INNER[0]
    assert wrapper(1) == ("a", "v1")
    source = (project.root / "m.py").read_text()
    project.write("m.py", source.replace('"a"', '"b"').replace("h(x)", "h(x, y=0)"))
    assert hmr.reload_module("m")[0] == ["m"]
    assert [inner] == m.INNER
    assert m.h is wrapper  # the old wrapper takes the new one's definition
    assert (wrapper(1), inner(1, 2)) == (("b", "v1"), "v1")


def test_a_failing_later_statement_puts_the_live_function_back(project: Project, hmr: Any) -> None:
    project.write("registry.py", REGISTRY)
    source = """\
        from registry import register

        @register
        def h({args}):
            return "{tag}"

        {tail}
        """
    project.write("m.py", source.format(args="x", tag="v1", tail=""))
    registry, m = fresh(hmr, "registry", "m")
    h = m.h
    project.write("m.py", source.format(args="x, y=0", tag="v2", tail="1 / 0"))
    assert hmr.reload_module("m")[0] == []
    assert [h] == registry.HANDLERS
    assert (m.h, h(1), h.__defaults__) == (h, "v1", None)


def test_overload_stubs_do_not_patch_the_implementation(project: Project, hmr: Any) -> None:
    """A name that several defs bind: the one it holds is not this statement's to patch."""
    source = """\
        from typing import overload

        @overload
        def f(x: int) -> int: ...
        @overload
        def f(x: {stub}) -> str: ...
        def f(x):
            return ("impl", x)
        """
    project.write("m.py", source.format(stub="str"))
    (m,) = fresh(hmr, "m")
    f = m.f
    project.write("m.py", source.format(stub="bytes"))
    assert hmr.reload_module("m")[0] == ["m"]
    assert f(1) == ("impl", 1)  # the implementation kept its code
    # ... and the module's name still holds it: the stub that ran again bound
    # typing's dummy, and the def below it ends a whole run of the module.
    assert m.f is f
    assert m.f("s") == ("impl", "s")
    # A stub and the implementation edited in one save.
    project.write("m.py", source.format(stub="float").replace('("impl", x)', '("impl2", x)'))
    assert hmr.reload_module("m")[0] == ["m"]
    assert (m.f(2), f(3)) == (("impl2", 2), ("impl2", 3))
    assert m.f.__code__.co_filename == str(project.root / "m.py")


def test_singledispatch_implementations_named_alike_keep_their_own_code(
    project: Project, hmr: Any
) -> None:
    """``@show.register`` implementations all named ``_``: a body edit of the first went
    into the last one (the name's), and an added one's body into the one before it."""
    int_case = "@show.register\ndef _(x: int):\n    return {int_body!r}\n"
    source = "import functools\n\n@functools.singledispatch\ndef show(x):\n    return 'obj'\n\n"
    project.write("fmt.py", source + int_case.format(int_body="int"))
    (fmt,) = fresh(hmr, "fmt")
    assert (fmt.show(1), fmt.show("s")) == ("int", "obj")
    str_case = "\n@show.register\ndef _(x: str):\n    return 'str'\n"
    project.write("fmt.py", source + int_case.format(int_body="int") + str_case)
    assert hmr.reload_module("fmt")[0] == ["fmt"]
    assert (fmt.show(1), fmt.show("s")) == ("int", "str")
    project.write("fmt.py", source + int_case.format(int_body="INT") + str_case)
    assert hmr.reload_module("fmt")[0] == ["fmt"]
    assert (fmt.show(1), fmt.show("s")) == ("INT", "str")
    assert fmt._(2) == "str"  # the name holds the last one, as a fresh import has it


def test_a_name_bound_again_below_keeps_the_binding_of_the_last_statement(
    project: Project, hmr: Any
) -> None:
    """Only the first of two statements binding a name ran again: the module ends with
    the second's value, as a whole run would, and what reads it below sees that; one
    under an ``if`` may not bind it."""
    source = """\
        LIMIT = {first}
        EARLY = LIMIT
        LIMIT = 10
        SIZE = {size}
        if LIMIT > 100:
            SIZE = 0
        if {bound}:
            SIZE = -1
        """
    project.write("m.py", source.format(first=1, size=5, bound=False))
    (m,) = fresh(hmr, "m")
    assert (m.LIMIT, m.EARLY, m.SIZE) == (10, 1, 5)
    project.write("m.py", source.format(first=200, size=6, bound=False))
    assert hmr.reload_module("m")[0] == ["m"]
    assert (m.LIMIT, m.EARLY, m.SIZE) == (10, 200, 6)
    project.write("m.py", source.format(first=3, size=7, bound="EARLY == 3"))
    assert hmr.reload_module("m")[0] == ["m"]
    assert (m.LIMIT, m.EARLY, m.SIZE) == (10, 3, -1)


def test_a_name_bound_again_under_a_try_below_is_bound_again_before_what_reads_it(
    project: Project, hmr: Any
) -> None:
    """boltons' ``urlutils``: a fallback ``class OMD``, then ``try: from .dicts import OMD``,
    then ``class QueryParamDict(OMD)``.  An edit of what the fallback reads ran it again,
    and the ``try`` (which may not bind: under ``try``) did not: the class below was made
    on the fallback, and refused as a change of its bases (``pytest --hmr`` stopped until
    a restart).  The ``try`` runs again: the class keeps its base."""
    project.write("pkg/__init__.py", "")
    project.write("pkg/util.py", "def sentinel(name):\n    return name + ' v1'\n")
    omd = """\
        from .util import sentinel

        MISSING = sentinel("missing")


        class OMD(dict):
            def getone(self, key, default=MISSING):
                return self.get(key, default)
        """
    project.write("pkg/dicts.py", omd)
    project.write(
        "pkg/urls.py",
        omd.replace("class OMD", "# a fallback\n        class OMD")
        + """

        try:
            from .dicts import OMD
        except ImportError:
            pass


        class QueryParamDict(OMD):
            pass
        """,
    )
    dicts, urls = fresh(hmr, "pkg.dicts", "pkg.urls")
    live = urls.QueryParamDict
    assert live.__bases__ == (dicts.OMD,)
    project.write("pkg/util.py", "def sentinel(name):\n    return name + ' v2'\n")
    assert sorted(hmr.reload_module("pkg.util")[0]) == ["pkg.dicts", "pkg.urls", "pkg.util"]
    assert not hmr.reloader.refused
    assert urls.OMD is dicts.OMD
    assert urls.QueryParamDict is live
    assert live.__bases__ == (dicts.OMD,)
    assert live().getone("k") == "missing v2"


def test_django_receiver_runs_once_per_signal_after_edits(project: Project, hmr: Any) -> None:
    """Django's signals dedupe receivers by id(): the live function is connected once."""
    pytest.importorskip("django")
    project.write(
        "signals.py",
        """\
        from django.dispatch import Signal

        saved = Signal()
        """,
    )
    source = """\
        from django.dispatch import receiver

        from signals import saved

        CALLS = []

        class Item:
            pass

        @receiver(saved, sender=Item{extra})
        def on_save(sender, {args}**kw):
            CALLS.append("{tag}")
        """

    def write(tag: str, args: str = "", extra: str = "") -> None:
        project.write("handlers.py", source.format(tag=tag, args=args, extra=extra))

    def calls() -> list[str]:
        handlers.CALLS.clear()
        signals.saved.send(sender=handlers.Item)
        return list(handlers.CALLS)

    write("v1")
    signals, handlers = fresh(hmr, "signals", "handlers")
    assert calls() == ["v1"]
    write("v1", args="instance=None, ")  # the signature
    assert hmr.reload_module("handlers")[0] == ["handlers"]
    assert calls() == ["v1"]
    write("v2", args="instance=None, ", extra=", weak=False")  # the decorator
    assert hmr.reload_module("handlers")[0] == ["handlers"]
    assert calls() == ["v2"]
    write("v3", args="instance=None, ", extra=", weak=False")  # the body
    assert hmr.reload_module("handlers")[0] == ["handlers"]
    assert calls() == ["v3"]


@pytest.mark.parametrize("holder", ["attribute", "slot"])
def test_a_body_edit_reaches_the_function_an_object_a_decorator_returned_holds(
    project: Project, hmr: Any, holder: str
) -> None:
    """Litestar's ``@get("/")`` returns a route handler object holding the function
    (``fn``), as click's commands hold their ``callback``: a body edit reaches that
    function in place; the object the app registered stays, and no importer runs."""
    slots = '    __slots__ = ("fn", "path")\n\n' if holder == "slot" else ""
    routing = (
        "class Handler:\n"
        f"{slots}"
        "    def __init__(self, fn, path):\n"
        "        self.fn, self.path = fn, path\n\n\n"
        "def get(path):\n"
        "    return lambda fn: Handler(fn, path)\n"
    )
    (project.root / "routing.py").write_text(routing)
    source = """\
        from routing import get


        @get("/")
        async def home():
            return "{tag}"
        """
    project.write("handlers.py", source.format(tag="v1"))
    project.write("app.py", "import handlers\n\nROUTES = [handlers.home]\n")
    _, handlers, app = fresh(hmr, "routing", "handlers", "app")
    handler = handlers.home
    project.write("handlers.py", source.format(tag="v2"))
    assert hmr.reload_module("handlers")[0] == ["handlers"]
    assert handlers.home is handler
    assert [handler] == app.ROUTES
    coroutine = handler.fn()
    with pytest.raises(StopIteration) as done:
        coroutine.send(None)
    assert done.value.value == "v2"


def test_an_attribute_a_decorator_sets_from_a_changed_function_reaches_its_readers(
    project: Project, hmr: Any
) -> None:
    """``@deco`` sets ``fn.tag = core.helper(5)``: a body edit of ``helper`` runs the
    decorated ``def`` again, and ``V = g.tag``, which read the attribute, follows (it
    kept the old value: ``g`` is the same function, so nothing read it as changed)."""
    project.write("core.py", "def helper(x):\n    return x + 1\n")
    project.write(
        "m.py",
        "import core\n\n\ndef deco(fn):\n    fn.tag = core.helper(5)\n    return fn\n\n\n"
        "@deco\ndef g():\n    return 0\n\n\nV = g.tag\n",
    )
    _, m = fresh(hmr, "core", "m")
    g = m.g
    assert (g.tag, m.V) == (6, 6)
    project.write("core.py", "def helper(x):\n    return x + 5\n")
    assert hmr.reload("core").reloaded == ["core", "m"]
    assert (m.g, g.tag, m.V) == (g, 10, 10)


def test_a_body_edit_of_one_of_two_defs_of_a_name_patches_its_own_function(
    project: Project, hmr: Any
) -> None:
    """Two defs of one name (two error handlers named ``handle``, ``@show.register``
    implementations all named ``_``): a body edit of the first ran its def again, and
    its decorators (Flask refuses ``@errorhandler`` after a request: a restart), as the
    name holds the second's function.  Its own function takes the new body in place,
    found by the line its def began at; the other keeps its code, the name its value."""
    project.write(
        "handlers.py",
        """\
        import functools

        TABLE = {}
        MADE = []


        def on(code):
            def register(f):
                MADE.append(code)
                TABLE[code] = f
                return f
            return register


        @on(404)
        def handle(error):
            return ("404 v1", error)


        @on(500)
        def handle(error):
            return ("500 v1", error)


        @functools.singledispatch
        def show(value):
            return "any"


        @show.register
        def _(value: int):
            return "int v1"


        @show.register
        def _(value: str):
            return "str v1"
        """,
    )
    (handlers,) = fresh(hmr, "handlers")
    first, second = handlers.TABLE[404], handlers.TABLE[500]
    assert handlers.handle is second
    assert handlers.show(1) == "int v1"

    source = (project.root / "handlers.py").read_text()
    project.write(
        "handlers.py",
        # Lines added above both too: each def moved, and its function's lines with it.
        "# handlers\n\n" + source.replace("404 v1", "404 v2").replace("int v1", "int v2"),
    )
    assert hmr.reload_module("handlers")[0] == ["handlers"]
    assert handlers.TABLE[404] is first
    assert handlers.TABLE[500] is second
    assert first("e") == ("404 v2", "e")
    assert second("e") == ("500 v1", "e")
    assert handlers.handle is second
    assert handlers.MADE == [404, 500]  # no decorator ran again
    assert (handlers.show(1), handlers.show("s")) == ("int v2", "str v1")
    assert first.__code__.co_firstlineno == 17  # its @on(404), two lines down

    source = (project.root / "handlers.py").read_text()
    project.write("handlers.py", source.replace("404 v2", "404 v3"))
    assert hmr.reload_module("handlers")[0] == ["handlers"]
    assert first("e") == ("404 v3", "e")
    assert handlers.MADE == [404, 500]


PLUGINS = """\
HANDLERS = []  # a plain list registry, as many plugin systems keep


def handler(event):
    def deco(f):
        HANDLERS.append((event, f))
        return f

    return deco
"""

HANDLED = """\
import plugins
from plugins import handler

{decorators}
def on_start({params}):
    return "{tag}"


class Reg:
{body}

plugins.HANDLERS.append(("class", Reg))
"""


def test_a_list_registry_holds_each_entry_once_after_its_registrations_run_again(
    project: Project, hmr: Any
) -> None:
    """A decorator line added to a def (``@handler("restart")``), or its signature edited,
    ran every decorator of it again: ``("start", on_start)`` was appended again, and the
    handler ran twice per event; a class edited ran ``HANDLERS.append(("class", Reg))``
    again, and the list held that entry twice.  Each is held once, as in a fresh run, and
    a new registration is added."""
    project.write("plugins.py", PLUGINS)
    start = '@handler("start")'
    project.write("app.py", HANDLED.format(decorators=start, params="", tag="v1", body="    pass"))
    plugins, app = fresh(hmr, "plugins", "app")
    on_start, reg = app.on_start, app.Reg
    assert [("start", on_start), ("class", reg)] == plugins.HANDLERS

    both = f'{start}\n@handler("restart")'
    for decorators, params, tag, body in (
        (both, "", "v2", "    X = 1"),  # a decorator added, the class gains an attribute
        (both, "*args", "v3", "    X = 2"),  # its signature, and the attribute's value
    ):
        project.write(
            "app.py", HANDLED.format(decorators=decorators, params=params, tag=tag, body=body)
        )
        result = hmr.reload("app")
        assert (result.failed, result.refused) == ({}, []), result
        assert app.on_start is on_start
        assert app.Reg is reg
        assert sorted(plugins.HANDLERS, key=repr) == sorted(
            [("start", on_start), ("class", reg), ("restart", on_start)], key=repr
        )
        assert [f() for event, f in plugins.HANDLERS if event != "class"] == [tag, tag]


def test_a_decorated_def_renamed_is_the_same_function_its_registry_holds(
    project: Project, hmr: Any
) -> None:
    """A handler renamed (``def beta`` made ``def beta_renamed``): its decorator registered
    the new function beside the old one, which ran twice per event and kept the old code
    for good.  The function the registry holds takes the new name, once, and later edits."""
    project.write("plugins.py", PLUGINS)
    source = '@handler("start")\ndef {name}():\n    return "{tag}"\n'
    project.write(
        "app.py", "from plugins import handler\n\n\n" + source.format(name="beta", tag="v1")
    )
    plugins, app = fresh(hmr, "plugins", "app")
    beta = app.beta
    assert [("start", beta)] == plugins.HANDLERS

    for tag in ("v1", "v2"):
        project.write(
            "app.py",
            "from plugins import handler\n\n\n" + source.format(name="beta_renamed", tag=tag),
        )
        result = hmr.reload("app")
        assert (result.failed, result.refused) == ({}, []), result
        assert app.beta_renamed is beta
        assert not hasattr(app, "beta")
        assert [(event, f.__name__, f()) for event, f in plugins.HANDLERS] == [
            ("start", "beta_renamed", tag)
        ]


KEYED = """\
PLUGINS = {}
CLASSES = {}


def register(name):
    def deco(f):
        PLUGINS[name] = f
        return f

    return deco


class Base:
    name = "base"

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        CLASSES[cls.name] = cls
"""


def test_a_registration_whose_key_was_edited_leaves_no_old_key(project: Project, hmr: Any) -> None:
    """``@register("alpha")`` made ``@register("alpha2")``, and a class registered by its
    ``name`` attribute in ``__init_subclass__`` given another name: the old keys stayed
    beside the new ones, where a fresh start has the new ones alone."""
    project.write("keyed.py", KEYED)
    source = (
        "from keyed import Base, register\n\n\n@register({key!r})\ndef alpha():\n"
        "    return 1\n\n\nclass Foo(Base):\n    name = {name!r}\n"
    )
    project.write("plugs.py", source.format(key="alpha", name="foo"))
    keyed, plugs = fresh(hmr, "keyed", "plugs")
    alpha, foo = plugs.alpha, plugs.Foo
    assert ({"alpha": alpha}, {"foo": foo}) == (keyed.PLUGINS, keyed.CLASSES)

    project.write("plugs.py", source.format(key="alpha2", name="foo"))
    assert not hmr.reload("plugs").failed
    assert ({"alpha2": alpha}, {"foo": foo}) == (keyed.PLUGINS, keyed.CLASSES)
    project.write("plugs.py", source.format(key="alpha2", name="foo2"))
    assert not hmr.reload("plugs").failed
    assert plugs.Foo is foo
    assert ({"alpha2": alpha}, {"foo2": foo}) == (keyed.PLUGINS, keyed.CLASSES)


def test_a_decorated_def_put_back_is_the_function_its_registry_holds(
    project: Project, hmr: Any
) -> None:
    """A decorated ``def`` deleted, then put back (an undo): its decorator registered a new
    function beside the one it held, and the name went back to the old one, so the
    registry's entry was never reached by later edits."""
    project.write("plugins.py", PLUGINS)
    head = "from plugins import handler\n\n\n"
    kept = '@handler("start")\ndef on_start():\n    return "{tag}"\n'
    project.write("app.py", head + kept.format(tag="v1"))
    plugins, app = fresh(hmr, "plugins", "app")
    on_start = app.on_start

    project.write("app.py", head)  # deleted: what it registered stays (documented)
    assert not hmr.reload("app").failed
    for tag in ("v1", "v2"):  # put back, then its body edited
        project.write("app.py", head + kept.format(tag=tag))
        assert not hmr.reload("app").failed
        assert app.on_start is on_start
        assert [(event, f(), f is on_start) for event, f in plugins.HANDLERS] == [
            ("start", tag, True)
        ]


def test_an_lru_cache_given_new_bounds_is_the_new_cache(
    project: Project, hmr: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """``@functools.lru_cache(maxsize=2)`` made ``maxsize=8``: the reload said "reloaded"
    and kept the old wrapper, whose bounds are fixed as it is made (``maxsize=2`` on).
    The name holds the new cache, and a line says the old one stays where it was taken."""
    source = (
        "import functools\n\n@functools.lru_cache(maxsize={n})\ndef price(x):\n    return x * {k}\n"
    )
    project.write("cached.py", source.format(n=2, k=2))
    (cached,) = fresh(hmr, "cached")
    taken = cached.price
    assert [cached.price(i) for i in range(5)] == [0, 2, 4, 6, 8]
    project.write("cached.py", source.format(n=8, k=3))
    with caplog.at_level(logging.WARNING, logger="muckrack_hmr"):
        assert hmr.reload("cached").reloaded == ["cached"]
    assert [cached.price(i) for i in range(5)] == [0, 3, 6, 9, 12]
    assert cached.price.cache_info().maxsize == 8
    assert taken(4) == 12  # (the old cache, emptied, runs the new code)
    assert any("its cache's maxsize=2 -> 8" in message for message in caplog.messages)


def test_a_def_run_again_for_what_its_decorator_reads_leaves_one_registration(
    project: Project, hmr: Any
) -> None:
    """``@registry.register(PREFIX + ":f")`` and ``@on(PREFIX)`` (a list of pairs), run
    again because ``PREFIX`` changed: the dict held the function under the old key and
    the new one, the list both pairs; a fresh start has the new ones alone.  A save that
    raises leaves them as they were.  Later body edits reach what the registries hold."""
    project.write(
        "reg.py",
        """\
        KEYED = {}
        PAIRS = []

        def register(key):
            def deco(f):
                KEYED[key] = f
                return f
            return deco

        def on(event):
            def deco(f):
                PAIRS.append((event, f))
                return f
            return deco
        """,
    )
    source = """\
        from reg import on, register

        PREFIX = {prefix!r}

        @register("fixed")
        def g():
            return "g"

        @register(PREFIX + ":f")
        @on(PREFIX)
        def f():
            return {body!r}
        """
    project.write("plugins.py", source.format(prefix="a", body="f1"))
    _, reg = fresh(hmr, "plugins", "reg")
    assert sorted(reg.KEYED) == ["a:f", "fixed"]
    # A save that raises below: the registries hold what they held.
    project.write("plugins.py", source.format(prefix="b", body="f1") + "        1 / 0\n")
    assert hmr.reload_module("plugins")[0] == []
    assert sorted(reg.KEYED) == ["a:f", "fixed"]
    assert [event for event, _ in reg.PAIRS] == ["a"]
    project.write("plugins.py", source.format(prefix="b", body="f1"))
    assert hmr.reload_module("plugins")[0] == ["plugins"]
    assert sorted(reg.KEYED) == ["b:f", "fixed"]
    assert [event for event, _ in reg.PAIRS] == ["b"]
    project.write("plugins.py", source.format(prefix="b", body="f2"))
    assert hmr.reload_module("plugins")[0] == ["plugins"]
    assert (reg.KEYED["b:f"](), reg.PAIRS[0][1]()) == ("f2", "f2")

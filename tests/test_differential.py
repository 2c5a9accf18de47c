"""Randomized differential test: a reloaded program against a fresh interpreter.

A seeded generator writes a small multi-module project, then applies a
sequence of random edits (constants, function bodies, method bodies,
import-time computations, functions added and removed).  After each reload,
every function is called through every kind of reference a program holds
(module attributes, ``from`` bindings in other modules, a registry, bound
methods and instances made before the first edit, references the test took
before the first edit), and the results must equal those of a fresh
interpreter that imports the edited sources.

``HMR_DIFFERENTIAL_SEEDS`` sets how many seeds run (CI: a fixed budget of 6 per
core; ``HMR_DIFFERENTIAL_SEEDS=200 pytest tests/test_differential.py`` is
the longer run).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from typing import Any

import pytest

from tests.conftest import Project

SEEDS = int(os.environ.get("HMR_DIFFERENTIAL_SEEDS", "6"))
EDITS = 6
MODULES = 3

# Expressions a function body may return, by what it may use.
BODIES = ["x + K", "x * K - 1", "K * 2 - x", "x - 3"]
BODIES_WITH_IMPORTS = ["prev(x) + K", "m0.f0_0(x) * 2", "prev(x) - m0.K"]
DERIVED = ["f{i}_0(2)", "K + 1", "sum(f{i}_0(n) for n in range(3))"]
DERIVED_WITH_IMPORTS = ["prev(1) + K", "m0.K * 3", "m0.f0_0(K)"]


def new_model(rng: random.Random) -> dict[str, dict[str, Any]]:
    model = {}
    for i in range(MODULES):
        model[f"m{i}"] = {
            "K": rng.randint(1, 9),
            "funcs": {f"f{i}_0": rng.choice(_bodies(i)), f"f{i}_1": rng.choice(_bodies(i))},
            "method": rng.choice(_bodies(i)),
            "derived": rng.choice(_derived(i)),
        }
    return model


def _bodies(i: int) -> list[str]:
    return BODIES + (BODIES_WITH_IMPORTS if i else [])


def _derived(i: int) -> list[str]:
    return [d.format(i=i) for d in DERIVED + (DERIVED_WITH_IMPORTS if i else [])]


def render(i: int, spec: dict[str, Any]) -> str:
    lines = []
    if i:
        lines += ["import m0", f"from m{i - 1} import f{i - 1}_0 as prev", ""]
    else:
        lines += ["REG = {}", ""]
    lines += [f"K = {spec['K']}", ""]
    for name, body in spec["funcs"].items():
        lines += [f"def {name}(x):", f"    return {body}", ""]
    lines += [f"class C{i}:", "    def m(self, x):", f"        return {spec['method']}", ""]
    lines += [f"D = {spec['derived']}", ""]
    registry = "REG" if i == 0 else "m0.REG"
    lines += [f"{registry}['m{i}'] = f{i}_0", ""]
    return "\n".join(lines)


def edit(rng: random.Random, model: dict[str, dict[str, Any]]) -> str:
    """Apply one random edit; the module it changed."""
    i = rng.randrange(MODULES)
    spec = model[f"m{i}"]
    kind = rng.choice(["K", "body", "method", "derived", "add", "remove"])
    if kind == "K":
        spec["K"] = rng.randint(1, 9)
    elif kind == "body":
        name = rng.choice(sorted(spec["funcs"]))
        spec["funcs"][name] = rng.choice(_bodies(i))
    elif kind == "method":
        spec["method"] = rng.choice(_bodies(i))
    elif kind == "derived":
        spec["derived"] = rng.choice(_derived(i))
    elif kind == "add":
        spec["funcs"][f"f{i}_{len(spec['funcs']) + rng.randint(2, 50)}"] = rng.choice(_bodies(i))
    else:
        extra = sorted(name for name in spec["funcs"] if not name.endswith(("_0", "_1")))
        if extra:
            del spec["funcs"][rng.choice(extra)]
        else:
            spec["K"] = rng.randint(1, 9)
    return f"m{i}"


OBSERVE = """
def observe(modules, held):
    result = {}
    for name, module in modules.items():
        i = name[1:]
        funcs = {key: getattr(module, key)(7) for key in sorted(vars(module))
                 if key.startswith(f"f{i}_")}
        result[name] = {
            "K": module.K,
            "D": module.D,
            "funcs": funcs,
            "method": getattr(module, f"C{i}")().m(5),
            "prev": module.prev(6) if hasattr(module, "prev") else None,
        }
    result["registry"] = {key: fn(4) for key, fn in sorted(modules["m0"].REG.items())}
    result["held"] = {key: ref(*args) for key, (ref, args) in sorted(held.items())}
    return result
"""


def fresh_observation(root: str) -> Any:
    """What a new interpreter importing the current sources sees."""
    script = (
        "import json, sys\n"
        f"sys.path.insert(0, {root!r})\n"
        f"import {', '.join(f'm{i}' for i in range(MODULES))}\n"
        + OBSERVE
        + "modules = {"
        + ", ".join(f"'m{i}': m{i}" for i in range(MODULES))
        + "}\n"
        "held = {}\n"
        "for name, module in modules.items():\n"
        "    i = name[1:]\n"
        "    held[f'{name}.f0'] = (getattr(module, f'f{i}_0'), (7,))\n"
        "    held[f'{name}.instance'] = (getattr(module, f'C{i}')().m, (5,))\n"
        "    held[f'{name}.bound'] = (getattr(module, f'C{i}')().m, (3,))\n"
        "print(json.dumps(observe(modules, held)))\n"
    )
    # No pyc of the test process's imports is read: CPython checks one by the source's
    # mtime in whole seconds and size, and the edits here are quicker than that.
    with tempfile.TemporaryDirectory() as no_pycs:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=no_pycs)
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
        )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("seed", range(SEEDS))
def test_reloads_match_a_fresh_interpreter(project: Project, hmr: Any, seed: int) -> None:
    import importlib

    rng = random.Random(seed)
    model = new_model(rng)
    for i in range(MODULES):
        project.write(f"m{i}.py", render(i, model[f"m{i}"]))
    modules = {f"m{i}": importlib.import_module(f"m{i}") for i in range(MODULES)}
    hmr.remember_sources()
    namespace: dict[str, Any] = {}
    exec(OBSERVE, namespace)
    observe = namespace["observe"]
    # References a program keeps across edits, taken before the first one.
    held = {}
    for name, module in modules.items():
        i = name[1:]
        instance = getattr(module, f"C{i}")()
        held[f"{name}.f0"] = (getattr(module, f"f{i}_0"), (7,))
        held[f"{name}.instance"] = (instance.m, (5,))
        held[f"{name}.bound"] = (getattr(module, f"C{i}")().m, (3,))
    assert json.loads(json.dumps(observe(modules, held))) == fresh_observation(str(project.root))
    for step in range(EDITS):
        changed = edit(rng, model)
        index = int(changed[1:])
        path = project.root / f"{changed}.py"
        before = path.read_text()
        project.write(f"{changed}.py", render(index, model[changed]))
        reloaded, _ = hmr.reload_modules([changed])
        if path.read_text() == before:
            # An edit that wrote the same source back: nothing to apply.
            assert reloaded == [], (seed, step, reloaded)
        else:
            assert reloaded, (seed, step)
            assert reloaded[0] == changed, (seed, step, reloaded)
        got = json.loads(json.dumps(observe(modules, held)))
        want = fresh_observation(str(project.root))
        assert got == want, f"seed {seed}, edit {step} of {changed}: {model[changed]}"


# Everyday edits of module-level data, each checked against a fresh interpreter that
# imports the edited files: (files before, files after, modules saved, what to look at).
DATA_EDITS = {
    "item set again, read below and by an importer": (
        {
            "dev.py": 'DB = {"port": 1}\nDB["port"] = 2\nBELOW = DB["port"] + 1\n',
            "app.py": "import dev\nfrom dev import DB\n"
            'PORT = dev.DB["port"] * 10\nP2 = DB["port"]\n',
        },
        {"dev.py": ('DB["port"] = 2', 'DB["port"] = 3')},
        ["dev"],
        "dev.DB, dev.BELOW, app.PORT, app.P2",
    ),
    "update edited, read below": (
        {"s.py": 'S = {"a": 1}\nS.update(b=2)\nKEYS = sorted(S)\nN = len(S)\n'},
        {"s.py": ("S.update(b=2)", "S.update(b=2, c=3)")},
        ["s"],
        "s.S, s.KEYS, s.N",
    ),
    "a cached function reading an item set again": (
        {
            "m.py": "import functools\nTABLE = {'a': 1}\nTABLE['c'] = 3\n\n"
            "@functools.lru_cache(maxsize=None)\ndef lookup(k):\n    return TABLE.get(k, -1)\n\n"
            "FIRST = lookup('c')\n",
        },
        {"m.py": ("TABLE['c'] = 3", "TABLE['c'] = 30")},
        ["m"],
        "m.TABLE, m.lookup('c'), m.FIRST",
    ),
    "an attribute set again, read below and by an importer": (
        {
            "lib.py": "class App:\n    debug = False\n\nAPP = App()\nAPP.debug = False\n"
            'MODE = "dbg" if APP.debug else "prod"\n',
            "user.py": "import lib\nSEEN = lib.MODE\n",
        },
        {"lib.py": ("APP.debug = False", "APP.debug = True")},
        ["lib"],
        "lib.MODE, user.SEEN",
    ),
    "a list extended below a star import": (
        {
            "settings/__init__.py": "",
            "settings/base.py": 'INSTALLED = ["a", "b"]\n',
            "settings/dev.py": 'from .base import *\n\nINSTALLED += ["dev"]\n'
            "APPS = tuple(INSTALLED)\n",
        },
        {"settings/base.py": ('"b"]', '"b", "c"]')},
        ["settings.base"],
        "settings.dev.INSTALLED, settings.dev.APPS",
    ),
    "a container started again keeps the items set between": (
        {
            "c.py": 'N = 1\nDB = {"port": 1}\nDB["port"] = 3\nDB.update(user="u")\n'
            'DB.setdefault("n", N)\nL = [0]\nL[0] = 5\nL.append(N)\n',
        },
        {"c.py": ("N = 1", "N = 2")},
        ["c"],
        "c.DB, c.L",
    ),
    "an importer appends to a list its module changed in place": (
        {
            "base.py": 'LIST = ["a"]\nLIST[0] = "z"\n',
            "child.py": 'from base import LIST\n\nLIST.append("child")\n',
        },
        {"base.py": ('LIST[0] = "z"', 'LIST[0] = "y"')},
        ["base"],
        "base.LIST, child.LIST is base.LIST",
    ),
    "an importer's += on a list its module changed in place": (
        {
            "base.py": 'ITEMS = ["a"]\nITEMS[0] = "A"\n',
            "child.py": 'from base import ITEMS\n\nITEMS += ["child"]\nALL = tuple(ITEMS)\n',
        },
        {"base.py": ('ITEMS[0] = "A"', 'ITEMS[0] = "B"')},
        ["base"],
        "base.ITEMS",
    ),
    "a config changed in place and handed to a call": (
        {
            "app.py": "REGISTRY = []\n\ndef register(name, options):\n"
            '    REGISTRY.append({"name": name, "options": options})\n\n'
            'OPTIONS = {"level": 1}\nOPTIONS["level"] = 2\nregister("mine", OPTIONS)\n',
        },
        {"app.py": ('OPTIONS["level"] = 2', 'OPTIONS["level"] = 3')},
        ["app"],
        "app.REGISTRY",
    ),
    "a del taken away": (
        {"t.py": "TMP = 5\nUSED = TMP * 2\ndel TMP\n"},
        {"t.py": ("del TMP\n", "")},
        ["t"],
        "getattr(t, 'TMP', None), t.USED",
    ),
    "an item set in a class body added": (
        {
            "k.py": 'class Kw:\n    WORDS = {"select": 1}\n    WORDS["from"] = 2\n'
            "    N = len(WORDS)\n\n    def f(self):\n        return 1\n",
        },
        {"k.py": ('    WORDS["from"] = 2\n', '    WORDS["from"] = 2\n    WORDS["where"] = 3\n')},
        ["k"],
        "k.Kw.WORDS, k.Kw.N",
    ),
}


def _fresh_value(root: str, modules: list[str], expression: str) -> str:
    """``repr`` of ``expression`` in a new interpreter that imports ``modules``."""
    script = (
        f"import sys\nsys.path.insert(0, {root!r})\n"
        + "".join(f"import {name}\n" for name in modules)
        + f"print(repr(({expression})))\n"
    )
    with tempfile.TemporaryDirectory() as no_pycs:
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", PYTHONPYCACHEPREFIX=no_pycs)
        result = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=env
        )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.mark.parametrize("case", sorted(DATA_EDITS))
def test_data_edits_match_a_fresh_interpreter(project: Project, hmr: Any, case: str) -> None:
    """A statement that changes a container or an attribute in place, edited (or what it
    reads): what reads it, here and in the modules that import it, has the values a
    fresh start of the edited files has; so do a list a star importer extends, items
    set between a container's maker and a statement that fills it, a name a ``del``
    taken away left bound, and a class attribute an item set in the class body fills."""
    import importlib

    files, edits, saved, expression = DATA_EDITS[case]
    for path, text in files.items():
        project.write(path, text)
    modules = sorted(
        path.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for path in files
    )
    loaded = {name: importlib.import_module(name) for name in modules}
    hmr.remember_sources()
    namespace = {name.partition(".")[0]: loaded[name.partition(".")[0]] for name in modules}
    before = repr(eval(expression, namespace))
    assert before == _fresh_value(str(project.root), modules, expression)
    for path, (old, new) in edits.items():
        text = (project.root / path).read_text()
        assert old in text, (path, old)
        project.write(path, text.replace(old, new, 1))
    reloaded, _ = hmr.reload_modules(saved)
    assert reloaded[: len(saved)] == saved
    want = _fresh_value(str(project.root), modules, expression)
    assert want != before  # (the edit shows in a fresh start)
    assert repr(eval(expression, namespace)) == want

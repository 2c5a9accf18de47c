"""Generate a realistic, layered Python codebase to benchmark HMR on.

``generate(root, n_modules, seed)`` writes, under ``root``::

    main.py                      imports every top-layer module
    app/__init__.py
    app/core/registry.py         the module (nearly) everyone imports
    app/core/mNNNNN.py           low-level utilities
    app/layer1/.../mNNNNN.py     layers 1..5; a layer with more than 25
    ...                          modules is split into subpackages pkgNN/
    app/layer5/.../mNNNNN.py     the top layer, imported only by main.py

Every module imports a few modules of lower layers, mixing ``import a.b.c``,
``from a.b.c import f, C``, ``from . import sibling``, ``from ..core import m``,
a lazy import inside a function and an ``importlib.import_module`` call; it
defines functions, a class and a dataclass, and registers a function in
``app.core.registry.REGISTRY`` at import time.  The core module is as real
ones are: every module imports it, its class subclasses the core's ``Base``
(whose ``__init_subclass__`` records every subclass: hundreds of them), one of
its functions is decorated with the core's ``@registered`` and its dataclass
holds the core's ``Settings`` dataclass.  The popularity of modules is
skewed (a few hubs, many rarely imported modules), as in real code.

The output is a pure function of ``(n_modules, seed)``.  :func:`plan` computes
the same layout without writing files (the graph benchmarks use it), and the
returned :class:`Info` knows the static import graph, so the benchmarks can
check what a reload must re-execute.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Info", "ModuleSpec", "edit_marker", "generate", "plan"]

PACKAGE = "app"
CORE = f"{PACKAGE}.core.registry"
LAYERS = 5
FLAT_LAYER_MAX = 25  # a layer with more modules is split into subpackages
PACKAGE_SIZE = 20  # modules per subpackage

ORIGINAL_MARKER = "orig"
# What an edit rewrites, by kind: a function body, a module constant nobody
# reads at import time, a method of a class (``TAGGED`` names the class), and the
# body of ``helper`` (the core's only), which every module calls in a function.
EDITS = {
    "body": re.compile(r'(def marker\(\) -> str:\n    return )"[^"\n]*"'),
    "helper": re.compile(r'(def helper\(text: str\) -> str:\n    return text \+ )"[^"\n]*"'),
    "constant": re.compile(r'(?m)^(LABEL = )"[^"\n]*"'),
    "method": re.compile(r'(    def tag\(self\) -> str:\n        return )"[^"\n]*"'),
}


@dataclass
class ModuleSpec:
    """One generated module and the imports it makes."""

    name: str
    index: int
    layer: int
    absolute: str | None = None  # import a.b.c
    from_import: str | None = None  # from a.b.c import f, C
    sibling: str | None = None  # from . import sibling
    core_relative: str | None = None  # from ..core import mNNNNN
    dynamic: str | None = None  # importlib.import_module(...)
    dynamic_relative: bool = False  # ... with a relative name and __package__
    lazy: str | None = None  # import inside a function (never called at import)
    registry_style: str = "from"  # "from": from app.core.registry import ...; "module"

    @property
    def package(self) -> str:
        return self.name.rpartition(".")[0]

    @property
    def short(self) -> str:
        return self.name.rpartition(".")[2]

    def import_time_deps(self) -> list[str]:
        """Project modules this module imports when it is executed (no packages)."""
        deps: list[str] = []
        for dep in (
            self.absolute,
            self.from_import,
            self.sibling,
            self.core_relative,
            self.dynamic,
            None if self.name == CORE else CORE,
        ):
            if dep is not None and dep not in deps:
                deps.append(dep)
        return deps


@dataclass
class Info:
    """What :func:`generate` wrote, and the static import graph of it."""

    n_modules: int
    seed: int
    specs: dict[str, ModuleSpec]
    packages: list[str]
    top: list[str]
    leaf: str
    mid: str
    core: str
    root: Path | None = None
    deps: dict[str, list[str]] = field(default_factory=dict)
    _dependents: dict[str, list[str]] = field(default_factory=dict, repr=False)

    @property
    def modules(self) -> list[str]:
        """Every generated module (packages excluded), dependencies first."""
        return list(self.specs)

    @property
    def main(self) -> Path:
        assert self.root is not None
        return self.root / "main.py"

    @property
    def registering(self) -> int:
        """How many modules register a function in the registry (and a ``@registered`` one)."""
        return len(self.specs) - 1

    @property
    def subclasses(self) -> int:
        """How many subclasses of the core's ``Base`` there are: one a module."""
        return len(self.specs)

    def path_of(self, name: str) -> Path:
        """The file of module or package ``name``."""
        assert self.root is not None
        parts = name.split(".")
        if name in self.specs:
            return self.root.joinpath(*parts[:-1], parts[-1] + ".py")
        return self.root.joinpath(*parts, "__init__.py")

    def transitive_dependents(self, name: str) -> list[str]:
        """Modules that import ``name`` at import time, directly or not."""
        seen = {name}
        queue = [name]
        index = 0
        while index < len(queue):
            for dependent in self._dependents.get(queue[index], ()):
                if dependent not in seen:
                    seen.add(dependent)
                    queue.append(dependent)
            index += 1
        return queue[1:]

    def expected_reload(self, name: str) -> set[str]:
        """The modules a ``marker()`` edit of ``name`` must re-execute.

        No module calls ``marker()`` at import time, so with early cutoff (the
        default cascade) only the edited module runs again.
        """
        return {name}

    def order_errors(self, order: list[str]) -> list[str]:
        """Problems with ``order`` as a dependencies-first execution order."""
        position = {name: index for index, name in enumerate(order)}
        errors = []
        if len(position) != len(order):
            errors.append("a module was re-executed twice")
        for name in order:
            for dep in self.deps.get(name, ()):
                if dep in position and position[dep] > position[name]:
                    errors.append(f"{name} ran before its dependency {dep}")
        return errors


# -- planning -----------------------------------------------------------------


def _layer_sizes(n_modules: int) -> list[int]:
    n_core = max(2, round(n_modules * 0.06))
    rest = n_modules - n_core
    base, extra = divmod(rest, LAYERS)
    # Lower layers get the remainder: a codebase is wider at the bottom.
    return [n_core] + [base + (1 if layer < extra else 0) for layer in range(LAYERS)]


def _pick(rng: random.Random, candidates: list[str]) -> str:
    # Skewed towards the start of the list: a few modules become hubs.
    return candidates[int(len(candidates) * rng.random() ** 2)]


def _choose(rng: random.Random, near: list[str], far: list[str]) -> str:
    """A module to import: of the layer just below, mostly, else of any lower layer."""
    pool = near if (not far or rng.random() < 0.7) else far
    return _pick(rng, pool)


def plan(n_modules: int, seed: int = 0) -> Info:
    """The layout :func:`generate` would write, without writing it."""
    if n_modules < 2 * (LAYERS + 1):
        raise ValueError(f"n_modules must be at least {2 * (LAYERS + 1)}")
    rng = random.Random(seed)
    sizes = _layer_sizes(n_modules)
    packages = [PACKAGE, f"{PACKAGE}.core"]
    by_layer: list[list[str]] = []
    specs: dict[str, ModuleSpec] = {}
    index = 0

    # Layer 0: the registry and the core utilities.
    core_names = [CORE]
    specs[CORE] = ModuleSpec(CORE, index, 0)
    index += 1
    for _ in range(sizes[0] - 1):
        name = f"{PACKAGE}.core.m{index:05d}"
        spec = ModuleSpec(name, index, 0, registry_style=rng.choice(("from", "module")))
        utilities = core_names[1:]
        if utilities:
            if rng.random() < 0.5:
                spec.sibling = _pick(rng, utilities[::-1])
            if rng.random() < 0.5:
                spec.from_import = _pick(rng, utilities)
            if rng.random() < 0.3:
                spec.dynamic = rng.choice(utilities)
        specs[name] = spec
        core_names.append(name)
        index += 1
    # The registry exports no f/C: candidates for imports are the utilities.
    by_layer.append(core_names[1:])

    for layer in range(1, LAYERS + 1):
        size = sizes[layer]
        layer_package = f"{PACKAGE}.layer{layer}"
        packages.append(layer_package)
        flat = size <= FLAT_LAYER_MAX
        names: list[str] = []
        near = by_layer[layer - 1]
        # Every module of the layer below is imported by someone: the
        # ``import a.b.c`` statements claim them first, in order.
        unclaimed = list(near)
        far = [name for lower in by_layer[: layer - 1] for name in lower]
        lower_all = far + near
        utilities = core_names[1:]
        for position in range(size):
            if flat:
                package = layer_package
            else:
                package = f"{layer_package}.pkg{position // PACKAGE_SIZE:02d}"
                if package not in packages:
                    packages.append(package)
            name = f"{package}.m{index:05d}"
            spec = ModuleSpec(name, index, layer, registry_style=rng.choice(("from", "module")))

            spec.absolute = unclaimed.pop(0) if unclaimed else _choose(rng, near, far)
            spec.from_import = (
                unclaimed.pop(0) if position == size - 1 and unclaimed else _choose(rng, near, far)
            )
            siblings = [other for other in names if other.rpartition(".")[0] == package]
            if siblings and rng.random() < 0.6:
                spec.sibling = _pick(rng, siblings[::-1])
            spec.core_relative = _pick(rng, utilities)
            if siblings and rng.random() < 0.3:
                spec.dynamic = rng.choice(siblings)
                spec.dynamic_relative = True
            else:
                spec.dynamic = _choose(rng, near, far)
            spec.lazy = rng.choice(lower_all)
            specs[name] = spec
            names.append(name)
            index += 1
        if unclaimed:  # only when a layer is much smaller than the one below
            raise AssertionError(f"layer {layer - 1} has modules nobody imports: {unclaimed}")
        by_layer.append(names)

    deps = {name: spec.import_time_deps() for name, spec in specs.items()}
    dependents: dict[str, list[str]] = {}
    for name, module_deps in deps.items():
        for dep in module_deps:
            dependents.setdefault(dep, []).append(name)

    top = by_layer[LAYERS]
    info = Info(
        n_modules=n_modules,
        seed=seed,
        specs=specs,
        packages=packages,
        top=top,
        leaf=top[-1],
        mid="",
        core=CORE,
        deps=deps,
        _dependents=dependents,
    )
    # The mid module: in the middle layer, with the median number of
    # (transitive) dependents among the modules of that layer that have any.
    middle = by_layer[(LAYERS + 1) // 2]
    counted = sorted(
        (len(info.transitive_dependents(name)), specs[name].index, name) for name in middle
    )
    with_dependents = [item for item in counted if item[0] > 0] or counted
    info.mid = with_dependents[len(with_dependents) // 2][2]
    return info


# -- writing ------------------------------------------------------------------


def _f(name: str, specs: dict[str, ModuleSpec]) -> str:
    return f"f{specs[name].index}"


def _module_source(spec: ModuleSpec, specs: dict[str, ModuleSpec]) -> str:
    i = spec.index
    imports = [
        "from __future__ import annotations",
        "",
        "import importlib",
        "import logging",
        "from dataclasses import dataclass, field",
        "",
    ]
    uses: list[str] = []
    if spec.absolute:
        imports.append(f"import {spec.absolute}")
        uses.append(f"{spec.absolute}.{_f(spec.absolute, specs)}_a(x)")
    if spec.from_import:
        other = specs[spec.from_import]
        imports.append(f"from {spec.from_import} import C{other.index}, f{other.index}_a")
        uses.append(f"f{other.index}_a(x)")
        uses.append(f"C{other.index}(x).double")
    if spec.sibling:
        sibling = specs[spec.sibling]
        imports.append(f"from . import {sibling.short}")
        uses.append(f"{sibling.short}.f{sibling.index}_a(x)")
    if spec.core_relative:
        utility = specs[spec.core_relative]
        dots = "." * (spec.name.count("."))
        imports.append(f"from {dots}core import {utility.short}")
        uses.append(f"{utility.short}.f{utility.index}_a(x)")
    if spec.registry_style == "from":
        imports.append(f"from {CORE} import Base, Settings, helper, register, registered")
        core = ""
    else:
        imports.append(f"from {PACKAGE}.core import registry")
        core = "registry."
    body = ["", "log = logging.getLogger(__name__)"]
    if spec.dynamic:
        target = specs[spec.dynamic]
        if spec.dynamic_relative:
            body.append(f'_dynamic = importlib.import_module(".{target.short}", __package__)')
        else:
            body.append(f'_dynamic = importlib.import_module("{spec.dynamic}")')
        uses.append(f"_dynamic.f{target.index}_a(x)")
    total = "".join(f"\n    total += {use}" for use in uses)
    lazy = ""
    if spec.lazy:
        target = specs[spec.lazy]
        parent, _, short = spec.lazy.rpartition(".")
        lazy = f'''

def lazy_{i}() -> int:
    """Import a module only when called (never at import time)."""
    from {parent} import {short}

    return {short}.f{target.index}_a(1)
'''
    return f'''"""Generated module {spec.name} (layer {spec.layer})."""

{chr(10).join(imports)}
{chr(10).join(body)}

WEIGHT = {i % 97 + 1}
LIMITS = {{"low": {i % 13}, "high": {i % 13 + 50}}}
LABEL = "{ORIGINAL_MARKER}"


def marker() -> str:
    return "{ORIGINAL_MARKER}"


def f{i}_a(x: int) -> int:
    """Combine values from the modules this one imports."""
    if x <= 0:
        return WEIGHT
    total = x * WEIGHT
    x //= 2{total}
    return total % 1_000_003


def f{i}_b(items: list[int]) -> list[int]:
    """Filter and transform a list."""
    return [f{i}_a(item) for item in items if LIMITS["low"] <= item <= LIMITS["high"]]


@{core}registered
def f{i}_c(text: str) -> str:
    """Some string work."""
    parts = text.split()
    log.debug("f{i}_c: %d parts", len(parts))
    return {core}helper("-".join(sorted(parts)) + str(len(parts)))
{lazy}

def lazy_json() -> object:
    """A repeated lazy import of the standard library."""
    import json

    return json


class C{i}({core}Base):
    """A class with a little state."""

    def __init__(self, value: int = 0) -> None:
        self.value = value

    def method(self, x: int) -> int:
        return f{i}_a(x + self.value)

    @property
    def double(self) -> int:
        return self.value * 2

    def tag(self) -> str:
        return "{ORIGINAL_MARKER}"

    def __repr__(self) -> str:
        return f"C{i}({{self.value}})"


@dataclass
class D{i}:
    """A dataclass, as models and configs are."""

    name: str = "{spec.name}"
    size: int = {i}
    tags: list[str] = field(default_factory=list)
    settings: {core}Settings = field(default_factory={core}Settings)

    def total(self) -> int:
        return self.size + len(self.tags) + self.settings.level


TAGGED = C{i}


def describe() -> str:
    return f"{{__name__}}:{{marker()}}"


{core}register(__name__, describe)
'''


_REGISTRY_SOURCE = f'''"""The core of the app: every module imports it and registers here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

REGISTRY: dict[str, Callable[[], str]] = {{}}
HANDLERS: dict[str, Callable[..., Any]] = {{}}
SUBCLASSES: dict[str, type[Base]] = {{}}
LABEL = "{ORIGINAL_MARKER}"


def marker() -> str:
    return "{ORIGINAL_MARKER}"


def helper(text: str) -> str:
    return text + "{ORIGINAL_MARKER}"


def register(name: str, func: Callable[[], str]) -> Callable[[], str]:
    REGISTRY[name] = func
    return func


def registered(func: F) -> F:
    """Decorator: record ``func`` as a handler under its qualified name."""
    HANDLERS[f"{{func.__module__}}.{{func.__qualname__}}"] = func
    return func


def names() -> list[str]:
    return sorted(REGISTRY)


@dataclass
class Settings:
    """Settings every module's dataclass holds."""

    debug: bool = False
    level: int = 1
    tags: list[str] = field(default_factory=list)

    def scaled(self, value: int) -> int:
        return value * self.level


SETTINGS = Settings()


class Base:
    """The base class of every module's class: each subclass is recorded."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        SUBCLASSES[f"{{cls.__module__}}.{{cls.__qualname__}}"] = cls

    def kind(self) -> str:
        return type(self).__name__


class Entry(Base):
    """A registry entry."""

    def tag(self) -> str:
        return "{ORIGINAL_MARKER}"


TAGGED = Entry


def lazy_json() -> object:
    """A repeated lazy import of the standard library."""
    import json

    return json
'''


_MAIN_DOC = '''"""Entry point: imports every top-layer module of the app, then checks the registry.

``python main.py [--objects N] [--busy] [--stay MODULE...]``: ``--objects N`` first
makes N more live objects (a program with a bigger heap); ``--stay`` keeps the
program alive and idle after its imports, as a server between requests, and
prints ``app: live MODULE KIND VALUE`` when an edit of KIND (``body``,
``constant``, ``method``: see ``benchmarks.generate.EDITS``) of MODULE shows,
through the function and the instance it held from before the edit.  With
``--busy`` it computes without a pause instead of resting (about 1 ms between
looks), as a server under load.
"""'''

_MAIN_STAY = '''

def values(module, marker, instance, helper):
    found = {"body": marker(), "constant": module.LABEL, "method": instance.tag()}
    if helper is not None:
        found["helper"] = helper("")
    return found


def stay(names):
    """Stay alive and idle; say when an edit of one of ``names`` is live."""
    import time

    held = [
        (
            name,
            sys.modules[name],
            sys.modules[name].marker,
            sys.modules[name].TAGGED(),
            getattr(sys.modules[name], "helper", None),
        )
        for name in names
    ]
    seen = {name: values(*objects) for name, *objects in held}
    busy = "--busy" in ARGS
    while True:
        if busy:
            total = 0
            for step in range(20000):
                total += step
        else:
            time.sleep(0.001)
        for name, *objects in held:
            for kind, value in values(*objects).items():
                if seen[name][kind] != value:
                    seen[name][kind] = value
                    # One write: HMR's log lines come from another thread.
                    sys.stdout.write(f"app: live {name} {kind} {value}\\n")
                    sys.stdout.flush()
'''


def _main_source(info: Info) -> str:
    lines = [
        _MAIN_DOC,
        "",
        "import sys",
        "",
        'ARGS = sys.argv[1:] if __name__ == "__main__" else []',
        'OBJECTS = int(ARGS[ARGS.index("--objects") + 1]) if "--objects" in ARGS else 0',
        "BALLAST = [[index] for index in range(OBJECTS)]",
        "",
    ]
    for position, name in enumerate(info.top):
        if position % 2:
            parent, _, short = name.rpartition(".")
            lines.append(f"from {parent} import {short}")
        else:
            lines.append(f"import {name}")
    lines += [
        f"from {PACKAGE}.core import registry",
        "",
        f"EXPECTED = {info.registering}",
        f"EXPECTED_SUBCLASSES = {info.subclasses}",
        "",
        "",
        "def main() -> int:",
        "    count = len(registry.REGISTRY)",
        '    print(f"app: {count} modules registered", flush=True)',
        "    if len(registry.HANDLERS) != EXPECTED:",
        '        print(f"app: {len(registry.HANDLERS)} handlers, want {EXPECTED}")',
        "        return 1",
        "    if len(registry.SUBCLASSES) != EXPECTED_SUBCLASSES:",
        '        print(f"app: {len(registry.SUBCLASSES)} subclasses, want {EXPECTED_SUBCLASSES}")',
        "        return 1",
        "    return 0 if count == EXPECTED else 1",
        _MAIN_STAY,
        "",
        'if __name__ == "__main__":',
        "    status = main()",
        "    if status:",
        "        sys.exit(status)",
        '    if "--stay" in ARGS:',
        '        stay(ARGS[ARGS.index("--stay") + 1 :])',
        "",
    ]
    return "\n".join(lines)


def generate(root: Path, n_modules: int, seed: int = 0) -> Info:
    """Write a codebase of ``n_modules`` modules (plus packages and main.py) under ``root``."""
    info = plan(n_modules, seed)
    info.root = root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for package in info.packages:
        path = info.path_of(package)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f'"""Package {package}."""\n')
    for name, spec in info.specs.items():
        source = _REGISTRY_SOURCE if name == CORE else _module_source(spec, info.specs)
        info.path_of(name).write_text(source)
    info.main.write_text(_main_source(info))
    return info


def edit(path: Path, kind: str, tag: str) -> None:
    """Make ``path`` give ``tag``: ``marker()`` (body), ``LABEL`` (constant), ``TAGGED().tag()``
    (method), ``helper("")`` (helper)."""
    source = path.read_text()
    new, count = EDITS[kind].subn(lambda match: f'{match.group(1)}"{tag}"', source)
    if count != 1:
        raise ValueError(f"{path}: nothing to edit for a {kind} edit")
    path.write_text(new)


def edited_value(module: object, kind: str) -> object:
    """What an edit of ``kind`` changes in ``module``, as the running program sees it."""
    if kind == "body":
        return module.marker()  # type: ignore[attr-defined]
    if kind == "constant":
        return module.LABEL  # type: ignore[attr-defined]
    if kind == "helper":
        return module.helper("")  # type: ignore[attr-defined]
    return module.TAGGED().tag()  # type: ignore[attr-defined]


def edit_marker(path: Path, tag: str) -> None:
    """Rewrite the body of ``marker()`` in ``path`` to return ``tag``."""
    edit(path, "body", tag)

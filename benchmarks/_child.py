"""One measurement, in a fresh interpreter: run by ``python -m benchmarks``, never imported.

``python benchmarks/_child.py MODE ARGS...`` prints one JSON line last:

* ``import ROOT VARIANT``: time the import of the whole app (``main.py``'s
  imports) with ``time.perf_counter``; VARIANT is ``plain`` (no HMR) or
  ``hmr`` (``muckrack_hmr.install([ROOT])`` first; the core is picked by
  ``MUCKRACK_HMR_NO_EXTENSIONS`` as for users).  ``muckrack_hmr`` is imported
  in both variants so that both start with the same modules loaded.
* ``lazy ROOT MODULE NUMBER ROUNDS``: ``timeit`` of ``MODULE.lazy_json`` (a
  function doing ``import json``) with the original ``builtins.__import__``
  and with the tracker's, interleaved round by round, in one process.
* ``reload INFO_JSON REPS TAG``: run ``main.py`` under HMR as the CLI does,
  check the dependency graph, then REPS times edit ``marker()`` of the leaf,
  mid and core modules (round-robin) and ``__hmr__.reload_module`` each.
* ``floor ROOT CORE OBJECTS REPS MODULE...``: import the app without HMR,
  with OBJECTS more live objects, then REPS times compile and execute each
  MODULE's source alone (:func:`_floor`; ``python -m benchmarks.first_edit``).
"""

from __future__ import annotations

import builtins
import contextlib
import gc
import io
import json
import os
import sys
import time
import timeit
from typing import Any

EXPECTED_CORE = {
    "c": "muckrack_hmr._hmr_core",
    "py": "muckrack_hmr._core_py",
}


def _core_name() -> str:
    return "py" if os.environ.get("MUCKRACK_HMR_NO_EXTENSIONS", "") not in ("", "0") else "c"


def _check_core(hmr: object, errors: list[str]) -> None:
    want = EXPECTED_CORE[_core_name()]
    got = type(hmr.tracker).__module__  # type: ignore[attr-defined]
    if got != want:
        errors.append(f"expected the {want} core, got {got}")


def _emit(result: dict[str, object]) -> None:
    sys.stdout.flush()
    print(json.dumps(result))


def measure_import(root: str, variant: str) -> None:
    import muckrack_hmr  # in both variants: the same modules are loaded before timing

    errors: list[str] = []
    if variant == "hmr":
        hmr = muckrack_hmr.install([root])
        _check_core(hmr, errors)
    main = os.path.join(root, "main.py")
    with open(main, "rb") as handle:
        code = compile(handle.read(), main, "exec")
    sys.path.insert(0, root)
    # Not "__main__": only the imports of main.py run, not its main().
    namespace = {"__name__": "__bench_main__", "__file__": main, "__builtins__": builtins}
    start = time.perf_counter()
    exec(code, namespace)
    elapsed = time.perf_counter() - start
    loaded = sum(1 for name in sys.modules if name == "app" or name.startswith("app."))
    registered = len(namespace["registry"].REGISTRY)
    tracked = -1
    if variant == "hmr":
        tracked = len(muckrack_hmr.active().tracked_modules())
    _emit(
        {
            "ms": elapsed * 1000.0,
            "loaded": loaded,
            "registered": registered,
            "tracked": tracked,
            "errors": errors,
        }
    )


def measure_lazy(root: str, module_name: str, number: int, rounds: int) -> None:
    import importlib

    import muckrack_hmr

    errors: list[str] = []
    original = builtins.__import__
    hmr = muckrack_hmr.install([root])
    _check_core(hmr, errors)
    wrapped = builtins.__import__
    sys.path.insert(0, root)
    module = importlib.import_module(module_name)
    func = module.lazy_json
    if not hmr.tracker.is_tracked(module_name):
        errors.append(f"{module_name} is not tracked: the benchmark would not measure the hook")
    if wrapped is original:
        errors.append("install() did not replace builtins.__import__")
    if func() is not sys.modules["json"]:
        errors.append("lazy_json() did not return the json module")
    timer = timeit.Timer(func)
    timer.timeit(number // 10 or 1)  # warm up both paths
    builtins.__import__ = original
    timer.timeit(number // 10 or 1)
    builtins.__import__ = wrapped
    plain: list[float] = []
    hooked: list[float] = []
    for index in range(rounds):
        order = ("plain", "hmr") if index % 2 == 0 else ("hmr", "plain")
        for variant in order:
            builtins.__import__ = original if variant == "plain" else wrapped
            try:
                seconds = timer.timeit(number)
            finally:
                builtins.__import__ = wrapped
            (plain if variant == "plain" else hooked).append(seconds / number * 1e9)
    _emit({"plain_ns": plain, "hmr_ns": hooked, "errors": errors})


def _stale_bindings(dependent: object, target: object, target_name: str) -> list[str]:
    """Functions and classes of ``target`` that ``dependent`` still holds in an old version."""
    stale = []
    for attr, value in vars(dependent).items():
        if getattr(value, "__module__", None) != target_name:
            continue
        if not (callable(value) and hasattr(value, "__qualname__")):
            continue
        current = getattr(target, value.__name__, None)
        if current is not None and current is not value:
            stale.append(attr)
    return stale


def bookkeeping_bytes(hmr: object) -> dict[str, int]:
    """Bytes held by the HMR's own records, by part, and their total.

    A walk from the graph, the tracker, the project filter and the source
    store through containers, strings, numbers and the package's own objects.
    What the import system owns anyway (modules, their namespaces, names and
    file names) is not counted; each object is counted once.
    """
    import gc

    seen: set[int] = set()
    for key, module in list(sys.modules.items()):
        seen.update(map(id, (key, module, getattr(module, "__dict__", None))))
        seen.update(map(id, (getattr(module, "__name__", None), getattr(module, "__file__", None))))
    containers = (dict, list, tuple, set, frozenset)
    leaves = (str, bytes, int, float)

    def walk(root: object) -> int:
        total = 0
        stack = [root]
        while stack:
            obj = stack.pop()
            if id(obj) in seen or obj is None:
                continue
            own = type(obj).__module__.startswith("muckrack_hmr")
            if not isinstance(obj, containers + leaves) and not own:
                continue  # functions, classes, locks, files: not records
            seen.add(id(obj))
            total += sys.getsizeof(obj)
            if not isinstance(obj, leaves):
                stack.extend(gc.get_referents(obj))
        return total

    parts = {
        "project": hmr.project,  # type: ignore[attr-defined]
        "graph": hmr.graph,  # type: ignore[attr-defined]
        "tracker": hmr.tracker,  # type: ignore[attr-defined]
        "sources": hmr.reloader.sources,  # type: ignore[attr-defined]
    }
    seen.update(map(id, (hmr, hmr.reloader)))  # type: ignore[attr-defined]
    sizes = {label: walk(obj) for label, obj in parts.items()}
    sizes["total"] = sum(sizes.values())
    return sizes


def measure_reload(info_path: str, reps: int, tag: str) -> None:
    import muckrack_hmr

    with open(info_path) as handle:
        info = json.load(handle)
    root = info["root"]
    sys.path.insert(0, info["repo"])
    from pathlib import Path

    from benchmarks.generate import EDITS, edit

    errors: list[str] = []
    hmr = muckrack_hmr.install([root])
    _check_core(hmr, errors)
    from muckrack_hmr import runner

    main = os.path.join(root, "main.py")
    code, main_module = runner.prepare_script(main, [])
    with contextlib.redirect_stdout(io.StringIO()) as out:
        runner.run_code(code, main_module)
    if f"app: {info['registering']} modules registered" not in out.getvalue():
        errors.append(f"main.py printed {out.getvalue()!r}")
    # What the watcher does right after the program's imports: keep the
    # sources as they ran, so that an edit is compared with them.
    hmr.remember_sources()
    # What the watcher does in the background while the program runs: analyze every
    # module, and index the `.name` spellings of every source (without that index a
    # reload searches the source of every module that imports the edited one).
    hmr.warm()
    memory = bookkeeping_bytes(hmr)
    # The program's first full garbage collection after its imports (about
    # 190 ms at 5000 modules) would otherwise land in one of the timed
    # reloads: a long-running program has had it long before.
    gc.collect()

    # The graph must hold exactly the import-time edges between modules.
    deps: dict[str, list[str]] = info["deps"]
    modules = set(deps)
    for name, want in deps.items():
        got = [dep for dep in hmr.dependencies_of(name) if dep in modules]
        if sorted(got) != sorted(want):
            errors.append(f"graph: {name} imports {sorted(want)}, the tracker says {sorted(got)}")
            if len(errors) > 10:
                break

    targets = {"leaf": info["leaf"], "mid": info["mid"], "core": info["core"]}
    paths = {kind: os.path.join(root, *name.split(".")) + ".py" for kind, name in targets.items()}
    originals = {}
    for kind, path in paths.items():
        with open(path, "rb") as handle:
            originals[kind] = handle.read()
    # Made before any edit: they must see every edit (instances, held functions).
    held = {kind: sys.modules[name].TAGGED() for kind, name in targets.items()}
    # (``helper`` is the core's function alone.)
    plans = [
        (kind, what) for kind in targets for what in EDITS if what != "helper" or kind == "core"
    ]
    results: dict[str, list[dict[str, float]]] = {f"{kind} {what}": [] for kind, what in plans}
    try:
        for rep in range(reps):
            shift = rep % len(plans)
            for kind, what in plans[shift:] + plans[:shift]:
                name = targets[kind]
                marker = f"{tag}-{rep}-{kind}-{what}"
                edit(Path(paths[kind]), what, marker)
                start = time.perf_counter()
                names, ms = builtins.__hmr__.reload_module(name)
                wall = (time.perf_counter() - start) * 1000.0
                floor = _floor(name, paths[kind], info["core"])
                results[f"{kind} {what}"].append(
                    {"ms": ms, "wall": wall, "n": len(names), "floor": floor}
                )
                errors.extend(_check_reload(info, kind, what, name, marker, names))
                if what == "method" and held[kind].tag() != marker:
                    errors.append(f"{kind} method edit: an instance made before sees old code")
        # The same core edits with a million more live (gc-tracked) objects:
        # a reload must not walk the heap, so its cost must not grow with it.
        ballast = [[index] for index in range(1_000_000)]
        results["core body, 1M objects"] = []
        for rep in range(reps):
            marker = f"{tag}-heap-{rep}"
            edit(Path(paths["core"]), "body", marker)
            start = time.perf_counter()
            names, ms = builtins.__hmr__.reload_module(targets["core"])
            wall = (time.perf_counter() - start) * 1000.0
            floor = _floor(targets["core"], paths["core"], info["core"])
            results["core body, 1M objects"].append(
                {"ms": ms, "wall": wall, "n": len(names), "floor": floor}
            )
            errors.extend(_check_reload(info, "core", "body", targets["core"], marker, names))
        del ballast
    finally:
        for kind, path in paths.items():
            with open(path, "wb") as handle:
                handle.write(originals[kind])
    _emit({"results": results, "memory": memory, "errors": errors[:20]})


def _floor(name: str, path: str, core: str) -> float:
    """ms to compile and execute the module's current source alone: a reload's floor.

    In a throwaway module of the same package, registered as the import
    system would (dataclasses look their module up); what it adds to the
    core's registries is taken out again.
    """
    import types

    with open(path, "rb") as handle:
        source = handle.read()
    scratch = types.ModuleType(f"{name}__floor")
    scratch.__package__ = sys.modules[name].__package__
    scratch.__file__ = path
    sys.modules[scratch.__name__] = scratch
    try:
        start = time.perf_counter()
        exec(compile(source, path, "exec"), scratch.__dict__)
        return (time.perf_counter() - start) * 1000.0
    finally:
        del sys.modules[scratch.__name__]
        registries = vars(sys.modules[core])
        registries["REGISTRY"].pop(scratch.__name__, None)
        for table in (registries["HANDLERS"], registries["SUBCLASSES"]):
            for key in [key for key in table if key.startswith(f"{scratch.__name__}.")]:
                del table[key]


def _check_reload(
    info: dict[str, object], kind: str, what: str, name: str, marker: str, names: list[str]
) -> list[str]:
    from benchmarks.generate import edited_value

    errors = []
    module = sys.modules[name]
    kind = f"{kind} {what}"
    got = edited_value(module, what)
    if got != marker:
        errors.append(f"{kind} reload of {name}: the program sees {got!r}, want {marker!r}")
    expected = set(info["expected"][kind.split()[0]])  # type: ignore[index]
    if set(names) != expected:
        missing = sorted(expected - set(names))[:5]
        extra = sorted(set(names) - expected)[:5]
        errors.append(
            f"{kind} reload of {name}: re-executed {len(names)} modules, want {len(expected)}"
            f" (missing {missing}, extra {extra})"
        )
    if names and names[0] != name:
        errors.append(f"{kind} reload of {name}: {names[0]} ran first")
    deps: dict[str, list[str]] = info["deps"]  # type: ignore[assignment]
    position = {module_name: index for index, module_name in enumerate(names)}
    if len(position) != len(names):
        errors.append(f"{kind} reload of {name}: a module was re-executed twice")
    for module_name in names:
        for dep in deps.get(module_name, ()):
            if dep in position and position[dep] > position[module_name]:
                errors.append(f"{kind} reload of {name}: {module_name} ran before {dep}")
    registry = sys.modules[info["core"]]  # type: ignore[index]
    if len(registry.REGISTRY) != info["registering"]:
        errors.append(
            f"{kind} reload of {name}: the registry holds {len(registry.REGISTRY)} entries,"
            f" want {info['registering']}"
        )
    describe = registry.REGISTRY.get(name)
    if what == "body" and describe is not None and describe() != f"{name}:{marker}":
        errors.append(f"{kind} reload of {name}: the registry calls old code ({describe()!r})")
    for dependent in names[1:]:
        stale = _stale_bindings(sys.modules[dependent], module, name)
        if stale:
            errors.append(f"{kind} reload of {name}: {dependent} still holds old {stale}")
            break
    return errors


def measure_floor(root: str, core: str, objects: int, reps: int, names: list[str]) -> None:
    """The floor of a reload of each of ``names``, in a program like the one edited."""
    ballast = [[index] for index in range(objects)]
    main = os.path.join(root, "main.py")
    with open(main, "rb") as handle:
        code = compile(handle.read(), main, "exec")
    sys.path.insert(0, root)
    exec(code, {"__name__": "__bench_main__", "__file__": main, "__builtins__": builtins})
    gc.collect()  # the program's first full collection: not in a floor
    paths = {name: sys.modules[name].__file__ for name in names}
    ms: dict[str, list[float]] = {name: [] for name in names}
    for _ in range(reps):
        for name in names:
            ms[name].append(_floor(name, paths[name], core))
    del ballast
    _emit({"ms": ms, "errors": []})


def measure_hotpaths(root: str, core_module: str, rounds: int) -> None:
    """The graph's hot paths on the app's real import graph, both cores in this process.

    The app is imported under HMR; its graph is copied into a compiled and a
    pure ``DependencyGraph``, and each query is timed on both, interleaved
    round by round.
    """
    import muckrack_hmr
    from muckrack_hmr import _core_py

    errors: list[str] = []
    try:
        from muckrack_hmr import _hmr_core
    except ImportError:
        _emit({"errors": ["the compiled core is not built"]})
        return
    hmr = muckrack_hmr.install([root])
    main = os.path.join(root, "main.py")
    with open(main, "rb") as handle:
        code = compile(handle.read(), main, "exec")
    sys.path.insert(0, root)
    exec(code, {"__name__": "__bench_main__", "__file__": main, "__builtins__": builtins})
    source = hmr.graph
    graphs = {"c": _hmr_core.DependencyGraph(), "py": _core_py.DependencyGraph()}
    modules = source.modules()
    for graph in graphs.values():
        for name in modules:
            graph.add_module(name)
            for dependency in source.dependencies_of(name):
                graph.add_edge(name, dependency)
        for name in modules:
            for dependency in source.dependencies_of(name):
                for bound in source.bound_names(name, dependency):
                    graph.add_binding(name, dependency, bound)
    names_of_core = list(vars(sys.modules[core_module]))

    def reload_order(graph: Any) -> int:
        dependents = graph.transitive_dependents([core_module])
        return len(graph.topological_order([core_module, *dependents]))

    def binders(graph: Any) -> int:
        return len(graph.binders(core_module, names_of_core))

    ops = {"dependents + topological order": reload_order, "binders": binders}
    for label, op in ops.items():
        answers = {core: op(graph) for core, graph in graphs.items()}
        if answers["c"] != answers["py"] or not answers["c"]:
            errors.append(f"{label}: the cores disagree or found nothing: {answers}")
    timings: dict[str, dict[str, list[float]]] = {label: {"c": [], "py": []} for label in ops}
    for index in range(rounds):
        for label, op in ops.items():
            order = ("c", "py") if index % 2 == 0 else ("py", "c")
            for core in order:
                graph = graphs[core]
                timer = timeit.Timer(lambda op=op, graph=graph: op(graph))
                number = 5
                timings[label][core].append(timer.timeit(number) / number * 1000.0)
    _emit({"ms": timings, "modules": len(modules), "errors": errors})


def main(argv: list[str]) -> None:
    mode = argv[0]
    if mode == "import":
        measure_import(argv[1], argv[2])
    elif mode == "lazy":
        measure_lazy(argv[1], argv[2], int(argv[3]), int(argv[4]))
    elif mode == "reload":
        measure_reload(argv[1], int(argv[2]), argv[3])
    elif mode == "floor":
        measure_floor(argv[1], argv[2], int(argv[3]), int(argv[4]), argv[5:])
    elif mode == "hotpaths":
        measure_hotpaths(argv[1], argv[2], int(argv[3]))
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])

"""The benchmark suite's figures as PNG plots (``python -m benchmarks --plot DIR``).

Two plots, drawn from what the suite has just measured (never from figures
typed in by hand):

* ``reload-vs-restart.png``: the median ``reload_module`` time of a body edit
  of the leaf, mid and core module, per core, against a cold restart
  (``python main.py``), as the generated codebase grows (report sections a.
  and d.);
* ``edit-to-live.png``: edit-to-live latency per web framework, HMR on each
  core against the framework's own restart reloader (``benchmarks.latency``).

Beside them, ``figures.json`` holds every value drawn, with the command and
the machine; ``python -m benchmarks.plot DIR`` draws the PNGs again from it
(after a change of this module's drawing, say), measuring nothing.  matplotlib
(the ``bench`` extra) is imported only here, with the Agg backend: no display
is needed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .__main__ import median, quartiles

RELOAD_PNG = "reload-vs-restart.png"
LATENCY_PNG = "edit-to-live.png"
FIGURES_JSON = "figures.json"

# The edits drawn in the scaling plot: a function body in each module of the
# generated app's layers (the other edits are in the report's tables).
EDITED = ("leaf body", "mid body", "core body")
CORE_NAMES = {"c": "compiled core", "py": "pure core"}
FRAMEWORK_NAMES = {
    "flask": "Flask (werkzeug)",
    "fastapi": "FastAPI (uvicorn)",
    "django": "Django (runserver)",
}


def machine() -> str:
    """One line: the CPython and the machine the figures were measured on."""
    return (
        f"CPython {platform.python_version()}, {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs"
    )


def scaling_figures(
    results: Mapping[int, Mapping[str, Any]], cores: Sequence[str]
) -> dict[str, Any]:
    """Medians per codebase size: cold restart, and reload per core and edited module (ms)."""
    sizes = sorted(results)
    figures: dict[str, Any] = {
        "sizes": sizes,
        "restart_ms": [median(results[n]["cold"]["restart-plain"]) for n in sizes],
        "reload_ms": {},
    }
    for core in cores:
        for kind in EDITED:
            figures["reload_ms"][f"{core} {kind}"] = [
                median([v["wall"] for v in results[n]["reload"][core].get(kind, [])]) for n in sizes
            ]
    return figures


def latency_figures(latencies: Mapping[str, Mapping[str, Sequence[float]]]) -> dict[str, Any]:
    """Median and quartiles (ms) of each framework's servers, from their raw latencies."""
    figures: dict[str, Any] = {}
    for framework, by_variant in latencies.items():
        figures[framework] = {}
        for name, values in by_variant.items():
            low, high = quartiles(values)
            figures[framework][name] = {
                "median": median(values),
                "quartiles": [low, high],
                "edits": len(values),
            }
    return figures


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise SystemExit("--plot needs matplotlib: pip install -e '.[bench]'") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _footer(fig: Any, command: str, measured_on: str) -> None:
    fig.text(0.01, 0.01, f"{command}\n{measured_on}", fontsize=7, color="0.35", va="bottom")


def draw_scaling(
    figures: Mapping[str, Any], cores: Sequence[str], path: Path, command: str, measured_on: str
) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(10, 5))
    sizes = figures["sizes"]
    ax.plot(
        sizes,
        figures["restart_ms"],
        "o-",
        color="tab:red",
        linewidth=2.5,
        label="restart: python main.py (cold)",
    )
    colors = {"leaf body": "tab:green", "mid body": "tab:blue", "core body": "tab:purple"}
    styles = {"c": "-", "py": "--"}
    for core in cores:
        for kind in EDITED:
            values = figures["reload_ms"][f"{core} {kind}"]
            ax.plot(
                sizes,
                values,
                marker="s",
                linestyle=styles.get(core, ":"),
                color=colors[kind],
                label=f"reload, {kind.split()[0]} module edited, {CORE_NAMES.get(core, core)}",
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(sizes)
    ax.set_xticklabels([f"{n:,}" for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("modules in the generated app")
    ax.set_ylabel("ms (median, log scale)")
    ax.set_title("A hot reload against a cold restart, as the codebase grows")
    biggest = sizes[-1]
    restart = figures["restart_ms"][-1]
    reload = figures["reload_ms"][f"{cores[0]} core body"][-1]
    if not (math.isnan(restart) or math.isnan(reload) or reload <= 0):
        ax.annotate(
            f"restart / reload\nof the core module:\n{restart / reload:,.0f}x",
            xy=(biggest, math.sqrt(restart * reload)),
            xytext=(-8, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            fontsize=8,
        )
        ax.vlines(biggest, reload, restart, colors="0.6", linestyles="dotted")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.02, 0.5))
    fig.subplots_adjust(bottom=0.2, right=0.64)
    _footer(fig, command, measured_on)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw_latency(figures: Mapping[str, Any], path: Path, command: str, measured_on: str) -> None:
    plt = _pyplot()
    frameworks = [name for name in figures if figures[name]]
    variants: list[str] = []
    for framework in frameworks:
        for name in figures[framework]:
            if name not in variants:
                variants.append(name)
    # HMR first, the restart reloader last.
    variants.sort(key=lambda name: name == "restart")
    fig, ax = plt.subplots(figsize=(8, 5))
    width = 0.8 / max(len(variants), 1)
    colors = ["tab:blue", "tab:cyan", "tab:olive", "tab:green", "tab:gray"]
    for index, name in enumerate(variants):
        xs, heights, lows, highs = [], [], [], []
        for position, framework in enumerate(frameworks):
            got = figures[framework].get(name)
            if got is None or math.isnan(got["median"]):
                continue
            xs.append(position + (index - (len(variants) - 1) / 2) * width)
            heights.append(got["median"])
            lows.append(got["median"] - got["quartiles"][0])
            highs.append(got["quartiles"][1] - got["median"])
        label = (
            "the framework's restart reloader"
            if name == "restart"
            else name.replace(" c core", " compiled core").replace(" py core", " pure core")
        )
        color = "tab:red" if name == "restart" else colors[index % len(colors)]
        bars = ax.bar(xs, heights, width, yerr=[lows, highs], capsize=3, label=label, color=color)
        ax.bar_label(bars, labels=[f"{h:,.0f}" for h in heights], fontsize=8, padding=2)
    ax.set_xticks(range(len(frameworks)))
    ax.set_xticklabels([FRAMEWORK_NAMES.get(name, name) for name in frameworks])
    ax.set_yscale("log")
    ax.set_ylabel("ms, save to new response (log scale)")
    tallest = max(
        (got["quartiles"][1] for by in figures.values() for got in by.values()),
        default=1.0,
    )
    if not math.isnan(tallest):
        ax.set_ylim(top=tallest * 6)
    ax.set_title("Edit-to-live latency in web development servers")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.subplots_adjust(bottom=0.2)
    _footer(fig, command, measured_on)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def draw(
    out_dir: Path,
    results: Mapping[int, Mapping[str, Any]],
    cores: Sequence[str],
    latencies: Mapping[str, Mapping[str, Sequence[float]]],
    command: str,
) -> list[Path]:
    """Write both plots and ``figures.json`` into ``out_dir``; the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    scaling = scaling_figures(results, cores)
    latency = latency_figures(latencies)
    written = [out_dir / RELOAD_PNG, out_dir / LATENCY_PNG, out_dir / FIGURES_JSON]
    draw_scaling(scaling, cores, written[0], command, machine())
    draw_latency(latency, written[1], command, machine())

    def finite(value: Any) -> Any:  # JSON has no NaN
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {key: finite(item) for key, item in value.items()}
        if isinstance(value, list):
            return [finite(item) for item in value]
        return value

    data = {
        "command": command,
        "machine": machine(),
        "reload_vs_restart": scaling,
        "edit_to_live": latency,
    }
    written[2].write_text(json.dumps(finite(data), indent=1) + "\n", encoding="utf-8")
    return written


def redraw(out_dir: Path) -> list[Path]:
    """Draw the PNGs of ``out_dir`` again from its ``figures.json``; the files written."""
    data = json.loads((out_dir / FIGURES_JSON).read_text(encoding="utf-8"))

    def nan(values: Any) -> Any:
        if values is None:
            return math.nan
        if isinstance(values, list):
            return [nan(value) for value in values]
        if isinstance(values, dict):
            return {key: nan(value) for key, value in values.items()}
        return values

    scaling = nan(data["reload_vs_restart"])
    cores = list(dict.fromkeys(key.split()[0] for key in scaling["reload_ms"]))
    written = [out_dir / RELOAD_PNG, out_dir / LATENCY_PNG]
    draw_scaling(scaling, cores, written[0], data["command"], data["machine"])
    draw_latency(nan(data["edit_to_live"]), written[1], data["command"], data["machine"])
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.plot",
        description="draw the PNGs of DIR again from the figures.json that "
        "`python -m benchmarks --plot DIR` wrote (nothing is measured)",
    )
    parser.add_argument("dir", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    for path in redraw(args.dir):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

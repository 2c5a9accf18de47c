"""One frozen Settings: each option declared once, and defaults < pyproject.toml < command line.

The parser, the keys ``[tool.muckrack-hmr]`` accepts and the defaults are all
made from the fields of :class:`Settings`; these tests go through each
declared option and check that every one of the three knows it, the same way.
"""

from __future__ import annotations

import importlib
import math
import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from muckrack_hmr.cli.parsing import build_parser, main, parse
from muckrack_hmr.cli.running import UsageError
from muckrack_hmr.config import KEYS, ConfigError, load_settings, settings_for
from muckrack_hmr.settings import OPTIONS, Option, Settings, merge
from muckrack_hmr.watch.backends import DEFAULT_POLL_INTERVAL

from .conftest import Project
from .subprocesses import run_hmr, write

NAMES = [option.name for option in OPTIONS]


def _option(name: str) -> Option:
    return next(option for option in OPTIONS if option.name == name)


def _good_value(option: Option) -> tuple[str, object, object]:
    """A value of the option's type: (as TOML, as Settings keeps it, on the command line)."""
    if option.kind in ("flag", "switch"):
        return "true", True, None
    if option.kind == "list":
        return '["one", "two"]', ("one", "two"), "one"
    if option.choices is not None:
        choice = option.choices[-1]  # not the default
        return f'"{choice}"', choice, choice
    if option.metavar == "FILE":
        return '"graph.dot"', "graph.dot", "graph.dot"
    return "0.5", 0.5, "0.5"  # a number: milliseconds, or seconds of polling


def _bad_value(option: Option) -> str:
    """A value of the wrong type for the option, as TOML."""
    if option.kind in ("flag", "switch"):
        return '"yes"'
    if option.kind == "list" or option.metavar == "FILE":
        return "3"
    return '"often"'  # not a number, nor one of the choices


def _pyproject(folder: Path, table: str) -> Path:
    pyproject = folder / "pyproject.toml"
    pyproject.write_text(f'[project]\nname = "app"\n\n[tool.muckrack-hmr]\n{table}')
    return pyproject


# -- each option declared once ------------------------------------------------------


def test_the_parser_the_keys_and_the_defaults_come_from_the_same_fields() -> None:
    fields = [name for name in Settings.__annotations__ if not name.startswith("_")]
    assert fields == NAMES
    assert list(KEYS) == [name.replace("_", "-") for name in NAMES]
    defaults = Settings()
    for option in OPTIONS:
        assert getattr(defaults, option.name) == option.default
        assert option.name not in vars(Settings)  # (an instance holds every value)
    # The parser has exactly these options, and its own: help, version, -m and the target.
    parser = build_parser()
    own = {"help", "version", "module", "target"}
    assert {action.dest for action in parser._actions} == set(NAMES) | own


def test_every_option_appears_in_help_with_its_help_text(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    shown = capsys.readouterr().out
    flat = " ".join(shown.split())
    for option in OPTIONS:
        for flag in option.flags:
            assert re.search(rf"(^|[\s\[,]){re.escape(flag)}\b", shown), flag
        assert " ".join(option.help.split()) in flat, option.name
    # and nothing else: every long option --help lists is declared, or one of ours.
    listed = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", shown))
    declared = {flag for option in OPTIONS for flag in option.flags if flag.startswith("--")}
    declared |= {"--no-" + option.key for option in OPTIONS if option.kind == "switch"}
    assert listed == declared | {"--help", "--version"}


@pytest.mark.parametrize("name", NAMES)
def test_every_option_is_read_from_pyproject_with_its_type(tmp_path: Path, name: str) -> None:
    option = _option(name)
    toml, kept, _ = _good_value(option)
    if option.paths:
        kept = tuple(str(tmp_path / folder) for folder in ("one", "two"))
        for folder in kept:
            os.mkdir(folder)  # a folder that does not exist is an error of its own
    pyproject = _pyproject(tmp_path, f"{option.key} = {toml}\n")

    assert load_settings(str(pyproject)) == {name: kept}
    settings, used = settings_for(str(tmp_path), {})
    assert used == str(pyproject)
    assert getattr(settings, name) == kept != getattr(Settings(), name)


@pytest.mark.parametrize("name", NAMES)
def test_a_wrong_type_in_pyproject_is_one_line_naming_the_file_the_line_and_the_key(
    tmp_path: Path, name: str
) -> None:
    option = _option(name)
    pyproject = _pyproject(tmp_path, f"# line 5\n{option.key} = {_bad_value(option)}\n")

    with pytest.raises(ConfigError) as caught:
        settings_for(str(tmp_path / "sub"), {})

    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{pyproject}:6: [tool.muckrack-hmr] {option.key} must be ")


@pytest.mark.parametrize("name", NAMES)
def test_every_option_is_taken_from_the_command_line(name: str) -> None:
    option = _option(name)
    _, kept, text = _good_value(option)
    argv = [option.flags[-1]] + ([] if text is None else [str(text)])
    if option.kind == "list":
        kept = ("one",)

    invocation = parse([*argv, "app.py", "--program-flag"])

    assert invocation.given == {name: kept}
    assert invocation.target is not None
    assert invocation.target.script == "app.py"
    assert invocation.target.args == ("--program-flag",)


def test_bad_values_on_the_command_line_name_the_option() -> None:
    with pytest.raises(UsageError, match=r"^--debounce must be >= 0 ms$"):
        parse(["--debounce", "-1", "app.py"])
    with pytest.raises(UsageError, match=r"^--poll must be a number of seconds > 0$"):
        parse(["--poll", "0", "app.py"])
    with pytest.raises(UsageError, match=r"^--debounce must be at most 60000 ms$"):
        parse(["--debounce", "inf", "app.py"])
    with pytest.raises(UsageError, match=r"invalid choice: 'sometimes'.*\(see --help\)$"):
        parse(["--cascade", "sometimes", "app.py"])


# -- defaults < pyproject.toml < the command line -----------------------------------------


def test_pyproject_overrides_the_defaults_and_the_command_line_overrides_both(
    tmp_path: Path,
) -> None:
    _pyproject(
        tmp_path,
        'cascade = "always"\ndebounce = 40\nexclude = ["gen_*.py"]\nclear = true\nverbose = true\n',
    )
    (tmp_path / "app").mkdir()
    script = str(tmp_path / "app" / "main.py")

    given = parse(["--cascade", "never", "--no-clear", "-q", script]).given
    settings, _ = settings_for(str(tmp_path / "app"), given)

    assert settings == Settings(
        cascade="never",  # the command line's
        debounce=40.0,  # the file's
        exclude=("gen_*.py",),  # the file's
        clear=False,  # the command line's --no-clear
        quiet=True,  # -q takes verbose (the file's) with it: they exclude each other
        backend="auto",  # the default
    )
    assert settings_for(str(tmp_path), {})[0].cascade == "always"
    assert settings_for(str(tmp_path.parent / "elsewhere"), {})[0] == Settings()


def test_a_list_on_the_command_line_replaces_the_files() -> None:
    settings = merge({"include": ("*.sql",), "watch": ("/lib",)}, {"include": ("*.html",)})
    assert settings.include == ("*.html",)
    assert settings.watch == ("/lib",)


def test_pyproject_setting_both_of_exclusive_options_is_an_error(tmp_path: Path) -> None:
    pyproject = _pyproject(tmp_path, "verbose = true\nquiet = true\n")
    where = re.escape(str(pyproject))
    with pytest.raises(ConfigError, match=rf"^{where}:6: .* both verbose and"):
        load_settings(str(pyproject))


CASCADE_PROBE = "import builtins\nprint(builtins.__hmr__.cascade)\n"


@pytest.mark.parametrize(
    ("table", "args", "policy"),
    [
        pytest.param(None, [], "auto", id="default"),
        pytest.param('cascade = "always"\n', [], "always", id="pyproject"),
        pytest.param('cascade = "always"\n', ["--cascade", "never"], "never", id="command-line"),
    ],
)
def test_the_cli_runs_with_defaults_then_pyproject_then_its_options(
    proj: Path, core_env: dict[str, str], table: str | None, args: list[str], policy: str
) -> None:
    if table is not None:
        _pyproject(proj, table)
    write(proj / "main.py", CASCADE_PROBE)

    got = run_hmr([*args, "--no-watch", "main.py"], cwd=proj, env=core_env)

    assert got.returncode == 0, got.stderr
    assert got.stdout.strip() == policy


# -- frozen, and checked -------------------------------------------------------------------


def test_settings_are_frozen_and_hashable() -> None:
    settings = Settings(debounce=20, include=["*.sql"])  # type: ignore[arg-type]
    assert settings.include == ("*.sql",)  # kept as a tuple: nothing in it changes either
    with pytest.raises(AttributeError, match="frozen"):
        settings.debounce = 30  # type: ignore[misc]
    with pytest.raises(AttributeError, match="frozen"):
        del settings.clear  # type: ignore[misc]
    with pytest.raises(TypeError, match="unexpected keyword argument 'debounse'"):
        Settings(debounse=30)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Settings(("src",))  # type: ignore[call-arg]  # keywords only
    assert settings.debounce == 20.0
    assert hash(settings) == hash(Settings(debounce=20.0, include=("*.sql",)))
    assert settings == Settings(debounce=20.0, include=("*.sql",)) != Settings()
    assert repr(settings).startswith("Settings(root=(), watch=(), include=('*.sql',), ")
    changed = settings.replace(debounce=30)
    assert (changed.debounce, settings.debounce) == (30.0, 20.0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"debounce": -1}, "debounce must be >= 0 ms, not -1"),
        ({"backend": "fsevents"}, "backend must be one of 'auto', "),
        ({"poll": 0}, "poll must be a number of seconds > 0, not 0"),
        # Past these, the watcher's thread died on its first wait, or never reloaded.
        ({"debounce": math.inf}, "debounce must be at most 60000 ms, not inf"),
        ({"debounce": math.nan}, "debounce must be at most 60000 ms, not nan"),
        ({"debounce": 1e12}, "debounce must be at most 60000 ms, not 1000000000000.0"),
        ({"poll": math.inf}, "poll must be at most 3600 seconds, not inf"),
        ({"poll": math.nan}, "poll must be at most 3600 seconds, not nan"),
        ({"verbose": True, "quiet": True}, "verbose and quiet exclude each other"),
    ],
)
def test_settings_check_their_values(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings(**changes)
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings().replace(**changes)


def test_poll_true_is_the_default_interval() -> None:
    assert Settings(poll=True).poll == DEFAULT_POLL_INTERVAL  # type: ignore[arg-type]
    assert Settings(poll=False).poll is None  # type: ignore[arg-type]


# -- HMR.watch takes them whole --------------------------------------------------------


def _reload_on_save(project: Project, hmr: Any, start: Any) -> None:
    """Start the watcher with ``start(hmr)``, save a module, wait for its reload."""
    project.write("cfg.py", "VALUE = 1\n")
    cfg = importlib.import_module("cfg")
    reloaded = threading.Event()
    hmr.add_post_reload_hook(lambda name: reloaded.set() if name == "cfg" else None)
    try:
        start(hmr)
        assert hmr.watcher.started.wait(timeout=10)
        assert cfg.VALUE == 1
        project.write("cfg.py", "VALUE = 2\n")
        assert reloaded.wait(timeout=10), "the save was not reloaded"
        assert cfg.VALUE == 2
    finally:
        hmr.close()


def test_watch_takes_a_settings_whole(project: Project, hmr: Any) -> None:
    settings = Settings(backend="polling", poll=0.02, debounce=0, exclude=("gen_*.py",))
    _reload_on_save(project, hmr, lambda hmr: hmr.watch(settings))
    assert hmr.watcher is None


def test_watch_keeps_its_keywords(project: Project, hmr: Any) -> None:
    def start(hmr: Any) -> None:
        hmr.watch(0, backend="polling", poll=0.02, exclude=["gen_*.py"])
        assert hmr.watcher.filter.exclude == ["gen_*.py"]

    _reload_on_save(project, hmr, start)
    with pytest.raises(TypeError, match="not both"):
        hmr.watch(Settings(), backend="polling")
    with pytest.raises(TypeError, match="unexpected keyword argument 'cascade'"):
        hmr.watch(cascade="never")
    with pytest.raises(ValueError, match="debounce must be >= 0 ms"):
        hmr.watch(-5)


# -- a command line with nothing of ours before the program --------------------------


@pytest.mark.parametrize(
    ("argv", "script", "module", "args"),
    [
        (["app.py"], "app.py", None, ()),
        (["app.py", "--poll", "-v"], "app.py", None, ("--poll", "-v")),
        (["-m", "pkg.mod", "-q", "x"], None, "pkg.mod", ("-q", "x")),
        (["-mpkg"], None, "pkg", ()),
        (["--", "-odd.py", "a"], "-odd.py", None, ("a",)),
        (["-"], "-", None, ()),
    ],
)
def test_a_command_line_without_options_of_ours_parses_as_the_parser_would(
    argv: list[str], script: str | None, module: str | None, args: tuple[str, ...]
) -> None:
    invocation = parse(argv)
    assert invocation.target is not None
    assert (invocation.target.script, invocation.target.module) == (script, module)
    assert invocation.target.args == args
    assert invocation.given == {}
    # The same through argparse, with one option of ours in front.
    slow = parse(["-q", *argv])
    assert slow.target is not None
    assert (slow.target.script, slow.target.module, slow.target.args) == (script, module, args)
    assert slow.given == {"quiet": True}


@pytest.mark.parametrize(
    "argv",
    [
        ["-m"],
        ["-m", "-x"],
        [""],
        ["-m", ""],
        # One option of ours with its value and no target: not ``-m VALUE``.
        ["--root", "pkg"],
        ["--include", "info.py"],
        ["--debounce", "10"],
        ["--cascade", "never"],
        ["--poll", "0.5"],
        ["--graph", "g.svg"],
    ],
)
def test_a_target_missing_or_looking_like_an_option_is_still_refused(argv: list[str]) -> None:
    with pytest.raises(UsageError, match=r"give a script to run|expected one argument|-m"):
        parse(argv)


@pytest.mark.e2e
def test_a_run_without_options_of_ours_starts_without_argparse_or_sysconfig(
    proj: Path, core_env: dict[str, str]
) -> None:
    """argparse (with gettext and locale) and sysconfig are a few ms of every start: the
    usual command line, ``python -m muckrack.hmr script.py``, has nothing for argparse to
    parse, and what counts as the standard library is asked of the interpreter."""
    write(
        proj / "main.py",
        "import sys\nprint('argparse' in sys.modules, 'sysconfig' in sys.modules)\n",
    )
    plain = run_hmr(["main.py"], cwd=proj, env=core_env)
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.strip().splitlines()[-1] == "False False"
    optioned = run_hmr(["--no-watch", "main.py"], cwd=proj, env=core_env)
    assert optioned.returncode == 0, optioned.stderr
    assert optioned.stdout.strip().splitlines()[-1] == "True False"

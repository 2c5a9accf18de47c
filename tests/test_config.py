"""[tool.muckrack-hmr] settings, --include/--exclude globs, and how the CLI splits its options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from muckrack_hmr.cli.parsing import split_argv
from muckrack_hmr.config import ConfigError, find_pyproject, load_settings
from muckrack_hmr.watch.filters import PathFilter

# -- pyproject.toml ---------------------------------------------------------------


def test_settings_are_read_and_paths_made_absolute(tmp_path: Path) -> None:
    (tmp_path / "vendor").mkdir()
    (tmp_path / "lib").mkdir()
    tmp_path = tmp_path / "app"
    tmp_path.mkdir()
    (tmp_path / "vendor").mkdir()
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[project]\nname = "app"\n\n'
        "[tool.muckrack-hmr]\n"
        'watch = ["../lib", "vendor"]\n'
        'exclude = "migrations"\n'
        "debounce = 10\n"
        "poll = true\n"
        "watch-data = true\n"
        'cascade = "never"\n'
    )

    settings = load_settings(str(pyproject))

    assert settings == {
        "watch": (str(tmp_path / "../lib"), str(tmp_path / "vendor")),
        "exclude": ("migrations",),
        "debounce": 10.0,
        "poll": 0.1,
        "watch_data": True,
        "cascade": "never",
    }


def test_a_pyproject_without_the_table_has_no_settings(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.ruff]\nline-length = 100\n")
    assert load_settings(str(pyproject)) == {}


@pytest.mark.parametrize(
    ("table", "line", "message"),
    [
        pytest.param("debounse = 5\n", 3, "unknown key 'debounse'", id="unknown-key"),
        pytest.param(
            "clear = true\ndebounce = 'fast'\n", 4, "debounce must be a number", id="bad-number"
        ),
        pytest.param("watch = [1, 2]\n", 3, "watch must be a string or a list", id="bad-list"),
        pytest.param("cascade = 'sometimes'\n", 3, "cascade must be one of", id="bad-choice"),
        pytest.param("poll = -1\n", 3, "poll must be a number of seconds > 0", id="bad-poll"),
        pytest.param("debounce = inf\n", 3, "debounce must be at most 60000 ms", id="inf-debounce"),
        pytest.param("poll = nan\n", 3, "poll must be at most 3600 seconds", id="nan-poll"),
        pytest.param("clear = 'yes'\n", 3, "clear must be true or false", id="bad-bool"),
        pytest.param("watch = 'src'\n", 3, "watch: '", id="missing-folder"),
        pytest.param(
            "clear = true\n[tool.muckrack-hmr.extra]\n", 4, "unknown key 'extra'", id="sub-table"
        ),
    ],
)
def test_bad_settings_name_the_file_and_the_line(
    tmp_path: Path, table: str, line: int, message: str
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[project]\n[tool.muckrack-hmr]\n{table}")

    with pytest.raises(ConfigError) as caught:
        load_settings(str(pyproject))

    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(f"{pyproject}:{line}: ")
    assert message in text


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param(
            "[project]\n[tool]\nmuckrack-hmr = { clear = true, debounse = 10 }\n",
            3,
            "unknown key 'debounse'",
            id="inline-table",
        ),
        pytest.param(
            "[tool.muckrack-hmr]\nverbose = true\nclear = true\nquiet = true\n",
            4,
            "sets both verbose and quiet",
            id="excluding-options",
        ),
    ],
)
def test_every_bad_setting_names_its_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    """An inline ``[tool]`` table and options that exclude each other said no line."""
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_settings(str(pyproject))
    assert str(caught.value).startswith(f"{pyproject}:{line}: ")
    assert message in str(caught.value)


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.muckrack-hmr]\ndebounce = = 3\n")

    with pytest.raises(ConfigError) as caught:
        load_settings(str(pyproject))

    assert str(caught.value).startswith(f"{pyproject}: invalid TOML: ")
    assert "line 2" in str(caught.value)


def test_the_nearest_pyproject_is_found_from_a_subfolder(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("")
    sub = tmp_path / "src" / "app"
    sub.mkdir(parents=True)
    assert find_pyproject(str(sub)) == str(tmp_path / "pyproject.toml")
    (sub / "pyproject.toml").write_text("")
    assert find_pyproject(str(sub)) == str(sub / "pyproject.toml")


# -- globs ------------------------------------------------------------------------------


def test_globs_match_the_file_or_a_folder_it_lies_in(tmp_path: Path) -> None:
    root = str(tmp_path)
    path_filter = PathFilter(
        [root],
        include=["*.sql", "templates/*.html"],
        exclude=["migrations", "gen_*.py", "/abs/*"],
    )

    def under(relpath: str) -> str:
        return os.path.join(root, *relpath.split("/"))

    assert path_filter.excluded(under("app/migrations/0001_initial.py"))
    assert path_filter.excluded(under("gen_table.py"))
    assert path_filter.excluded(under("pkg/gen_x.py"))
    assert not path_filter.excluded(under("app/views.py"))
    assert not path_filter.excluded(under("app/migrations_helper.py"))
    assert path_filter.excluded("/abs/file.py")  # an absolute pattern, anywhere
    assert path_filter.included(under("queries/users.sql"))
    assert path_filter.included(under("app/templates/page.html"))
    assert not path_filter.included(under("app/static/page.html"))
    assert not path_filter.included("/elsewhere/q.sql")  # outside every root


# -- splitting our options from the program's -------------------------------------------


@pytest.mark.parametrize(
    ("argv", "ours", "program"),
    [
        (["--poll", "app.py", "-v"], ["--poll", "--", "app.py"], ["-v"]),
        (["--poll", "0.5", "app.py"], ["--poll", "0.5", "--", "app.py"], []),
        (["--poll", "-m", "pkg", "x"], ["--poll", "-m", "pkg"], ["x"]),
        (
            ["--watch", "lib", "--exclude", "*.tmp.py", "app.py", "--watch", "x"],
            ["--watch", "lib", "--exclude", "*.tmp.py", "--", "app.py"],
            ["--watch", "x"],
        ),
        (
            ["--clear", "--no-watch-data", "app.py"],
            ["--clear", "--no-watch-data", "--", "app.py"],
            [],
        ),
    ],
)
def test_options_end_where_the_target_begins(
    argv: list[str], ours: list[str], program: list[str]
) -> None:
    assert split_argv(argv) == (ours, program)

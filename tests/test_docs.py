"""The README's and the documentation's examples work as written.

Every fenced block of README.md and docs/*.md says its language, and:

- a ```` ```python ```` block runs in a fresh interpreter, in a temporary folder, on both
  cores, and must exit 0; a block preceded by ``<!-- docs-test: compile-only: REASON -->``
  (it needs a running program, or runs forever) is only compiled;
- every command line of a ```` ```sh ````/```` ```bash ````/```` ```console ```` block is
  checked: ``python -m muckrack.hmr``/``muckrack-hmr`` lines are parsed by the CLI itself
  (``--help`` first: parsed, nothing run) and name only options its help lists; ``pytest``
  lines and ``python -m benchmarks...`` lines name only options their ``--help`` lists (and
  the benchmark's own parser accepts them); ``pip install`` names only extras
  pyproject.toml has; any other command fails the test until it is taught here;
- a ```` ```toml ```` block with ``[tool.muckrack-hmr]`` is the pyproject.toml of a real
  run of the CLI, which must accept it;
- inline code that starts with one of those commands is checked like a command line.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import io
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

from muckrack_hmr import cli

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
README_MAX_LINES = 250

LANGUAGES = {"python", "sh", "bash", "console", "shell", "toml", "text"}
SHELLS = {"sh", "bash", "console", "shell"}
MARKS = {"compile-only"}

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
MARK = re.compile(r"^\s*<!--\s*docs-test:\s*(?P<what>[^:\s]+)\s*(?::(?P<why>.*?))?\s*-->\s*$")
INLINE = re.compile(r"(?<!`)`([^`\n]+(?:\n[^`\n]+)?)`(?!`)")
INLINE_COMMANDS = (
    "python -m muckrack",
    "muckrack-hmr ",
    "pytest ",
    "python -m pytest",
    "python -m benchmarks",
)


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    page: Path
    line: int  # of the opening fence, 1-based
    lang: str
    code: str
    mark: str | None = None
    reason: str = ""

    @property
    def where(self) -> str:
        try:
            name = self.page.relative_to(ROOT)
        except ValueError:
            name = self.page
        return f"{name}:{self.line}"


def blocks_of(page: Path, text: str | None = None) -> list[Block]:
    """The fenced blocks of a Markdown page, dedented, with the mark that precedes each."""
    lines = (page.read_text(encoding="utf-8") if text is None else text).splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        info = opening["info"].strip()
        start = index
        body: list[str] = []
        index += 1
        while index < len(lines):
            closing = FENCE.match(lines[index])
            if (
                closing is not None
                and closing["fence"][0] == fence[0]
                and len(closing["fence"]) >= len(fence)
                and not closing["info"].strip()
            ):
                break
            body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
            index += 1
        index += 1
        mark, reason = None, ""
        before = start - 1
        while before >= 0 and not lines[before].strip():
            before -= 1
        if before >= 0 and (marked := MARK.match(lines[before])):
            mark, reason = marked["what"], (marked["why"] or "").strip()
        lang = info.split()[0].lstrip(".{") if info else ""
        found.append(Block(page, start + 1, lang, "\n".join(body) + "\n", mark, reason))
    return found


ALL_BLOCKS = [block for page in PAGES for block in blocks_of(page)]


def _ids(blocks: list[Block]) -> list[str]:
    return [block.where for block in blocks]


RUN = [b for b in ALL_BLOCKS if b.lang == "python" and b.mark is None]
COMPILE = [b for b in ALL_BLOCKS if b.lang == "python" and b.mark == "compile-only"]
SHELL = [b for b in ALL_BLOCKS if b.lang in SHELLS]
TOML = [b for b in ALL_BLOCKS if b.lang == "toml" and "[tool.muckrack-hmr]" in b.code]


# -- command lines ---------------------------------------------------------------------


def command_lines(block: Block) -> Iterator[list[str]]:
    """The commands of a shell block: comments, prompts and output dropped, chains split."""
    text = block.code.replace("\\\n", " ")
    for line in text.splitlines():
        if block.lang == "console":
            if not line.startswith("$ "):
                continue  # output
            line = line[2:]
        tokens = shlex.split(line, comments=True)
        command: list[str] = []
        for token in tokens:
            if token in ("&&", "||", ";", "|"):
                if command:
                    yield command
                command = []
            else:
                command.append(token)
        if command:
            yield command


def _options_in(help_text: str) -> set[str]:
    return set(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", help_text))


def _dash_tokens(args: list[str]) -> list[str]:
    return [arg.split("=", 1)[0] for arg in args if arg.startswith("-") and arg not in ("-", "--")]


@functools.cache
def _help_of(*command: str) -> str:
    result = subprocess.run(
        [sys.executable, *command, "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"{command} --help failed:\n{result.stderr}"
    return result.stdout


def check_hmr(args: list[str]) -> list[str]:
    """``python -m muckrack.hmr ARGS``: parsed by the CLI (with --help: nothing runs)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = cli.main(["--help", *args])
    problems = []
    if code != 0:
        problems.append(f"the CLI rejects it: {err.getvalue().strip()}")
    known = _options_in(out.getvalue())
    ours: list[str] = []
    for arg in args:  # our options end at the script or at -m MODULE
        if arg.endswith(".py"):
            break
        ours.append(arg)
        if arg == "-m":
            break
    problems += [f"no such option {name}" for name in _dash_tokens(ours) if name not in known]
    return problems


def check_pytest(args: list[str]) -> list[str]:
    known = _options_in(_help_of("-m", "pytest"))
    return [f"pytest has no option {name}" for name in _dash_tokens(args) if name not in known]


def check_benchmark(module: str, args: list[str]) -> list[str]:
    """``python -m benchmarks[.NAME] ARGS``: its options, and its own parser where it has one."""
    if importlib.util.find_spec(module) is None:
        return [f"no benchmark module {module}"]
    known = _options_in(_help_of("-m", module))
    problems = [f"{module} has no option {n}" for n in _dash_tokens(args) if n not in known]
    code = importlib.import_module(f"{module}.__main__" if module == "benchmarks" else module)
    parse_args = getattr(code, "parse_args", None)
    if parse_args is not None and not problems:
        err = io.StringIO()
        try:
            with redirect_stderr(err):
                parse_args(args)
        except SystemExit:
            problems.append(f"{module}'s parser rejects it: {err.getvalue().strip()}")
    return problems


def check_pip(args: list[str]) -> list[str]:
    if not args or args[0] != "install":
        return [f"pip {args[:1]}: only pip install is checked"]
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    extras = set(pyproject["project"]["optional-dependencies"])
    problems = []
    for arg in args[1:]:
        match = re.fullmatch(r"(?:\.|muckrack-python-hmr)\[([\w,-]+)\]", arg)
        if match:
            problems += [f"no extra {e!r}" for e in match[1].split(",") if e not in extras]
    return problems


def check_python_module(module: str, args: list[str]) -> list[str]:
    if module in ("muckrack.hmr", "muckrack_hmr"):
        return check_hmr(args)
    if module == "pytest":
        return check_pytest(args)
    if module == "pip":
        return check_pip(args)
    if module == "venv":
        return []
    if module == "benchmarks" or module.startswith("benchmarks."):
        return check_benchmark(module, args)
    if module == "mkdocs":
        return check_command(["mkdocs", *args])
    if importlib.util.find_spec(module) is None:
        return [f"no module {module}"]
    return []


def check_command(argv: list[str]) -> list[str]:
    """What is wrong with one command line of the docs (nothing: an empty list)."""
    while argv and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", argv[0]):
        argv = argv[1:]  # VAR=value before the command
    if not argv:
        return ["an empty command"]
    program = argv[0].replace("\\", "/").rsplit("/", 1)[-1]
    args = argv[1:]
    if re.fullmatch(r"python[\d.]*(\.exe)?", program):
        if len(args) >= 2 and args[0] == "-m":
            return check_python_module(args[1], args[2:])
        return [f"python {args[:1]}: only python -m MODULE is checked"]
    if program == "muckrack-hmr":
        return check_hmr(args)
    if program == "pytest":
        return check_pytest(args)
    if program == "pip":
        return check_pip(args)
    if program == "bash":
        return [] if args and (ROOT / args[0]).is_file() else [f"no script {args[:1]}"]
    if program == "mkdocs":
        if not args or args[0] not in ("build", "serve"):
            return ["mkdocs: only build and serve are documented"]
        return [f"mkdocs: unchecked option {a}" for a in args[1:] if a != "--strict"]
    return [f"unknown command {program!r}: teach tests/test_docs.py to check it"]


def without_fenced_blocks(text: str) -> str:
    """The text with each fenced block blanked out (its lines kept, for line numbers)."""
    return re.sub(
        r"^([ \t]*)(`{3,}).*?^\1\2[ \t]*$",
        lambda block: "\n" * block[0].count("\n"),
        text,
        flags=re.S | re.M,
    )


def inline_commands(page: Path) -> Iterator[tuple[str, str]]:
    """Inline code spans of a page that are command lines we can check."""
    text = page.read_text(encoding="utf-8")
    # Fenced blocks have their own checks.
    text = without_fenced_blocks(text)
    for match in INLINE.finditer(text):
        span = " ".join(match[1].split())
        if span.startswith(INLINE_COMMANDS) and "..." not in span and "[" not in span:
            line = text[: match.start()].count("\n") + 1
            yield f"{page.relative_to(ROOT)}:~{line}", span


INLINE_SPANS = [found for page in PAGES for found in inline_commands(page)]


# -- the examples ----------------------------------------------------------------------


def test_the_examples_are_found() -> None:
    # A parser that finds nothing would pass every test below.
    assert len(RUN) >= 2
    assert len(COMPILE) >= 2
    assert len(SHELL) >= 6
    assert TOML
    assert {page.name for page in PAGES} >= {"README.md", "index.md", "api.md", "cli.md"}


@pytest.mark.parametrize("block", ALL_BLOCKS, ids=_ids(ALL_BLOCKS))
def test_every_block_says_what_it_is(block: Block) -> None:
    assert block.lang in LANGUAGES, f"{block.where}: a block in {block.lang or 'no language'}"
    if block.mark is not None:
        assert block.mark in MARKS, f"{block.where}: unknown mark {block.mark!r}"
        assert block.reason, f"{block.where}: say why the block is not run"
        assert block.lang == "python", f"{block.where}: only python blocks are run"


@pytest.mark.parametrize("block", RUN, ids=_ids(RUN))
def test_python_example_runs(block: Block, core_env: dict[str, str], tmp_path: Path) -> None:
    env = dict(core_env, TMPDIR=str(tmp_path), TEMP=str(tmp_path), TMP=str(tmp_path))
    result = subprocess.run(
        [sys.executable, "-c", block.code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{block.where} failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("block", COMPILE, ids=_ids(COMPILE))
def test_python_example_compiles(block: Block) -> None:
    compile(block.code, block.where, "exec")


@pytest.mark.e2e  # runs the CLI, pytest --help or a benchmark's --help
@pytest.mark.parametrize("block", SHELL, ids=_ids(SHELL))
def test_command_lines_are_real(block: Block) -> None:
    commands = list(command_lines(block))
    assert commands, f"{block.where}: no command"
    for argv in commands:
        problems = check_command(argv)
        assert not problems, f"{block.where}: {shlex.join(argv)}: {'; '.join(problems)}"


@pytest.mark.e2e  # runs the CLI, pytest --help or a benchmark's --help
@pytest.mark.parametrize(("where", "span"), INLINE_SPANS, ids=[f"{w} {s}" for w, s in INLINE_SPANS])
def test_inline_command_lines_are_real(where: str, span: str) -> None:
    problems = check_command(shlex.split(span))
    assert not problems, f"{where}: {span}: {'; '.join(problems)}"


@pytest.mark.e2e  # runs the CLI, pytest --help or a benchmark's --help
@pytest.mark.parametrize("block", TOML, ids=_ids(TOML))
def test_pyproject_example_is_accepted(block: Block, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text(block.code, encoding="utf-8")
    settings = tomllib.loads(block.code)["tool"]["muckrack-hmr"]
    for key in ("root", "watch"):
        for folder in settings.get(key, []):
            (project / folder).mkdir(parents=True, exist_ok=True)
    (project / "main.py").write_text("print('ran')\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "muckrack.hmr", "--no-watch", "main.py"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, f"{block.where}: the CLI rejects it:\n{result.stderr}"
    assert result.stdout.strip() == "ran"


# -- the checker itself fails on broken examples ---------------------------------------


@pytest.mark.e2e  # runs the CLI, pytest --help or a benchmark's --help
@pytest.mark.parametrize(
    "command",
    [
        "python -m muckrack.hmr --no-such-option app.py",
        "python -m muckrack.hmr --cascade sometimes app.py",
        "python -m muckrack.hmr --debounce soon app.py",
        "muckrack-hmr --wach src app.py",
        "pytest --hmr --hmr-nothing",
        "python -m benchmarks --plot",
        "python -m benchmarks.latency --edit 3",
        "python -m no_such_module_here",
        "pip install -e '.[nothing]'",
        "bash .ci/no-such-script",
        "make docs",
    ],
)
def test_a_broken_command_line_is_caught(command: str) -> None:
    assert check_command(shlex.split(command))


@pytest.mark.e2e  # runs the CLI, pytest --help or a benchmark's --help
@pytest.mark.parametrize(
    "command",
    [
        "python -m muckrack.hmr --root src --cascade always -m pkg.tool --cascade x",
        "muckrack-hmr --poll 0.5 --debounce 10 app.py --no-such-option-of-the-program",
        "pytest --hmr --hmr-debounce 20 tests -k parser",
        "python -m benchmarks --quick --plot out",
        "pip install -e '.[test,docs]'",
    ],
)
def test_a_good_command_line_passes(command: str) -> None:
    # Options after the script or -m MODULE are the program's: not ours to check.
    assert check_command(shlex.split(command)) == []


def test_blocks_are_taken_apart_with_their_marks() -> None:
    page = ROOT / "example.md"
    text = (
        "Text.\n\n"
        "<!-- docs-test: compile-only: needs a server -->\n"
        "```python\nserve()\n```\n\n"
        "- in a list:\n\n"
        "    ```console\n    $ pytest --hmr\n    output line\n    ```\n\n"
        "```\nno language\n```\n"
    )
    first, second, third = blocks_of(page, text)
    assert (first.lang, first.mark, first.reason, first.code) == (
        "python",
        "compile-only",
        "needs a server",
        "serve()\n",
    )
    assert second.lang == "console"
    assert second.mark is None
    assert list(command_lines(second)) == [["pytest", "--hmr"]]
    assert third.lang == ""


# -- the pages ---------------------------------------------------------------------------


def test_the_readme_fits_on_a_screen_or_two() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_lead_to_files(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    text = without_fenced_blocks(text)
    targets = re.findall(r"\]\(([^)\s]+)\)", text)
    missing = [
        target
        for target in targets
        if "://" not in target
        and not target.startswith(("#", "mailto:"))
        and not (page.parent / target.split("#", 1)[0]).exists()
    ]
    assert not missing, f"{page.relative_to(ROOT)}: links to nothing: {missing}"


def test_the_reference_covers_the_public_api() -> None:
    """Each export of muckrack_hmr, and each public member of HMR, is in the reference."""
    import muckrack_hmr
    from muckrack_hmr.api import HMR

    reference = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    rendered = set(re.findall(r"^::: ([\w.]+)", reference, re.MULTILINE))
    members = set(re.findall(r"^ {8}- (\w+)$", reference, re.MULTILINE))
    for name in muckrack_hmr.__all__:
        obj = getattr(muckrack_hmr, name)
        if callable(obj):
            path = f"{obj.__module__}.{obj.__qualname__}"
            assert {f"muckrack_hmr.{name}", path} & rendered, f"{name} is not in the reference"
            assert obj.__doc__, f"{name} has no docstring"
        else:
            assert f"muckrack_hmr.{name}" in reference, f"{name} is not in the reference"
    public = {name for name in vars(HMR) if not name.startswith("_")}
    assert public <= members, f"HMR members missing from the reference: {public - members}"
    for name in public:
        assert getattr(HMR, name).__doc__, f"HMR.{name} has no docstring"

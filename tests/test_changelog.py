"""The CHANGELOG's newest numbered version is the package's own."""

from __future__ import annotations

import re
from pathlib import Path

import muckrack_hmr

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"


def test_the_newest_version_in_the_changelog_is_the_packages() -> None:
    headings = re.findall(r"^## (\S+)", CHANGELOG.read_text(encoding="utf-8"), re.MULTILINE)
    assert headings[0] == "Unreleased"
    numbered = [heading for heading in headings[1:] if re.fullmatch(r"\d+\.\d+\.\d+", heading)]
    assert numbered, "no numbered version in CHANGELOG.md"
    assert numbered[0] == muckrack_hmr.__version__
    assert len(numbered) == len(headings) - 1  # every other heading is a version

"""The commands shown to users (examples/ walkthrough and workflow, README, demo) parse and name real things."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from conftest import REPO

from libkd_bench.cli import build_parser
from libkd_bench.models import registry

DOCUMENTS = [
    REPO / "examples" / "README.md",
    REPO / "examples" / "github-actions" / "libkd-bench.yml",
    REPO / "README.md",
    REPO / "scripts" / "demo.sh",
    REPO / "scripts" / "regression-guard.sh",
]
_ARRAY = re.compile(r"^(\w+)=\((.*)\)$")  # bash: common=(--sets-dir ...)
_EXPANSION = re.compile(r"^\$\{(\w+)\[@\]\}$")  # "${common[@]}"
_VARIABLE = re.compile(r"\$\{?(\w+)\}?")  # $WORK, ${LIMIT}
_SYNOPSIS = re.compile(r"\s\[")  # `libkd-bench score CKPT [CKPT ...]` is a synopsis, not a command
_ENVIRONMENT = re.compile(r"^(?:\w+=\S+\s+)+(?=libkd-bench )")  # LIBKD_BENCH_ZOO_DIR=... libkd-bench
_VALUES = {"LIMIT": "2000"}  # variables that must parse as numbers; the rest become paths


def libkd_bench_commands(path: Path) -> list[list[str]]:
    """Every ``libkd-bench ...`` command of ``path`` as argv: code blocks only in Markdown, continuation lines
    joined, bash arrays expanded, variables given stand-in values, redirections and comments dropped."""
    text = path.read_text().replace("\\\n", " ")
    if path.suffix == ".md":
        text = "\n".join(text.split("```")[1::2])
    arrays: dict[str, list[str]] = {}
    commands = []
    for raw in text.splitlines():
        line = raw.strip().removeprefix("run: ")
        line = re.split(r"\s(?:#|\||\d?>)", line)[0].strip()
        line = _ENVIRONMENT.sub("", line)
        if match := _ARRAY.match(line):
            arrays[match.group(1)] = shlex.split(match.group(2))
        if not line.startswith("libkd-bench ") or _SYNOPSIS.search(line):
            continue
        tokens = shlex.split(line)[1:]
        expanded = [t for token in tokens for t in arrays.get(_array_name(token), [token])]
        commands.append([_VARIABLE.sub(_stand_in, token) for token in expanded])
    return commands


def _array_name(token: str) -> str:
    match = _EXPANSION.match(token)
    return match.group(1) if match else ""


def _stand_in(variable: re.Match[str]) -> str:
    return _VALUES.get(variable.group(1), f"/{variable.group(1).lower()}")


COMMANDS = [
    pytest.param(argv, id=f"{path.name}:{' '.join(argv[:2])}")
    for path in DOCUMENTS
    for argv in libkd_bench_commands(path)
    if argv and argv[0] not in {"--version"}
]


def test_every_document_shows_commands() -> None:
    counted = {path.name: len(libkd_bench_commands(path)) for path in DOCUMENTS}
    assert all(count > 0 for count in counted.values()), counted
    assert len(COMMANDS) >= 18


@pytest.mark.parametrize("argv", COMMANDS)
def test_shown_command_parses_and_names_registered_architectures(argv: list[str]) -> None:
    args = build_parser().parse_args(argv)  # an unknown flag raises a BenchError naming it
    arch = getattr(args, "arch", None)
    if arch and not arch.startswith("timm:"):
        registry.get_architecture(arch)

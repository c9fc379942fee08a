"""The package's stages import downwards only: a newcomer finds each concept in one place and nothing cycles.

``libkd_bench`` (folder ``bench/``) is grouped by stage: core < metrics < records < scoring < reports < commands
< cli. ``models`` and ``datasets_gen`` use only ``core`` from it. Command modules do not import each other: what
they share lives in ``libkd_bench.commands`` itself or a lower stage. Every import counts, lazy ones inside
functions included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STAGES = ("core", "metrics", "records", "scoring", "reports", "validation", "commands", "cli")
LIBRARIES = ("models", "datasets_gen")


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name == "libkd_bench" or name.startswith("libkd_bench.")}


def stage_of(module: str) -> str | None:
    """``libkd_bench.scoring.run`` -> "scoring"; the libraries and the package root have no stage."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def module_files(folder: str) -> list[Path]:
    return sorted((REPO / folder).rglob("*.py"))


def test_bench_top_level_is_small_and_grouped_by_stage() -> None:
    entries = sorted(p.name for p in (REPO / "bench").iterdir() if p.name != "__pycache__")
    assert len(entries) <= 11, entries  # the stages, and the two entry points: api.py (Python) and cli.py
    assert {p.name for p in (REPO / "bench").iterdir() if p.is_dir() and p.name != "__pycache__"} == set(STAGES) - {
        "cli"
    }


@pytest.mark.parametrize("path", module_files("bench"), ids=lambda p: str(p.relative_to(REPO)))
def test_a_stage_imports_only_its_own_and_lower_stages(path: Path) -> None:
    relative = path.relative_to(REPO / "bench")
    own = relative.parts[0] if len(relative.parts) > 1 else relative.stem
    if own not in STAGES:  # __init__ / __main__ of the package
        return
    higher = [m for m in imported_modules(path) if (s := stage_of(m)) and STAGES.index(s) > STAGES.index(own)]
    assert not higher, f"{relative} ({own}) imports a higher stage: {higher}"


@pytest.mark.parametrize("folder", LIBRARIES)
def test_models_and_datasets_gen_use_only_the_core_of_libkd_bench(folder: str) -> None:
    offending = {
        str(path.relative_to(REPO)): sorted(bad)
        for path in module_files(folder)
        if (bad := {m for m in imported_modules(path) if stage_of(m) not in (None, "core")})
    }
    assert not offending


def test_the_core_imports_nothing_else_from_libkd_bench() -> None:
    offending = {
        str(path.relative_to(REPO)): sorted(bad)
        for path in module_files("bench/core")
        if (bad := {m for m in imported_modules(path) if m != "libkd_bench" and stage_of(m) != "core"})
    }
    assert not offending


@pytest.mark.parametrize("path", module_files("bench/commands"), ids=lambda p: p.name)
def test_command_modules_do_not_import_each_other(path: Path) -> None:
    commands = {p.stem for p in module_files("bench/commands") if p.stem != "__init__"}
    others = {f"libkd_bench.commands.{name}" for name in commands if name != path.stem}
    from_package = {  # ``from libkd_bench.commands import score`` names a module too
        f"libkd_bench.commands.{alias.name}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ImportFrom) and node.module == "libkd_bench.commands"
        for alias in node.names
    }
    assert not (imported_modules(path) | from_package) & others, f"{path.name} imports another command module"


def imports_from(folder: str, prefix: str) -> dict[str, list[str]]:
    """Files under ``folder`` that import a module under ``prefix``, with those modules."""
    return {
        str(path.relative_to(REPO)): sorted(bad)
        for path in module_files(folder)
        if (bad := {m for m in imported_modules(path) if m == prefix or m.startswith(prefix + ".")})
    }


def test_the_set_generators_do_not_import_the_models() -> None:
    # ImageNet statistics for the pretrained backends come from core.normalisation, not from models.spec
    assert imports_from("datasets_gen", "libkd_bench.models") == {}


def test_the_import_check_sees_a_generator_that_imports_the_models(tmp_path: Path) -> None:
    module = tmp_path / "datasets_gen" / "backend.py"
    module.parent.mkdir()
    module.write_text("from libkd_bench.models.spec import PRESET_STATS\n")
    assert imported_modules(module) == {"libkd_bench.models.spec"}


ROW_BUILDERS = {"run_metrics", "comparison_metrics", "transfer_metrics", "corruption_rows"}


def calls_of(path: Path, names: set[str]) -> set[str]:
    """Names in ``names`` that ``path`` calls (as ``f(...)`` or ``module.f(...)``)."""
    called = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            function = node.func
            name = function.id if isinstance(function, ast.Name) else getattr(function, "attr", None)
            if name in names:
                called.add(name)
    return called


def test_the_metric_rows_of_a_run_are_assembled_in_one_module() -> None:
    assembling = {
        str(path.relative_to(REPO)): sorted(called)
        for path in module_files("bench")
        if (called := calls_of(path, ROW_BUILDERS)) and path.name not in {"metric_rows.py"}
    }
    # comparison.transfer_metrics wraps records.transfer.transfer_metrics (the same rows, on comparable sets)
    assert assembling == {"bench/records/comparison.py": ["transfer_metrics"]}


def test_the_assembly_check_sees_a_second_assembler(tmp_path: Path) -> None:
    module = tmp_path / "rescore.py"
    module.write_text("from x import run_metrics\n\ndef rows(o, pool):\n    return run_metrics(o, pool)\n")
    assert calls_of(module, ROW_BUILDERS) == {"run_metrics"}

"""The one registry implementation (``libkd_bench.core.registry``) and the registries built on it: sets and
families, architectures, recipes, training losses, segmentation and texture backends; the set order of reports
read from the set registry."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from libkd_bench.core.errors import BenchError
from libkd_bench.core.registry import Registry

REPO = Path(__file__).resolve().parents[1]


def test_an_item_is_added_once_and_found_by_name() -> None:
    registry: Registry[int] = Registry("widget")
    assert registry.add("b", 2) == 2
    registry.add("a", 1)
    assert (registry.get("a"), registry.find("c"), "b" in registry) == (1, None, True)
    assert registry.names() == ["a", "b"]
    with pytest.raises(ValueError, match="widget 'a' is registered twice"):
        registry.add("a", 3)
    assert registry.get("a") == 1


def test_an_unknown_name_is_one_line_with_the_close_matches() -> None:
    registry: Registry[int] = Registry("widget")
    registry.add("resnet20", 1)
    registry.add("vgg11", 2)
    with pytest.raises(BenchError, match=r"^unknown widget 'resnet2'; did you mean resnet20\?$"):
        registry.get("resnet2")
    with pytest.raises(BenchError, match=r"^unknown widget 'zzz'; known: resnet20, vgg11$"):
        registry.get("zzz")


def test_the_default_is_listed_first_and_only_one_item_may_be_it() -> None:
    registry: Registry[str] = Registry("backend")
    registry.add("alpha", "a")
    registry.add("slic", "s", default=True)
    assert registry.names() == ["slic", "alpha"]
    with pytest.raises(ValueError, match="both marked as the default"):
        registry.add("other", "o", default=True)


def test_the_loader_runs_before_lookups_and_not_on_add() -> None:
    calls: list[int] = []
    registry: Registry[int] = Registry("widget", loader=lambda: calls.append(1))
    registry.add("a", 1)
    assert calls == []
    assert registry.get("a") == 1
    assert calls == [1]


def test_instance_of_registers_one_instance_of_the_class() -> None:
    registry: Registry[object] = Registry("backend")

    @registry.instance_of("mine")
    class Mine:
        pass

    assert isinstance(registry.get("mine"), Mine)


def test_isolated_forgets_what_was_added_or_removed_inside() -> None:
    registry: Registry[int] = Registry("widget")
    registry.add("kept", 1)
    with registry.isolated():
        registry.add("temporary", 2)
        registry.remove("kept")
        assert registry.names() == ["temporary"]
    assert registry.names() == ["kept"]


@pytest.mark.parametrize(
    ("module", "attribute"),
    [
        ("libkd_bench.datasets_gen.registry", "_GENERATORS"),
        ("libkd_bench.datasets_gen.registry", "_FAMILIES"),
        ("libkd_bench.models.registry", "_ENTRIES"),
        ("libkd_bench.models.registry", "_PREFIX_RESOLVERS"),
        ("libkd_bench.models.training.recipe", "_RECIPES"),
        ("libkd_bench.models.training.methods", "LOSSES"),
        ("libkd_bench.datasets_gen.segmentation.base", "_REGISTRY"),
        ("libkd_bench.datasets_gen.texture_synthesis.base", "_REGISTRY"),
    ],
)
def test_every_registry_is_the_one_implementation(module: str, attribute: str) -> None:
    import importlib

    assert isinstance(getattr(importlib.import_module(module), attribute), Registry)


def _module_level_dict_registries(path: Path) -> list[str]:
    """Module-level names bound to an empty dict literal and later written with ``NAME[...] = ...``."""
    tree = ast.parse(path.read_text())
    empty = set()
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        value = node.value if isinstance(node, (ast.Assign, ast.AnnAssign)) else None
        if isinstance(target, ast.Name) and isinstance(value, ast.Dict) and not value.keys:
            empty.add(target.id)
    written = {
        node.value.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Subscript)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id in empty
    }
    return sorted(written)


def test_no_module_hand_rolls_a_registry_of_its_own() -> None:
    offending = {
        str(path.relative_to(REPO)): names
        for folder in ("bench", "models", "datasets_gen")
        for path in sorted((REPO / folder).rglob("*.py"))
        if (names := _module_level_dict_registries(path))
    }
    # caches of one process (a loaded model, imported user files), not registries of names
    allowed = {
        "bench/scoring/passes.py": ["_worker_engines", "_worker_model"],
        "models/user_architectures.py": ["_IMPORTED_FILES"],
    }
    assert {k: v for k, v in offending.items() if allowed.get(k) != v} == {}


def test_the_detector_sees_a_hand_rolled_registry(tmp_path: Path) -> None:
    source = tmp_path / "mine.py"
    source.write_text("_THINGS: dict[str, int] = {}\n\ndef register(name, v):\n    _THINGS[name] = v\n")
    assert _module_level_dict_registries(source) == ["_THINGS"]


def test_reports_order_sets_by_their_registered_rank() -> None:
    from libkd_bench.datasets_gen.registry import UNRANKED, get_generator
    from libkd_bench.reports.leaderboard import set_rank

    names = ["segmentation", "corruption-fog", "corruptions", "shape-edges", "adv-fgsm", "adv-pgd", "cue-conflict"]
    names += ["texture-overlay", "patch-noise", "scramble", "superpixel", "shape", "texture", "clean", "mine"]
    assert sorted(names, key=set_rank) == [
        "clean",
        "texture",
        "shape",
        "superpixel",
        "scramble",
        "patch-noise",
        "cue-conflict",
        "adv-pgd",
        "adv-fgsm",
        "texture-overlay",
        "shape-edges",
        "corruptions",
        "corruption-fog",
        "mine",
        "segmentation",
    ]
    assert get_generator("shape").rank == set_rank("shape")[0]
    assert set_rank("mine")[0] == UNRANKED

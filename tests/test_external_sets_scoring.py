"""External sets (images not drawn from the clean split) in scoring and reports: the unpaired ratio and its
independent resampling, their exclusion from paired comparisons, the leaderboard notes, and the agreement of our
shape sets with CIFAR-10G across a model panel."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from leaderboard_records import SOURCE_A, make_record

from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.records.comparison import Role, comparable_sets, comparison_metrics
from libkd_bench.records.summary import BootstrapPool, accuracy_summary, run_metrics
from libkd_bench.reports.external_agreement import external_agreement
from libkd_bench.reports.markdown import leaderboard_markdown

EXTERNAL = "cifar10g-silhouettes"
ORIGIN = {
    "name": "CIFAR-10G",
    "licence": "CC BY-NC-SA 4.0",
    "citation": "CIFAR-10G (c) 2021 Benjamin D. Evans, doi:10.5281/zenodo.5648918",
    "commit": "bb79dfbb488f13461b169b0fe549bcedd296bb60",
}


def outcome(name: str, correct: list[bool], paired: bool = True, **fields: object) -> SetOutcome:
    """An outcome whose label is 0 everywhere and whose prediction is right exactly where ``correct`` says."""
    correct = np.asarray(correct, dtype=bool)
    predicted = np.where(correct, 0, 1)[None].astype(np.int64)
    labels = np.zeros(len(correct), dtype=np.int64)
    return SetOutcome(name, predicted, labels, (), 10, f"key-{name}", paired_with_clean=paired, **fields)


def pool() -> BootstrapPool:
    return BootstrapPool(BootstrapConfig(resamples=1000, seed=0))


def rows_of(rows: list, set_name: str) -> dict[str, object]:
    return {row.metric: row for row in rows if row.set == set_name and row.severity is None}


def test_unpaired_ratio_is_set_accuracy_over_whole_clean_accuracy() -> None:
    clean = outcome("clean", [True] * 15 + [False] * 5)  # 0.75 on 20 images
    external = outcome(EXTERNAL, [True] * 3 + [False] * 7, paired=False)  # 0.30 on 10 other images
    rows = rows_of(run_metrics({"clean": clean, EXTERNAL: external}, pool()), EXTERNAL)
    assert rows["accuracy"].value == pytest.approx(0.3)
    assert rows["bias_ratio"].value == pytest.approx(0.4)
    assert rows["bias_ratio"].n == 10
    assert rows["bias_ratio"].ci_low < 0.4 < rows["bias_ratio"].ci_high


def test_unpaired_ratio_resamples_set_and_clean_independently() -> None:
    """Same correctness, same size: paired resampling gives ratio 1 on every resample; independent does not."""
    correct = [True, False] * 10
    clean = outcome("clean", correct)
    paired = outcome("shape", correct)
    unpaired = outcome(EXTERNAL, correct, paired=False)
    shared = pool()
    _, paired_samples = accuracy_summary(paired, clean, shared).ratio(0)
    np.testing.assert_allclose(paired_samples, 1.0)
    summary = accuracy_summary(unpaired, clean, shared)
    point, samples = summary.ratio(0)
    assert point == pytest.approx(1.0)
    assert np.std(samples) > 0.1
    set_samples, clean_samples = summary.accuracy(0)[1], summary.clean_samples
    assert abs(np.corrcoef(set_samples, clean_samples)[0, 1]) < 0.1
    assert clean_samples.mean() == pytest.approx(0.5, abs=0.01)


def test_unpaired_outcome_with_clean_positions_is_refused() -> None:
    with pytest.raises(ValueError, match="unpaired set has no positions"):
        outcome(EXTERNAL, [True, False], paired=False, indices=np.array([0, 1]))


def test_external_sets_are_left_out_of_paired_comparisons() -> None:
    clean = outcome("clean", [True] * 12 + [False] * 8)
    student = {"clean": clean, EXTERNAL: outcome(EXTERNAL, [True, False] * 5, paired=False)}
    teacher = {"clean": clean, EXTERNAL: outcome(EXTERNAL, [True] * 6 + [False] * 4, paired=False)}
    assert comparable_sets(student, teacher) == ["clean"]
    rows = comparison_metrics(student, teacher, Role.TEACHER, pool())
    assert rows
    assert {row.set for row in rows} == {"clean"}
    with_paired = {**student, "shape": outcome("shape", [True] * 20)}
    assert comparable_sets(with_paired, {**teacher, "shape": outcome("shape", [False] * 20)}) == ["clean", "shape"]


def external_record(model: str, clean: float, accuracies: dict[str, float], external: bool = True):
    record = make_record(model, SOURCE_A, clean, {name: [value] for name, value in accuracies.items()})
    if not external:
        return record
    sets = {name: {"paired_with_clean": False, "external": ORIGIN} for name in accuracies if "cifar10g" in name}
    return dataclasses.replace(record, sets=sets)


def test_leaderboard_labels_external_sets_unpaired_with_licence_and_citation() -> None:
    text = leaderboard_markdown([external_record("resnet56", 0.9, {"shape": 0.3, EXTERNAL: 0.4})])
    assert f"{EXTERNAL} ratio (unpaired)" in text
    assert "shape ratio (unpaired)" not in text
    notes = [line for line in text.splitlines() if line.startswith("- ")]
    assert any("(unpaired)" in line and "not drawn from the clean split" in line for line in notes)
    assert any(
        "CC BY-NC-SA 4.0" in line and "doi:10.5281/zenodo.5648918" in line and EXTERNAL in line for line in notes
    )


def test_leaderboard_without_external_sets_has_no_unpaired_note() -> None:
    text = leaderboard_markdown([external_record("resnet56", 0.9, {EXTERNAL: 0.4}, external=False)])
    assert "unpaired" not in text
    assert "CC BY-NC-SA" not in text


PANEL = {  # model -> accuracy on (shape, cifar10g-silhouettes, shape-edges, cifar10g-line-drawings)
    "resnet20": (0.12, 0.20, 0.20, 0.30),
    "resnet56": (0.14, 0.30, 0.18, 0.35),
    "vit": (0.11, 0.15, 0.22, 0.25),
    "rednet": (0.13, 0.25, 0.16, 0.40),
    "control-shape": (0.50, 0.60, 0.45, 0.55),
    "control-colour": (0.10, 0.11, 0.09, 0.10),
}


def panel_records(panel: dict[str, tuple[float, float, float, float]]) -> list:
    names = ("shape", "cifar10g-silhouettes", "shape-edges", "cifar10g-line-drawings")
    return [external_record(model, 0.9, dict(zip(names, values, strict=True))) for model, values in panel.items()]


def test_external_agreement_known_ranks_and_controls() -> None:
    silhouettes, lines = external_agreement(panel_records(PANEL))
    assert (silhouettes.ours, silhouettes.external) == ("shape", "cifar10g-silhouettes")
    assert [m.model for m in silhouettes.models] == list(PANEL)
    assert silhouettes.models[1].ours.value == pytest.approx(0.14)
    assert silhouettes.models[1].external.value == pytest.approx(0.30)
    assert silhouettes.spearman == pytest.approx(1.0)  # same order on both sets
    assert silhouettes.spearman_without_controls == pytest.approx(1.0)
    # edges: ours 0.20, 0.18, 0.22, 0.16 -> ranks 3, 2, 4, 1; drawings 0.30, 0.35, 0.25, 0.40 -> 2, 3, 1, 4
    assert lines.spearman_without_controls == pytest.approx(1 - 6 * (1 + 1 + 9 + 9) / (4 * 15))  # -1.0
    assert lines.spearman > lines.spearman_without_controls  # the controls' extremes pull it up
    assert silhouettes.controls_hold
    assert lines.controls_hold
    assert silhouettes.checks[0].detail.startswith("rank 1 on shape, 1 on cifar10g-silhouettes")


def test_external_agreement_flags_controls_out_of_order() -> None:
    broken = {**PANEL, "control-colour": (0.30, 0.11, 0.09, 0.10), "resnet56": (0.14, 0.80, 0.18, 0.35)}
    silhouettes, lines = external_agreement(panel_records(broken))
    shape_check, colour_check = silhouettes.checks
    assert shape_check.holds is False
    assert "resnet56 on cifar10g-silhouettes" in shape_check.detail
    assert colour_check.holds is False
    assert "excludes chance on shape" in colour_check.detail
    assert silhouettes.controls_hold is False
    assert lines.controls_hold is True


def test_external_agreement_without_controls_or_enough_models() -> None:
    small = {name: PANEL[name] for name in ("resnet20", "resnet56")}
    (row, _) = external_agreement(panel_records(small))
    assert row.spearman is None
    assert row.controls_hold is None
    assert all(check.holds is None for check in row.checks)
    partial = [*panel_records(small), external_record("vit", 0.8, {"shape": 0.1})]
    (row, _) = external_agreement(partial)
    assert row.missing == ("vit",)


def test_external_agreement_refuses_a_model_twice() -> None:
    with pytest.raises(ValueError, match="names a model twice"):
        external_agreement(panel_records(PANEL) + panel_records({"vit": PANEL["vit"]}))

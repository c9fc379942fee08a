"""Known answers: the chance-corrected metrics on hand cases, and the validate checks on hand-made records."""

from __future__ import annotations

import numpy as np
import pytest
from leaderboard_records import SOURCE_A, make_record, row

from libkd_bench.metrics import formulas as metrics
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.metrics.outcomes import SetOutcome
from libkd_bench.records.run_record import MetricRow
from libkd_bench.records.summary import BootstrapPool, run_metrics
from libkd_bench.reports.validity import (
    BAGNET,
    COLOUR,
    RESNET20,
    RESNET56,
    SHAPE,
    Verdict,
    judge_all,
    known_answers,
    passed,
)

K = 10
SHAPE_LABELS = np.repeat(np.arange(K), 90)
TEXTURE_LABELS = (SHAPE_LABELS + np.tile(np.arange(1, K), K * 10)) % K  # every ordered pair (A, B != A)


def test_chance_corrected_ratio_by_hand() -> None:
    assert metrics.chance_corrected_ratio_from_accuracies(0.55, 0.9, 10) == pytest.approx(0.45 / 0.8)
    assert metrics.chance_corrected_ratio_from_accuracies(0.1, 0.9, 10) == 0.0  # guessing keeps nothing
    assert np.isnan(metrics.chance_corrected_ratio_from_accuracies(0.3, 0.1, 10))  # clean at chance: undefined


def test_shape_bias_of_cue_readers_and_guessers() -> None:
    texture_only = metrics.chance_corrected_shape_bias(TEXTURE_LABELS, SHAPE_LABELS, TEXTURE_LABELS, K)
    shape_only = metrics.chance_corrected_shape_bias(SHAPE_LABELS, SHAPE_LABELS, TEXTURE_LABELS, K)
    assert (texture_only, shape_only) == (0.0, 1.0)
    constant = np.zeros_like(SHAPE_LABELS)  # hits the shape label 10 % and the texture label 10 %: both chance
    assert metrics.chance_corrected_shape_bias(constant, SHAPE_LABELS, TEXTURE_LABELS, K) is None
    # The raw Geirhos figure reads the constant predictor as 0.5 and a texture reader that lands on the shape
    # label a tenth of the time as about 0.1; the corrected one reads the latter as 0.
    rng = np.random.default_rng(0)
    mostly_texture = np.where(
        rng.random(len(SHAPE_LABELS)) < 0.3, TEXTURE_LABELS, rng.integers(0, K, len(SHAPE_LABELS))
    )
    raw = metrics.shape_bias(mostly_texture, SHAPE_LABELS, TEXTURE_LABELS)
    corrected = metrics.chance_corrected_shape_bias(mostly_texture, SHAPE_LABELS, TEXTURE_LABELS, K)
    assert raw > 0.15
    assert corrected < 0.05


def test_run_rows_carry_the_corrected_values_and_the_top_class() -> None:
    pool = BootstrapPool(BootstrapConfig())
    n = len(SHAPE_LABELS)
    clean = SetOutcome("clean", SHAPE_LABELS[None].copy(), SHAPE_LABELS, (), K, "c")
    conflict_predictions = np.where(np.arange(n) % 2 == 0, SHAPE_LABELS, TEXTURE_LABELS)  # half by shape
    conflict = SetOutcome(
        "cue-conflict", conflict_predictions[None], SHAPE_LABELS, (), K, "cc",
        shape_labels=SHAPE_LABELS, texture_labels=TEXTURE_LABELS,
    )  # fmt: skip
    constant = SetOutcome("shape", np.zeros((1, n), np.int64), SHAPE_LABELS, (), K, "s")
    rows = {r.key(): r for r in run_metrics({"clean": clean, "cue-conflict": conflict, "shape": constant}, pool)}
    assert rows["cue-conflict", None, "decision_rate"].value == 1.0
    assert rows["cue-conflict", None, "shape_bias_cc"].value == pytest.approx(0.5)
    assert rows["shape", None, "bias_ratio_cc"].value == pytest.approx(0.0)  # a constant answer is chance
    assert rows["shape", None, "top_class_share"].value == 1.0
    assert rows["shape", None, "top_class"].value == 0
    assert rows["clean", None, "top_class_share"].value == pytest.approx(0.1)


def passing_records() -> dict[str, object]:
    def rec(model: str, rows: list[MetricRow]) -> object:
        return make_record(model, SOURCE_A, 0.8, {}, extra=rows)

    resnet = [
        row("cue-conflict", "shape_bias_cc", 0.5),
        *(row("scramble", "bias_ratio", 0.4, severity=s) for s in (1, 2)),
        *(row(name, "top_class_share", 0.3) for name in ("shape", "texture", "cue-conflict")),
    ]
    return {
        COLOUR: rec(
            COLOUR,
            [
                row("cue-conflict", "shape_bias_cc", 0.0),
                row("shape", "accuracy", 0.1),
                row("texture", "accuracy", 0.2),
                *(row("scramble", "bias_ratio", 1.0, severity=s) for s in (1, 2, 3, None)),
            ],
        ),
        BAGNET: rec(
            BAGNET,
            [
                row("cue-conflict", "shape_bias_cc", 0.1),
                row("texture", "accuracy", 0.25),
                *(row("scramble", "bias_ratio", 0.8, severity=s) for s in (1, 2)),
            ],
        ),
        SHAPE: rec(
            SHAPE,
            [
                row("cue-conflict", "shape_bias_cc", 0.95),
                row("texture", "accuracy", 0.11),
                row("shape", "accuracy", 0.3),
            ],
        ),
        RESNET20: rec(RESNET20, resnet),
        RESNET56: rec(RESNET56, resnet),
    }


def test_every_known_answer_passes_on_consistent_records() -> None:
    judgements = judge_all(passing_records())
    assert [j.verdict for j in judgements] == [Verdict.PASS] * len(known_answers())
    assert passed(judgements)


@pytest.mark.parametrize(
    ("model", "set_name", "severity", "metric", "value"),
    [
        (COLOUR, "scramble", 2, "bias_ratio", 0.999),  # exactly 1, not nearly
        (COLOUR, "cue-conflict", None, "shape_bias_cc", 0.2),
        (SHAPE, "cue-conflict", None, "shape_bias_cc", 0.7),
        (SHAPE, "texture", None, "accuracy", 0.2),  # shape leaks into the texture set
        (BAGNET, "cue-conflict", None, "shape_bias_cc", 0.47),  # intervals overlap ResNet-20's
        (RESNET20, "shape", None, "top_class_share", 0.6),  # one default class
    ],
)
def test_one_wrong_value_fails_validation(
    model: str, set_name: str, severity: int | None, metric: str, value: float
) -> None:
    records = passing_records()
    rows = [r for r in records[model].metrics if r.key() != (set_name, severity, metric)]
    records[model] = make_record(
        model, SOURCE_A, 0.8, {}, extra=[*rows, row(set_name, metric, value, severity=severity)]
    )
    judgements = judge_all(records)
    assert not passed(judgements)
    failed = [j for j in judgements if j.verdict is Verdict.FAIL]
    assert len(failed) >= 1
    assert all(j.check.model == model or j.check.versus == model for j in failed)


def test_a_missing_model_is_not_a_pass() -> None:
    records = passing_records()
    del records[SHAPE]
    judgements = judge_all(records)
    assert {j.verdict for j in judgements if j.check.model == SHAPE} == {Verdict.MISSING}
    assert not passed(judgements)

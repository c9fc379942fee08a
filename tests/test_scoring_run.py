"""Scoring a model on a store: cache reuse, rescoring, invariants (scramble g=1, sigma=0, PGD eps=0), references."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scoring_fixtures import tiny_loaded, write_levels_variant

from libkd_bench.cli import main
from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.store import SetStore
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.records.comparison import Role
from libkd_bench.records.run_record import RunRecord, read_record, write_record
from libkd_bench.scoring.adversarial_settings import AdversarialConfig, AttackName, adversarial_subset
from libkd_bench.scoring.forward import EngineConfig
from libkd_bench.scoring.reference_runs import KdContext, resolve_run
from libkd_bench.scoring.rescore import rescore_record
from libkd_bench.scoring.run import ScoreOptions, score_model
from libkd_bench.scoring.sets import load_scoring_sets
from libkd_bench.scoring.stored_outcomes import load_run_outcomes


@pytest.fixture(scope="module")
def store_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clean + scramble (grid 1, 2) + patch-noise (sigma 0, 0.4) from 60 structured synthetic images."""
    from conftest import synthetic_images

    root = tmp_path_factory.mktemp("store")
    images, labels = synthetic_images(60)
    np.savez(root / "split.npz", x=images, y=labels)
    sets = root / "sets"
    args = ["generate-sets", "--sets", "scramble,patch-noise", "--source", f"npz:{root / 'split.npz'}"]
    assert main([*args, "--sets-dir", str(sets), "--workers", "1", "--no-progress"]) == 0
    store = SetStore(sets)
    write_levels_variant(store, "scramble", (1, 2))
    write_levels_variant(store, "patch-noise", (0.0, 0.4))
    return sets


def options(**changes: object) -> ScoreOptions:
    adversarial = AdversarialConfig(attacks=(AttackName.FGSM, AttackName.PGD), eps=(0.0, 8.0), n=30, seed=0)
    base = {
        "engine": EngineConfig("cpu", 16),
        "adversarial": adversarial,
        "bootstrap": BootstrapConfig(),
        "progress": False,
    }
    return ScoreOptions(**{**base, **changes})


def score(store_dir: Path, results: Path, seed: int = 0, **changes: object) -> RunRecord:
    kd = changes.pop("kd", KdContext())
    sets = load_scoring_sets(store_dir)
    return score_model(tiny_loaded(seed), f"tiny{seed}", sets, results, options(**changes), kd)


def value(record: RunRecord, set_name: str, metric: str, severity: int | None = None) -> float:
    row = record.metric(set_name, metric, severity)
    assert row is not None, (set_name, metric, severity)
    return row.value


def test_invariants_scramble_g1_sigma0_and_eps0_equal_clean(store_dir: Path, tmp_path: Path) -> None:
    record = score(store_dir, tmp_path)
    clean = value(record, "clean", "accuracy")
    assert 0.0 < clean < 1.0
    assert value(record, "scramble", "accuracy", 1) == clean
    assert value(record, "scramble", "bias_ratio", 1) == 1.0
    assert record.metric("scramble", "accuracy", 1).severity_label == "grid=1"
    assert value(record, "patch-noise", "accuracy", 1) == clean
    labels = SetStore(store_dir).load("clean").labels
    subset = adversarial_subset(labels, 30, seed=0)
    outcomes = load_run_outcomes(record, tmp_path)
    subset_clean = outcomes["clean"].correct[0][subset].mean()
    for attack in ("adv-fgsm", "adv-pgd"):
        assert value(record, attack, "accuracy", 1) == pytest.approx(subset_clean)
        assert value(record, attack, "bias_ratio", 1) == pytest.approx(1.0)
        assert record.metric(attack, "accuracy", 2).severity_label == "eps=8/255"
        assert record.metric(attack, "accuracy", 2).n == 30
    whole = value(record, "scramble", "accuracy")
    assert whole == pytest.approx(np.mean([value(record, "scramble", "accuracy", level) for level in (1, 2)]))


def test_cache_hit_recompute_and_rescore_give_identical_metrics(store_dir: Path, tmp_path: Path) -> None:
    first = score(store_dir, tmp_path)
    assert set(first.scoring["forward_passes"]) == {"clean", "scramble", "patch-noise"}
    second = score(store_dir, tmp_path)
    assert second.scoring["forward_passes"] == []
    assert second.metrics == first.metrics
    recomputed = score(store_dir, tmp_path, recompute=True)
    assert set(recomputed.scoring["forward_passes"]) == {"clean", "scramble", "patch-noise"}
    assert recomputed.metrics == first.metrics
    rescored = rescore_record(first, load_run_outcomes(first, tmp_path), KdContext(), BootstrapConfig(), tmp_path)
    assert rescored.metrics == first.metrics
    assert rescored.scoring["rescored"]
    outcomes = load_run_outcomes(first, tmp_path)
    other_seed = rescore_record(first, outcomes, KdContext(), BootstrapConfig(seed=5), tmp_path)
    assert other_seed.metric("clean", "accuracy").value == first.metric("clean", "accuracy").value
    assert other_seed.metric("clean", "accuracy").ci_low != first.metric("clean", "accuracy").ci_low


def test_passes_run_on_an_executor_are_read_from_the_cache_while_recompute_still_redraws_attention_maps(
    store_dir: Path, tmp_path: Path
) -> None:
    from libkd_bench.scoring.attention import AttentionConfig

    attention = AttentionConfig(n=20)
    first = score(store_dir, tmp_path, attention=attention)
    assert first.scoring["attention"]["cached"] is False
    sets = load_scoring_sets(store_dir)
    elsewhere = score_model(
        tiny_loaded(0), "tiny0", sets, tmp_path, options(recompute=True, attention=attention), KdContext(),
        computed_elsewhere={"scramble"},
    )  # fmt: skip
    assert elsewhere.scoring["forward_passes"] == ["scramble"]  # as the executor reported; nothing ran here
    assert elsewhere.scoring["attention"]["cached"] is False  # --recompute: maps drawn again
    assert elsewhere.metrics == first.metrics


def test_record_describes_sets_cache_and_efficiency(store_dir: Path, tmp_path: Path) -> None:
    record = score(store_dir, tmp_path)
    store = SetStore(store_dir)
    clean = store.load("clean")
    assert record.source["id"] == clean.manifest.source["id"]
    assert record.sets["clean"]["sha256"] == clean.sha256("images")
    assert record.sets["scramble"]["severities"][0] == {"level": 1, "parameter": "grid", "value": 1}
    assert record.sets["adv-pgd"]["steps"] == 10
    assert (tmp_path / record.logits).is_dir()
    assert {"params", "macs", "images_per_s", "device", "batch_size"} <= set(record.efficiency)
    assert record.efficiency["macs"] == 32 * 32 * 8 * 27 + 2048 * 10
    assert record.kd == {"teacher": None, "baseline": None, "method": None}
    assert record.created.endswith("+00:00")


def test_missing_cache_is_a_clear_error(store_dir: Path, tmp_path: Path) -> None:
    record = score(store_dir, tmp_path)
    shutil.rmtree(tmp_path / record.logits)
    with pytest.raises(BenchError, match=r"logits cache .* is missing"):
        load_run_outcomes(record, tmp_path)


def test_teacher_and_baseline_comparisons(store_dir: Path, tmp_path: Path) -> None:
    teacher, baseline = score(store_dir, tmp_path, seed=1), score(store_dir, tmp_path, seed=2)
    write_record(tmp_path, teacher)
    write_record(tmp_path, baseline)
    source = teacher.source_id
    kd = KdContext(
        teacher=resolve_run("tiny1", tmp_path, source, Role.TEACHER),
        baseline=resolve_run(baseline.run_id, tmp_path, source, Role.BASELINE),
        method="logit KD",
    )
    student = score(store_dir, tmp_path, seed=3, kd=kd)
    assert student.kd == {"teacher": teacher.run_id, "baseline": baseline.run_id, "method": "logit KD"}
    metrics = {row.metric for row in student.metrics}
    assert {"error_consistency", "mcnemar_p", "bias_ratio_diff_teacher", "bias_ratio_diff_baseline"} <= metrics
    diff = student.metric("scramble", "bias_ratio_diff_teacher")
    expected = value(student, "scramble", "bias_ratio") - value(teacher, "scramble", "bias_ratio")
    assert diff.value == pytest.approx(expected)
    assert student.metric("adv-pgd", "error_consistency", 1) is not None  # same subset and settings
    write_record(tmp_path, student)
    assert main(["rescore", student.run_id, "--results", str(tmp_path), "--json"]) == 0
    rescored = read_record(tmp_path / "runs" / f"{student.run_id}.json")
    assert rescored.metrics == student.metrics
    assert rescored.kd == student.kd
    with pytest.raises(BenchError, match="scored on source"):
        resolve_run("tiny1", tmp_path, "npz-0000000000000000", Role.TEACHER)
    with pytest.raises(BenchError, match="teacher run 'tiny9'"):
        resolve_run("tiny9", tmp_path, source, Role.TEACHER)


@pytest.mark.slow
def test_recipe_control_fidelity_and_seed_groups_end_to_end(store_dir: Path, tmp_path: Path) -> None:
    references = [score(store_dir, tmp_path, seed=seed) for seed in (1, 2, 4)]
    for record in references:
        write_record(tmp_path, record)
    teacher, baseline, control = (record.run_id for record in references)
    source = references[0].source_id
    students = []
    for seed in (3, 5):  # two training seeds of one distilled model
        kd = KdContext(
            teacher=resolve_run(teacher, tmp_path, source, Role.TEACHER),
            baseline=resolve_run(baseline, tmp_path, source, Role.BASELINE),
            recipe_control=resolve_run(control, tmp_path, source, Role.RECIPE_CONTROL),
            seed_of="tiny-kd",
        )
        students.append(score(store_dir, tmp_path, seed=seed, kd=kd))
        write_record(tmp_path, students[-1])
    student = students[0]
    assert student.kd["recipe_control"] == control
    assert student.kd["seed_of"] == "tiny-kd"
    for set_name in ("clean", "scramble", "patch-noise"):  # fidelity on every stored set, none on attacks
        agreement = value(student, set_name, "top1_agreement")
        low, high = value(student, set_name, "top1_agreement_min"), value(student, set_name, "top1_agreement_max")
        assert low <= agreement <= high
        assert value(student, set_name, "kl_teacher_student") >= 0.0
    assert student.metric("adv-pgd", "top1_agreement") is None
    assert main(["rescore", student.run_id, "--results", str(tmp_path), "--json"]) == 0
    rescored = read_record(tmp_path / "runs" / f"{student.run_id}.json")
    assert rescored.metrics == student.metrics  # the recipe control is found again from the record
    out = tmp_path / "board"
    assert main(["leaderboard", "--results", str(tmp_path), "--out", str(out)]) == 0
    markdown = (out / "leaderboard.md").read_text(encoding="utf-8")
    assert "tiny-kd (" in markdown
    assert "mean of 2 seeds" in markdown
    assert "| tiny3 (" not in markdown  # the seeds are shown pooled, once
    csv_text = (out / "leaderboard.csv").read_text(encoding="utf-8")
    assert "tiny-kd,npz-" in csv_text
    assert ",accuracy_seed_sd," in csv_text
    assert "tiny3,npz-" in csv_text  # each seed's own rows stay in the long CSV

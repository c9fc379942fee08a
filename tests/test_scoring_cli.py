"""``libkd-bench score`` and ``rescore`` from the command line: the real ResNet-20, caching, atomicity, errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli
from conftest import REPO, RESNET20, SHARED_CHECKPOINTS, SHARED_TEST_NPZ

from libkd_bench.cli import main
from libkd_bench.core.atomic_io import is_temporary
from libkd_bench.datasets_gen.sources import balanced_subset
from libkd_bench.records.run_record import MetricRow, RunRecord, read_record, read_records, write_record
from libkd_bench.scoring.logits_cache import CHECKSUM_SUFFIX

LIMIT = 1000
needs_shared = pytest.mark.skipif(
    not (RESNET20.is_file() and SHARED_TEST_NPZ.is_file()),
    reason=f"akamaster ResNet-20 or the shared CIFAR-10 copy not found under {SHARED_CHECKPOINTS.parent.parent}",
)


def generate(out: Path, source: str, *extra: str) -> None:
    assert (
        main(["generate-sets", "--source", source, "--sets-dir", str(out), "--workers", "1", "--no-progress", *extra])
        == 0
    )


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clean + scramble of 60 synthetic images: enough for every error path."""
    from conftest import synthetic_images

    root = tmp_path_factory.mktemp("small")
    images, labels = synthetic_images(60)
    np.savez(root / "split.npz", x=images, y=labels)
    generate(root / "sets", f"npz:{root / 'split.npz'}", "--sets", "scramble")
    return root / "sets"


@pytest.fixture(scope="module")
def real_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """clean + scramble of the class-balanced 1,000-image subset of the shared JPEG CIFAR-10 test set."""
    if not SHARED_TEST_NPZ.is_file():
        pytest.skip(f"shared CIFAR-10 copy not found at {SHARED_TEST_NPZ}")
    out = tmp_path_factory.mktemp("real") / "sets"
    generate(out, f"npz:{SHARED_TEST_NPZ}", "--limit", str(LIMIT), "--sets", "scramble")
    return out


def reference_clean_accuracy() -> float:
    """Plain forward of the loaded model over the subset's images as contiguous float tensors, no engine."""
    from libkd_bench.models import load_model

    data = np.load(SHARED_TEST_NPZ)
    keep = balanced_subset(data["y"], LIMIT)
    images, labels = data["x"][keep], data["y"][keep]
    module = load_model(RESNET20).module
    inputs = torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        predicted = torch.cat([module(batch) for batch in inputs.split(250)]).argmax(1).numpy()
    return float((predicted == labels).mean())


def bare_record(model: str, source_id: str) -> RunRecord:
    """A record as another tool might leave it: metrics but no logits cache."""
    row = MetricRow("clean", None, "", "accuracy", 0.9, 0.88, 0.92, 100)
    return RunRecord(model, {"id": source_id}, {"sha256": "0" * 64}, {"arch": "x"}, (row,))


def metric(record: dict, set_name: str, name: str, severity: int | None = None) -> dict:
    rows = [m for m in record["metrics"] if (m["set"], m["severity"], m["metric"]) == (set_name, severity, name)]
    assert len(rows) == 1, (set_name, name, severity)
    return rows[0]


@pytest.mark.slow
@pytest.mark.shared
@needs_shared
def test_resnet20_end_to_end_cache_hit_and_rescore(
    real_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    args = ["score", str(RESNET20), "--sets-dir", str(real_store), "--results", str(results), "--no-progress"]
    args += ["--adv", "fgsm,pgd", "--adv-eps", "0,8", "--adv-n", "100", "--json"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    (record,) = json.loads(out)
    clean = metric(record, "clean", "accuracy")
    assert clean["value"] == pytest.approx(reference_clean_accuracy(), abs=2 / LIMIT)
    assert 0.77 <= clean["value"] <= 0.85  # ~81% on the full JPEG copy
    assert clean["n"] == LIMIT
    assert clean["ci_low"] < clean["value"] < clean["ci_high"]
    assert metric(record, "scramble", "bias_ratio")["value"] < 0.8
    for attack in ("adv-fgsm", "adv-pgd"):
        on_subset = metric(record, attack, "accuracy", 1)["value"] / metric(record, attack, "bias_ratio", 1)["value"]
        assert metric(record, attack, "accuracy", 1)["value"] == pytest.approx(on_subset)  # eps = 0: clean
        assert metric(record, attack, "bias_ratio", 1)["value"] == pytest.approx(1.0)
        assert metric(record, attack, "accuracy", 2)["value"] < 0.5 * on_subset  # 8/255 breaks an undefended net
    assert record["efficiency"]["params"] == 269_722
    assert 40e6 < record["efficiency"]["macs"] < 41.5e6  # ResNet-20: ~41M MACs
    assert record["spec"]["preset"] == "imagenet"
    assert record["kd"] == {"teacher": None, "baseline": None, "method": None}
    run_file = results / "runs" / f"{record['model']}@{record['source']['id']}.json"
    assert read_record(run_file).to_json() == record

    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    (again,) = json.loads(out)
    assert again["scoring"]["forward_passes"] == []
    assert again["metrics"] == record["metrics"]

    started = time.perf_counter()
    code, out, err = run_cli(["rescore", str(run_file), "--json"], capsys)
    assert code == 0, err
    assert time.perf_counter() - started < 30  # a loose sanity bound; the benchmark measures it properly
    (rescored,) = json.loads(out)
    assert rescored["metrics"] == record["metrics"]
    assert rescored["scoring"]["rescored"]


@pytest.mark.slow
@pytest.mark.shared
@needs_shared
def test_killed_run_leaves_no_record(real_store: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    command = [sys.executable, "-m", "libkd_bench", "score", str(RESNET20), "--sets-dir", str(real_store)]
    command += ["--results", str(results), "--adv", "pgd", "--adv-n", "1000", "--no-progress"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list((results / "cache").glob("*/*.npy")):
            time.sleep(0.05)
        assert process.poll() is None, "the run ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    assert not [p for p in (results / "runs").glob("*") if not is_temporary(p)]
    for path in results.rglob("*"):
        if path.is_file() and not is_temporary(path) and path.suffix != CHECKSUM_SUFFIX:
            assert path.suffix in (".npy", ".npz"), path
            np.load(path, allow_pickle=False)  # every entry that exists is complete


@pytest.mark.slow
@pytest.mark.shared
@needs_shared
def test_interrupted_run_after_the_forward_passes_leaves_no_record(
    real_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("libkd_bench.scoring.run.efficiency_figures", interrupt)
    args = ["score", str(RESNET20), "--sets-dir", str(real_store), "--results", str(tmp_path), "--adv", "none"]
    code, _, err = run_cli([*args, "--no-progress"], capsys)
    assert code == 130
    assert "nothing partial was kept" in err
    assert not (tmp_path / "runs").exists() or not list((tmp_path / "runs").iterdir())


@pytest.mark.slow
@pytest.mark.shared
@needs_shared
def test_two_concurrent_runs_into_one_results_dir_lose_nothing(small_store: Path, tmp_path: Path) -> None:
    def command(name: str) -> list[str]:
        where = ["--sets-dir", str(small_store), "--results", str(tmp_path)]
        return [sys.executable, "-m", "libkd_bench", "score", str(RESNET20), "--name", name, *where,
                "--adv", "pgd", "--adv-n", "20", "--no-progress", "--json"]  # fmt: skip

    processes = [subprocess.Popen(command(n), cwd=REPO, stdout=subprocess.PIPE, text=True) for n in ("a", "b")]
    outputs = [p.communicate(timeout=300)[0] for p in processes]
    assert [p.returncode for p in processes] == [0, 0]
    records, skipped = read_records(tmp_path)
    assert not skipped
    assert sorted(r.model for r in records) == ["a", "b"]
    assert records[0].metrics == records[1].metrics
    assert [json.loads(out)[0]["model"] for out in outputs] == ["a", "b"]
    assert not [p for p in tmp_path.rglob("*") if is_temporary(p)]


def test_score_and_rescore_errors_are_one_line(
    small_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad_checkpoint = tmp_path / "broken.pt"
    bad_checkpoint.write_bytes(b"not a checkpoint")
    base = ["score", str(bad_checkpoint), "--results", str(tmp_path / "results"), "--no-progress"]
    store = ["--sets-dir", str(small_store)]
    cases = [
        ([*base, "--sets-dir", str(tmp_path / "nowhere")], "does not exist"),
        ([*base, "--sets-dir", str(tmp_path)], "holds no clean set"),
        ([*base, *store, "--sets", "scrambel"], "did you mean scramble"),
        ([*base, *store, "--adv", "fgsm,pdg"], "did you mean pgd"),
        ([*base, *store, "--adv-eps", "1,x"], "not a number"),
        ([*base, *store, "--adv-eps", "300"], "outside"),
        ([*base, *store, "--bootstrap-resamples", "10"], "at least 1000"),
        ([*base, *store, "--teacher", "nobody"], "teacher run"),
        ([*base, *store, "--recipe-control", "nobody"], "recipe-control run"),
        ([*base, *store, "--seed-of", " "], "--seed-of must not be empty"),
        ([*base, *store, "--baseline", str(tmp_path / "missing.json")], "does not exist"),
        ([*base, *store], str(bad_checkpoint)),
        (["rescore", "nobody@npz-0", "--results", str(tmp_path)], "run"),
    ]
    for args, fragment in cases:
        code, _, err = run_cli(args, capsys)
        assert_one_line_error(code, err, fragment)
    assert not (tmp_path / "results" / "runs").exists()


def test_sets_from_another_source_and_teachers_from_another_source_are_refused(
    small_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from conftest import synthetic_images

    images, labels = synthetic_images(60, seed=9)
    np.savez(tmp_path / "other.npz", x=images, y=labels)
    other = tmp_path / "other-sets"
    generate(other, f"npz:{tmp_path / 'other.npz'}", "--sets", "scramble")
    mixed = tmp_path / "mixed"
    subprocess.run(["cp", "-r", str(small_store), str(mixed)], check=True)
    subprocess.run(["rm", "-r", str(mixed / "scramble")], check=True)
    subprocess.run(["cp", "-r", str(other / "scramble"), str(mixed / "scramble")], check=True)
    code, _, err = run_cli(["score", "x.pt", "--sets-dir", str(mixed), "--results", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "set scramble", "generated from source")

    write_record(tmp_path / "results", bare_record("resnet56", "npz-aaaa1111"))
    args = ["score", "x.pt", "--sets-dir", str(small_store), "--results", str(tmp_path / "results")]
    code, _, err = run_cli([*args, "--teacher", "resnet56"], capsys)
    assert_one_line_error(code, err, "teacher run resnet56@npz-aaaa1111", "scored on source")
    same_source = json.loads((small_store / "clean" / "manifest.json").read_text())["source"]["id"]
    write_record(tmp_path / "results", bare_record("uncached", same_source))
    code, _, err = run_cli([*args, "--baseline", "uncached"], capsys)
    assert_one_line_error(code, err, "run uncached@", "names no logits cache")


def test_rescore_without_a_cache_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_record(tmp_path, bare_record("resnet56", "npz-aaaa1111"))
    code, _, err = run_cli(["rescore", "resnet56", "--results", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "names no logits cache")


@pytest.mark.shared
@needs_shared
def test_summary_table_and_names(small_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["score", str(RESNET20), str(RESNET20), "--sets-dir", str(small_store), "--results", str(tmp_path)]
    args += ["--adv", "none", "--no-progress"]
    code, _, err = run_cli([*args, "--name", "only-one"], capsys)
    assert_one_line_error(code, err, "2 checkpoints")
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, "distinct --name")
    code, out, err = run_cli([*args, "--name", "first", "--name", "second"], capsys)
    assert code == 0, err
    assert out.count("accuracy % [95% CI]") == 2
    assert "first@npz-" in out
    assert "second@npz-" in out
    assert "scramble" in out
    assert sorted(p.name.split("@")[0] for p in (tmp_path / "runs").iterdir()) == ["first", "second"]
    code, out, err = run_cli(["rescore", "first", "second", "--results", str(tmp_path)], capsys)
    assert code == 0, err
    assert out.count("accuracy % [95% CI]") == 2

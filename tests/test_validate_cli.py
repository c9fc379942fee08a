"""``libkd-bench validate``: the controls' known answers on the shared test copy, failures and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli
from conftest import SHARED_CHECKPOINTS, SHARED_TEST_NPZ

from libkd_bench.reports.validity import COLOUR, SHAPE, VALIDATION_MODELS, known_answers


@pytest.fixture
def zoo_mirror(monkeypatch: pytest.MonkeyPatch) -> None:
    if not SHARED_CHECKPOINTS.is_dir():
        pytest.skip(f"shared checkpoints not found at {SHARED_CHECKPOINTS}")
    monkeypatch.setenv("LIBKD_BENCH_ZOO_DIR", str(SHARED_CHECKPOINTS))


def test_a_missing_store_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(["validate", "--sets-dir", str(tmp_path / "nowhere")], capsys)
    assert_one_line_error(code, err, "does not exist", "generate-sets")


@pytest.mark.slow
def test_sets_of_a_few_images_fail_and_say_which_checks(
    tmp_path: Path, synthetic_npz: Path, zoo_mirror: None, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = tmp_path / "sets"
    args = ["generate-sets", "--source", f"npz:{synthetic_npz}", "--out", str(sets), "--no-progress"]
    code, _, _ = run_cli([*args, "--param", "segmentation.gate=false"], capsys)
    assert code == 0
    code, out, _ = run_cli(["validate", "--sets-dir", str(sets), "--no-progress", "--json"], capsys)
    assert code == 1  # random pictures have no shapes or textures for the controls to read
    judgements = json.loads(out)
    assert len(judgements) == len(known_answers())
    assert {j["verdict"] for j in judgements} <= {"pass", "fail", "missing"}
    assert any(j["verdict"] == "fail" for j in judgements)
    assert {p.name.split("@")[0] for p in (sets / "_validation" / "runs").glob("*.json")} == set(VALIDATION_MODELS)


@pytest.mark.slow
@pytest.mark.shared
def test_controls_read_their_known_answers_on_the_shared_copy(
    tmp_path: Path, zoo_mirror: None, capsys: pytest.CaptureFixture[str]
) -> None:
    if not SHARED_TEST_NPZ.is_file():
        pytest.skip(f"shared CIFAR-10 copy not found at {SHARED_TEST_NPZ}")
    sets = tmp_path / "sets"
    args = ["generate-sets", "--source", f"npz:{SHARED_TEST_NPZ}", "--limit", "2000", "--out", str(sets)]
    assert run_cli([*args, "--workers", "2", "--no-progress"], capsys)[0] == 0
    code, out, _ = run_cli(["validate", "--sets-dir", str(sets), "--no-progress", "--json"], capsys)
    judgements = {(j["model"], j["set"], j["severity"], j["metric"]): j for j in json.loads(out)}
    failed = [key for key, j in judgements.items() if j["verdict"] != "pass"]
    assert code == 0, failed
    # The answers fixed by construction, pinned exactly or by range:
    for severity in (1, 2, 3, None):
        assert judgements[COLOUR, "scramble", severity, "bias_ratio"]["value"] == 1.0
    assert judgements[COLOUR, "cue-conflict", None, "shape_bias_cc"]["value"] <= 0.10
    assert judgements[SHAPE, "cue-conflict", None, "shape_bias_cc"]["value"] >= 0.8
    assert abs(judgements[SHAPE, "texture", None, "accuracy"]["value"] - 0.1) <= 0.05
    assert np.isfinite([j["value"] for j in judgements.values()]).all()

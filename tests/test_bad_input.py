"""Bad input and faults as a hostile user tries them: one line, exit 2, nothing written, or a correct result.

Each case here once crashed with a traceback or passed silently with a wrong answer; the other kinds of bad input
are covered next to their commands (test_cli_sets, test_scoring_cli, test_check, test_models_cli, ...).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli
from conftest import synthetic_images

from libkd_bench.cli import main
from libkd_bench.core.errors import BenchWarning
from libkd_bench.core.progress import LogProgress
from libkd_bench.datasets_gen.store import MANIFEST, is_temporary
from libkd_bench.models import registry
from libkd_bench.reports.leaderboard import LONG_COLUMNS

TINY_ARCH = "resnet8_b"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("split") / "split.npz"
    images, labels = synthetic_images(60)
    np.savez(path, x=images, y=labels)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, split: Path) -> Path:
    out = tmp_path_factory.mktemp("store") / "sets"
    assert main(["generate-sets", "--source", f"npz:{split}", "--sets-dir", str(out), "--sets", "scramble",
                 "--no-progress", "--workers", "1"]) == 0  # fmt: skip
    return out


def checkpoint(path: Path, num_classes: int) -> Path:
    torch.manual_seed(0)
    torch.save({"model": registry.create_architecture(TINY_ARCH, num_classes=num_classes).state_dict()}, path)
    return path


def score_args(ckpt: Path, sets: Path, results: Path, *extra: str) -> list[str]:
    args = ["score", str(ckpt), "--arch", TINY_ARCH, "--sets-dir", str(sets), "--results", str(results)]
    return [*args, "--adv", "none", "--bootstrap-resamples", "1000", "--no-progress", *extra]


def sets_written(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir()) if out.exists() else []


# --- generate-sets ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        (
            ["--sets", "superpixel", "--param", "superpixel.compactness=abc"],
            ["compactness='abc' must be a finite number"],
        ),
        (["--sets", "superpixel", "--param", "superpixel.compactness=-1"], ["compactness=-1.0 is out of range"]),
        (["--sets", "patch-noise", "--param", "patch-noise.patch_size=100"], ["patch_size=100 is out of range"]),
        (["--sets", "patch-noise", "--param", "patch-noise.patch_size=0"], ["patch_size=0 is out of range"]),
        (["--sets", "patch-noise", "--param", "patch-noise.patch_size=8.5"], ["patch_size=8.5 must be a whole number"]),
        (["--sets", "shape", "--param", "segmentation.gate=maybe"], ["gate='maybe' must be true or false"]),
        (["--sets", "scramble", "--seed", "-1"], ["--seed", "-1 is outside"]),
        (["--sets", "scramble", "--seed", "1.5"], ["--seed", "not a whole number"]),
    ],
)
def test_bad_set_parameters_and_seeds(
    extra: list[str], fragments: list[str], split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sets"
    code, _, err = run_cli(["generate-sets", "--source", f"npz:{split}", "--sets-dir", str(out), *extra], capsys)
    assert_one_line_error(code, err, *fragments)
    assert sets_written(out) == []


def test_a_valid_float_parameter_given_as_an_integer_is_the_same_recipe(split: Path, tmp_path: Path) -> None:
    from libkd_bench.datasets_gen.build import plan_set

    assert plan_set("superpixel", 0, {"compactness": 10}).parameters == plan_set("superpixel", 0).parameters


def test_a_npy_file_as_npz_source(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    np.save(tmp_path / "images.npy", synthetic_images(4)[0])
    out = tmp_path / "sets"
    code, _, err = run_cli(
        ["generate-sets", "--source", f"npz:{tmp_path / 'images.npy'}", "--sets-dir", str(out)], capsys
    )
    assert_one_line_error(code, err, "holds a single array, not an .npz archive", "numpy.savez")
    assert sets_written(out) == []


def test_cue_conflict_from_a_one_class_source_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images, _ = synthetic_images(40)
    np.savez(tmp_path / "one.npz", x=images, y=np.full(40, 3, dtype=np.int64))
    out = tmp_path / "sets"
    args = [
        "generate-sets",
        "--source",
        f"npz:{tmp_path / 'one.npz'}",
        "--sets-dir",
        str(out),
        "--sets",
        "cue-conflict",
    ]
    code, _, err = run_cli([*args, "--no-progress"], capsys)
    assert_one_line_error(code, err, "cue-conflict")
    assert "cue-conflict" not in sets_written(out)


def child_pids(parent: int) -> list[int]:
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def is_pool_worker(pid: int) -> bool:
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"multiprocessing" in command and b"resource_tracker" not in command


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
def test_killing_generate_sets_kills_its_workers(tmp_path: Path) -> None:
    images, labels = synthetic_images(2000)
    np.savez(tmp_path / "split.npz", x=images, y=labels)
    command = [sys.executable, "-m", "libkd_bench", "generate-sets", "--source", f"npz:{tmp_path / 'split.npz'}",
               "--sets-dir", str(tmp_path / "sets"), "--sets", "superpixel", "--workers", "2",
               "--no-progress"]  # fmt: skip
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: list[int] = []
    while len(workers) < 2 and time.monotonic() < deadline and parent.poll() is None:
        time.sleep(0.2)
        workers = [pid for pid in child_pids(parent.pid) if is_pool_worker(pid)]
    assert len(workers) == 2, "the workers never started"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers)
    assert not [p.name for p in (tmp_path / "sets").glob("superpixel")]


# --- score and rescore ------------------------------------------------------------------------------------------


def test_a_100_class_checkpoint_is_refused_unless_mapped(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = checkpoint(tmp_path / "cifar100-student.pth", 100)
    results = tmp_path / "results"
    code, _, err = run_cli(score_args(ckpt, store, results), capsys)
    assert_one_line_error(code, err, "predicts 100 classes but the source has 10", "--class-map")
    assert not (results / "runs").exists()
    for bad, fragment in [("0,1,2", "names 3 outputs for 10 classes"), ("0,1,2,3,4,5,6,7,8,100", "in 0..99"),
                          ("a,b", "comma-separated output indices")]:  # fmt: skip
        code, _, err = run_cli(score_args(ckpt, store, results, "--class-map", bad), capsys)
        assert_one_line_error(code, err, fragment)
    mapping = "10,11,12,13,14,15,16,17,18,19"
    code, out, err = run_cli(score_args(ckpt, store, results, "--class-map", mapping, "--json"), capsys)
    assert code == 0, err
    record = json.loads(out)[0]
    assert record["spec"]["class_map"] == list(range(10, 20))
    assert record["spec"]["num_classes"] == 10


def test_a_ten_class_model_reads_the_same_through_an_identity_class_map(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = checkpoint(tmp_path / "student.pth", 10)
    plain = run_cli(score_args(ckpt, store, tmp_path / "a", "--json"), capsys)
    mapped = run_cli(score_args(ckpt, store, tmp_path / "b", "--json", "--class-map", "0,1,2,3,4,5,6,7,8,9"), capsys)
    values = [{(m["set"], m["severity"], m["metric"]): m["value"] for m in json.loads(out)[0]["metrics"]}
              for _, out, _ in (plain, mapped)]  # fmt: skip
    assert values[0] == values[1]


def test_a_set_without_its_manifest_is_named_not_dropped(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    damaged = tmp_path / "sets"
    subprocess.run(["cp", "-r", str(store), str(damaged)], check=True)
    (damaged / "scramble" / MANIFEST).unlink()
    ckpt = checkpoint(tmp_path / "student.pth", 10)
    code, _, err = run_cli(score_args(ckpt, damaged, tmp_path / "results"), capsys)
    assert_one_line_error(code, err, "set scramble", "no manifest.json", "--sets scramble", "--force")
    code, _, err = run_cli(score_args(ckpt, damaged, tmp_path / "results", "--sets", "clean"), capsys)
    assert code == 0, err  # a damaged set the user did not ask for stays out of the way


def test_a_damaged_logits_cache_entry_is_recomputed_by_score_and_refused_by_rescore(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = checkpoint(tmp_path / "student.pth", 10)
    results = tmp_path / "results"
    code, out, err = run_cli(score_args(ckpt, store, results, "--json"), capsys)
    assert code == 0, err
    first = json.loads(out)[0]
    run_id = f"{first['model']}@{first['source']['id']}"
    scramble = first["sets"]["scramble"]["sha256"][:16]
    (entry,) = (results / first["logits"]).glob(f"{scramble}.npy")
    entry.write_bytes(bytes(entry.stat().st_size))  # overwritten with zeros, same size

    code, _, err = run_cli(["rescore", run_id, "--results", str(results)], capsys)
    assert_one_line_error(code, err, str(entry), "is damaged", "score student again")

    with pytest.warns(BenchWarning, match="is damaged: it does not match its checksum; recomputing it"):
        code, out, err = run_cli(score_args(ckpt, store, results, "--json"), capsys)
    assert code == 0, err
    assert json.loads(out)[0]["metrics"] == first["metrics"]
    code, _, err = run_cli(["rescore", run_id, "--results", str(results)], capsys)
    assert code == 0, err


def test_rescore_points_at_the_demo_results(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ckpt = checkpoint(tmp_path / "student.pth", 10)
    assert run_cli(score_args(ckpt, store, tmp_path / "work" / "results"), capsys)[0] == 0
    code, _, err = run_cli(["rescore", "student"], capsys)
    assert_one_line_error(code, err, "it is in work/results: add --results work/results")


def test_score_reports_progress_in_logs(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIBKD_BENCH_PROGRESS_SECONDS", "0")
    ckpt = checkpoint(tmp_path / "student.pth", 10)
    args = [a for a in score_args(ckpt, store, tmp_path / "results") if a != "--no-progress"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    lines = [line for line in err.splitlines() if line.startswith("student: ")]
    assert lines, err
    assert "/240 img (" in lines[0]  # 60 clean + 3 scramble levels of 60
    assert "img/s" in lines[0]
    assert "left" in lines[0]
    assert "done in" in lines[-1]
    code, _, err = run_cli(score_args(ckpt, store, tmp_path / "results"), capsys)
    assert "student: " not in err  # --no-progress


def test_log_progress_lines() -> None:
    stream = io.StringIO()
    with LogProgress(total=1000, desc="resnet56", interval=0, stream=stream) as bar:
        bar.update(250)
        bar.update(750)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("resnet56: 250/1,000 img (25%), ")
    assert lines[0].endswith(" left")
    assert lines[-1].startswith("resnet56: 1,000/1,000 img (100%)")
    units = io.StringIO()
    with LogProgress(total=1000, desc="12 forward passes and attacks", interval=0, stream=units) as bar:
        bar.set_postfix_str("3/12 units")
        bar.update(250)
    assert units.getvalue().startswith("12 forward passes and attacks: 250/1,000 img (25%), 3/12 units, ")
    quiet = io.StringIO()
    with LogProgress(total=10, desc="short", interval=60, stream=quiet) as bar:
        bar.update(10)
    assert quiet.getvalue() == ""


# --- check and preview ------------------------------------------------------------------------------------------


HASH_COLUMN = LONG_COLUMNS.index("checkpoint_sha256")


def baseline_text() -> str:
    from leaderboard_records import all_records

    from libkd_bench.reports.leaderboard import format_long_csv, long_frame

    return format_long_csv(long_frame(all_records()))


def cut_inside_the_last_hash(text: str) -> str:
    """The file as a copy cut short leaves it: the last row ends 20 digits into its checkpoint_sha256."""
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    hash_start = len(",".join(last.split(",")[:HASH_COLUMN])) + 1
    return text[: text.rindex(last) + hash_start + 20]


def shorten_a_hash(text: str) -> str:
    lines = text.split("\n")
    cells = lines[3].split(",")
    cells[HASH_COLUMN] = cells[HASH_COLUMN][:30]
    lines[3] = ",".join(cells)
    return "\n".join(lines)


def header_only(text: str) -> str:
    return text.split("\n")[0] + "\n"


@pytest.mark.parametrize(
    ("damage", "fragments"),
    [
        (cut_inside_the_last_hash, ["cells, the header", "cut off"]),
        (shorten_a_hash, ["line 4", "is not a sha256"]),
        (header_only, ["holds no rows", "--update-baseline"]),
    ],
)
def test_a_damaged_baseline_is_refused(
    damage: Callable[[str], str], fragments: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from leaderboard_records import write_results

    results = write_results(tmp_path / "results")
    text = baseline_text()
    assert text.split("\n")[0].split(",")[HASH_COLUMN] == "checkpoint_sha256"
    baseline = tmp_path / "baseline.csv"
    baseline.write_text(damage(text))
    code, _, err = run_cli(["check", "--baseline-csv", str(baseline), "--results", str(results)], capsys)
    assert_one_line_error(code, err, *fragments)
    assert "among none" not in err


def test_preview_refuses_a_tampered_set(store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tampered = tmp_path / "sets"
    subprocess.run(["cp", "-r", str(store), str(tampered)], check=True)
    images = tampered / "scramble" / "images.npy"
    data = bytearray(images.read_bytes())
    data[-1] ^= 0xFF
    images.write_bytes(bytes(data))
    out = tmp_path / "preview.png"
    code, _, err = run_cli(["preview", "--sets-dir", str(tampered), "--png", str(out)], capsys)
    assert_one_line_error(code, err, "scramble")
    assert not out.exists()
    assert not [p for p in tmp_path.rglob("*") if is_temporary(p)]


def test_the_environment_variable_cannot_make_progress_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    from libkd_bench.core import progress

    for text, expected in [("-3", progress.DEFAULT_INTERVAL), ("x", progress.DEFAULT_INTERVAL), ("2.5", 2.5)]:
        monkeypatch.setenv(progress.INTERVAL_ENV, text)
        assert progress._interval() == expected
    monkeypatch.delenv(progress.INTERVAL_ENV)
    assert os.environ.get(progress.INTERVAL_ENV) is None

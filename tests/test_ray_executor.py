"""The Ray executor gives the sets and records of a local run, on a two-CPU Ray instance started by this module.

Records are compared whole except ``created`` (the clock), ``efficiency.images_per_s`` (measured on the
driver's own timing pass under Ray, taken from the scoring passes locally) and ``scoring.cpu_threads`` (the
fastest thread count, timed: on a busy machine two runs may choose differently); every metric, interval, set
entry, cache file name and other ``scoring`` field must be equal, and every logits-cache file byte-identical.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli
from conftest import SHARED_CHECKPOINTS, synthetic_images

from libkd_bench.core.errors import BenchError
from libkd_bench.core.executor import RAY_INSTALL_HINT

TESTS = Path(__file__).resolve().parent
IGNORED_FIELDS = (("created",), ("efficiency", "images_per_s"), ("scoring", "cpu_threads"))


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray instance for the module; its workers import this file (for the unit functions below)."""
    ray = pytest.importorskip("ray")
    env = {"PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    if SHARED_CHECKPOINTS.is_dir():
        env["LIBKD_BENCH_ZOO_DIR"] = str(SHARED_CHECKPOINTS)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(
            address="local",
            num_cpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level="ERROR",
            runtime_env={"env_vars": env},
        )
        try:
            yield
        finally:
            ray.shutdown()


@pytest.fixture(scope="module")
def synthetic_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 images: two chunks per severity level, so a set is several units."""
    images, labels = synthetic_images(300)
    path = tmp_path_factory.mktemp("source") / "synthetic.npz"
    np.savez(path, x=images, y=labels)
    return path


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def without(record: dict, fields: tuple[tuple[str, ...], ...]) -> dict:
    record = json.loads(json.dumps(record))
    for path in fields:
        parent = record
        for key in path[:-1]:
            parent = parent[key]
        parent.pop(path[-1])
    return record


@pytest.mark.slow
@pytest.mark.ray
def test_generate_sets_on_ray_writes_the_bytes_of_a_local_run(
    ray_cluster: None, synthetic_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["generate-sets", "--source", f"npz:{synthetic_source}", "--sets", "scramble,patch-noise", "--no-progress"]
    code, _, err = run_cli([*common, "--out", str(tmp_path / "local"), "--workers", "1"], capsys)
    assert code == 0, err
    code, out, err = run_cli([*common, "--out", str(tmp_path / "ray"), "--executor", "ray"], capsys)
    assert code == 0, err
    assert "scramble         built" in out
    local, remote = tree_bytes(tmp_path / "local"), tree_bytes(tmp_path / "ray")
    assert {"scramble/images.npy", "patch-noise/manifest.json"} <= set(local)
    assert local.keys() == remote.keys()
    assert [name for name in local if local[name] != remote[name]] == []


@pytest.mark.slow
@pytest.mark.ray
def test_score_on_ray_gives_the_records_and_caches_of_a_local_run(
    ray_cluster: None,
    synthetic_source: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not SHARED_CHECKPOINTS.is_dir():
        pytest.skip(f"shared checkpoints not found at {SHARED_CHECKPOINTS}")
    monkeypatch.setenv("LIBKD_BENCH_ZOO_DIR", str(SHARED_CHECKPOINTS))  # the driver's; the workers got it at start
    sets = tmp_path / "sets"
    code, _, err = run_cli(
        ["generate-sets", "--source", f"npz:{synthetic_source}", "--sets", "scramble", "--out", str(sets)], capsys
    )
    assert code == 0, err
    common = ["score", "zoo:akamaster-resnet20", "--sets-dir", str(sets), "--adv", "fgsm,pgd", "--adv-eps", "2,8"]
    common += ["--adv-n", "20", "--no-attention", "--no-progress", "--json"]
    code, out, err = run_cli([*common, "--results", str(tmp_path / "local")], capsys)
    assert code == 0, err
    local = json.loads(out)[0]
    code, out, err = run_cli([*common, "--results", str(tmp_path / "ray"), "--executor", "ray"], capsys)
    assert code == 0, err
    remote = json.loads(out)[0]
    assert remote["scoring"]["forward_passes"] == ["clean", "scramble"]
    assert without(remote, IGNORED_FIELDS) == without(local, IGNORED_FIELDS)
    local_cache, remote_cache = tree_bytes(tmp_path / "local" / "cache"), tree_bytes(tmp_path / "ray" / "cache")
    assert len(local_cache) == 2 * 3 + 2 * 2 * 2  # per set: logits, checksum, labels; per attack and eps: 2 files
    assert local_cache == remote_cache
    assert len(list((tmp_path / "ray" / "runs").glob("*.json"))) == 1


def _die_on_first_attempt(marker: Path) -> int:
    """A unit whose worker process dies the first time it runs (a crash, an out-of-memory kill)."""
    if not marker.exists():
        marker.write_text("died once")
        os._exit(1)
    return len(marker.read_text())


def _reject(value: int) -> int:
    if value == 2:
        raise BenchError(f"unit {value} has bad input")
    time.sleep(0.2)
    return value


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pytest.mark.slow
@pytest.mark.ray
def test_a_unit_whose_worker_dies_is_retried(ray_cluster: None, tmp_path: Path) -> None:
    from libkd_bench.core.ray_executor import RayExecutor

    markers = [tmp_path / "a", tmp_path / "b"]
    with RayExecutor() as executor:
        results = dict(executor.map_unordered(_die_on_first_attempt, markers))
    assert results == {markers[0]: len("died once"), markers[1]: len("died once")}


@pytest.mark.slow
@pytest.mark.ray
def test_bad_input_in_a_unit_is_the_usual_error_and_cancels_the_rest(ray_cluster: None) -> None:
    import ray

    from libkd_bench.core.ray_executor import RayExecutor

    with RayExecutor() as executor, pytest.raises(BenchError, match=r"^unit 2 has bad input$"):
        dict(executor.map_unordered(_reject, [1, 2, 3]))
    with RayExecutor() as executor:
        units = iter(executor.map_unordered(_sleep, [0.0, 60.0, 60.0]))
        assert next(units) == (0.0, 0.0)
        units.close()  # what an error or Ctrl-C in the caller does
    deadline = time.monotonic() + 10
    while ray.available_resources().get("CPU", 0) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ray.available_resources().get("CPU", 0) == 2


@pytest.mark.slow
@pytest.mark.ray
def test_bad_checkpoint_on_ray_exits_2_and_writes_no_record(
    ray_cluster: None, synthetic_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = tmp_path / "sets"
    code, _, err = run_cli(
        ["generate-sets", "--source", f"npz:{synthetic_source}", "--sets", "scramble", "--out", str(sets)], capsys
    )
    assert code == 0, err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    code, _, err = run_cli(
        ["score", str(bad), "--sets-dir", str(sets), "--results", str(tmp_path / "r"), "--executor", "ray"], capsys
    )
    assert_one_line_error(code, err, "bad.pt")
    assert not (tmp_path / "r" / "runs").exists() or not any((tmp_path / "r" / "runs").iterdir())


@pytest.mark.parametrize("command", ["score", "generate-sets"])
def test_without_ray_the_ray_executor_exits_2_with_the_install_command(
    command: str,
    monkeypatch: pytest.MonkeyPatch,
    synthetic_npz: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    args = {
        "score": ["score", "model.pt", "--sets-dir", str(tmp_path)],
        "generate-sets": ["generate-sets", "--source", f"npz:{synthetic_npz}", "--out", str(tmp_path)],
    }[command]
    code, _, err = run_cli([*args, "--executor", "ray"], capsys)
    assert_one_line_error(code, err, RAY_INSTALL_HINT)


def test_ray_address_needs_the_ray_executor(
    synthetic_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["generate-sets", "--source", f"npz:{synthetic_npz}", "--out", str(tmp_path), "--ray-address", "auto"]
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, "--ray-address needs --executor ray")

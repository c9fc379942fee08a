"""The Ray executor gives the sets and records of a local run, on a Ray instance started by this module (two
CPUs, and one declared GPU so that GPU placement can be checked on a machine without one).

Records are compared whole except ``created`` (the clock), ``efficiency.images_per_s`` (measured on the
driver's own timing pass under Ray, taken from the scoring passes locally) and ``scoring.cpu_threads`` (the
fastest thread count, timed: on a busy machine two runs may choose differently); every metric, interval, set
entry, cache file name and other ``scoring`` field must be equal, and every logits-cache file byte-identical.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli
from conftest import SHARED_CHECKPOINTS, synthetic_images

from libkd_bench.core.errors import BenchError
from libkd_bench.core.executor import RAY_INSTALL_HINT, DataMode, Resources, array_file

TESTS = Path(__file__).resolve().parent
# one test process runs them all, one after another: they start Ray instances and count Ray's processes
pytestmark = pytest.mark.xdist_group("ray")
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
            num_gpus=1,
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
    """Workers reading the store (``auto`` finds it on this one node) and workers sent every array (``ship``).

    ``shape`` reads the segmentation set's masks. The slow segmentation itself is built once, locally, and put in
    each Ray store beforehand (reused there, as any identical existing set is), so the Ray runs build the rest.
    """
    common = ["generate-sets", "--source", f"npz:{synthetic_source}", "--no-progress"]
    common += ["--sets", "scramble,patch-noise,shape"]
    code, _, err = run_cli([*common, "--sets-dir", str(tmp_path / "local"), "--workers", "2"], capsys)
    assert code == 0, err
    local = tree_bytes(tmp_path / "local")
    assert {"scramble/images.npy", "patch-noise/manifest.json", "shape/images.npy"} <= set(local)
    for data in ("auto", "ship"):
        out_dir = tmp_path / data
        for name in ("clean", "segmentation"):
            shutil.copytree(tmp_path / "local" / name, out_dir / name)
        code, out, err = run_cli([*common, "--sets-dir", str(out_dir), "--executor", "ray", "--ray-data", data], capsys)
        assert code == 0, err
        assert "segmentation     reused" in out
        assert "shape            built" in out
        remote = tree_bytes(out_dir)
        assert local.keys() == remote.keys()
        assert [name for name in local if local[name] != remote[name]] == [], data


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
        ["generate-sets", "--source", f"npz:{synthetic_source}", "--sets", "scramble", "--sets-dir", str(sets)], capsys
    )
    assert code == 0, err
    common = ["score", "zoo:akamaster-resnet20", "zoo:akamaster-resnet32", "--sets-dir", str(sets)]
    common += ["--adv", "fgsm,pgd", "--adv-eps", "2,8", "--adv-n", "20", "--no-attention", "--no-progress", "--json"]
    code, out, err = run_cli([*common, "--results", str(tmp_path / "local")], capsys)
    assert code == 0, err
    local = json.loads(out)
    code, out, err = run_cli([*common, "--results", str(tmp_path / "ray"), "--executor", "ray"], capsys)
    assert code == 0, err
    remote = json.loads(out)
    assert [record["model"] for record in remote] == ["akamaster-resnet20", "akamaster-resnet32"]
    assert [record["scoring"]["forward_passes"] for record in remote] == [["clean", "scramble"]] * 2
    assert [without(r, IGNORED_FIELDS) for r in remote] == [without(r, IGNORED_FIELDS) for r in local]
    local_cache, remote_cache = tree_bytes(tmp_path / "local" / "cache"), tree_bytes(tmp_path / "ray" / "cache")
    assert len(local_cache) == 2 * (2 * 3 + 2 * 2 * 2)  # per set: logits, checksum, labels; attack and eps: 2
    assert local_cache == remote_cache
    assert len(list((tmp_path / "ray" / "runs").glob("*.json"))) == 2


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
        ["generate-sets", "--source", f"npz:{synthetic_source}", "--sets", "scramble", "--sets-dir", str(sets)], capsys
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
        "generate-sets": ["generate-sets", "--source", f"npz:{synthetic_npz}", "--sets-dir", str(tmp_path)],
    }[command]
    code, _, err = run_cli([*args, "--executor", "ray"], capsys)
    assert_one_line_error(code, err, RAY_INSTALL_HINT)


@pytest.mark.parametrize("flag", [["--ray-address", "auto"], ["--ray-data", "ship"]])
def test_ray_flags_need_the_ray_executor(
    flag: list[str], synthetic_npz: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["generate-sets", "--source", f"npz:{synthetic_npz}", "--sets-dir", str(tmp_path), *flag]
    code, _, err = run_cli(args, capsys)
    assert_one_line_error(code, err, f"{flag[0]} needs --executor ray")


# --- inputs: read from the driver's paths, or shipped through the object store ------------------------------------


def _total(read: functools.partial) -> int:
    return int(read().sum())


@pytest.mark.slow
@pytest.mark.ray
def test_a_shipped_array_reaches_the_workers_without_its_file(ray_cluster: None, tmp_path: Path) -> None:
    from libkd_bench.core.ray_executor import RayExecutor, Shipped

    path = tmp_path / "a.npy"
    np.save(path, np.arange(12, dtype=np.int64).reshape(3, 4))
    with RayExecutor(data=DataMode.SHIP) as executor:
        [read] = executor.provide([array_file(path)])
        assert isinstance(read, Shipped)
        path.unlink()  # what a node without the driver's filesystem sees
        assert [total for _, total in executor.map_unordered(_total, [read])] == [66]


def _read(path: Path) -> int:
    return len(path.read_bytes())


def _import(name: str) -> str:
    import importlib

    return importlib.import_module(name).__name__


@pytest.mark.slow
@pytest.mark.ray
def test_a_node_without_the_drivers_files_or_code_is_a_one_line_error_naming_ray_data_ship(
    ray_cluster: None, tmp_path: Path
) -> None:
    from libkd_bench.core.ray_executor import RayExecutor

    with RayExecutor() as executor:
        with pytest.raises(BenchError, match=r"cannot read .*absent.npy: .* use --ray-data ship$"):
            dict(executor.map_unordered(_read, [tmp_path / "absent.npy"]))
        with pytest.raises(BenchError, match=r"cannot import kd_repository_models: .*--ray-data ship$"):
            dict(executor.map_unordered(_import, ["kd_repository_models"]))


@pytest.mark.slow
@pytest.mark.ray
def test_auto_reads_the_drivers_paths_only_where_every_node_sees_the_same_file(
    ray_cluster: None, tmp_path: Path
) -> None:
    from libkd_bench.core.ray_executor import RayExecutor, Shipped, differing_files, file_fingerprint

    path = tmp_path / "a.npy"
    np.save(path, np.arange(12))
    with RayExecutor() as executor:  # one node, the driver's machine: same files
        [read] = executor.provide([array_file(path)])
        assert isinstance(read, functools.partial)
        [shipped] = executor.provide([array_file(path, tmp_path / "manifest-the-driver-lacks.json")])
        assert isinstance(shipped, Shipped)
        assert [total for _, total in executor.map_unordered(_total, [read, shipped])] == [66, 66]
    size, digest = file_fingerprint(path)
    assert differing_files({str(path): (size, digest)}) == []
    assert differing_files({str(path): (size + 1, digest)}) == [str(path)]
    assert differing_files({str(tmp_path / "absent"): (size, digest)}) == [str(tmp_path / "absent")]


@pytest.mark.slow
@pytest.mark.ray
def test_score_shipping_sets_and_a_user_architecture_gives_the_records_of_a_local_run(tmp_path: Path) -> None:
    """A KD repository's model whose code the workers cannot import (not on their path): shipped with the model.

    Both runs are separate processes (the user's ``models`` package stays out of this one); the Ray run starts its
    own instance, whose workers get neither the repository nor the set store's paths.
    """
    pytest.importorskip("ray")
    from test_packaging import make_kd_repository

    repository = make_kd_repository(tmp_path / "kd-repo")
    images, labels = synthetic_images(120)
    np.savez(tmp_path / "split.npz", x=images, y=labels)
    sets = tmp_path / "sets"
    generate = [
        "generate-sets",
        "--source",
        f"npz:{tmp_path / 'split.npz'}",
        "--sets",
        "scramble",
        "--sets-dir",
        str(sets),
    ]
    assert run_process([*generate, "--no-progress"], tmp_path).returncode == 0
    score = ["score", str(repository / "tiny.pth"), "--arch-module", f"{repository / 'arch.py'}:build"]
    score += ["--sets-dir", str(sets), "--adv", "fgsm", "--adv-eps", "8", "--adv-n", "20", "--no-attention"]
    score += ["--no-progress", "--json"]
    local = run_process([*score, "--results", str(tmp_path / "local")], tmp_path)
    assert local.returncode == 0, local.stderr
    shipped = run_process(
        [*score, "--results", str(tmp_path / "ray"), "--executor", "ray", "--ray-data", "ship"], tmp_path
    )
    assert shipped.returncode == 0, shipped.stderr
    [local_record], [remote_record] = json.loads(local.stdout), json.loads(shipped.stdout)
    assert remote_record["scoring"]["forward_passes"] == ["clean", "scramble"]
    assert without(remote_record, IGNORED_FIELDS) == without(local_record, IGNORED_FIELDS)
    assert tree_bytes(tmp_path / "local" / "cache") == tree_bytes(tmp_path / "ray" / "cache")


def process_env() -> dict[str, str]:
    """The environment of a CLI process: without this test's import path, with the shared zoo mirror."""
    env = {**os.environ, "PYTHONPATH": "", "RAY_USAGE_STATS_ENABLED": "0"}
    if SHARED_CHECKPOINTS.is_dir():
        env["LIBKD_BENCH_ZOO_DIR"] = str(SHARED_CHECKPOINTS)
    return env


def run_process(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """The CLI in a fresh process started in ``cwd``."""
    command = [sys.executable, "-m", "libkd_bench", *args]
    return subprocess.run(command, cwd=cwd, env=process_env(), capture_output=True, text=True, timeout=600)


# --- GPUs, an unreachable cluster, Ctrl-C ---------------------------------------------------------------------------


def _gpu_ids(_: int) -> list[int]:
    import ray

    return [int(gpu) for gpu in ray.get_gpu_ids()]


@pytest.mark.slow
@pytest.mark.ray
def test_units_that_run_on_cuda_are_given_a_gpu_each(ray_cluster: None) -> None:
    from libkd_bench.core.ray_executor import RayExecutor

    with RayExecutor() as executor:
        assert [ids for _, ids in executor.map_unordered(_gpu_ids, [1, 2], Resources(gpus=1.0))] == [[0], [0]]
        assert [ids for _, ids in executor.map_unordered(_gpu_ids, [1], Resources())] == [[]]


@pytest.mark.ray
def test_an_unreachable_ray_address_fails_in_one_line(synthetic_npz: Path, tmp_path: Path) -> None:
    pytest.importorskip("ray")
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = ["generate-sets", "--source", f"npz:{synthetic_npz}", "--sets-dir", str(tmp_path / "sets")]
    started = time.monotonic()
    done = run_process([*args, "--executor", "ray", "--ray-address", f"127.0.0.1:{port}"], tmp_path)
    assert time.monotonic() - started < 120  # Ray alone retries for minutes
    assert_one_line_error(done.returncode, done.stderr, f"cannot reach the Ray cluster at 127.0.0.1:{port}")
    assert "ray start --head" in done.stderr
    assert not (tmp_path / "sets").exists() or not any((tmp_path / "sets").iterdir())


def _pgrep(pattern: str) -> list[int]:
    """Processes whose command line matches ``pattern``."""
    found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout
    return [int(pid) for pid in found.split()]


def _ray_processes() -> set[int]:
    return set(_pgrep("ray::|raylet|gcs_server"))


@pytest.mark.slow
@pytest.mark.ray
def test_ctrl_c_cancels_the_running_units_and_keeps_nothing_partial(
    synthetic_source: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    if not SHARED_CHECKPOINTS.is_dir():
        pytest.skip(f"shared checkpoints not found at {SHARED_CHECKPOINTS}")
    if shutil.which("pgrep") is None:
        pytest.skip("pgrep (procps) is needed to see the Ray processes")
    sets = tmp_path / "sets"
    generate = ["generate-sets", "--source", f"npz:{synthetic_source}", "--sets", "clean", "--sets-dir", str(sets)]
    assert run_process([*generate, "--no-progress"], tmp_path).returncode == 0
    before = _ray_processes()
    score = ["score", "zoo:akamaster-resnet20", "--sets-dir", str(sets), "--results", str(tmp_path / "r")]
    score += ["--adv", "autoattack", "--adv-eps", "2,4,8", "--adv-n", "300", "--no-attention", "--no-progress"]
    env = {
        **os.environ,
        "PYTHONPATH": "",
        "RAY_USAGE_STATS_ENABLED": "0",
        "LIBKD_BENCH_ZOO_DIR": str(SHARED_CHECKPOINTS),
    }
    earlier_units = _running_units()  # an earlier test's workers may still be shutting down: they do not count
    # SIGINT back to its default in the driver, as in a terminal: a test run started in the background or under
    # nohup (no job control) inherits SIGINT ignored, Python then leaves it ignored, and the run would finish.
    driver = subprocess.Popen(
        [sys.executable, "-m", "libkd_bench", *score, "--executor", "ray"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=_default_sigint,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not _running_units() - earlier_units and driver.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _running_units() - earlier_units, "no unit started"
        assert driver.poll() is None, "the run ended before it could be interrupted"
        driver.send_signal(signal.SIGINT)
        _, err = driver.communicate(timeout=60)
    finally:
        driver.kill()
    assert driver.returncode == 130, err
    assert "interrupted; nothing partial was kept" in err
    assert "Traceback" not in err
    results = tmp_path / "r"
    assert not (results / "runs").exists() or not any((results / "runs").iterdir())
    assert [p.name for p in results.rglob("*") if ".tmp" in p.name] == []
    deadline = time.monotonic() + 30
    while _ray_processes() - before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ray_processes() - before == set()


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _running_units() -> set[int]:
    """Ray worker processes running a scoring unit now."""
    return set(_pgrep("ray::run_pass"))

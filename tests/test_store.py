"""The set store: round trip, tamper detection, atomic writes, reuse and --force."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.build import build_sets, plan_set
from libkd_bench.datasets_gen.sources import load_source
from libkd_bench.datasets_gen.store import MANIFEST, SetStore


def build(store: SetStore, source: Path, names: list[str], **kwargs: object) -> list:
    split = load_source(f"npz:{source}")
    return build_sets([plan_set(n, seed=3) for n in names], split, store, progress=False, **kwargs)


def test_round_trip_keeps_arrays_and_manifest(tmp_path: Path, synthetic_npz: Path) -> None:
    store = SetStore(tmp_path / "sets")
    build(store, synthetic_npz, ["scramble"])
    assert store.names() == ["clean", "scramble"]
    clean = store.load("clean")
    with np.load(synthetic_npz) as data:
        np.testing.assert_array_equal(clean.images[0], data["x"])
        np.testing.assert_array_equal(clean.labels, data["y"])
    scramble = store.load("scramble")
    manifest = scramble.manifest
    assert manifest.set == "scramble"
    assert manifest.seed == 3
    assert [s.value for s in manifest.severities] == [2, 4, 8]
    assert manifest.source["id"] == clean.manifest.source["id"]
    assert manifest.versions["libkd-bench"]
    assert scramble.images.shape == (3, 60, 32, 32, 3)
    assert isinstance(scramble.images, np.memmap)
    assert set(manifest.arrays) == {"images", "labels"}


def test_tampered_array_is_refused(tmp_path: Path, synthetic_npz: Path) -> None:
    store = SetStore(tmp_path)
    build(store, synthetic_npz, ["patch-noise"])
    images = np.load(tmp_path / "patch-noise" / "images.npy", mmap_mode="r+")
    images[0, 0, 0, 0, 0] ^= 0xFF
    images.flush()
    del images
    with pytest.raises(BenchError, match="does not match its manifest hash") as info:
        store.load("patch-noise")
    assert "--force" in str(info.value)


def test_truncated_array_and_broken_manifest_are_refused(tmp_path: Path, synthetic_npz: Path) -> None:
    store = SetStore(tmp_path)
    build(store, synthetic_npz, ["scramble"])
    file = tmp_path / "scramble" / "images.npy"
    file.write_bytes(file.read_bytes()[:1000])
    with pytest.raises(BenchError, match="modified or truncated"):
        store.load("scramble")
    (tmp_path / "clean" / MANIFEST).write_text("{not json")
    with pytest.raises(BenchError, match="not a valid manifest"):
        store.load("clean")


def test_exception_during_write_leaves_nothing(tmp_path: Path) -> None:
    store = SetStore(tmp_path)

    def write_then_fail() -> None:
        with store.draft("half") as draft:
            draft.put("images", np.zeros((1, 2, 32, 32, 3), np.uint8))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_then_fail()
    assert list(tmp_path.iterdir()) == []
    assert store.names() == []


def test_killed_build_leaves_no_set_that_looks_complete(tmp_path: Path, synthetic_npz: Path) -> None:
    """A process killed in the middle of a set leaves only a hidden temporary directory, never the set."""
    sets = tmp_path / "sets"
    script = textwrap.dedent(
        f"""
        import os, signal
        from dataclasses import replace
        from libkd_bench.datasets_gen import registry
        from libkd_bench.datasets_gen.build import build_sets, plan_set
        from libkd_bench.datasets_gen.sources import load_source
        from libkd_bench.datasets_gen.store import SetStore

        entry = registry.get_generator("scramble")
        def dying(batch, value, /, **params):
            if batch.level == 2:
                os.kill(os.getpid(), signal.SIGKILL)
            return entry.fn(batch, value, **params)
        registry._GENERATORS.remove("scramble")
        registry._GENERATORS.add("scramble", replace(entry, fn=dying))
        split = load_source("npz:{synthetic_npz}")
        build_sets([plan_set("scramble", 0)], split, SetStore({str(sets)!r}), progress=False)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == -9, result.stderr
    store = SetStore(sets)
    assert store.names() == ["clean"]
    leftovers = [p.name for p in sets.iterdir() if p.name != "clean"]
    assert leftovers
    assert all(name.startswith(".tmp-scramble.") for name in leftovers)
    with pytest.raises(BenchError, match="not found"):
        store.load("scramble")
    build(store, synthetic_npz, ["scramble"])  # the next build sweeps what the dead process left
    assert sorted(p.name for p in sets.iterdir()) == ["clean", "scramble"]


def test_identical_set_is_reused_and_force_rebuilds(tmp_path: Path, synthetic_npz: Path) -> None:
    store = SetStore(tmp_path)
    first = {r.name: r.status for r in build(store, synthetic_npz, ["scramble"])}
    assert first == {"clean": "built", "scramble": "built"}
    before = (tmp_path / "scramble" / "images.npy").stat().st_mtime_ns
    again = {r.name: r.status for r in build(store, synthetic_npz, ["scramble"])}
    assert again == {"clean": "reused", "scramble": "reused"}
    assert (tmp_path / "scramble" / "images.npy").stat().st_mtime_ns == before
    forced = {r.name: r.status for r in build(store, synthetic_npz, ["scramble"], force=True)}
    assert forced == {"clean": "built", "scramble": "built"}


def test_changed_recipe_rebuilds(tmp_path: Path, synthetic_npz: Path) -> None:
    store = SetStore(tmp_path)
    split = load_source(f"npz:{synthetic_npz}")
    build_sets([plan_set("superpixel", 0)], split, store, progress=False)
    reports = build_sets([plan_set("superpixel", 0, {"compactness": 20.0})], split, store, progress=False)
    assert {r.name: r.status for r in reports}["superpixel"] == "built"
    assert store.load("superpixel").manifest.parameters == {"compactness": 20.0}


def test_a_set_of_an_earlier_generator_revision_is_rebuilt(tmp_path: Path, synthetic_npz: Path) -> None:
    """A store made before a generator changed its output (manifest without ``revision``, i.e. 1) is rebuilt
    by a generator at revision 2; sets whose generator did not change are reused."""
    from libkd_bench.datasets_gen import registry

    store = SetStore(tmp_path)
    build(store, synthetic_npz, ["scramble", "patch-noise"])
    for name in ("scramble", "patch-noise"):
        manifest = json.loads((tmp_path / name / MANIFEST).read_text())
        assert manifest["revision"] == 1
        del manifest["revision"]  # as an earlier release wrote it
        (tmp_path / name / MANIFEST).write_text(json.dumps(manifest))
    entry = registry.get_generator("scramble")
    with registry._GENERATORS.isolated():
        registry._GENERATORS.remove("scramble")
        registry._GENERATORS.add("scramble", replace(entry, revision=2))
        statuses = {r.name: r.status for r in build(store, synthetic_npz, ["scramble", "patch-noise"])}
    assert statuses == {"clean": "reused", "scramble": "built", "patch-noise": "reused"}
    assert json.loads((tmp_path / "scramble" / MANIFEST).read_text())["revision"] == 2


def test_manifest_is_plain_sorted_json(tmp_path: Path, synthetic_npz: Path) -> None:
    store = SetStore(tmp_path)
    build(store, synthetic_npz, ["scramble"])
    text = (tmp_path / "scramble" / MANIFEST).read_text()
    data = json.loads(text)
    assert list(data) == sorted(data)
    assert (
        data["arrays"]["images"]["sha256"]
        == __import__("hashlib").sha256((tmp_path / "scramble" / "images.npy").read_bytes()).hexdigest()
    )


def test_unknown_parameter_and_backend_are_refused() -> None:
    with pytest.raises(BenchError, match="has no parameter 'n_segs'"):
        plan_set("superpixel", 0, {"n_segs": 3})
    with pytest.raises(BenchError, match="has no backend"):
        plan_set("scramble", 0, backend="fast")

"""Hostile input and faults that once passed silently or crashed: names that share a record file, cache entries
and set folders under another identity, overflowing logits, broken user code, deep or ill-typed manifests, a full
disk, mixed stores, and what a newcomer reads (list-sets, flags, paths in outputs).

Each ends in one line and exit 2 with nothing written, or in a correct result.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_helpers import assert_one_line_error, run_cli
from conftest import synthetic_images

from libkd_bench.cli import main
from libkd_bench.core.errors import BenchWarning
from libkd_bench.core.locations import as_given
from libkd_bench.datasets_gen.store import MANIFEST, is_temporary
from libkd_bench.models import load_model, registry
from libkd_bench.records.run_record import read_records

TINY_ARCH = "resnet8_b"


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("split") / "split.npz"
    images, labels = synthetic_images(60)
    np.savez(path, x=images, y=labels)
    return path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, split: Path) -> Path:
    """clean, scramble, and two sets of five levels each (their logits files have one shape)."""
    out = tmp_path_factory.mktemp("store") / "sets"
    args = ["generate-sets", "--source", f"npz:{split}", "--sets-dir", str(out), "--no-progress", "--workers", "1"]
    assert main([*args, "--sets", "scramble,superpixel,patch-noise"]) == 0
    return out


def checkpoint(path: Path, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    torch.save({"model": registry.create_architecture(TINY_ARCH, num_classes=10).state_dict()}, path)
    return path


def score_args(ckpt: Path, sets: Path, results: Path, *extra: str) -> list[str]:
    args = ["score", str(ckpt), "--arch", TINY_ARCH, "--sets-dir", str(sets), "--results", str(results)]
    return [*args, "--adv", "none", "--bootstrap-resamples", "1000", "--no-progress", "--no-attention", *extra]


def copy_store(store: Path, to: Path) -> Path:
    shutil.copytree(store, to)
    return to


def whole_set_accuracies(record: dict) -> dict[str, float]:
    return {
        row["set"]: row["value"] for row in record["metrics"] if row["metric"] == "accuracy" and not row["severity"]
    }


# --- record files and names ---------------------------------------------------------------------------------------


def test_two_names_for_one_record_file_never_overwrite(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    first, second = checkpoint(tmp_path / "a.pth", 0), checkpoint(tmp_path / "b.pth", 1)
    code, _, err = run_cli(score_args(first, store, results, "--name", "r 20", "--sets", "scramble"), capsys)
    assert code == 0, err
    (path,) = (results / "runs").glob("*.json")
    before = path.read_bytes()
    code, _, err = run_cli(score_args(second, store, results, "--name", "r-20", "--sets", "scramble"), capsys)
    assert_one_line_error(code, err, "'r-20' and 'r 20' map to the same record file", "another --name")
    assert path.read_bytes() == before
    assert list((results / "runs").glob("*.json")) == [path]
    code, _, err = run_cli(score_args(first, store, results, "--name", "r 20", "--sets", "scramble"), capsys)
    assert code == 0, err  # the same name again replaces its own record


def test_two_names_of_one_call_that_share_a_file_are_refused(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = checkpoint(tmp_path / "a.pth", 0), checkpoint(tmp_path / "b.pth", 1)
    args = score_args(first, store, tmp_path / "results", "--name", "r 20", "--name", "r/20")
    code, _, err = run_cli([*args[:2], str(second), *args[2:]], capsys)
    assert_one_line_error(code, err, "would share one record file")
    assert not (tmp_path / "results" / "runs").exists()


@pytest.mark.parametrize("name", ["two\nlines", "tab\there", "bell\a"])
def test_a_name_with_a_control_character_is_refused(
    name: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = checkpoint(tmp_path / "a.pth")
    code, _, err = run_cli(score_args(ckpt, store, tmp_path / "results", "--name", name), capsys)
    assert_one_line_error(code, err, "control character", "printable")


def test_html_and_pipes_in_a_name_render_as_text_in_one_row(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results"
    name = "<script>alert(1)</script> a|b"
    code, _, err = run_cli(score_args(checkpoint(tmp_path / "a.pth"), store, results, "--name", name), capsys)
    assert code == 0, err
    assert main(["leaderboard", "--results", str(results), "--out", str(tmp_path / "board")]) == 0
    markdown = (tmp_path / "board" / "leaderboard.md").read_text()
    assert "<script>" not in markdown
    assert "&lt;script&gt;alert(1)&lt;/script&gt; a\\|b" in markdown
    rows = [line for line in markdown.splitlines() if "alert(1)" in line]
    assert len(rows) == 1
    assert rows[0].startswith("|")


# --- the logits cache and the set store under another identity ----------------------------------------------------


def test_cache_entries_swapped_between_two_sets_are_not_trusted(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = checkpoint(tmp_path / "a.pth")
    results = tmp_path / "results"
    code, out, err = run_cli(score_args(ckpt, store, results, "--json"), capsys)
    assert code == 0, err
    first = json.loads(out)[0]
    cache = results / first["logits"]
    superpixel, noise = (first["sets"][name]["sha256"][:16] for name in ("superpixel", "patch-noise"))
    for suffix in (".npy", ".npy.sha256"):  # logits and their checksum files, exchanged
        a, b = cache / f"{superpixel}{suffix}", cache / f"{noise}{suffix}"
        swap = tmp_path / "swap"
        a.rename(swap), b.rename(a), swap.rename(b)

    code, _, err = run_cli(["rescore", first["model"], "--results", str(results)], capsys)
    assert_one_line_error(code, err, "was not written for this model and set")

    with pytest.warns(BenchWarning, match="was not written for this model and set"):
        code, out, err = run_cli(score_args(ckpt, store, results, "--json"), capsys)
    assert code == 0, err
    assert whole_set_accuracies(json.loads(out)[0]) == whole_set_accuracies(first)


def test_a_set_folder_copied_under_another_sets_name_is_refused(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = copy_store(store, tmp_path / "sets")
    shutil.rmtree(sets / "superpixel")
    shutil.copytree(sets / "scramble", sets / "superpixel")
    code, _, err = run_cli(score_args(checkpoint(tmp_path / "a.pth"), sets, tmp_path / "results"), capsys)
    assert_one_line_error(code, err, "folder superpixel", "holds set 'scramble'", "rename the folder")
    assert not (tmp_path / "results" / "runs").exists()


def overflowing_checkpoint(path: Path, images: np.ndarray) -> Path:
    """Finite weights whose class-3 logit is finite on the loader's blank-image probe but overflows float32 on
    ``images``: the head's row 3 reads one feature, weak on a blank image and strong on real ones, on top of a bias
    near the largest float."""
    torch.manual_seed(0)
    network = registry.create_architecture(TINY_ARCH, num_classes=10)
    torch.save({"model": network.state_dict()}, path)
    module = load_model(path, arch=TINY_ARCH).module.eval()
    head_name, head = [(n, m) for n, m in module.named_modules() if isinstance(m, torch.nn.Linear)][-1]
    seen: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0].detach()))
    with torch.no_grad():
        module(torch.zeros(2, 3, 32, 32))
        module(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0)
    hook.remove()
    blank, real = seen[0][0], seen[1]
    feature = int(torch.argmax(real.max(dim=0).values - 4 * blank.abs()))
    assert real[:, feature].max() > max(4 * blank[feature].abs(), 0.03), (real[:, feature].max(), blank[feature])
    largest = torch.finfo(torch.float32).max  # logit 3 = 0.99 * largest + weight * feature
    row = torch.zeros_like(head.weight[3])
    row[feature] = 0.02 * largest / float(real[:, feature].max())
    state = network.state_dict()
    key = next(k for k in state if k.endswith("weight") and tuple(state[k].shape) == tuple(head.weight.shape))
    state[key][3] = row
    state[key.removesuffix("weight") + "bias"][3] = 0.99 * largest
    assert all(bool(torch.isfinite(tensor).all()) for tensor in state.values())
    torch.save({"model": state}, path)
    del head_name
    return path


def test_logits_that_overflow_on_real_images_are_refused(
    store: Path, split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = overflowing_checkpoint(tmp_path / "overflow.pth", np.load(split)["x"])
    assert load_model(ckpt, arch=TINY_ARCH) is not None  # the blank-image probe passes: only real images overflow
    results = tmp_path / "results"
    code, _, err = run_cli(score_args(ckpt, store, results), capsys)
    assert_one_line_error(code, err, "logits are inf or NaN on", "of 60 images of set clean", "inspect")
    assert not (results / "runs").exists()
    assert not list(results.glob("cache/*/*.npy"))


# --- user code ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ("def build(num_classes=10):\n    raise RuntimeError('no GPU here')\n", ["failed to build", "no GPU here"]),
        ("def build(num_classes=10):\n    return 42\n", ["built a int, not a torch.nn.Module"]),
        ("def build(num_classes=10):\n    return {'conv': 1}\n", ["built a dict, not a torch.nn.Module"]),
        ("import sys\nsys.exit(3)\ndef build(num_classes=10):\n    pass\n", ["it called sys.exit(3)"]),
    ],
)
def test_a_broken_architecture_builder_is_one_line(
    body: str,
    fragments: list[str],
    store: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from libkd_bench.models import user_architectures

    registry.registered_entries()  # the broken builders are gone after the test: later listings build every entry
    monkeypatch.setattr(registry._ENTRIES, "_items", dict(registry._ENTRIES._items))
    monkeypatch.setattr(user_architectures, "_IMPORTED_FILES", {})
    module = tmp_path / f"arch_{uuid.uuid4().hex[:8]}.py"
    name = f"build_{uuid.uuid4().hex[:8]}"  # a fresh name: builders register once per process
    module.write_text(body.replace("def build(", f"def {name}("))
    ckpt = checkpoint(tmp_path / "a.pth")
    args = ["score", str(ckpt), "--arch-module", f"{module}:{name}", "--arch", name, "--sets-dir", str(store)]
    code, _, err = run_cli([*args, "--results", str(tmp_path / "results"), "--adv", "none", "--no-progress"], capsys)
    assert_one_line_error(code, err, *fragments)


# --- manifests ----------------------------------------------------------------------------------------------------


def nested_too_deep(manifest: dict) -> str:
    return '{"set": ' + "[" * 200_000 + "]" * 200_000 + "}"


def arrays_as_a_list(manifest: dict) -> str:
    return json.dumps({**manifest, "arrays": list(manifest["arrays"].values())})


def not_an_object(manifest: dict) -> str:
    return json.dumps([manifest])


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [(nested_too_deep, "nested too deep"), (arrays_as_a_list, "AttributeError"), (not_an_object, "TypeError")],
)
def test_an_ill_formed_manifest_is_one_line(
    edit: Callable[[dict], str], fragment: str, store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sets = copy_store(store, tmp_path / "sets")
    manifest = sets / "scramble" / MANIFEST
    manifest.write_text(edit(json.loads(manifest.read_text())))
    code, _, err = run_cli(score_args(checkpoint(tmp_path / "a.pth"), sets, tmp_path / "results"), capsys)
    assert_one_line_error(code, err, "set scramble", "is not a valid manifest", fragment, "--force")


# --- a full disk --------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def small_disk(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (root only); skips the test where mounting is not allowed."""
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small file system here ({mounted.stderr.decode().strip() or 'not root'})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_generate_sets_on_a_full_disk_is_one_line_and_leaves_nothing(
    split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with small_disk(tmp_path / "disk", "300k") as disk:
        out = disk / "sets"
        args = ["generate-sets", "--source", f"npz:{split}", "--sets-dir", str(out), "--sets", "superpixel"]
        code, _, err = run_cli([*args, "--no-progress", "--workers", "1"], capsys)
        assert_one_line_error(code, err, "no space left on the device", "another output folder")
        leftovers = [p for p in out.rglob("*") if is_temporary(p)] if out.exists() else []
        assert leftovers == []
        assert not any((out / name / MANIFEST).exists() for name in ("superpixel",)) if out.exists() else True


def test_score_on_a_full_disk_is_one_line_and_leaves_no_record(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ckpt = checkpoint(tmp_path / "a.pth")
    with small_disk(tmp_path / "disk", "24k") as disk:
        results = disk / "results"
        code, _, err = run_cli(score_args(ckpt, store, results), capsys)
        assert_one_line_error(code, err, "no space left on the device")
        assert not list(results.rglob("*.json"))
        assert [p for p in results.rglob("*") if is_temporary(p)] == []


def test_a_failed_generate_sets_leaves_no_empty_output_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "sets"
    code, _, err = run_cli(
        ["generate-sets", "--source", f"npz:{tmp_path / 'missing.npz'}", "--sets-dir", str(out)], capsys
    )
    assert code == 2, err
    assert not out.exists()


def test_a_store_of_another_limit_is_refused_at_once(
    split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sets"
    base = ["generate-sets", "--source", f"npz:{split}", "--sets-dir", str(out), "--no-progress", "--workers", "1"]
    assert main([*base, "--sets", "scramble", "--limit", "30"]) == 0
    before = {p.name: (p / MANIFEST).read_bytes() for p in out.iterdir()}
    code, _, err = run_cli([*base, "--sets", "patch-noise", "--limit", "40"], capsys)
    assert_one_line_error(code, err, "holds sets of another clean split", "made --limit 30", "--limit")
    assert {p.name: (p / MANIFEST).read_bytes() for p in out.iterdir()} == before


# --- what outputs say ---------------------------------------------------------------------------------------------


def test_outputs_hold_no_machine_path_and_a_moved_record_still_renders(
    split: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copy(split, tmp_path / "split.npz")
    (tmp_path / "data").mkdir()
    sets = ["generate-sets", "--source", "npz:./data/../split.npz", "--sets-dir", "sets", "--sets", "scramble"]
    assert main([*sets, "--no-progress", "--workers", "1"]) == 0
    ckpt = checkpoint(tmp_path / "a.pth")
    code, _, err = run_cli(score_args(ckpt.relative_to(tmp_path), Path("sets"), Path("results")), capsys)
    assert code == 0, err
    written = [*Path("results").rglob("*.json"), *Path("sets").rglob(MANIFEST)]
    for path in written:
        assert str(tmp_path) not in path.read_text(), path
    (record,) = read_records(Path("results"))[0]
    assert record.source["location"] == "split.npz"  # as given, normalised
    assert record.checkpoint["path"] == "a.pth"

    moved = tmp_path / "elsewhere" / "results"
    shutil.move("results", moved)
    assert main(["leaderboard", "--results", str(moved), "--out", str(tmp_path / "board")]) == 0
    markdown = (tmp_path / "board" / "leaderboard.md").read_text()
    assert f"## {record.source_id} (npz, n = 60)" in markdown
    assert str(tmp_path) not in markdown


REPO = Path(__file__).resolve().parents[1]
MACHINE_PATH = re.compile(r"/(home|root|tmp|work|Users)/")


def machine_paths(folder: Path) -> list[str]:
    """Files under ``folder`` (text, by their bytes) naming a folder of the machine that wrote them."""
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and MACHINE_PATH.search(path.read_bytes().decode("utf-8", errors="replace")):
            found.append(str(path.relative_to(folder)))
    return found


def test_the_committed_results_hold_no_machine_path() -> None:
    assert machine_paths(REPO / "results") == []


def test_the_machine_path_check_sees_an_absolute_location(tmp_path: Path) -> None:
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "a.json").write_text('{"source": {"location": "/work/proj/../shared/test.npz"}}')
    (tmp_path / "b.json").write_text('{"source": {"location": "../shared/test.npz"}}')
    assert machine_paths(tmp_path) == ["runs/a.json"]


def test_paths_are_recorded_as_given_with_the_home_folder_as_tilde() -> None:
    home = os.path.expanduser("~")
    assert as_given(f"{home}/data/../cifar/test.npz") == "~/cifar/test.npz"
    assert as_given("../shared/./data/test.npz") == "../shared/data/test.npz"
    assert as_given("/srv/data/x/../test.npz") == "/srv/data/test.npz"


def test_a_zoo_model_is_recorded_by_its_zoo_name(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["score", "zoo:control-colour", "--sets-dir", str(store), "--results", str(tmp_path / "results")]
    code, out, err = run_cli([*args, "--adv", "none", "--no-progress", "--no-attention", "--json"], capsys)
    assert code == 0, err
    checkpoint_info = json.loads(out)[0]["checkpoint"]
    assert checkpoint_info["path"] == "zoo:control-colour"
    assert "/" not in (checkpoint_info["sidecar"] or "")


def test_list_sets_fits_100_columns_and_shows_one_set_in_full(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["list-sets"], capsys)
    assert code == 0
    assert max(len(line) for line in out.splitlines()) <= 100
    assert "list-sets SET" in out
    code, out, _ = run_cli(["list-sets", "patch-noise"], capsys)
    assert code == 0
    assert "added to one fixed square" in out
    assert "replaced" not in out
    assert max(len(line) for line in out.splitlines()) <= 100
    code, out, _ = run_cli(["list-sets", "segmentation"], capsys)
    assert "shape, shape-edges, texture, texture-overlay, cue-conflict" in " ".join(out.split())
    code, _, err = run_cli(["list-sets", "shap"], capsys)
    assert_one_line_error(code, err, "unknown set 'shap'", "shape")


def test_preview_png_naming_a_directory_is_one_line(
    store: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run_cli(["preview", "--sets-dir", str(store), "--png", str(tmp_path)], capsys)
    assert_one_line_error(code, err, "is a directory", "preview.png")


def test_the_score_summary_explains_its_default_class_flag() -> None:
    from leaderboard_records import SOURCE_A, make_record

    from libkd_bench.records.run_record import MetricRow
    from libkd_bench.reports.markdown import DEFAULT_CLASS_FLAG
    from libkd_bench.reports.summary_table import format_run_summary

    top = (MetricRow("shape", None, "", "top_class", 3, None, None, 2000),)
    share = (MetricRow("shape", None, "", "top_class_share", 0.8, 0.78, 0.82, 2000),)
    text = format_run_summary(make_record("m", SOURCE_A, 0.9, {"shape": [0.2]}, extra=(*top, *share)))
    assert f"cat 80% {DEFAULT_CLASS_FLAG}" in text
    assert f"{DEFAULT_CLASS_FLAG} shape: one class takes more than half of the predictions" in text
    calm = (MetricRow("shape", None, "", "top_class_share", 0.3, 0.28, 0.32, 2000),)
    assert DEFAULT_CLASS_FLAG not in format_run_summary(
        make_record("m", SOURCE_A, 0.9, {"shape": [0.2]}, extra=(*top, *calm))
    )

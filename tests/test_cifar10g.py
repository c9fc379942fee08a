"""CIFAR-10G as an external set family: pinned files, area-averaged reduction, offline copy and download, the
``cifar10g`` family on the command line, and its unpaired ratio against the clean split."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import urllib.error
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_one_line_error, run_cli
from conftest import SHARED
from PIL import Image

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen import cifar10g
from libkd_bench.datasets_gen.cifar10g_files import FILE_SHA256
from libkd_bench.datasets_gen.registry import default_set_names, get_generator, parse_set_names

SHARED_CIFAR10G = SHARED / "data" / "cifar10g"
FAMILY = ("cifar10g-silhouettes", "cifar10g-contours", "cifar10g-line-drawings")
# sha256 of the (100, 32, 32, 3) uint8 images of each set (light on dark) as built from the pinned files.
IMAGES_SHA256 = {
    "silhouettes": "8b78972571f266203666c7e8956cd98a79eb1175feb8f718242d1036476c2a44",
    "contours": "db6ceee4b882adf0e05dba7adbc83e04c11606093c092963d38718e0361b56f5",
    "line-drawings": "906ded87663c5080a256e5a68cb0463d43f32c0e58d0b991e984eb406bcc4dfe",
}


@pytest.fixture
def shared_copy() -> Path:
    if not (SHARED_CIFAR10G / cifar10g.IMAGE_DIR).is_dir():
        pytest.skip(f"shared CIFAR-10G copy not found at {SHARED_CIFAR10G}")
    return SHARED_CIFAR10G


def png_bytes(grey: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")
    return buffer.getvalue()


def test_area_average_known_blocks() -> None:
    """Each 7x7 block becomes its mean, rounded half up; a block of 24 whites in 49 reads round(124.9) = 125."""
    grey = np.zeros((224, 224), dtype=np.uint8)
    grey[:7, :7] = 255  # block (0, 0): all white
    grey[7:14, :7].flat[:24] = 255  # block (1, 0): 24 of 49 white -> 6120 / 49 = 124.9
    grey[:7, 7:14] = 3  # block (0, 1): uniform 3
    grey[:7, 14:21].flat[:1] = 25  # block (0, 2): 25 / 49 = 0.51 -> 1
    grey[:7, 21:28].flat[:1] = 24  # block (0, 3): 24 / 49 = 0.49 -> 0
    small = cifar10g.area_average(grey)
    assert small.shape == (32, 32)
    assert small.dtype == np.uint8
    assert (small[0, 0], small[1, 0], small[0, 1], small[0, 2], small[0, 3]) == (255, 125, 3, 1, 0)
    assert int(small.sum()) == 255 + 125 + 3 + 1


def test_area_average_equals_opencv_inter_area() -> None:
    import cv2

    grey = np.random.default_rng(0).integers(0, 256, size=(224, 224), dtype=np.uint8)
    expected = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(cifar10g.area_average(grey), expected)


def test_area_average_refuses_a_size_that_does_not_divide() -> None:
    with pytest.raises(ValueError, match="multiple"):
        cifar10g.area_average(np.zeros((225, 224), dtype=np.uint8))


def test_pinned_table_lists_ten_images_per_class_in_six_folders() -> None:
    folders = Counter(path.split("/")[0] for path in FILE_SHA256)
    assert folders == {
        f"{kind}{suffix}": 100 for kind in ("silhouettes", "contours", "line_drawings") for suffix in ("", "_inverted")
    }
    files = cifar10g.image_files("silhouettes_inverted")
    labels = [cifar10g.label_of(path) for path in files]
    assert labels == sorted(labels)
    assert Counter(labels) == dict.fromkeys(range(10), 10)
    assert files[0] == "silhouettes_inverted/airplane/airplane001.png"
    assert files[-1] == "silhouettes_inverted/truck/truck010.png"
    assert all(path.split("/")[2].startswith(path.split("/")[1]) for path in files)  # file named after its class
    assert cifar10g.kind_folder("line-drawings", "light-on-dark") == "line_drawings_inverted"
    assert cifar10g.kind_folder("contours", "dark-on-light") == "contours"


@pytest.mark.shared
def test_shared_copy_matches_the_pinned_hashes(shared_copy: Path) -> None:
    for relative, expected in FILE_SHA256.items():
        data = (shared_copy / cifar10g.IMAGE_DIR / relative).read_bytes()
        assert hashlib.sha256(data).hexdigest() == expected, relative


@pytest.mark.shared
@pytest.mark.parametrize("kind", list(IMAGES_SHA256))
def test_sets_from_the_shared_copy_are_the_known_images(shared_copy: Path, kind: str) -> None:
    images, labels = cifar10g.load_cifar10g(kind, location=cifar10g.CopyLocation(shared_copy, download=False))
    assert images.shape == (100, 32, 32, 3)
    assert images.dtype == np.uint8
    np.testing.assert_array_equal(labels, np.repeat(np.arange(10), 10))
    assert hashlib.sha256(images.tobytes()).hexdigest() == IMAGES_SHA256[kind]
    assert (images[..., 0] == images[..., 1]).all()
    assert (images[..., 1] == images[..., 2]).all()


@pytest.mark.shared
def test_a_known_image_is_its_block_means(shared_copy: Path) -> None:
    """airplane001's silhouette, light on black: pixel (16, j) is the mean of rows 112-118, columns 7j..7j+6."""
    path = shared_copy / cifar10g.IMAGE_DIR / "silhouettes_inverted/airplane/airplane001.png"
    grey = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    images, _ = cifar10g.load_cifar10g("silhouettes", location=cifar10g.CopyLocation(shared_copy, download=False))
    by_hand = [round(grey[112:119, 7 * j : 7 * j + 7].mean()) for j in range(32)]
    assert images[0, 16, :, 0].tolist() == by_hand
    assert by_hand[:4] == [0, 0, 113, 255]
    assert by_hand[-1] == 0


def fabricated_copy(root: Path, broken: dict[str, bytes | None]) -> Path:
    """A copy holding the silhouettes_inverted folder with the files named in ``broken`` replaced (None: left
    out); every other file is fabricated too but never reached, since reading stops at the first bad file."""
    for relative in cifar10g.image_files("silhouettes_inverted"):
        path = root / cifar10g.IMAGE_DIR / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = broken.get(relative, b"x")
        if data is not None:
            path.write_bytes(data)
    return root


def test_altered_file_is_named(tmp_path: Path) -> None:
    relative = "silhouettes_inverted/airplane/airplane001.png"
    root = fabricated_copy(tmp_path, {relative: png_bytes(np.zeros((224, 224), dtype=np.uint8))})
    with pytest.raises(BenchError, match=r"airplane001\.png does not match its pinned sha256") as error:
        cifar10g.load_cifar10g("silhouettes", location=cifar10g.CopyLocation(root, download=False))
    assert "\n" not in str(error.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    root = fabricated_copy(tmp_path, {"silhouettes_inverted/airplane/airplane001.png": None})
    with pytest.raises(BenchError, match=r"airplane001\.png is missing; LIBKD_BENCH_CIFAR10G must name"):
        cifar10g.load_cifar10g("silhouettes", location=cifar10g.CopyLocation(root, download=False))


@pytest.mark.shared
def test_one_altered_file_among_real_ones_is_named(tmp_path: Path, shared_copy: Path) -> None:
    shutil.copytree(shared_copy / cifar10g.IMAGE_DIR / "contours_inverted", tmp_path / "224x224/contours_inverted")
    victim = tmp_path / "224x224/contours_inverted/horse/horse007.png"
    data = bytearray(victim.read_bytes())
    data[-20] ^= 1  # one bit
    victim.write_bytes(bytes(data))
    with pytest.raises(BenchError, match=r"horse/horse007\.png does not match"):
        cifar10g.load_cifar10g("contours", location=cifar10g.CopyLocation(tmp_path, download=False))


def test_copy_without_image_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=r"holds no 224x224/ folder"):
        cifar10g.load_cifar10g("contours", location=cifar10g.CopyLocation(tmp_path, download=False))


def test_location_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cifar10g.CopyLocation.from_environment({cifar10g.COPY_ENV: str(tmp_path)}) == cifar10g.CopyLocation(
        tmp_path, download=False
    )
    monkeypatch.setenv("LIBKD_BENCH_DATA", str(tmp_path))
    cache = cifar10g.CopyLocation.from_environment({})
    assert cache == cifar10g.CopyLocation(tmp_path / f"cifar10g-{cifar10g.COMMIT[:12]}", download=True)


class ServingOpener:
    """Serves raw URLs of the pinned commit from a local copy, counting requests; ``alter`` corrupts one file."""

    def __init__(self, copy: Path, alter: str | None = None) -> None:
        self.copy, self.alter, self.urls = copy, alter, []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        prefix = f"{cifar10g.RAW_BASE_URL}/{cifar10g.IMAGE_DIR}/"
        assert url.startswith(prefix), url
        relative = url[len(prefix) :]
        data = (self.copy / cifar10g.IMAGE_DIR / relative).read_bytes()
        return data + b"!" if relative == self.alter else data


@pytest.mark.shared
def test_download_fills_the_cache_once(tmp_path: Path, shared_copy: Path) -> None:
    location = cifar10g.CopyLocation(tmp_path / "cache", download=True)
    opener = ServingOpener(shared_copy)
    images, _ = cifar10g.load_cifar10g("silhouettes", location=location, opener=opener)
    assert len(opener.urls) == 100
    assert opener.urls[0] == f"{cifar10g.RAW_BASE_URL}/224x224/silhouettes_inverted/airplane/airplane001.png"
    assert hashlib.sha256(images.tobytes()).hexdigest() == IMAGES_SHA256["silhouettes"]

    def offline(url: str) -> bytes:
        raise urllib.error.URLError("no network")

    again, _ = cifar10g.load_cifar10g("silhouettes", location=location, opener=offline)  # from the cache
    np.testing.assert_array_equal(again, images)
    cached = tmp_path / "cache" / cifar10g.IMAGE_DIR / "silhouettes_inverted/ship/ship004.png"
    cached.write_bytes(cached.read_bytes()[:-1])  # a copy cut short
    with pytest.raises(BenchError, match=r"ship/ship004\.png does not match .* delete it to download it again"):
        cifar10g.load_cifar10g("silhouettes", location=location, opener=offline)


@pytest.mark.shared
def test_downloaded_altered_file_is_named_and_not_cached(tmp_path: Path, shared_copy: Path) -> None:
    relative = "silhouettes_inverted/bird/bird003.png"
    location = cifar10g.CopyLocation(tmp_path / "cache", download=True)
    with pytest.raises(BenchError, match=r"bird/bird003\.png does not match its pinned sha256"):
        cifar10g.load_cifar10g("silhouettes", location=location, opener=ServingOpener(shared_copy, relative))
    assert not (tmp_path / "cache" / cifar10g.IMAGE_DIR / relative).exists()
    assert (tmp_path / "cache" / cifar10g.IMAGE_DIR / "silhouettes_inverted/bird/bird002.png").is_file()


@pytest.mark.shared
def test_download_from_a_file_url(tmp_path: Path, shared_copy: Path) -> None:
    """The real opener, on a local ``file:`` URL laid out like the raw URLs."""
    location = cifar10g.CopyLocation(tmp_path / "cache", download=True)
    images, _ = cifar10g.load_cifar10g("line-drawings", location=location, base_url=shared_copy.resolve().as_uri())
    assert hashlib.sha256(images.tobytes()).hexdigest() == IMAGES_SHA256["line-drawings"]


def test_offline_without_copy_says_where_to_put_the_data(tmp_path: Path) -> None:
    location = cifar10g.CopyLocation(tmp_path / "cache", download=True)
    missing = (tmp_path / "nowhere").as_uri()
    with pytest.raises(BenchError, match=r"could not be downloaded .*set LIBKD_BENCH_CIFAR10G to its root") as error:
        cifar10g.load_cifar10g("contours", location=location, base_url=missing)
    assert "\n" not in str(error.value)


def test_family_is_registered_opt_in_with_licence() -> None:
    assert parse_set_names("cifar10g") == list(FAMILY)
    assert parse_set_names("cifar10g-contours") == ["cifar10g-contours"]
    assert not set(FAMILY) & set(default_set_names())
    for name in FAMILY:
        entry = get_generator(name)
        assert entry.external is not None
        assert entry.external.licence == "CC BY-NC-SA 4.0"
        assert "10.5281/zenodo.5648918" in entry.external.citation
        assert "Evans" in entry.external.citation
        assert entry.external.identity(polarity="light-on-dark")["commit"] == cifar10g.COMMIT


def test_list_sets_shows_family_licence_and_citation(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run_cli(["list-sets"], capsys)
    assert code == 0
    for name in FAMILY:
        assert name in stdout
    footer = " ".join(stdout.split("external (", 1)[1].split("\n\n", 1)[0].split())  # wrapped to 100 columns
    assert all(name in footer for name in FAMILY)
    assert "CC BY-NC-SA 4.0" in footer
    assert "doi:10.5281/zenodo.5648918" in footer
    assert "unpaired" in footer
    code, stdout, _ = run_cli(["list-sets", FAMILY[0]], capsys)
    assert "Evans" in stdout  # the full citation


def generate(out: Path, source: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    return run_cli(
        ["generate-sets", "--source", f"npz:{source}", "--sets-dir", str(out), "--no-progress", *extra], capsys
    )


@pytest.mark.shared
def test_generate_family_is_identical_for_any_worker_count(
    tmp_path: Path, synthetic_npz: Path, shared_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv(cifar10g.COPY_ENV, str(shared_copy))
    hashes = []
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        code, _, err = generate(out, synthetic_npz, "--sets", "cifar10g", "--workers", workers, capsys=capsys)
        assert code == 0, err
        manifests = {name: json.loads((out / name / "manifest.json").read_text()) for name in FAMILY}
        hashes.append({name: m["arrays"]["images"]["sha256"] for name, m in manifests.items()})
        for name, manifest in manifests.items():
            assert manifest["arrays"]["images"]["shape"] == [1, 100, 32, 32, 3]
            external = manifest["resources"]["external"]
            assert external["commit"] == cifar10g.COMMIT
            assert external["licence"] == "CC BY-NC-SA 4.0"
            assert "area averaging" in external["reduction"]
            assert external["paired_with_clean"] is False
            digest = hashlib.sha256((out / name / "images.npy").read_bytes()).hexdigest()
            assert digest == manifest["arrays"]["images"]["sha256"]
        images = np.load(out / "cifar10g-silhouettes" / "images.npy")[0]
        assert hashlib.sha256(images.tobytes()).hexdigest() == IMAGES_SHA256["silhouettes"]
    assert hashes[0] == hashes[1]
    code, stdout, _ = generate(tmp_path / "w1", synthetic_npz, "--sets", "cifar10g", capsys=capsys)
    assert code == 0
    assert stdout.count("reused") == 4


def test_generate_with_altered_file_names_it(
    tmp_path: Path, synthetic_npz: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    relative = "silhouettes_inverted/airplane/airplane001.png"
    copy = fabricated_copy(tmp_path / "copy", {relative: b"not the drawing"})
    monkeypatch.setenv(cifar10g.COPY_ENV, str(copy))
    code, _, err = generate(tmp_path / "sets", synthetic_npz, "--sets", "cifar10g-silhouettes", capsys=capsys)
    assert_one_line_error(code, err, str(copy / cifar10g.IMAGE_DIR / relative), "pinned sha256")
    assert not (tmp_path / "sets" / "cifar10g-silhouettes").exists()


def test_generate_with_missing_file_names_it(
    tmp_path: Path, synthetic_npz: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    copy = fabricated_copy(tmp_path / "copy", {"silhouettes_inverted/airplane/airplane001.png": None})
    monkeypatch.setenv(cifar10g.COPY_ENV, str(copy))
    code, _, err = generate(tmp_path / "sets", synthetic_npz, "--sets", "cifar10g", capsys=capsys)
    assert_one_line_error(code, err, "airplane001.png is missing", cifar10g.COPY_ENV)


def test_generate_offline_without_copy_is_one_line(
    tmp_path: Path, synthetic_npz: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.delenv(cifar10g.COPY_ENV, raising=False)
    monkeypatch.setenv("LIBKD_BENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(cifar10g, "RAW_BASE_URL", (tmp_path / "offline").as_uri())
    code, _, err = generate(tmp_path / "sets", synthetic_npz, "--sets", "cifar10g-contours", capsys=capsys)
    assert_one_line_error(code, err, "could not be downloaded", f"set {cifar10g.COPY_ENV} to its root")


def test_generate_refuses_an_unknown_polarity(tmp_path: Path, synthetic_npz: Path, capsys) -> None:
    code, _, err = generate(
        tmp_path / "sets",
        synthetic_npz,
        "--sets",
        "cifar10g",
        "--param",
        "cifar10g-contours.polarity=grey",
        capsys=capsys,
    )
    assert_one_line_error(code, err, "polarity='grey' is out of range")


@pytest.mark.shared
def test_store_with_family_loads_for_scoring_as_unpaired(
    tmp_path: Path, synthetic_npz: Path, shared_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from libkd_bench.scoring.sets import load_scoring_sets
    from libkd_bench.scoring.stored_outcomes import stored_outcome, stored_set_entry

    monkeypatch.setenv(cifar10g.COPY_ENV, str(shared_copy))
    out = tmp_path / "sets"
    code, _, err = generate(out, synthetic_npz, "--sets", "cifar10g-silhouettes", capsys=capsys)
    assert code == 0, err
    sets = load_scoring_sets(out)  # 60 clean images, 100 drawings: accepted, being external
    stored = sets.sets["cifar10g-silhouettes"]
    assert stored.external
    assert not sets.clean.external
    entry = stored_set_entry(stored)
    assert entry["paired_with_clean"] is False
    assert entry["external"]["licence"] == "CC BY-NC-SA 4.0"
    logits = np.zeros((1, 100, 10), dtype=np.float32)
    result = stored_outcome("cifar10g-silhouettes", entry, logits, {"labels": np.asarray(stored.labels)})
    assert result.paired_with_clean is False
    assert "paired_with_clean" not in stored_set_entry(sets.clean)
    manifest_file = out / "cifar10g-silhouettes" / "manifest.json"
    manifest = json.loads(manifest_file.read_text())
    del manifest["resources"]["external"]  # the same 100 images, now claiming to come from the clean split
    manifest_file.write_text(json.dumps(manifest))
    with pytest.raises(BenchError, match="has 100 images, clean has 60"):
        load_scoring_sets(out)


@pytest.mark.shared
def test_preview_shows_external_sets_beside_the_derived_ones(
    tmp_path: Path, synthetic_npz: Path, shared_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A store holding the CIFAR-10G family (other images, another count) still draws its contact sheet: each
    column shows the external set's first image of the column's class."""
    from libkd_bench.datasets_gen.preview import row_of
    from libkd_bench.datasets_gen.store import SetStore

    monkeypatch.setenv(cifar10g.COPY_ENV, str(shared_copy))
    store = tmp_path / "sets"
    code, _, err = generate(store, synthetic_npz, "--sets", "scramble,cifar10g", capsys=capsys)
    assert code == 0, err
    out = tmp_path / "sheet.png"
    code, _, err = run_cli(["preview", "--sets-dir", str(store), "--png", str(out)], capsys)
    assert code == 0, err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    silhouettes = SetStore(store).load("cifar10g-silhouettes")
    assert silhouettes.external
    assert not SetStore(store).load("scramble").external
    for label in range(10):
        assert int(silhouettes.labels[row_of(silhouettes, 10_000, label)]) == label

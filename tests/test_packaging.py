"""One import name, ``libkd_bench``: KD repositories with their own ``models`` package load beside it.

The distribution maps the repository's folders (``bench/``, ``models/``, ``datasets_gen/``) onto one package,
so nothing generic is importable at top level. These tests build the RepDistiller layout a user has, build the
wheel and install it into a fresh environment.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from libkd_bench.cli import main
from libkd_bench.models.zoo import BUNDLED, BUNDLED_DIR, zoo_entry

REPO = Path(__file__).resolve().parents[1]
GENERIC_NAMES = ("models", "bench", "datasets_gen")
CLI = Path(sys.executable).with_name("libkd-bench")


def test_pyproject_lists_every_package_folder_once() -> None:
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {folder: name for name, folder in config["package-dir"].items()}
    found = set()
    for folder, name in roots.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((name, *relative)))
    data_only = set(config["package-data"]) - found  # folders of files, e.g. the bundled zoo weights
    assert sorted(found | data_only) == sorted(config["packages"])


# --- a KD repository with its own top-level ``models`` package -------------------------------------------------

REPDISTILLER_INIT = """
from .resnet import resnet8x4_tiny

model_dict = {"resnet8x4_tiny": resnet8x4_tiny}
"""
REPDISTILLER_RESNET = """
from torch import nn


class TinyResNet(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.fc = nn.Linear(8, num_classes)

    def forward(self, x):
        return self.fc(self.conv1(x).relu().mean((2, 3)))


def resnet8x4_tiny(num_classes=10):
    return TinyResNet(num_classes)
"""
ARCH_FILE = """
from models import model_dict


def build(num_classes=10):
    return model_dict["resnet8x4_tiny"](num_classes=num_classes)
"""


def make_kd_repository(root: Path) -> Path:
    """RepDistiller's layout: ``models/__init__.py`` with ``model_dict``, ``models/resnet.py``, a checkpoint."""
    (root / "models").mkdir(parents=True)
    (root / "models" / "__init__.py").write_text(textwrap.dedent(REPDISTILLER_INIT))
    (root / "models" / "resnet.py").write_text(textwrap.dedent(REPDISTILLER_RESNET))
    (root / "arch.py").write_text(textwrap.dedent(ARCH_FILE))
    torch.manual_seed(0)
    student = nn.Module()
    student.conv1, student.fc = nn.Conv2d(3, 8, 3, padding=1), nn.Linear(8, 10)
    torch.save({"model": student.state_dict(), "epoch": 240}, root / "tiny.pth")
    return root


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": ""}
    return subprocess.run([str(CLI), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_a_kd_repository_with_its_own_models_package_inspects_and_scores(tmp_path: Path) -> None:
    from conftest import synthetic_images

    repository = make_kd_repository(tmp_path / "kd-repo")
    images, labels = synthetic_images(40)
    np.savez(tmp_path / "split.npz", x=images, y=labels)
    sets = tmp_path / "sets"
    source = f"npz:{tmp_path / 'split.npz'}"
    assert main(["generate-sets", "--source", source, "--sets-dir", str(sets), "--sets", "clean", "--no-progress"]) == 0

    inspected = run_cli(["inspect", "tiny.pth", "--arch-module", "arch.py:build", "--json"], cwd=repository)
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["spec"]["arch"] == "build"

    where = ["--sets-dir", str(sets), "--results", str(tmp_path / "r")]
    scored = run_cli(["score", "tiny.pth", "--arch-module", "arch.py:build", *where, "--no-progress"], cwd=repository)
    assert scored.returncode == 0, scored.stderr
    assert (tmp_path / "r" / "runs").is_dir()


def test_arch_path_puts_the_repository_root_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from libkd_bench.core.errors import BenchError
    from libkd_bench.models.user_architectures import add_arch_paths

    monkeypatch.setattr(sys, "path", list(sys.path))
    add_arch_paths([tmp_path])
    assert sys.path[0] == str(tmp_path.resolve())
    with pytest.raises(BenchError, match=r"--arch-path .*absent is not a directory"):
        add_arch_paths([tmp_path / "absent"])


# --- the wheel ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*pip, "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    (built,) = out.glob("libkd_bench-*.whl")
    return built


@pytest.mark.slow
def test_the_wheel_holds_only_libkd_bench_and_the_zoo_weights(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
        assert archive.read(top_level).decode().split() == ["libkd_bench"]
        packaged = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
        assert packaged == {"libkd_bench"}
        for entry in BUNDLED:
            member = f"libkd_bench/models/zoo_weights/{entry.bundled}"
            assert archive.read(member) == (BUNDLED_DIR / entry.bundled).read_bytes()


@pytest.mark.slow
def test_the_installed_wheel_exposes_no_generic_names_and_loads_the_zoo(wheel: Path, tmp_path: Path) -> None:
    """A fresh environment with the wheel installed (dependencies seen through this one's site-packages)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(subprocess.check_output([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                        text=True).strip())  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps", str(wheel)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    # torch and friends from this environment, listed after the fresh site-packages (no editable finder rides along)
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    probe = (
        "import importlib.util, json, libkd_bench; "
        f"print(json.dumps([libkd_bench.__file__] + [importlib.util.find_spec(n) is None for n in {GENERIC_NAMES}]))"
    )
    env = {**os.environ, "PYTHONPATH": ""}
    found = json.loads(subprocess.check_output([str(python), "-c", probe], cwd=outside, env=env, text=True))
    assert Path(found[0]).is_relative_to(site)
    assert all(found[1:]), f"importable at top level: {GENERIC_NAMES}"
    cli = venv / "bin" / "libkd-bench"
    assert subprocess.run([str(cli), "--help"], cwd=outside, env=env, capture_output=True).returncode == 0
    api = "import libkd_bench; help(libkd_bench.evaluate)"
    helped = subprocess.run([str(python), "-c", api], cwd=outside, env=env, capture_output=True, text=True)
    assert helped.returncode == 0, helped.stderr
    assert "evaluate(model" in helped.stdout
    inspected = subprocess.run(
        [str(cli), "inspect", "zoo:control-colour", "--json"], cwd=outside, env=env, capture_output=True, text=True
    )
    assert inspected.returncode == 0, inspected.stderr
    checkpoint = json.loads(inspected.stdout)["checkpoint"]
    assert checkpoint["path"] == "zoo:control-colour"  # bundled weights by their zoo name, never the install path
    assert str(site) not in inspected.stdout
    bundled = site / "libkd_bench" / "models" / "zoo_weights" / zoo_entry("control-colour").bundled
    assert checkpoint["sha256"] == hashlib.sha256(bundled.read_bytes()).hexdigest()

"""Loading speed: ``load_model`` and ``inspect`` against a bare ``torch.load`` of the same file.

Usage:
    python benchmarks/load_model.py [CKPT ...] [--repeats 5] [--json OUT]

Default checkpoints: the akamaster ResNets in ../shared/checkpoints/akamaster (a synthetic ResNet-56 when absent).

Two measurements per checkpoint:

- in this process, median of ``--repeats`` runs: ``torch.load(weights_only=True)`` (the baseline), the first
  ``load_model`` (which also imports the architecture families and builds detection signatures) and later ones,
  and ``inspect_checkpoint``, with their ratios to the baseline;
- as a user sees it, median wall time of fresh processes: ``libkd-bench inspect CKPT`` and a script that loads
  the model, minus a process that only starts Python and imports torch. The target is under 1 s beyond that
  start-up for a CIFAR ResNet.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AKAMASTER = REPO.parent / "shared" / "checkpoints" / "akamaster"
CLI = str(Path(sys.executable).with_name("libkd-bench"))
STARTUP = [sys.executable, "-c", "import torch"]


def _median_seconds(action: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def _process_seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, cwd=REPO)
    return time.perf_counter() - started


def _beyond_startup(commands: list[list[str]], repeats: int) -> list[float]:
    """Median extra wall time of each command over a bare start-up, runs interleaved so drift hits all alike."""
    extra: list[list[float]] = [[] for _ in commands]
    for _ in range(repeats):
        startup = _process_seconds(STARTUP)
        for times, command in zip(extra, commands, strict=True):
            times.append(_process_seconds(command) - startup)
    return [statistics.median(times) for times in extra]


def _default_checkpoints(scratch: Path) -> list[Path]:
    found = sorted(AKAMASTER.glob("resnet*.th"), key=lambda p: int(p.name[6:].split("-")[0]))
    if found:
        return found
    import torch

    from libkd_bench.models.registry import create_architecture

    path = scratch / "resnet56_a.pth"
    torch.save({"state_dict": create_architecture("resnet56_a").state_dict()}, path)
    return [path]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()

    import torch

    from libkd_bench.models.loading.inspection import inspect_checkpoint
    from libkd_bench.models.loading.load import load_model

    repeats = args.repeats
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="libkd-bench-load-") as scratch:
        paths = args.checkpoints or _default_checkpoints(Path(scratch))
        startup = statistics.median(_process_seconds(STARTUP) for _ in range(repeats))
        print(f"python + import torch in a fresh process: {startup:.2f} s (median of {repeats})")
        header = f"{'checkpoint':<24}{'torch.load':>11}{'1st load':>10}{'load':>8}{'inspect':>9}"
        print(header + f"{'load/base':>11}{'insp/base':>11}{'CLI inspect':>13}{'script load':>13}")
        for path in paths:
            baseline = _median_seconds(lambda p=path: torch.load(p, map_location="cpu", weights_only=True), repeats)
            started = time.perf_counter()
            load_model(path)
            first = time.perf_counter() - started
            load = _median_seconds(lambda p=path: load_model(p), repeats)
            inspect = _median_seconds(lambda p=path: inspect_checkpoint(p), repeats)
            script = f"import torch; from libkd_bench.models.loading.load import load_model; load_model({str(path)!r})"
            cli_inspect, cli_load = _beyond_startup(
                [[CLI, "inspect", str(path)], [sys.executable, "-c", script]], repeats
            )
            figures[path.name] = {
                "torch_load_s": baseline,
                "first_load_model_s": first,
                "load_model_s": load,
                "inspect_s": inspect,
                "load_ratio": load / baseline,
                "inspect_ratio": inspect / baseline,
                "cli_inspect_beyond_startup_s": cli_inspect,
                "script_load_beyond_startup_s": cli_load,
            }
            times = f"{baseline * 1e3:>9.1f}ms{first * 1e3:>8.0f}ms{load * 1e3:>6.0f}ms{inspect * 1e3:>7.0f}ms"
            ratios = f"{load / baseline:>10.1f}x{inspect / baseline:>10.1f}x"
            print(f"{path.name:<24}{times}{ratios}{cli_inspect:>12.2f}s{cli_load:>12.2f}s")
    print("CLI inspect / script load: wall time of a fresh process beyond 'python -c \"import torch\"'")
    if args.json:
        args.json.write_text(json.dumps({"startup_s": startup, "checkpoints": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

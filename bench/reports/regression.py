"""The regression guard behind ``libkd-bench check``: tracked metrics of current results against a baseline.

Both sides are long leaderboard frames (see :mod:`libkd_bench.reports.leaderboard`). Every baseline row of a
tracked metric (default ``bias_ratio`` and ``shape_bias``; whole-set and per-level rows alike) is matched with the
current row of the same key (model, source, set, severity, metric). With b the baseline value, c the current value,
[lo, hi] the current 95% interval and delta = c - b:

- ``|delta| <= tolerance``: within tolerance; passes.
- ``delta < -tolerance``: a drop. It is a **regression** only when it is significant: the current interval
  lies entirely below the baseline value (``hi < b``), or the current row has no interval to argue with.
  Otherwise the baseline value is still inside what the current images support and the drop is reported as
  not significant; it passes.
- ``delta > +tolerance``: an improvement; reported, passes. With ``two_sided`` a significant rise
  (``lo > b``, or no interval) fails as well.
- ``strict``: any change beyond the tolerance, up or down, significant or not, is a regression. This is the
  reproducibility guard for a fixed pipeline on fixed data, where the same code must give the same numbers:
  it catches a shifted generator or metric even when the shift is smaller than the sampling noise.

A baseline model, set or row that the current results lack is bad input (:class:`~libkd_bench.core.errors.BenchError`),
never a pass: a silent gap would hide a regression. Current rows the baseline does not hold are counted as
new and pass. Everything here is pure; the command prints the report and picks the exit code.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
from tabulate import tabulate

from libkd_bench.core.errors import BenchError, unknown_name_message
from libkd_bench.reports.leaderboard import KEY_COLUMNS, METRIC_ORDER, describe_key

DEFAULT_METRICS = ("bias_ratio", "shape_bias")
DEFAULT_TOLERANCE = 0.02
_EPSILON = 1e-9  # values come from six-significant-digit CSV text; a delta of exactly the tolerance passes
_WHOLE = 0  # severity used for whole-set rows while matching keys (CSV: empty)
_FIX = "score it into the current results, or accept its absence by rewriting the baseline with --update-baseline"


class Verdict(str, enum.Enum):
    WITHIN_TOLERANCE = "within tolerance"
    NOT_SIGNIFICANT = "not significant"
    IMPROVEMENT = "improvement"
    REGRESSION = "regression"


@dataclass(frozen=True)
class CheckConfig:
    """What to compare and how strictly.

    Attributes:
        tolerance: largest change that always passes, on the metric's own scale (fractions: 0.02 = 2 points).
        metrics: metric names to track.
        two_sided: also fail on significant rises beyond the tolerance.
        strict: fail on every change beyond the tolerance, whatever its direction and significance.
    """

    tolerance: float = DEFAULT_TOLERANCE
    metrics: tuple[str, ...] = DEFAULT_METRICS
    two_sided: bool = False
    strict: bool = False

    def __post_init__(self) -> None:
        if not math.isfinite(self.tolerance) or self.tolerance < 0:
            raise BenchError(f"--tolerance {self.tolerance} must be a finite number >= 0, e.g. 0.02")
        if not self.metrics or any(not name for name in self.metrics):
            raise BenchError("--metrics must name at least one metric, e.g. bias_ratio,shape_bias")


@dataclass(frozen=True)
class Comparison:
    """One tracked key: baseline and current values with their intervals, and the verdict."""

    model: str
    source: str
    set: str
    severity: int | None
    metric: str
    baseline: float
    baseline_low: float | None
    baseline_high: float | None
    current: float
    current_low: float | None
    current_high: float | None
    verdict: Verdict

    @property
    def delta(self) -> float:
        return self.current - self.baseline


@dataclass(frozen=True)
class CheckReport:
    config: CheckConfig
    comparisons: tuple[Comparison, ...]
    new_rows: int

    def with_verdict(self, verdict: Verdict) -> list[Comparison]:
        return [c for c in self.comparisons if c.verdict is verdict]

    @property
    def passed(self) -> bool:
        return not self.with_verdict(Verdict.REGRESSION)


def parse_metrics(text: str) -> tuple[str, ...]:
    """``bias_ratio, shape_bias`` -> ``("bias_ratio", "shape_bias")`` (order kept, duplicates dropped)."""
    return tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))


def verdict(baseline: float, current: float, low: float | None, high: float | None, config: CheckConfig) -> Verdict:
    """The module's rule for one tracked value; ``low``/``high`` are the current 95% interval (None: none)."""
    delta = current - baseline
    if abs(delta) <= config.tolerance + _EPSILON:
        return Verdict.WITHIN_TOLERANCE
    if config.strict:
        return Verdict.REGRESSION
    if delta < 0:
        significant = high is None or high < baseline
        return Verdict.REGRESSION if significant else Verdict.NOT_SIGNIFICANT
    significant = low is None or low > baseline
    return Verdict.REGRESSION if config.two_sided and significant else Verdict.IMPROVEMENT


def compare(baseline: pd.DataFrame, current: pd.DataFrame, config: CheckConfig) -> CheckReport:
    """Compare every tracked baseline row with its current counterpart.

    Raises:
        BenchError: the baseline tracks none of the metrics, names an unknown one, or holds a model, set or
            row the current results lack.
    """
    if baseline.empty:
        raise BenchError("the baseline holds no rows; write it from scored results with --update-baseline")
    _check_metric_names(baseline, config.metrics)
    base = _keyed(baseline[baseline["metric"].isin(config.metrics)])
    if base.empty:
        raise BenchError(
            f"the baseline has no rows of {', '.join(config.metrics)}; choose --metrics among "
            f"{', '.join(sorted(set(baseline['metric'])))} or rebuild it with --update-baseline"
        )
    now = _keyed(current)
    _require_present(base, now)
    merged = base.merge(now, on=list(KEY_COLUMNS), how="left", suffixes=("_base", "_now"), validate="one_to_one")
    comparisons = tuple(_comparison(row, config) for row in merged.itertuples(index=False))
    tracked_now = now[now["metric"].isin(config.metrics)]
    new_rows = len(tracked_now) - len(tracked_now.merge(base[list(KEY_COLUMNS)], on=list(KEY_COLUMNS)))
    return CheckReport(config, comparisons, new_rows)


def _comparison(row: Any, config: CheckConfig) -> Comparison:
    """One merged row (``*_base`` / ``*_now`` columns) as a judged :class:`Comparison`."""
    baseline, current = float(row.value_base), float(row.value_now)
    low, high = _optional(row.ci_low_now), _optional(row.ci_high_now)
    return Comparison(
        model=row.model,
        source=row.source,
        set=row.set,
        severity=int(row.severity) or None,
        metric=row.metric,
        baseline=baseline,
        baseline_low=_optional(row.ci_low_base),
        baseline_high=_optional(row.ci_high_base),
        current=current,
        current_low=low,
        current_high=high,
        verdict=verdict(baseline, current, low, high, config),
    )


def format_report(report: CheckReport) -> str:
    """A summary line, then a table per non-passing kind: regressions, improvements, drops not significant."""
    config = report.config
    counts = {v: len(report.with_verdict(v)) for v in Verdict}
    lines = [
        f"check: {len(report.comparisons)} tracked value(s) of {', '.join(config.metrics)}, tolerance "
        f"{config.tolerance:g}{_mode(config)}: {counts[Verdict.REGRESSION]} "
        f"regression(s), {counts[Verdict.NOT_SIGNIFICANT]} drop(s) beyond tolerance but not significant, "
        f"{counts[Verdict.IMPROVEMENT]} improvement(s), {counts[Verdict.WITHIN_TOLERANCE]} within tolerance; "
        f"{report.new_rows} current value(s) not in the baseline",
    ]
    titles = {
        Verdict.REGRESSION: "REGRESSIONS (any change beyond the tolerance)"
        if config.strict
        else "REGRESSIONS (significant change beyond the tolerance)",
        Verdict.IMPROVEMENT: "Improvements (pass)",
        Verdict.NOT_SIGNIFICANT: "Drops beyond the tolerance that are not significant (pass)",
    }
    several_sources = len({c.source for c in report.comparisons}) > 1
    for kind, title in titles.items():
        chosen = report.with_verdict(kind)
        if chosen:
            lines += ["", f"{title}:", comparison_table(chosen, several_sources)]
    return "\n".join(lines) + "\n"


def _mode(config: CheckConfig) -> str:
    if config.strict:
        return " (strict)"
    return " (two-sided)" if config.two_sided else ""


def comparison_table(comparisons: Sequence[Comparison], with_source: bool = False) -> str:
    """model, set, severity, metric, baseline, current, delta and the current interval, one row each."""
    headers = ["model", "set", "severity", "metric", "baseline", "current", "delta", "current 95% CI"]
    rows = []
    for c in comparisons:
        interval = (
            "none"
            if c.current_low is None or c.current_high is None
            else f"[{c.current_low:.4f}, {c.current_high:.4f}]"
        )
        severity = "all" if c.severity is None else str(c.severity)
        row = [c.model, c.set, severity, c.metric, f"{c.baseline:.4f}", f"{c.current:.4f}", f"{c.delta:+.4f}", interval]
        rows.append([c.source, *row] if with_source else row)
    return tabulate(rows, headers=["source", *headers] if with_source else headers, disable_numparse=True)


def _check_metric_names(baseline: pd.DataFrame, metrics: Sequence[str]) -> None:
    known = set(METRIC_ORDER) | set(baseline["metric"])
    for name in metrics:
        if name not in known:
            raise BenchError(unknown_name_message("metric", name, known) + " (--metrics takes a comma-separated list)")


def _keyed(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with whole-set severities as 0, so keys compare as plain integers."""
    keyed = frame.copy()
    keyed["severity"] = keyed["severity"].fillna(_WHOLE).astype("int64")
    return keyed


def _require_present(base: pd.DataFrame, now: pd.DataFrame) -> None:
    """Every baseline model, then set, then row must have a current counterpart; names the first that does not."""
    levels = (("model", "source"), ("model", "source", "set"), KEY_COLUMNS)
    for columns in map(list, levels):
        wanted = base[columns].drop_duplicates()
        found = wanted.merge(now[columns].drop_duplicates(), how="left", indicator=True)
        missing = found[found["_merge"] == "left_only"]
        if missing.empty:
            continue
        first = missing.iloc[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        run = f"model {first['model']!r} on source {first['source']}"
        if "severity" in columns:
            key = {**first.to_dict(), "severity": first["severity"] or None}
            problem = f"the current results have no value for {describe_key(key)}"
        elif "set" in columns:
            problem = f"set {first['set']} of {run} is in the baseline but not in the current results"
        else:
            problem = f"{run} is in the baseline but not in the current results"
        raise BenchError(f"{problem}{more}; {_FIX}")


def _optional(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)

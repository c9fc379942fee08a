"""One validation: the checks of every provider on a store, and optionally on each mutant of it.

Order of work, so that bad input fails before any forward pass: every set the checks read must be in the store
(else bad input), every set must hold enough images for its checks to decide (else a refusal naming the
``--limit`` that would), every model must be found; then predictions (cached), then judgements. A mutant store
differs from the real one in a few sets only, so only the checks that read those sets are judged again; the
others keep the real store's judgement.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from libkd_bench.core.errors import BenchError
from libkd_bench.datasets_gen.mutants import Mutant, build_mutant_store, dependents
from libkd_bench.datasets_gen.store import SetStore, StoredSet
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.validation.coverage import coverage_checks
from libkd_bench.validation.evidence import Evidence, ModelPool, predict
from libkd_bench.validation.external_checks import external_checks
from libkd_bench.validation.judging import Check, CheckProvider, Judgement, judge, needs
from libkd_bench.validation.known_answers import known_answer_checks
from libkd_bench.validation.probe_checks import probe_checks

if TYPE_CHECKING:
    from libkd_bench.scoring.forward import EngineConfig

# Providers of checks, in table order. Another source of evidence (an external data set) appends its provider.
CHECK_PROVIDERS: list[CheckProvider] = [known_answer_checks, coverage_checks, probe_checks, external_checks]


@dataclass(frozen=True)
class MutantResult:
    """A mutant's judgements: ``caught_by`` the checks it fails that pass on the real store; ``failing_anyway``
    those it fails that fail on the real store too (they tell nothing about the mutant)."""

    mutant: Mutant
    caught_by: tuple[Judgement, ...]
    failing_anyway: tuple[Judgement, ...] = ()

    @property
    def caught(self) -> bool:
        return bool(self.caught_by)


def all_checks(set_names: Sequence[str], providers: Sequence[CheckProvider] | None = None) -> list[Check]:
    return [check for provider in (providers or CHECK_PROVIDERS) for check in provider(set_names)]


def require_sets(store: SetStore, checks: Sequence[Check]) -> None:
    """Bad input unless every set the checks read is in the store."""
    present = set(store.names())
    missing = sorted({name for check in checks for name in check.sets} - present)
    if missing:
        raise BenchError(
            f"sets {', '.join(missing)} missing from {store.root}; validate needs every default set: "
            f"run libkd-bench generate-sets --sets-dir {store.root}"
        )


def require_sample(store: SetStore, checks: Sequence[Check]) -> None:
    """Refuse a store whose sets are too small for their checks to decide; the message names the ``--limit`` needed."""
    clean = store.manifest("clean")
    n_source = clean.arrays["labels"].shape[0] if clean else 0
    for check in checks:
        for name in check.sets:
            manifest = store.manifest(name)
            assert manifest is not None
            n = manifest.arrays["labels"].shape[0]
            if n < check.min_images:
                limit = math.ceil(check.min_images * n_source / max(n, 1) / 10) * 10
                raise BenchError(
                    f"set {name} in {store.root} has {n} images, its checks need at least {check.min_images} to "
                    f"decide; generate a store with --limit {limit} or more"
                )


class Validation:
    """The checks of one store, its evidence and judgements, and its mutants."""

    def __init__(
        self,
        store: SetStore,
        results: Path,
        pool: ModelPool,
        engine: EngineConfig,
        bootstrap: BootstrapConfig | None = None,
        providers: Sequence[CheckProvider] | None = None,
        progress: Callable[[str, str], None] | None = None,
    ) -> None:
        self.store, self.results, self.pool, self.engine, self.progress = store, results, pool, engine, progress
        self.checks = all_checks(store.names(), providers)
        self.bootstrap = bootstrap or BootstrapConfig()

    def _load(self, store: SetStore, names: Sequence[str]) -> dict[str, StoredSet]:
        return {name: store.load(name, verify=False) for name in names}

    def judge_real(self) -> list[Judgement]:
        wanted = sorted({name for check in self.checks for name in check.sets})
        sets = self._load(self.store, ["clean", *[n for n in wanted if n != "clean"]])
        predictions = predict(self.pool, needs(self.checks), sets, self.results, self.engine, self.progress)
        self.evidence = Evidence(sets, predictions, self.bootstrap)
        self.judgements = [judge(check, self.evidence) for check in self.checks]
        return self.judgements

    def judge_mutant(self, mutant: Mutant, folder: Path) -> MutantResult:
        """Judge the checks that read what ``mutant`` changes; the rest keep the real judgement."""
        mutated = build_mutant_store(mutant, self.store, folder / mutant.name)
        changed = [n for n in dependents(self.store, mutant.set) if n in set(self.evidence.sets)]
        sets = self._load(mutated, changed)
        affected = [c for c in self.checks if set(c.sets) & set(changed)]
        models = {m: s & set(changed) for m, s in needs(affected).items()}
        predictions = predict(self.pool, models, sets, self.results, self.engine, self.progress)
        evidence = self.evidence.replaced(sets, predictions)
        failed = [j for j in (judge(c, evidence) for c in affected) if not j.passed]
        real = {j.check.name: j.passed for j in self.judgements}
        return MutantResult(
            mutant,
            tuple(j for j in failed if real[j.check.name]),
            tuple(j for j in failed if not real[j.check.name]),
        )

    def judge_mutants(self, mutants: Sequence[Mutant]) -> list[MutantResult]:
        with tempfile.TemporaryDirectory(prefix="libkd-bench-mutants-") as folder:
            return [self.judge_mutant(m, Path(folder)) for m in mutants]

"""The Python API: :func:`evaluate` a model at the end of a training script, as ``libkd-bench score`` would.

``evaluate`` builds the same :class:`~libkd_bench.scoring.session.ScoreRequest` the command line builds and runs
the same session, so a checkpoint scored here and by ``libkd-bench score`` on the same set store gets the same
numbers. A model may be a ``torch.nn.Module`` in memory (see :mod:`libkd_bench.models.loading.in_memory` for its
record's identity), a checkpoint path or ``zoo:NAME``. Nothing heavy is imported until ``evaluate`` is called.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from libkd_bench.core.errors import BenchError

if TYPE_CHECKING:
    import pandas as pd

    from libkd_bench.core.executor import ExecutorChoice, ExecutorKind
    from libkd_bench.models.loading.in_memory import Preprocess
    from libkd_bench.records.run_record import RunRecord
    from libkd_bench.scoring.session import ScoredModel


@dataclass(frozen=True)
class Model:
    """A model with the name its record gets and, for one in memory, its preprocessing.

    A teacher or baseline held in memory is given this way (``teacher=Model(net, name="resnet56",
    preprocess="cifar10")``): its record needs a name, and its preprocessing must be stated.

    Attributes:
        model: a ``torch.nn.Module`` taking [0, 1] images, a checkpoint path or ``zoo:NAME``.
        name: the record's model name (default: a checkpoint's file stem, a zoo model's name).
        preprocess: ``"none"`` when a module normalises its input itself, a preset (``cifar10``...) or
            ``(mean, std)``; for a checkpoint it overrides the checkpoint's own (None: keep it).
    """

    model: Any
    name: str | None = None
    preprocess: Preprocess | None = None


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` scored: every run record it wrote, the evaluated model's last.

    Attributes:
        records: the teacher's and baseline's records when they were scored in the same call, then the model's.
    """

    records: tuple[RunRecord, ...]

    @property
    def record(self) -> RunRecord:
        """The evaluated model's record."""
        return self.records[-1]

    def to_frame(self) -> pd.DataFrame:
        """The records as the leaderboard's long CSV: one row per model, source, set, severity and metric, with
        values and 95% interval ends as fractions (see :mod:`libkd_bench.reports.leaderboard`)."""
        from libkd_bench.reports.leaderboard import long_frame

        return long_frame(self.records)

    def leaderboard(self) -> str:
        """The records as the leaderboard's Markdown: one wide table per clean split, with intervals."""
        from libkd_bench.reports.markdown import leaderboard_markdown

        return leaderboard_markdown(list(self.records))


def evaluate(
    model: Any,
    *,
    sets_dir: str | os.PathLike[str],
    teacher: Any = None,
    baseline: Any = None,
    sets: str | Sequence[str] | None = None,
    preprocess: Preprocess | None = None,
    device: str | None = None,
    name: str | None = None,
    results: str | os.PathLike[str] | None = None,
    executor: ExecutorChoice | ExecutorKind | str | None = None,
) -> Evaluation:
    """Score ``model`` on a set store, as ``libkd-bench score`` does, and write its run record.

    Example::

        import libkd_bench
        result = libkd_bench.evaluate(student, preprocess="cifar10", name="my-student", sets_dir="sets",
                                      teacher="zoo:akamaster-resnet56")
        print(result.leaderboard())

    Args:
        model: a ``torch.nn.Module`` in memory taking float images in [0, 1] (it is copied: the caller's keeps
            its device and mode), a checkpoint path, ``zoo:NAME``, or a :class:`Model`.
        sets_dir: the set store made by ``libkd-bench generate-sets --sets-dir``.
        teacher: the teacher to compare with: the name or run id of a run already under ``results``, a record
            path, a checkpoint path, ``zoo:NAME`` or a :class:`Model` (a model is scored first, in this call).
        baseline: the student's architecture trained without KD, given like ``teacher``.
        sets: sets or families to score besides clean (``"cifar10g,corruptions"`` or a list); None: every set
            in the store.
        preprocess: how ``model`` normalises its input: ``"none"`` when a module does so itself, a preset
            (``cifar10``, ``cifar10-kuangliu``, ``imagenet``...), six numbers as ``--preprocess`` takes them, or
            ``(mean, std)`` RGB triples on the [0, 1] scale. Required for a module; for a checkpoint it
            overrides the checkpoint's own.
        device: ``cpu``, ``cuda`` or ``auto`` (None: ``auto``, CUDA when available).
        name: the record's model name (default: a checkpoint's stem, a zoo model's name, a module's class name).
        results: the results folder (None: ``./results``): records under ``runs/``, logits under ``cache/``.
        executor: where the forward passes run: ``local`` (None), ``ray``, or an
            :class:`~libkd_bench.core.executor.ExecutorChoice` with a cluster address.

    Returns:
        The records written, with ``to_frame()`` and ``leaderboard()``.

    Raises:
        BenchError: bad input, in one line (a module without its preprocessing, an unknown set, a teacher run
            scored on another source...).
    """
    from libkd_bench.core.executor import ExecutorChoice
    from libkd_bench.records.run_record import DEFAULT_RESULTS
    from libkd_bench.scoring.session import KdReferences, ScoreRequest, score
    from libkd_bench.scoring.sets import parse_set_list

    set_text = sets if sets is None or isinstance(sets, str) else ",".join(sets)
    choice = executor if isinstance(executor, ExecutorChoice) else ExecutorChoice(executor or "local")
    common: dict[str, Any] = {
        "sets_dir": Path(sets_dir),
        "results": Path(results) if results is not None else DEFAULT_RESULTS,
        "set_names": parse_set_list(set_text),
        "device": device or "auto",
        "executor": choice,
    }
    subject = _scored_model(model if isinstance(model, Model) else Model(model, name, preprocess), "model")
    references, scored = {}, []
    for role, given in (("teacher", teacher), ("baseline", baseline)):
        if given is None:
            continue
        if _is_run_reference(given):
            references[role] = str(given)
            continue
        entry = _scored_model(given if isinstance(given, Model) else Model(given), role)
        scored.append(entry)
        references[role] = entry.name
    records: list[RunRecord] = []
    if scored:
        records += score(ScoreRequest(models=tuple(scored), **common))
        references = {role: _run_id(records, text) for role, text in references.items()}
    kd = KdReferences(teacher=references.get("teacher"), baseline=references.get("baseline"))
    records += score(ScoreRequest(models=(subject,), kd=kd, **common))
    return Evaluation(tuple(records))


def _is_run_reference(value: Any) -> bool:
    """A string naming a scored run (run id, model name, record path) rather than a checkpoint to score."""
    from libkd_bench.core.locations import ZOO_PREFIX

    if not isinstance(value, (str, os.PathLike)):
        return False
    text = os.fspath(value)
    if text.startswith(ZOO_PREFIX):
        return False
    return text.endswith(".json") or not Path(text).is_file()


def _run_id(records: Sequence[RunRecord], name: str) -> str:
    """The run id of the record just scored as ``name`` (a run reference left as it was)."""
    return next((record.run_id for record in records if record.model == name), name)


def _scored_model(given: Model, role: str) -> ScoredModel:
    """``given`` as one model of a request, with its name."""
    from libkd_bench.models.loading.cli_args import LoadOptions
    from libkd_bench.models.loading.in_memory import normalisation_layer
    from libkd_bench.scoring.session import CheckpointModel, ModuleModel, ScoredModel, default_name

    if isinstance(given.model, (str, os.PathLike)):
        reference = os.fspath(given.model)
        source = CheckpointModel((reference,), LoadOptions(overrides=normalisation_layer(given.preprocess)))
        return ScoredModel(given.name or default_name(reference), source)
    import torch

    if not isinstance(given.model, torch.nn.Module):
        raise BenchError(
            f"the {role} is a {type(given.model).__name__}; give a torch.nn.Module, a checkpoint path or zoo:NAME"
        )
    if given.name is None and role != "model":
        raise BenchError(f"a {role} in memory needs a name: {role}=libkd_bench.Model(module, name=..., preprocess=...)")
    return ScoredModel(given.name or type(given.model).__name__, ModuleModel(given.model, given.preprocess))

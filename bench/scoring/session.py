"""One scoring session behind ``libkd-bench score`` and :func:`libkd_bench.evaluate`: a typed request in, records out.

A :class:`ScoreRequest` says everything a call scores and how: its models (checkpoint references, an ensemble of
them, or a network in memory), the set store, the results folder, the attack, bootstrap and attention settings,
the teacher, baseline and recipe-control runs, and the executor. :func:`score` then

1. checks everything the user gave before any forward pass: the sets (hashes and source), the record names,
   the reference runs and their caches, each model (loaded, mapped to the source's classes, its normalisation
   checked against the first clean images);
2. plans the passes the logits cache lacks and runs them on the executor (:mod:`libkd_bench.scoring.passes`):
   in this process for ``local``, one model at a time, each loaded when its turn comes; on a cluster, every
   model's passes together once all are loaded;
3. builds each record from the cache (:func:`libkd_bench.scoring.run.score_model`) and writes it atomically.

Nothing here prints: what the command line shows comes back through the ``on_note`` and ``on_record`` callbacks.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from libkd_bench.core.errors import BenchError
from libkd_bench.core.executor import ExecutorChoice, LocalExecutor, WorkerInput
from libkd_bench.core.locations import ZOO_PREFIX
from libkd_bench.metrics.bootstrap import BootstrapConfig
from libkd_bench.models.loading.cli_args import LoadOptions
from libkd_bench.records.comparison import Role
from libkd_bench.records.model_card import ModelCard, scored_card
from libkd_bench.records.run_record import DEFAULT_RESULTS, RunRecord, safe_name
from libkd_bench.scoring.adversarial_settings import AdversarialConfig
from libkd_bench.scoring.attention import AttentionConfig

if TYPE_CHECKING:
    from libkd_bench.models import LoadedModel
    from libkd_bench.models.loading.in_memory import Preprocess
    from libkd_bench.scoring.passes import PassModel
    from libkd_bench.scoring.reference_runs import KdContext
    from libkd_bench.scoring.sets import ScoringSets


@dataclass(frozen=True)
class CheckpointModel:
    """A model read from checkpoint references: one file or ``zoo:NAME``, or several scored as one ensemble.

    Attributes:
        checkpoints: the references, in order.
        loading: how each is loaded (architecture, normalisation, user code...).
        ensemble: score the checkpoints as one model whose logits combine theirs.
        ensemble_combine: ``mean-logits`` or ``mean-probs`` (see :mod:`libkd_bench.models.ensemble`).
        class_map: for a network trained on other classes, its output scored as each source class (``I0,...``).
    """

    checkpoints: tuple[str, ...]
    loading: LoadOptions = field(default_factory=LoadOptions)
    ensemble: bool = False
    ensemble_combine: str = "mean-logits"
    class_map: str | None = None

    def __post_init__(self) -> None:
        if not self.checkpoints:
            raise BenchError("give at least one checkpoint to score")
        if len(self.checkpoints) > 1 and not self.ensemble:
            raise BenchError("several checkpoints are one model only as an ensemble; score them one by one")

    @property
    def references(self) -> tuple[str, ...]:
        return self.checkpoints

    def default_name(self) -> str:
        """``zoo:NAME`` -> NAME, a file -> its stem; an ensemble joins its members' names with ``+``."""
        return "+".join(default_name(c) for c in self.checkpoints)

    def load(self, device: str, name: str) -> LoadedModel:
        """The model one record is about: the checkpoint, or the ensemble, mapped to the source's classes."""
        from libkd_bench.datasets_gen.classes import NUM_CLASSES
        from libkd_bench.models.ensemble import ensemble_model
        from libkd_bench.models.loading.class_map import match_source_classes

        members = [self.loading.load(checkpoint, device) for checkpoint in self.checkpoints]
        loaded = ensemble_model(members, self.ensemble_combine) if self.ensemble else members[0]
        return match_source_classes(loaded, NUM_CLASSES, self.class_map, name)

    def worker_input(self, loaded: LoadedModel, device: str, name: str) -> WorkerInput[LoadedModel]:
        """How a cluster's workers get the model: loaded there with these options and absolute paths (a worker's
        working directory is not the driver's), or the driver's loaded model shipped with the user's code."""
        from libkd_bench.models.user_architectures import user_code_modules

        portable = dataclasses.replace(
            self,
            checkpoints=tuple(c if c.startswith(ZOO_PREFIX) else str(Path(c).resolve()) for c in self.checkpoints),
            loading=self.loading.portable(),
        )
        code = user_code_modules()  # what loading the models imported from the user's files
        return WorkerInput(
            load=functools.partial(CheckpointModel.load, portable, device, name),
            files=(*self._files(), *code.values()),
            value=functools.partial(_same, loaded),
            code=tuple(code),
        )

    def _files(self) -> list[Path]:
        """The files loading reads: each checkpoint (a zoo name's local copy) and its sidecar, if any."""
        from libkd_bench.models.loading.sidecar import sidecar_path
        from libkd_bench.models.zoo import fetch

        files = []
        for checkpoint in self.checkpoints:
            zoo = checkpoint.startswith(ZOO_PREFIX)
            path = fetch(checkpoint.removeprefix(ZOO_PREFIX)) if zoo else Path(checkpoint)
            sidecar = sidecar_path(path.resolve())
            files.extend([path.resolve(), *([sidecar] if sidecar is not None else [])])
        return files


@dataclass(frozen=True)
class ModuleModel:
    """A network in memory taking [0, 1] images, with its preprocessing stated (see
    :mod:`libkd_bench.models.loading.in_memory` for what its record keeps as identity)."""

    module: Any  # torch.nn.Module; typed loosely so this module imports no torch
    preprocess: Preprocess

    def __post_init__(self) -> None:
        if self.preprocess is None:
            from libkd_bench.models.loading.in_memory import PREPROCESS_HINT

            raise BenchError(f"a model in memory needs its preprocessing stated; {PREPROCESS_HINT}")

    @property
    def references(self) -> tuple[str, ...]:
        return ()

    def default_name(self) -> str:
        raise BenchError("a model in memory needs a name; give name=...")

    def load(self, device: str, name: str) -> LoadedModel:
        from libkd_bench.datasets_gen.classes import NUM_CLASSES
        from libkd_bench.models.loading.class_map import match_source_classes
        from libkd_bench.models.loading.in_memory import in_memory_model

        return match_source_classes(in_memory_model(self.module, self.preprocess, device), NUM_CLASSES, None, name)

    def worker_input(self, loaded: LoadedModel, device: str, name: str) -> WorkerInput[LoadedModel]:
        """Workers get the driver's copy: it exists nowhere else."""
        same = functools.partial(_same, loaded)
        return WorkerInput(load=same, files=(), value=same)


ModelSource = CheckpointModel | ModuleModel


@dataclass(frozen=True)
class ScoredModel:
    """One model of a request, and the name its record gets."""

    name: str
    source: ModelSource


@dataclass(frozen=True)
class KdReferences:
    """The runs a student is compared with, as the caller names them (run id, model name under the results
    folder, or record path), and what the record says about its distillation.

    Attributes:
        teacher: the teacher run.
        baseline: the student's architecture trained without KD.
        recipe_control: the student's architecture trained with the teacher's data and recipe, without KD.
        method: free text describing the distillation method.
        seed_of: the model these runs are training seeds of (the leaderboard pools them into one row).
    """

    teacher: str | None = None
    baseline: str | None = None
    recipe_control: str | None = None
    method: str | None = None
    seed_of: str | None = None


@dataclass(frozen=True)
class ScoreRequest:
    """Everything one scoring call needs, validated where it is made.

    Attributes:
        models: the models to score, one record each.
        sets_dir: the set store.
        results: results folder: records under ``runs/``, logits under ``cache/``.
        set_names: sets to score besides clean (None: every set in the store).
        device: ``cpu``, ``cuda`` or ``auto``.
        batch_size: images per forward pass (None: 128 on CPU, 1024 on CUDA).
        amp: CUDA forward passes in reduced precision.
        adversarial: attacks, eps levels, subset size and seed.
        bootstrap: resamples and seed of every interval.
        attention: the attention panel (None: no maps).
        recompute: run forward passes even when logits are cached.
        progress: progress on stderr.
        kd: the teacher, baseline and recipe-control runs, the KD method, the model these runs are seeds of.
        card: model-card fields given by the caller (over a zoo model's own card).
        preprocess_check: stop when another normalisation preset classifies the first clean images clearly better.
        executor: where the passes run (see :mod:`libkd_bench.core.executor`).
    """

    models: tuple[ScoredModel, ...]
    sets_dir: Path
    results: Path = DEFAULT_RESULTS
    set_names: Sequence[str] | None = None
    device: str = "auto"
    batch_size: int | None = None
    amp: bool = True
    adversarial: AdversarialConfig = field(default_factory=AdversarialConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    attention: AttentionConfig | None = field(default_factory=AttentionConfig)
    recompute: bool = False
    progress: bool = True
    kd: KdReferences = field(default_factory=KdReferences)
    card: ModelCard = field(default_factory=ModelCard)
    preprocess_check: bool = True
    executor: ExecutorChoice = field(default_factory=ExecutorChoice)

    def __post_init__(self) -> None:
        if not self.models:
            raise BenchError("give at least one model to score")
        check_names([model.name for model in self.models])
        if self.set_names is not None:
            object.__setattr__(self, "set_names", tuple(self.set_names))


def default_name(checkpoint: str) -> str:
    """``zoo:NAME`` -> NAME, a file -> its stem."""
    return checkpoint[len(ZOO_PREFIX) :] if checkpoint.startswith(ZOO_PREFIX) else Path(checkpoint).stem


def check_names(names: Sequence[str]) -> None:
    """Refuse empty names, control characters, and two models that would share a name or a record file."""
    seen: dict[str, str] = {}
    for name in names:
        if not name.strip():
            raise BenchError("--name must not be empty")
        if any(not character.isprintable() for character in name):
            raise BenchError(f"--name {name!r} holds a control character (newline, tab, ...); use printable text")
        if name in seen.values():
            raise BenchError(f"two checkpoints would both be recorded as {name!r}; give each a distinct --name")
        if safe_name(name) in seen:
            raise BenchError(
                f"--name {name!r} and {seen[safe_name(name)]!r} would share one record file; give each a distinct name"
            )
        seen[safe_name(name)] = name


def named_models(sources: Sequence[ModelSource], names: Sequence[str]) -> tuple[ScoredModel, ...]:
    """One :class:`ScoredModel` per source: ``names`` in order, else each source's default name."""
    if names and len(names) != len(sources):
        raise BenchError(f"{len(names)} --name values for {len(sources)} checkpoints; give one per checkpoint")
    chosen = list(names) or [source.default_name() for source in sources]
    return tuple(ScoredModel(name, source) for name, source in zip(chosen, sources, strict=True))


def checkpoint_models(
    checkpoints: Sequence[str],
    names: Sequence[str] = (),
    loading: LoadOptions | None = None,
    ensemble: bool = False,
    ensemble_combine: str = "mean-logits",
    class_map: str | None = None,
) -> tuple[ScoredModel, ...]:
    """The models of a ``score`` call on ``checkpoints``: one per checkpoint, or one ensemble of them all."""
    common = {"loading": loading or LoadOptions(), "ensemble_combine": ensemble_combine, "class_map": class_map}
    if ensemble:
        if len(names) > 1:
            raise BenchError(f"an ensemble is one model: give one --name, not {len(names)}")
        return named_models([CheckpointModel(tuple(checkpoints), ensemble=True, **common)], names)
    return named_models([CheckpointModel((checkpoint,), **common) for checkpoint in checkpoints], names)


def _same(value: LoadedModel) -> LoadedModel:
    """The model as the driver loaded it: what an executor that ships inputs sends."""
    return value


def _ignore(_: str) -> None:
    return None


def score(
    request: ScoreRequest,
    on_note: Callable[[str], None] = _ignore,
    on_record: Callable[[RunRecord, Path], None] | None = None,
) -> list[RunRecord]:
    """Score every model of ``request`` and write its record; see the module docstring.

    Args:
        request: what to score and how.
        on_note: told what the user should know and that stops nothing (which network of a distiller's
            checkpoint is scored).
        on_record: told of each record and its file as soon as it is written.

    Returns:
        The records, in the order of ``request.models``.
    """
    from libkd_bench.core.atomic_io import ensure_writable_dir
    from libkd_bench.core.torch_runtime import resolve_device
    from libkd_bench.records.run_record import check_record_slot, write_record
    from libkd_bench.scoring.attention import check_references
    from libkd_bench.scoring.forward import EngineConfig
    from libkd_bench.scoring.passes import forward_passes
    from libkd_bench.scoring.run import ScoreOptions, score_model
    from libkd_bench.scoring.sets import load_scoring_sets

    device = str(resolve_device(request.device))
    executor = request.executor.open()
    options = ScoreOptions(
        engine=EngineConfig(device, request.batch_size, amp=request.amp),
        adversarial=request.adversarial,
        bootstrap=request.bootstrap,
        recompute=request.recompute,
        progress=request.progress,
        attention=request.attention,
    )
    sets = load_scoring_sets(request.sets_dir, request.set_names)
    results = ensure_writable_dir(Path(request.results))
    for model in request.models:  # before any forward pass: a name whose record file holds another model is refused
        check_record_slot(results, model.name, sets.source_id)
    kd = _kd_context(request, results, sets)
    if options.attention is not None:
        check_references(kd, sets, options.attention)
    local = isinstance(executor, LocalExecutor)
    # locally one model at a time, each loaded when its turn comes; on a cluster all together, to fill it
    batches = [[model] for model in request.models] if local else [list(request.models)]
    records = []
    for batch in batches:
        loaded = [_prepared(model, device, sets, request, on_note) for model in batch]
        passes = [_pass_model(model, one, device, local) for model, one in zip(batch, loaded, strict=True)]
        with executor:  # a cluster is joined once every model is loaded: bad input fails before it starts
            computed = forward_passes(executor, passes, sets, results, options)
        for model, one, elsewhere in zip(batch, loaded, computed, strict=True):
            record = score_model(one, model.name, sets, results, options, kd, elsewhere)
            card = scored_card(list(model.source.references), request.card)
            record = dataclasses.replace(record, card=card.to_json())
            path = write_record(results, record)
            records.append(record)
            if on_record is not None:
                on_record(record, path)
    return records


def _kd_context(request: ScoreRequest, results: Path, sets: ScoringSets) -> KdContext:
    """The request's reference runs, found under ``results`` and their caches read now."""
    from libkd_bench.scoring.reference_runs import KdContext, resolve_run

    def run(text: str | None, role: Role) -> Any:
        return resolve_run(text, results, sets.source_id, role) if text else None

    given = request.kd
    kd = KdContext(
        teacher=run(given.teacher, Role.TEACHER),
        baseline=run(given.baseline, Role.BASELINE),
        method=given.method,
        recipe_control=run(given.recipe_control, Role.RECIPE_CONTROL),
        seed_of=given.seed_of,
    )
    kd.preload()
    return kd


def _prepared(
    model: ScoredModel, device: str, sets: ScoringSets, request: ScoreRequest, on_note: Callable[[str], None]
) -> LoadedModel:
    """``model`` loaded; says which network of a distiller's checkpoint is scored, and stops when its
    normalisation looks wrong (see :mod:`libkd_bench.scoring.preprocessing_check`)."""
    from libkd_bench.scoring.preprocessing_check import require_plausible_preprocessing

    loaded = model.source.load(device, model.name)
    info = loaded.checkpoint
    if info.part and any(p in info.other_parts for p in ("student", "teacher")):
        other = "teacher" if info.part == "student" else "student"
        first = model.source.references[0]
        on_note(f"{first} holds a student and a teacher; scoring the {info.part} (--part {other} for the other)")
    if request.preprocess_check:
        clean = sets.clean
        require_plausible_preprocessing(loaded, clean.images[0], clean.labels, request.batch_size or 128)
    return loaded


def _pass_model(model: ScoredModel, loaded: LoadedModel, device: str, local: bool) -> PassModel:
    from libkd_bench.scoring.passes import PassModel, in_process

    if local:
        return in_process(model.name, loaded)
    return PassModel(model.name, loaded, model.source.worker_input(loaded, device, model.name))

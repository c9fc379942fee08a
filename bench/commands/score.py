"""Score checkpoints on the clean split, every derived set and severity, and adversarial attacks.

Each checkpoint gets one run record, RESULTS/runs/<model>@<source id>.json, with accuracies, bias ratios,
shape bias and (given --teacher/--baseline) error consistency, McNemar tests, ratio differences and bias
transfer, all with 95% paired-bootstrap intervals, plus efficiency figures. Per-image logits are cached under
RESULTS/cache/ and reused for the same checkpoint and set; `libkd-bench rescore` recomputes metrics from them.
Grad-CAM maps on a seeded clean panel are cached beside them and aligned with the teacher's and baseline's
(`--no-attention` skips them; see libkd_bench.scoring.attention). A model card (--card, --card-field; a zoo
model's own by default) is kept in the record (libkd_bench.records.model_card).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from libkd_bench.commands import seed
from libkd_bench.core.errors import BenchError
from libkd_bench.core.executor import add_executor_arguments
from libkd_bench.records.run_record import DEFAULT_RESULTS, safe_name

if TYPE_CHECKING:
    from libkd_bench.core.executor import Executor
    from libkd_bench.models import LoadedModel
    from libkd_bench.scoring.run import ScoreOptions
    from libkd_bench.scoring.sets import ScoringSets

NAME = "score"
HELP = "score checkpoints on the clean split and every derived set"
ZOO_PREFIX = "zoo:"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from libkd_bench.models.cli_args import add_model_arguments

    parser.add_argument("checkpoints", nargs="+", metavar="CKPT", help="checkpoint file or zoo:NAME")
    add_model_arguments(parser)
    parser.add_argument(
        "--name", action="append", default=[], help="model name in the record, once per checkpoint (default: file stem)"
    )
    parser.add_argument(
        "--ensemble",
        action="store_true",
        help="score all CKPTs as one model, e.g. a CNN + involution teacher ensemble: one record, one --name",
    )
    parser.add_argument(
        "--ensemble-combine",
        choices=["mean-logits", "mean-probs"],
        default="mean-logits",
        help="ensemble logits: mean of the members' logits (default) or log of their mean probabilities",
    )
    parser.add_argument("--sets-dir", type=Path, help="set store (default: $LIBKD_BENCH_SETS or ./sets)")
    parser.add_argument(
        "--sets",
        help="comma-separated sets or families (e.g. cifar10g, corruptions) to score besides clean "
        "(default: every set in the store)",
    )
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results directory (default ./results)")
    parser.add_argument("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")
    parser.add_argument("--batch-size", type=int, help="images per forward pass (default 128 on CPU, 1024 on CUDA)")
    parser.add_argument("--no-amp", action="store_true", help="run CUDA forward passes in float32")
    parser.add_argument("--teacher", help="teacher run: run id, model name in RESULTS, or record path")
    parser.add_argument("--baseline", help="baseline run (same architecture as the student, trained without KD)")
    parser.add_argument("--kd-method", help="free text describing the distillation method, kept in the record")
    parser.add_argument(
        "--card",
        type=Path,
        metavar="CARD.json",
        help="model card kept in the record: a JSON object with teacher, method, seed, training_data, preprocessing, "
        "licence, link, citation, authors, notes (all optional; a zoo model has its own by default)",
    )
    parser.add_argument(
        "--card-field",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set one card field, over --card and the zoo's card (repeatable), e.g. --card-field seed=3",
    )
    parser.add_argument(
        "--recipe-control",
        metavar="RUN",
        help="run of the student's architecture trained with the teacher's data and recipe, without KD: adds "
        "transfer_beyond_recipe (needs --teacher and --baseline)",
    )
    parser.add_argument(
        "--seed-of",
        metavar="NAME",
        help="this checkpoint is one training seed of model NAME: the leaderboard pools such runs into one row",
    )
    parser.add_argument("--adv", default="fgsm,pgd", help="attacks: fgsm,pgd,autoattack or none (default fgsm,pgd)")
    parser.add_argument("--adv-eps", default="1,2,4,8", help="L-inf eps levels in 1/255 units (default 1,2,4,8)")
    parser.add_argument("--adv-n", type=int, default=500, help="size of the attacked clean subset (default 500)")
    parser.add_argument("--adv-seed", type=seed, default=0, help="seed of the subset and the attacks (default 0)")
    parser.add_argument("--bootstrap-resamples", type=int, default=1000, help="bootstrap resamples (>= 1000)")
    parser.add_argument("--bootstrap-seed", type=seed, default=0, help="bootstrap seed (default 0)")
    parser.add_argument("--recompute", action="store_true", help="run forward passes even when logits are cached")
    parser.add_argument(
        "--attention",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Grad-CAM (and ViT rollout) maps on a clean panel, aligned with --teacher/--baseline (default on)",
    )
    parser.add_argument("--attention-n", type=int, default=500, help="attention panel size (default 500)")
    parser.add_argument("--attention-seed", type=seed, default=0, help="seed of the attention panel (default 0)")
    parser.add_argument(
        "--class-map",
        metavar="I0,...,I9",
        help="for a network trained on other classes (e.g. CIFAR-100): its output scored as each CIFAR-10 class",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress (bars on a terminal, lines in logs)")
    parser.add_argument(
        "--skip-preprocess-check",
        action="store_true",
        help="score even when another normalisation preset classifies the first clean images clearly better",
    )
    parser.add_argument("--json", action="store_true", help="print the run records as JSON instead of the table")
    add_executor_arguments(parser)


def default_name(checkpoint: str) -> str:
    """``zoo:NAME`` -> NAME, a file -> its stem."""
    return checkpoint[len(ZOO_PREFIX) :] if checkpoint.startswith(ZOO_PREFIX) else Path(checkpoint).stem


def model_names(checkpoints: list[str], names: list[str]) -> list[str]:
    """One record name per checkpoint: ``--name`` values in order, else the default names."""
    if names and len(names) != len(checkpoints):
        raise BenchError(f"{len(names)} --name values for {len(checkpoints)} checkpoints; give one per checkpoint")
    chosen = names or [default_name(c) for c in checkpoints]
    seen: dict[str, str] = {}
    for name in chosen:
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
    return chosen


def run(args: argparse.Namespace) -> int:
    from libkd_bench.commands.generate_sets import default_sets_dir
    from libkd_bench.core.atomic_io import ensure_writable_dir
    from libkd_bench.core.executor import cluster_executor
    from libkd_bench.core.torch_runtime import resolve_device
    from libkd_bench.metrics.bootstrap import BootstrapConfig
    from libkd_bench.records.comparison import Role
    from libkd_bench.records.model_card import given_card, scored_card
    from libkd_bench.records.run_record import check_record_slot, write_record
    from libkd_bench.reports.summary_table import format_run_summary
    from libkd_bench.scoring.adversarial_settings import AdversarialConfig, parse_attacks, parse_eps
    from libkd_bench.scoring.attention import AttentionConfig, check_references
    from libkd_bench.scoring.forward import EngineConfig
    from libkd_bench.scoring.reference_runs import KdContext, resolve_run
    from libkd_bench.scoring.run import ScoreOptions, score_model
    from libkd_bench.scoring.sets import load_scoring_sets, parse_set_list

    card = given_card(args.card, args.card_field)  # before anything is loaded: a bad card fails at once
    if args.ensemble:
        if len(args.name) > 1:
            raise BenchError(f"an ensemble is one model: give one --name, not {len(args.name)}")
        groups = [list(args.checkpoints)]
        names = model_names(["+".join(default_name(c) for c in args.checkpoints)], args.name)
    else:
        groups = [[checkpoint] for checkpoint in args.checkpoints]
        names = model_names(args.checkpoints, args.name)
    adversarial = AdversarialConfig(parse_attacks(args.adv), parse_eps(args.adv_eps), args.adv_n, args.adv_seed)
    bootstrap = BootstrapConfig(args.bootstrap_resamples, args.bootstrap_seed)
    device = resolve_device(args.device)
    executor = cluster_executor(args.executor, address=args.ray_address, data=args.ray_data)  # connects on entry
    options = ScoreOptions(
        engine=EngineConfig(str(device), args.batch_size, amp=not args.no_amp),
        adversarial=adversarial,
        bootstrap=bootstrap,
        recompute=args.recompute,
        progress=not args.no_progress,
        attention=AttentionConfig(args.attention_n, args.attention_seed) if args.attention else None,
    )
    sets = load_scoring_sets(args.sets_dir or default_sets_dir(), parse_set_list(args.sets))
    results = ensure_writable_dir(args.results)
    for name in names:  # before any forward pass: a name whose record file holds another model is refused now
        check_record_slot(results, name, sets.source_id)
    kd = KdContext(
        teacher=resolve_run(args.teacher, results, sets.source_id, Role.TEACHER) if args.teacher else None,
        baseline=resolve_run(args.baseline, results, sets.source_id, Role.BASELINE) if args.baseline else None,
        method=args.kd_method,
        recipe_control=(
            resolve_run(args.recipe_control, results, sets.source_id, Role.RECIPE_CONTROL)
            if args.recipe_control
            else None
        ),
        seed_of=args.seed_of,
    )
    kd.preload()
    if options.attention is not None:
        check_references(kd, sets, options.attention)
    computed: list[frozenset[str] | None] = [None] * len(groups)
    preloaded: list[LoadedModel | None] = [None] * len(groups)  # locally, each model is loaded when its turn comes
    if executor is not None:  # every asked-for pass runs there; the records are then built here from the cache
        preloaded = [load_scored_model(g, args, str(device), n) for g, n in zip(groups, names, strict=True)]
        for model, group in zip(preloaded, groups, strict=True):
            check_before_scoring(model, group, args, sets)
        passes = _remote_forward_passes(executor, groups, names, preloaded, args, str(device), sets, results, options)
        computed = [*passes]
    records = []
    for group, name, model, elsewhere in zip(groups, names, preloaded, computed, strict=True):
        if model is None:
            loaded = load_scored_model(group, args, str(device), name)
            check_before_scoring(loaded, group, args, sets)
        else:
            loaded = model
        record = score_model(loaded, name, sets, results, options, kd, elsewhere)
        record = dataclasses.replace(record, card=scored_card(group, card).to_json())
        path = write_record(results, record)
        records.append(record)
        if not args.json:
            print(format_run_summary(record), end="")
            print(f"record: {os.path.relpath(path)}\n")
    if args.json:
        print(json.dumps([record.to_json() for record in records], indent=2, sort_keys=True, allow_nan=False))
    return 0


def check_before_scoring(loaded: LoadedModel, group: list[str], args: argparse.Namespace, sets: ScoringSets) -> None:
    """Say which network of a distiller's checkpoint is scored, and stop when its normalisation looks wrong
    (see :mod:`libkd_bench.scoring.preprocessing_check`; ``--skip-preprocess-check`` goes on regardless)."""
    from libkd_bench.scoring.preprocessing_check import require_plausible_preprocessing

    info = loaded.checkpoint
    if info.part and any(p in info.other_parts for p in ("student", "teacher")):
        other = "teacher" if info.part == "student" else "student"
        print(
            f"note: {group[0]} holds a student and a teacher; scoring the {info.part} (--part {other} for the other)",
            file=sys.stderr,
        )
    if not args.skip_preprocess_check:
        clean = sets.clean
        require_plausible_preprocessing(loaded, clean.images[0], clean.labels, args.batch_size or 128)


def load_scored_model(group: list[str], args: argparse.Namespace, device: str, name: str) -> LoadedModel:
    """The model one record is about: a checkpoint, or the ensemble of ``group``, mapped to CIFAR-10 classes."""
    from libkd_bench.datasets_gen.classes import NUM_CLASSES
    from libkd_bench.models.class_map import match_source_classes
    from libkd_bench.models.cli_args import load_model_from_args
    from libkd_bench.models.ensemble import ensemble_model

    members = [load_model_from_args(checkpoint, args, device=device) for checkpoint in group]
    loaded = ensemble_model(members, args.ensemble_combine) if args.ensemble else members[0]
    return match_source_classes(loaded, NUM_CLASSES, args.class_map, name)


def _remote_forward_passes(
    executor: Executor,
    groups: list[list[str]],
    names: list[str],
    loaded_models: list[LoadedModel],
    args: argparse.Namespace,
    device: str,
    sets: ScoringSets,
    results: Path,
    options: ScoreOptions,
) -> list[frozenset[str]]:
    """Run the call's forward passes and attacks of ``loaded_models`` (one per group, as the driver loaded them)
    on ``executor``; per model, the sets whose pass ran.

    Workers load each model themselves, by :func:`load_scored_model` with these flags and absolute paths (a
    worker's working directory is not the driver's), or, when the executor ships inputs, get the driver's loaded
    model with the code of the user's architecture files.
    """
    from libkd_bench.core.executor import WorkerInput
    from libkd_bench.models.user_architectures import user_code_modules
    from libkd_bench.scoring.remote_passes import RemoteModel, remote_forward_passes

    portable = argparse.Namespace(**vars(args))
    portable.arch_module = [_absolute_arch_module(item) for item in args.arch_module]
    portable.arch_path = [str(Path(item).resolve()) for item in args.arch_path]
    code = user_code_modules()  # what loading the models imported from the user's files
    models = []
    for group, name, loaded in zip(groups, names, loaded_models, strict=True):
        members = [c if c.startswith(ZOO_PREFIX) else str(Path(c).resolve()) for c in group]
        worker_input = WorkerInput(
            load=functools.partial(load_scored_model, members, portable, device, name),
            files=(*_checkpoint_files(group), *code.values()),
            value=functools.partial(_same, loaded),
            code=tuple(code),
        )
        models.append(RemoteModel(loaded, worker_input))
    with executor:  # joined once every model loaded on the driver: bad input fails before Ray starts
        return remote_forward_passes(executor, models, sets, results, options)


def _same(value: LoadedModel) -> LoadedModel:
    """The model as the driver loaded it: what an executor that ships inputs sends."""
    return value


def _checkpoint_files(group: list[str]) -> list[Path]:
    """The files loading ``group`` reads: each checkpoint (a zoo name's local copy) and its sidecar, if any."""
    from libkd_bench.models.sidecar import sidecar_path
    from libkd_bench.models.zoo import fetch

    files = []
    for checkpoint in group:
        path = fetch(checkpoint.removeprefix(ZOO_PREFIX)) if checkpoint.startswith(ZOO_PREFIX) else Path(checkpoint)
        sidecar = sidecar_path(path.resolve())
        files.extend([path.resolve(), *([sidecar] if sidecar is not None else [])])
    return files


def _absolute_arch_module(reference: str) -> str:
    """``FILE.py[:BUILDER]`` with FILE made absolute."""
    head, separator, tail = reference.rpartition(":")
    if separator and head.endswith(".py") and tail.isidentifier():
        return f"{Path(head).expanduser().resolve()}:{tail}"
    return str(Path(reference).expanduser().resolve())

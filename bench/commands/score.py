"""Score checkpoints on the clean split, every derived set and severity, and adversarial attacks.

Each checkpoint gets a run record, RESULTS/runs/<model>@<source id>.json: accuracies, bias ratios, shape bias and
(given --teacher/--baseline) error consistency, McNemar tests, ratio differences and bias transfer (beyond the
recipe with --recipe-control), with 95% paired-bootstrap intervals, and efficiency figures. Logits are cached in
RESULTS/cache/ for `libkd-bench rescore`, Grad-CAM maps on a seeded clean panel beside them. --card CARD.json
(teacher, method, seed, training_data, preprocessing, licence, link, citation, authors, notes) and --card-field
go into the record; --ensemble-combine: mean-logits or mean-probs; --class-map: the output of a network trained
on other classes (e.g. CIFAR-100) for each CIFAR-10 class. A normalisation that looks clearly wrong stops the run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from libkd_bench.commands import seed
from libkd_bench.core.executor import ExecutorChoice, add_executor_arguments
from libkd_bench.records.run_record import DEFAULT_RESULTS, RunRecord

if TYPE_CHECKING:
    from libkd_bench.scoring.session import ScoreRequest

NAME = "score"
HELP = "score checkpoints on the clean split and every derived set"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from libkd_bench.models.loading.cli_args import add_model_arguments

    parser.add_argument("checkpoints", nargs="+", metavar="CKPT", help="checkpoint file or zoo:NAME")
    add = parser.add_argument_group("what is scored and where").add_argument
    add("--sets-dir", type=Path, help="set store (default: $LIBKD_BENCH_SETS or ./sets)")
    add("--sets", help="sets or families to score besides clean, e.g. cifar10g,corruptions (default: all in the store)")
    add("--results", type=Path, default=DEFAULT_RESULTS, help="results directory (default ./results)")
    add("--name", action="append", default=[], help="model name in the record, once per checkpoint (default: stem)")
    add("--ensemble", action="store_true", help="score all CKPTs as one model (e.g. a teacher ensemble): one record")
    add("--ensemble-combine", choices=["mean-logits", "mean-probs"], default="mean-logits", help="ensemble logits")
    add("--class-map", metavar="I0,...,I9", help="for a network of other classes: its output for each CIFAR-10 class")
    add_model_arguments(parser)
    add = parser.add_argument_group("distillation context and model card").add_argument
    add("--teacher", help="teacher run: run id, model name in RESULTS, or record path")
    add("--baseline", help="baseline run (same architecture as the student, trained without KD)")
    add("--recipe-control", metavar="RUN", help="student architecture, teacher's recipe, no KD (needs both above)")
    add("--kd-method", help="free text describing the distillation method, kept in the record")
    add("--seed-of", metavar="NAME", help="this checkpoint is one training seed of model NAME (pooled in one row)")
    add("--card", type=Path, metavar="CARD.json", help="model card (JSON: teacher, method, seed, licence, link...)")
    add("--card-field", action="append", default=[], metavar="KEY=VALUE", help="one card field (repeatable)")
    add = parser.add_argument_group("attacks, intervals and attention maps").add_argument
    add("--adv", default="fgsm,pgd", help="attacks: fgsm,pgd,autoattack or none (default fgsm,pgd)")
    add("--adv-eps", default="1,2,4,8", help="L-inf eps levels in 1/255 units (default 1,2,4,8)")
    add("--adv-n", type=int, default=500, help="size of the attacked clean subset (default 500)")
    add("--adv-seed", type=seed, default=0, help="seed of the subset and the attacks (default 0)")
    add("--bootstrap-resamples", type=int, default=1000, help="bootstrap resamples (>= 1000)")
    add("--bootstrap-seed", type=seed, default=0, help="bootstrap seed (default 0)")
    add("--attention", action=argparse.BooleanOptionalAction, default=True, help="Grad-CAM maps (default on)")
    add("--attention-n", type=int, default=500, help="attention panel size (default 500)")
    add("--attention-seed", type=seed, default=0, help="seed of the attention panel (default 0)")
    add = parser.add_argument_group("how it runs").add_argument
    add("--device", default="auto", help="cpu, cuda or auto (default: cuda when available)")
    add("--batch-size", type=int, help="images per forward pass (default 128 on CPU, 1024 on CUDA)")
    add("--no-amp", action="store_true", help="run CUDA forward passes in float32")
    add("--recompute", action="store_true", help="run forward passes even when logits are cached")
    add("--skip-preprocess-check", action="store_true", help="score even when another preset looks clearly better")
    add("--no-progress", action="store_true", help="hide progress (bars on a terminal, lines in logs)")
    add("--json", action="store_true", help="print the run records as JSON instead of the table")
    add_executor_arguments(parser.add_argument_group("executor"))


def score_request(args: argparse.Namespace) -> ScoreRequest:
    """The typed request the flags say; every flag is validated here, before anything is loaded."""
    from libkd_bench.core.locations import default_sets_dir
    from libkd_bench.metrics.bootstrap import BootstrapConfig
    from libkd_bench.models.loading.cli_args import load_options_from_args
    from libkd_bench.records.model_card import given_card
    from libkd_bench.scoring.adversarial_settings import AdversarialConfig, parse_attacks, parse_eps
    from libkd_bench.scoring.attention import AttentionConfig
    from libkd_bench.scoring.session import KdReferences, ScoreRequest, checkpoint_models
    from libkd_bench.scoring.sets import parse_set_list

    loading = load_options_from_args(args)
    return ScoreRequest(
        card=given_card(args.card, args.card_field),  # before anything is loaded: a bad card fails at once
        models=checkpoint_models(
            args.checkpoints, args.name, loading, args.ensemble, args.ensemble_combine, args.class_map
        ),
        sets_dir=args.sets_dir or default_sets_dir(),
        results=args.results,
        set_names=parse_set_list(args.sets),
        device=args.device,
        batch_size=args.batch_size,
        amp=not args.no_amp,
        adversarial=AdversarialConfig(parse_attacks(args.adv), parse_eps(args.adv_eps), args.adv_n, args.adv_seed),
        bootstrap=BootstrapConfig(args.bootstrap_resamples, args.bootstrap_seed),
        attention=AttentionConfig(args.attention_n, args.attention_seed) if args.attention else None,
        recompute=args.recompute,
        progress=not args.no_progress,
        kd=KdReferences(args.teacher, args.baseline, args.recipe_control, args.kd_method, args.seed_of),
        preprocess_check=not args.skip_preprocess_check,
        executor=ExecutorChoice(args.executor, None, args.ray_address, args.ray_data),
    )


def run(args: argparse.Namespace) -> int:
    from libkd_bench.reports.summary_table import format_run_summary
    from libkd_bench.scoring.session import score

    def show(record: RunRecord, path: Path) -> None:
        if not args.json:
            print(f"{format_run_summary(record)}record: {os.path.relpath(path)}\n")

    records = score(score_request(args), on_note=lambda text: print(f"note: {text}", file=sys.stderr), on_record=show)
    if args.json:
        print(json.dumps([record.to_json() for record in records], indent=2, sort_keys=True, allow_nan=False))
    return 0

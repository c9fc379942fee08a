"""Build the leaderboard from every run record: a tidy long CSV, a wide Markdown table per clean split, plots.

Reads RESULTS/runs/*.json (temporary files of a write in progress are never read; a malformed record is named
on stderr and skipped) and writes into --out, each file atomically: leaderboard.csv (one row per model, source,
set, severity and metric; fractions, not percentages), leaderboard.md (the reference study's layout, one table
per source, intervals, teacher/baseline/KD method, non-significant differences marked) and PNG plots per
source (bias profile, shape bias vs clean accuracy, accuracy vs severity), and per student an attention panel
(attention_<model>_<source>.png: its teacher's, own and baseline's Grad-CAM maps, read from the cache; a panel
already in --out is kept when the maps are no longer cached, as for committed records), and a static site:
index.html with the tables (sortable, hideable columns, intervals, the chance-corrected view), one
model_<run id>.html per model (card, profile, attention panel, long-CSV rows) and model-cards.csv (see
libkd_bench.reports.html_site); the folder opens from disk and can be published as it is. The Markdown is also
printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from libkd_bench.commands import load_records
from libkd_bench.records.run_record import DEFAULT_RESULTS

NAME = "leaderboard"
HELP = "write the leaderboard (long CSV, wide Markdown, plots, static HTML site) from the run records"
CSV_NAME = "leaderboard.csv"
MARKDOWN_NAME = "leaderboard.md"
PLOT_PREFIXES = ("bias-profile_", "shape-bias-vs-accuracy_", "accuracy-vs-severity_", "attention_")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="results directory (default ./results)")
    parser.add_argument("--out", type=Path, help="output directory (default RESULTS/leaderboard)")


def run(args: argparse.Namespace) -> int:
    from libkd_bench.core.atomic_io import ensure_writable_dir, write_bytes_atomic, write_text_atomic
    from libkd_bench.reports.attention_panels import attention_panels, kept_panels
    from libkd_bench.reports.html_site import CARDS_NAME, INDEX_NAME, leaderboard_site, model_cards_csv
    from libkd_bench.reports.leaderboard import format_long_csv, long_frame
    from libkd_bench.reports.markdown import leaderboard_markdown
    from libkd_bench.reports.plots import leaderboard_plots, png_bytes
    from libkd_bench.scoring.seed_pooling import pooled_seed_records

    records = load_records(args.results)
    records += pooled_seed_records(records, args.results)  # one row per model scored with several seeds
    out = ensure_writable_dir(args.out or args.results / "leaderboard")
    frame = long_frame(records)
    csv_text = format_long_csv(frame)
    plots = leaderboard_plots(records) + attention_panels(records, args.results)
    drawn = {plot.name for plot in plots}
    kept = kept_panels(records, {path.name for path in out.glob("*.png")}, drawn)
    images: dict[str, list[tuple[str, str]]] = {}
    for source_id, title, name in [*((plot.source, plot.title, plot.name) for plot in plots), *kept]:
        images.setdefault(source_id, []).append((title, name))
    markdown = leaderboard_markdown(records, images)
    site = leaderboard_site(records, frame, images)
    for plot in plots:
        write_bytes_atomic(out / plot.name, png_bytes(plot.figure))
    write_text_atomic(out / CSV_NAME, csv_text)
    write_text_atomic(out / MARKDOWN_NAME, markdown)
    write_text_atomic(out / CARDS_NAME, model_cards_csv(records))
    for name, text in site.items():
        write_text_atomic(out / name, text)
    _remove_stale_plots(out, drawn | {name for _, _, name in kept})
    _remove_stale_pages(out, set(site))
    print(markdown, end="")
    print(
        f"libkd-bench: wrote {CSV_NAME}, {MARKDOWN_NAME}, {len(plots)} plot(s) and the site ({INDEX_NAME}, "
        f"{len(site) - 1} model page(s), {CARDS_NAME}) to {out}",
        file=sys.stderr,
    )
    return 0


def _remove_stale_pages(out: Path, keep: set[str]) -> None:
    """Delete model pages of an earlier leaderboard whose model has no record any more."""
    from libkd_bench.reports.html_site import is_site_page

    for path in out.glob("*.html"):
        if is_site_page(path.name) and path.name not in keep:
            path.unlink(missing_ok=True)


def _remove_stale_plots(out: Path, keep: set[str]) -> None:
    """Delete plots of an earlier leaderboard whose source has no records any more, so the folder is one set."""
    for path in out.glob("*.png"):
        if path.name.startswith(PLOT_PREFIXES) and path.name not in keep:
            path.unlink(missing_ok=True)

"""``sharehub``: a thin command-line shell over the library.

Every command parses its options, builds ``Settings``, calls one library function and
shows the result for a person. Domain errors become a red message on stderr and exit 1.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import click

from sharehub.cli_common import console, domain_errors, warehouse_option
from sharehub.settings import Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def main(verbose: int) -> None:
    """sharehub: collect once, share many times.

    Pulls the departments' deliveries, links residents into a master person index and
    publishes validated shared tables. Run `sharehub COMMAND --help` for each command.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(level=max(level, logging.DEBUG), format="%(levelname)s %(name)s: %(message)s")
    if verbose < 2:
        # Splink warns about every untrainable level during EM; our own training logs one
        # summary line for those, so keep Splink's detail for -vv.
        logging.getLogger("splink").setLevel(logging.ERROR)


@main.command()
@click.option("--persons", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), required=True)
@click.option("--day", type=click.IntRange(1, 2), default=1, show_default=True,
              help="1 writes the first deliveries; 2 adds the next day's.")
@domain_errors
def generate(persons: int, seed: int, out: Path, day: int) -> None:
    """Write a synthetic district's deliveries, exactly as the departments deliver them.

    Writes OUT/landing/<feed>/<batch_id>/ with manifests, OUT/health.db (the health
    front-end table) and OUT/truth.csv (the true person behind every record).

    Example: sharehub generate --persons 10000 --seed 42 --out data
    """
    from sharehub.generate import generate as run_generate

    with console.status(f"generating {persons:,} persons (day {day})…"):
        summary = run_generate(out, persons=persons, seed=seed, day=day)
    console.print(summary.describe() if hasattr(summary, "describe") else summary)


@main.command()
@click.option("--landing", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Landing root (default: $SHAREHUB_LANDING, else ./data/landing).")
@click.option("--health-url", default=None,
              help="Health front-end database URL (default: $SHAREHUB_HEALTH_URL, "
                   "else sqlite:///<landing>/../health.db).")
@warehouse_option
@click.option("--model", "model_path", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Trained model JSON (default: $SHAREHUB_MODEL_PATH, else ./data/model.json); trained and saved there if absent.")
@click.option("--full-relink", "--relink", "full_relink", is_flag=True,
              help="Re-standardise and re-link every record from scratch (not only what "
                   "changed), even if nothing new arrived; --relink is the old name.")
@domain_errors
def run(landing: Path | None, health_url: str | None, warehouse: Path | None,
        model_path: Path | None, full_relink: bool) -> None:
    """Pull every pending delivery, link residents and publish the shared tables.

    Linkage is incremental when a trained model and a previous linkage exist: only
    records new or changed since then are scored and only their clusters re-formed.

    Example: sharehub run --landing data/landing --health-url sqlite:///data/health.db
    """
    from sharehub import pipeline
    from sharehub.cli_views import print_run_summary
    from sharehub.warehouse import connect

    settings = Settings.from_env(landing=landing, health_url=health_url,
                                 warehouse=warehouse, model_path=model_path)
    status = console.status("starting…")

    def callback(event: str, text: str) -> None:
        if event == "start":
            status.update(f"[bold]{text}[/]…")
        else:
            console.print(f"[green]✓[/] {text}")

    con = connect(settings)
    try:
        with status:
            summary = pipeline.run(con, settings, full_relink=full_relink, callback=callback)
    finally:
        con.close()
    print_run_summary(console, summary, settings)


@main.command()
@click.argument("table")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="Output file; .csv or .parquet by suffix.")
@warehouse_option
@domain_errors
def export(table: str, out: Path, warehouse: Path | None) -> None:
    """Export a schema-qualified warehouse table to CSV or Parquet.

    Example: sharehub export shared.person_xref --out person_xref.parquet
    """
    from sharehub.export import export_table
    from sharehub.warehouse import connect

    settings = Settings.from_env(warehouse=warehouse)
    con = connect(settings, read_only=True)
    try:
        rows = export_table(con, table, out)
    finally:
        con.close()
    console.print(f"wrote {rows:,} rows of {table} to {out}")


@main.command()
@click.option("--truth", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              required=True,
              help="CSV with feed,source_key,true_person_id (and twin_of, damage if known).")
@click.option("--baselines", is_flag=True,
              help="Also score the exact-ID join and plain Splink on the same records.")
@warehouse_option
@domain_errors
def evaluate(truth: Path, baselines: bool, warehouse: Path | None) -> None:
    """Score shared.person_xref against a truth file: pairwise precision, recall, F1.

    With a generator truth file it also counts twin pairs merged and groups wrong and
    missed links by the damage done to their records. --baselines scores the exact-ID
    join and a plain Splink model on the same records (in memory; the warehouse is only
    read). See docs/accuracy.md.

    Example: sharehub evaluate --truth data/truth.csv --baselines
    """
    from sharehub.cli_views import print_evaluation
    from sharehub.evaluation import evaluate_published, evaluate_with_baselines
    from sharehub.warehouse import connect

    settings = Settings.from_env(warehouse=warehouse)
    con = connect(settings, read_only=True)
    try:
        if baselines:
            comparison = evaluate_with_baselines(con, truth, seed=settings.seed,
                                                 threshold=settings.match_threshold)
            reports = comparison.reports
        else:
            reports = {"sharehub": evaluate_published(con, truth)}
    finally:
        con.close()
    print_evaluation(console, reports)


@main.command()
@click.option("--feed", default=None, help="Only this feed.")
@warehouse_option
@domain_errors
def batches(feed: str | None, warehouse: Path | None) -> None:
    """Show the batch ledger: every delivery, its row counts, its status and why.

    One table per feed, titled with the feed's freshness against its contract's latency
    SLA; `in=s+q` checks rows in = staged + quarantined; rejected batches are listed with
    their reason under the table. See docs/ingest.md.

    Example: sharehub batches --feed ps_population
    """
    from datetime import datetime

    from sharehub.cli_views import known_feed, print_ledger
    from sharehub.feeds.manifest import CHINA
    from sharehub.warehouse import connect, require_table

    known_feed(feed)
    con = connect(Settings.from_env(warehouse=warehouse), read_only=True)
    try:
        require_table(con, "raw.batches")
        balanced = print_ledger(console, con, feed, datetime.now(CHINA))
    finally:
        con.close()
    if not balanced:
        sys.exit(1)  # invariant 1 broken: a script or a scheduler must see it


@main.command()
@click.option("--feed", default=None, help="Only this feed.")
@click.option("--batch", default=None, help="Only this batch id.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True,
              help="Show at most this many rows in detail (the summary counts all).")
@click.option("--row", "show_row", is_flag=True, help="Also show each row as delivered.")
@warehouse_option
@domain_errors
def quarantine(feed: str | None, batch: str | None, limit: int, show_row: bool,
               warehouse: Path | None) -> None:
    """Show quarantined rows: feed, batch, row, column, check, offending value and reason.

    A summary by column and check, then each failing row with every failure it has.
    Row numbers count data rows as a person reading the file does (first row under the
    header = 1). See docs/ingest.md.

    Example: sharehub quarantine --feed ca_recipients --batch 20261101-001
    """
    from sharehub.cli_views import known_feed, print_quarantine
    from sharehub.warehouse import connect, require_table

    known_feed(feed)
    con = connect(Settings.from_env(warehouse=warehouse), read_only=True)
    try:
        require_table(con, "quarantine.rows")
        print_quarantine(console, con, feed, batch, limit, show_row)
    finally:
        con.close()



from sharehub.cli_review import review  # noqa: E402 - a command group of its own module

main.add_command(review)

from sharehub.cli_report import report  # noqa: E402 - the auditors' report, its own module

main.add_command(report)

if __name__ == "__main__":  # pragma: no cover
    main()

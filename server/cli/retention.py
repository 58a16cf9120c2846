"""``flask retention run [--dry-run]``: de-identify the closed cases whose retention period has run
out (models/retention.py), with a progress bar and the counts. The scheduler runs the same daily."""

import click
from flask import current_app
from flask.cli import AppGroup

from models import utcnow
from models.retention import count_due, run

retention = AppGroup("retention", help="De-identify closed cases after HOMECOMING_RETENTION_DAYS.")


@retention.command("run")
@click.option("--dry-run", is_flag=True, help="Only say which cases are due; change nothing.")
@click.option("--as-of", "as_of", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Count the retention period up to this date (YYYY-MM-DD) instead of today.")
def run_command(dry_run, as_of):
    """Erase names, places, contacts, notes, history and sync values of cases closed longer than the
    retention period, in batches that each commit: a run cut short is resumed by running it again."""
    today = as_of.date() if as_of else utcnow().date()
    days = current_app.config["RETENTION_DAYS"]
    batch_size = current_app.config["RETENTION_BATCH_SIZE"]
    if dry_run:
        result = run(today, days, dry_run=True)
        for code in result.case_codes:
            click.echo(f"due case {code}")
        click.echo(f"Dry run as of {today} (closed {days} days or more): {result.due} cases due; nothing changed.")
        return
    due = count_due(today, days)
    with click.progressbar(length=due, label="De-identifying", show_pos=True) as bar:
        result = run(today, days, batch_size=batch_size, progress=bar.update)
    counts = result.counts
    click.echo(f"Retention as of {today} (closed {days} days or more): {counts.children} cases de-identified, "
               f"{counts.records} records, {counts.history} history rows, {counts.conflicts} conflicts, "
               f"{counts.mutations} logged mutations erased; {counts.scope_removals} removed from devices; "
               f"{result.late_mutations} later pushes about de-identified cases erased.")

"""Terminal output shared by the commands: tables of fronts, error messages, progress bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # never break a path or key across lines


def fail(message: str, hint: str | None = None) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}")
    if hint:
        err_console.print(f"[dim]hint:[/] {hint}")
    raise typer.Exit(1)


def fail_definition(exc: Exception) -> NoReturn:
    """A search space definition that does not parse: every problem on its own line, JSON path first."""
    errors = getattr(exc, "errors", None) or [("$", str(exc))]
    source = getattr(exc, "source", None)
    err_console.print(f"[bold red]error:[/] {source + ': ' if source else ''}invalid search space definition "
                      f"({len(errors)} problem{'s' if len(errors) != 1 else ''})")
    for path, message in errors:
        err_console.print(f"  {path}: {message}", markup=False, highlight=False)
    err_console.print("[dim]hint:[/] fix each field named above (docs/search-spaces.md describes the format)")
    raise typer.Exit(1)


def progress_bar() -> Progress:
    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console)


def front_table(rows: Sequence[Mapping[str, Any]], keys: Sequence[str], title: str,
                maximize: Sequence[bool] | None = None) -> Table:
    """One row per architecture, sorted by the first objective (best first when ``maximize`` is given).

    Rows carrying ``id`` / ``seq`` (a server's trials) show them: ``hwnas export JOB TRIAL`` takes the id.
    """
    if keys and maximize is not None:
        rows = sorted(rows, key=lambda r: (r["metrics"].get(keys[0]) is None,
                                           -(r["metrics"].get(keys[0]) or 0) if maximize[0]
                                           else (r["metrics"].get(keys[0]) or 0)))
    ids = any("id" in r for r in rows)
    table = Table(title=title, show_lines=False)
    table.add_column("#", justify="right")
    if ids:
        table.add_column("trial id", justify="right")
        table.add_column("seq", justify="right")
    for key in keys:
        table.add_column(key, justify="right")
    table.add_column("architecture", overflow="fold")
    for i, row in enumerate(rows, start=1):
        extra = [str(row.get("id", "-")), str(row.get("seq", "-"))] if ids else []
        table.add_row(str(i), *extra, *(_fmt(row["metrics"].get(k)) for k in keys), row["arch"])
    return table


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

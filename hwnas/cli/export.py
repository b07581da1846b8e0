"""``hwnas export``: a job's trial from a server, or any architecture locally, as torch / onnx / json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from hwnas.cli.remote import DEFAULT_URL, ApiKey, Url, connect
from hwnas.cli.render import console, fail
from search_spaces import DEFAULT_SPACE

FORMAT_CHOICES = ("torch", "onnx", "json")


def print_export(out: Path, files: list[str], manifest: dict[str, Any]) -> None:
    """What an export wrote and what it predicts, the same for both modes."""
    console.print(f"wrote {out}: {', '.join(files)}", soft_wrap=True)
    console.print(f"{manifest['space']} {manifest['canonical_hash']} (seed {manifest['seed']}): {manifest['arch']}",
                  soft_wrap=True, highlight=False)
    onnx = manifest.get("onnx")
    if onnx:
        console.print(f"onnxruntime {onnx['onnxruntime']} vs torch: max abs diff {onnx['max_abs_diff']:.3g} "
                      f"(tolerance {onnx['tolerance']:g}, batches {onnx['checked_batches']})")
    weights = manifest.get("weights")
    if weights is not None:
        console.print("weights: trained" if weights["trained"] else f"weights: {weights['note']}", soft_wrap=True)
    table = Table("device", "kind", "runtime", "batch", "predicted ms", title=f"predicted latency "
                  f"({manifest['latency']['tables']})")
    for d in manifest["latency"]["devices"]:
        value = d["predicted_latency_ms"]
        table.add_row(d["name"] + (" *" if d["used_by_job"] else ""), str(d["device"].get("kind", "")),
                      str(d["device"].get("runtime", "")), str(d["device"].get("batch_size", "")),
                      f"{value:.3f}" if value is not None else f"- ({d.get('error', '')})")
    console.print(table)


def export(job: Annotated[str | None, typer.Argument(help="Job id (with TRIAL: export from a server)")] = None,
           trial: Annotated[int | None, typer.Argument(help="Trial id within the job")] = None,
           fmt: Annotated[str, typer.Option("--format", help="torch, onnx or json")] = "torch",
           out: Annotated[Path, typer.Option("--out", help="Directory to write the export into")] = Path("export"),
           url: Url = DEFAULT_URL, api_key: ApiKey = None,
           space: Annotated[str | None, typer.Option("--space", help="Search space name or hwnas.space/1 "
                                                                     "definition file (local mode)")] = None,
           arch: Annotated[str | None, typer.Option("--arch", help="Architecture string (local mode)")] = None,
           seed: Annotated[int, typer.Option("--seed", help="Initialisation seed (local mode)")] = 0,
           weights: Annotated[Path | None, typer.Option("--weights", help="A state_dict file to ship with it "
                                                                          "(local mode)")] = None,
           latency_table: Annotated[list[Path] | None, typer.Option(
               "--latency-table", help="A latency table file to predict with (local mode; repeatable; "
                                       "default: the tables shipped for the space)")] = None) -> None:
    """Export an architecture: `hwnas export JOB TRIAL --url …` or `hwnas export --space S --arch ARCH`."""
    if fmt not in FORMAT_CHOICES:
        fail(f"--format must be one of {', '.join(FORMAT_CHOICES)}, got {fmt!r}")
    remote = job is not None or trial is not None
    local = space is not None or arch is not None
    if remote == local:
        fail("give either JOB TRIAL (export from a server) or --space and --arch (local)",
             "hwnas export JOB TRIAL --format onnx --out DIR --url URL  |  "
             f"hwnas export --space {DEFAULT_SPACE} --arch ARCH --format torch --out DIR")
    if remote:
        if job is None or trial is None:
            fail("a server export needs both JOB and TRIAL (the trial id from `hwnas pareto --json`)")
        with connect(url, api_key) as client:
            result = client.export(job, trial, fmt, out)
        print_export(out, [p.name for p in result.files], result.manifest)
        return
    if space is None or arch is None:
        fail("a local export needs both --space and --arch")
    _local(space, arch, fmt, out, seed, weights, latency_table or [])


def _local(space_ref: str, arch: str, fmt: str, out: Path, seed: int, weights: Path | None,
           table_files: list[Path]) -> None:
    from latency_tables import TableError, load_table, shipped_tables
    from nas.export import ExportError, export_architecture
    from search_spaces import SpaceDefinitionError, resolve_space

    try:
        space = resolve_space(space_ref)
    except KeyError as exc:
        fail(str(exc.args[0]), "or give the path of a hwnas.space/1 definition file")
    except SpaceDefinitionError as exc:
        fail(f"{exc.source or space_ref}: invalid search space definition\n"
             + "\n".join(f"  {path}: {message}" for path, message in exc.errors))
    tables = []
    for path in table_files:
        try:
            tables.append(load_table(path))
        except (OSError, TableError) as exc:
            fail(f"--latency-table {path}: {exc}")

    state = None
    if weights is not None:
        import pickle

        import torch

        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, pickle.UnpicklingError) as exc:
            fail(f"--weights {weights}: cannot read a state_dict ({str(exc).splitlines()[0]})")
        if not isinstance(state, dict):
            fail(f"--weights {weights}: expected a state_dict (a dict of tensors), got {type(state).__name__}")
    try:
        result = export_architecture(space, arch, fmt, out, tables=tables or shipped_tables(space.name),
                                     tables_source=", ".join(map(str, table_files)) if tables
                                     else "tables shipped with hwnas", seed=seed, weights=state)
    except ExportError as exc:
        fail(str(exc))
    print_export(out, result.files, result.manifest)

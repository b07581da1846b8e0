"""``hwnas tables``: build, apply and inspect per-device latency tables (files, no server)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hwnas.cli.render import console, fail, progress_bar
from latency_tables import LatencyEstimator, LatencyTable, TableError, load_table, shipped_tables
from latency_tables.measurements import MeasurementError, read_archs, read_measurements
from latency_tables.profile import NETWORK_ROUNDS
from latency_tables.table import TABLE_METRICS, save_table
from search_spaces import SPACES, SearchSpace, SpaceDefinitionError, resolve_space

app = typer.Typer(help="Per-device latency tables: profile, fit, predict, validate, list, show.",
                  no_args_is_help=True)

SpaceOpt = Annotated[str, typer.Option("--space", help=f"Search space: {', '.join(sorted(SPACES))}, or a "
                                                        "hwnas.space/1 definition file (.json/.yaml)")]
TableSpaceOpt = Annotated[str | None, typer.Option("--space", help="The table's space as a name or definition "
                                                                   "file (default: the space the table names)")]
TableOpt = Annotated[Path, typer.Option("--table", help="Latency table JSON file, or a shipped device name")]
MetricOpt = Annotated[str, typer.Option("--metric", help=f"What the table predicts: {', '.join(TABLE_METRICS)}")]


def _metric(name: str) -> str:
    if name not in TABLE_METRICS:
        fail(f"unknown --metric {name!r}", f"valid: {', '.join(TABLE_METRICS)}")
    return name


def _space(name: str) -> SearchSpace:
    """A registered space or a definition file; every definition error printed with its JSON path."""
    try:
        return resolve_space(name)
    except KeyError as exc:
        fail(str(exc.args[0]), "or give the path of a hwnas.space/1 definition file")
    except SpaceDefinitionError as exc:
        fail(f"{exc.source or name}: invalid search space definition\n"
             + "\n".join(f"  {path}: {message}" for path, message in exc.errors),
             "fix each field named above (docs/search-spaces.md has the format)")


def _table(ref: Path) -> LatencyTable:
    """A table file, or 'device' / 'space:device' naming a shipped table."""
    if ref.is_file():
        try:
            return load_table(ref)
        except TableError as exc:
            fail(f"{ref}: {exc}")
    space, _, device = str(ref).rpartition(":")
    matches = [t for t in shipped_tables(space or None) if t.device_name == device]
    if len(matches) == 1:
        return matches[0]
    if matches:
        fail(f"{ref}: shipped for several spaces", f"name one: {', '.join(f'{t.space}:{device}' for t in matches)}")
    fail(f"{ref}: no such file or shipped device", "see `hwnas tables list`")


def _estimator(table: LatencyTable, metric: str = "latency_ms",
               space_ref: str | SearchSpace | None = None) -> tuple[SearchSpace, LatencyEstimator]:
    if isinstance(space_ref, SearchSpace):
        space = space_ref
    else:
        space = _space(space_ref or table.space)
    if space.name != table.space:
        fail(f"table {table.device_name!r} is for space {table.space!r}, not {space.name!r}")
    try:
        return space, LatencyEstimator(table, space, metric)
    except (TableError, ValueError) as exc:
        fail(f"table {table.device_name!r}: {exc}")


def _report_table(title: str, report: dict[str, float]) -> Table:
    table = Table(title=title)
    for key in ("n", "within_5pct", "within_10pct", "mape", "kendall_tau", "spearman"):
        if key in report:
            table.add_column(key, justify="right")
    table.add_row(*(_fmt(key, report[key]) for key in
                    ("n", "within_5pct", "within_10pct", "mape", "kendall_tau", "spearman") if key in report))
    return table


def _fmt(key: str, value: object) -> str:
    if key in ("within_5pct", "within_10pct", "mape") and isinstance(value, float):
        return f"{value:.1%}"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@app.command()
def profile(space: SpaceOpt,
            out: Annotated[Path, typer.Option("--out", help="Where to write the table JSON")],
            threads: Annotated[int, typer.Option("--threads", help="torch intra-op threads (pinned)")] = 1,
            batch: Annotated[int, typer.Option("--batch", help="Batch size")] = 1,
            torch_device: Annotated[str, typer.Option("--torch-device", help="cpu or cuda")] = "cpu",
            runtime: Annotated[str, typer.Option("--runtime", help="What times the ops and networks: torch "
                                                                    "(eager) or onnxruntime (ONNX graphs, CPU)")] = "torch",
            name: Annotated[str | None, typer.Option("--name", help="Device name (default: this host)")] = None,
            validate_archs: Annotated[int, typer.Option("--validate-archs",
                                                        help="Whole networks measured end to end")] = 100,
            calibrate_archs: Annotated[int, typer.Option("--calibrate-archs",
                                                         help="Other networks used to calibrate op-type scales")] = 30,
            network_rounds: Annotated[int, typer.Option("--network-rounds",
                                                        help="Interleaved rounds timing each whole network "
                                                             "(more: a lower noise floor, longer)")] = NETWORK_ROUNDS,
            seed: Annotated[int, typer.Option("--seed", help="Seed of the validation sample")] = 0) -> None:
    """Time every op signature of SPACE on this machine with torch, then validate end to end."""
    from latency_tables.profile import ProfileError, profile_space

    if torch_device not in ("cpu", "cuda"):
        fail(f"--torch-device must be cpu or cuda, got {torch_device!r}")
    if threads < 1 or batch < 1 or network_rounds < 1 or validate_archs < 0 or calibrate_archs < 0:
        fail("--threads, --batch and --network-rounds must be >= 1, --validate-archs and --calibrate-archs >= 0")
    s = _space(space)
    with progress_bar() as bar:
        task = bar.add_task("profiling", total=None, status="")

        def on_progress(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total, status="")

        try:
            table = profile_space(s, threads=threads, batch=batch, torch_device=torch_device, device_name=name,
                                  validate_archs=validate_archs, calibrate_archs=calibrate_archs, seed=seed,
                                  network_rounds=network_rounds, progress=on_progress, runtime=runtime)
        except ProfileError as exc:
            fail(str(exc))
    save_table(table, out)
    console.print(f"wrote {out}: {len(table.entries)} entries for {table.device_name!r} ({s.name}), "
                  f"built in {table.provenance['build_seconds']:.1f} s")
    if table.validation:
        console.print(_report_table(f"end to end, {table.validation['n']} held-out networks", table.validation))
        floor = table.validation.get("noise_floor")
        if floor:
            console.print(f"noise floor (2nd measurement predicting the 1st): within 10% "
                          f"{floor['within_10pct']:.1%}, tau {floor['kendall_tau']:.3f}; "
                          f"FLOPs tau {table.validation['flops_kendall_tau']:.3f}, "
                          f"params tau {table.validation['params_kendall_tau']:.3f}")


@app.command()
def fit(space: SpaceOpt,
        device: Annotated[str, typer.Option("--device", help="Name of the device the rows were measured on")],
        measurements: Annotated[Path, typer.Option("--measurements", help="CSV with arch,latency_ms rows")],
        out: Annotated[Path, typer.Option("--out", help="Where to write the table JSON")],
        metric: MetricOpt = "latency_ms") -> None:
    """Fit a whole-space table from a few measured architectures (10 rows work; more help).

    With --metric energy_mj the CSV has arch,energy_mj rows and the fitted energies go into
    the device's latency table: --out if it exists, else the shipped table of --device.
    """
    from latency_tables.fit import fit_table, with_energy

    s = _space(space)
    metric = _metric(metric)
    target: LatencyTable | None = None
    if metric != "latency_ms":
        target = _table(out) if out.is_file() else _table(Path(f"{s.name}:{device}"))
        if (target.space, target.device_name) != (s.name, device):
            fail(f"{out} is the table of {target.device_name!r} ({target.space}), not {device!r} ({s.name})")
    try:
        m = read_measurements(measurements, s, column=metric)
    except MeasurementError as exc:
        fail(str(exc))
    basis = shipped_tables(s.name)
    with progress_bar() as bar:
        task = bar.add_task("fitting", total=None, status=f"{len(m.archs)} rows, {len(basis)} basis tables")
        table = fit_table(s, m.archs, m.latencies, device={"name": device, "measured": str(measurements)},
                          source=str(measurements), basis=basis, metric=metric)
        bar.update(task, total=1, completed=1)
    if target is not None:
        table = with_energy(target, table)
        weights = table.provenance[metric]["basis_weights"]
        save_table(table, out)
        console.print(f"wrote {out}: {metric} for {len(table.entries)} entries of {device!r} ({s.name}) "
                      f"from {len(m.archs)} rows; basis: "
                      f"{', '.join(f'{k} {v:.2f}' for k, v in weights.items()) or 'none'}; cross-validated "
                      f"relative error {table.provenance[metric]['cv_relative_error'] or 0:.1%}")
        return
    save_table(table, out)
    weights = table.provenance["basis_weights"]
    mix = ", ".join(f"{k} {v:.2f}" for k, v in sorted(weights.items(), key=lambda kv: -kv[1])) or "none"
    p = table.provenance
    model = p["model"] + (f" (strength {p['ridge_strength']:g})" if p["ridge_strength"] else "")
    console.print(f"wrote {out}: {len(table.entries)} entries for {device!r} ({s.name}) from {len(m.archs)} rows")
    cv = "n/a (too few rows)" if p["cv_relative_error"] is None else f"{p['cv_relative_error']:.1%}"
    console.print(f"basis: {mix}; model: {model}; cross-validated relative error {cv}")
    console.print(_band_line(table))


def _band_line(table: LatencyTable) -> str:
    """One line on the table's error band (quantiles of measured / predicted)."""
    q = table.residual_ratio_quantiles
    if q is None:
        return "error band: none (too few rows to cross-validate)"
    source = "held-out rows" if table.validation.get("held_out") else "cross-validated"
    return (f"error band (measured / predicted, {source}): median {q[0.5]:.2f}x, 90% within "
            f"{q[0.05]:.2f}-{q[0.95]:.2f}x; 95% upper bound = prediction x {q[0.95]:.2f}")


@app.command()
def predict(table: TableOpt,
            archs: Annotated[Path, typer.Option("--archs", help="CSV with an arch column")],
            out: Annotated[Path, typer.Option("--out", help="Where to write arch,latency_ms")],
            metric: MetricOpt = "latency_ms", space_ref: TableSpaceOpt = None) -> None:
    """Predict the latency (or energy, with --metric energy_mj) of every architecture in a CSV."""
    t = _table(table)
    space, estimator = _estimator(t, _metric(metric), space_ref)
    try:
        names = read_archs(archs, space)
    except MeasurementError as exc:
        fail(str(exc))
    values = estimator.predict(names)
    with open(out, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["arch", metric])
        writer.writerows((a, f"{v:.6g}") for a, v in zip(names, values))
    console.print(f"wrote {out}: {len(names)} predictions for {t.device_name!r} ({space.name}), "
                  f"{values.min():.3f}-{values.max():.3f} {metric.rpartition('_')[2]}")


@app.command()
def validate(table: TableOpt,
             measurements: Annotated[Path, typer.Option("--measurements", help="CSV with arch,latency_ms rows")],
             metric: MetricOpt = "latency_ms", space_ref: TableSpaceOpt = None) -> None:
    """Compare a table's predictions with measured latencies (or energies, --metric energy_mj)."""
    from latency_tables.fit import validation_report

    t = _table(table)
    metric = _metric(metric)
    space, estimator = _estimator(t, metric, space_ref)
    try:
        m = read_measurements(measurements, space, column=metric)
    except MeasurementError as exc:
        fail(str(exc))
    if len(m.archs) < 2:
        fail("need at least 2 measured architectures to rank")
    report = validation_report(estimator.predict(m.archs), m.latencies)
    console.print(_report_table(f"{t.device_name} ({space.name}) vs {measurements.name}", report))


@app.command("list")
def list_tables(space: Annotated[str | None, typer.Option("--space", help="Only this space")] = None) -> None:
    """The shipped tables and how well each was validated."""
    table = Table("space", "device", "kind", "runtime", "batch", "entries", "n", "±10%", "tau", "spearman")
    for t in shipped_tables(space):
        v = t.validation
        table.add_row(t.space, t.device_name, str(t.device.get("kind", "")), str(t.device.get("runtime", "")),
                      str(t.device.get("batch_size", "")), str(len(t.entries)), str(v.get("n", "-")),
                      _fmt("within_10pct", v.get("within_10pct", "-")), _fmt("", v.get("kendall_tau", "-")),
                      _fmt("", v.get("spearman", "-")))
    console.print(table)


@app.command()
def show(table: Annotated[Path, typer.Argument(help="Table JSON file, device name, or space:device")],
         entries: Annotated[bool, typer.Option("--entries", help="Also print every entry")] = False) -> None:
    """A table's device metadata, provenance and validation block."""
    t = _table(table)
    console.print(f"[bold]{t.device_name}[/] ({t.space}), {len(t.entries)} entries")
    console.print_json(json.dumps({"device": t.device, "provenance": t.provenance}))
    if t.validation:
        console.print(_report_table("validation", t.validation))
        console.print(_band_line(t))
    if entries:
        listing = Table("signature", "mean ms", "std ms", "count")
        for key, e in sorted(t.entries.items()):
            listing.add_row(key, f"{e.mean:.4f}", f"{e.std:.4f}", str(e.count))
        console.print(listing)


@app.command("measure-export")
def measure_export(directory: Annotated[Path, typer.Argument(help="An export directory (with manifest.json)")],
                   threads: Annotated[int, typer.Option("--threads", help="Intra-op threads (pinned)")] = 1,
                   rounds: Annotated[int, typer.Option("--rounds", help="Timing rounds")] = 20,
                   table: Annotated[Path | None, typer.Option("--table", help="Also predict with this table "
                                                                              "(file or shipped device)")] = None) -> None:
    """Time an exported model end to end on this machine, next to the tables' predictions."""
    from nas.export import ExportError, read_manifest
    from nas.export.measure import measure_export as measure

    if threads < 1 or rounds < 1:
        fail("--threads and --rounds must be >= 1")
    try:
        manifest = read_manifest(directory)
        if table is not None and not table.is_file() and ":" not in str(table):
            table = Path(f"{manifest['space']}:{table}")  # a bare device name means: of the export's space
        extra = _table(table) if table is not None else None
        m = measure(directory, threads=threads, rounds=rounds)
    except ExportError as exc:
        fail(str(exc))
    console.print(f"{manifest['space']} {manifest['canonical_hash']} ({manifest['export_format']} export), "
                  f"{m.runtime}, batch {manifest['model']['input_shape'][0]}, {m.threads} thread(s): "
                  f"[bold]measured {m.latency_ms:.3f} ms[/] on this machine ({m.rounds} rounds)", soft_wrap=True)
    rows = [(d["name"], d["predicted_latency_ms"]) for d in manifest["latency"]["devices"]]
    if extra is not None:
        from nas.export.measure import manifest_space

        try:
            own = manifest_space(manifest)
        except ExportError as exc:
            fail(str(exc))
        space, estimator = _estimator(extra, space_ref=own if not isinstance(own, str) else None)
        if space.name != manifest["space"]:
            fail(f"--table {table} is for space {space.name!r}, the export is {manifest['space']!r}")
        rows.insert(0, (f"{extra.device_name} (--table)", float(estimator.predict([manifest["arch"]])[0])))
    listing = Table("device", "predicted ms", "measured ms", "measured / predicted")
    for name, predicted in rows:
        ratio = f"{m.latency_ms / predicted:.2f}" if predicted else "-"
        listing.add_row(name, f"{predicted:.3f}" if predicted is not None else "-", f"{m.latency_ms:.3f}", ratio)
    console.print(listing)

"""``hwnas spaces list|show|validate``: the shipped search spaces and definition files (hwnas.space/1)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from hwnas.cli.render import console, fail, fail_definition
from search_spaces import SPACES, SearchSpace, SpaceDefinitionError, load_space_file, resolve_space

app = typer.Typer(help="Search spaces: shipped ones and definition files (hwnas.space/1).", no_args_is_help=True)


def _summary(space: SearchSpace) -> list[str]:
    """The lines `show` and `validate` share: size, network and content hash."""
    return [f"architectures  {space.size:,}",
            f"positions      {len(space.choices)} ({', '.join(str(d) for d in space.dims[:12])}"
            f"{', …' if len(space.dims) > 12 else ''} choices)",
            f"input          {space.input_channels}x{space.input_resolution}x{space.input_resolution}, "
            f"{space.num_classes} classes",
            f"content hash   {space.content_hash}"]


@app.command("list")
def list_spaces() -> None:
    """The spaces shipped with hwnas (a server also lists its tenants' at GET /v1/search-spaces)."""
    table = Table(title="search spaces (`hwnas spaces show NAME` for one)")
    for column in ("name", "architectures", "positions", "signatures", "input"):
        table.add_column(column, no_wrap=True, justify="left" if column == "name" else "right")
    for name, space in sorted(SPACES.items()):
        table.add_row(name, f"{space.size:,}" if space.size < 10**9 else f"{float(space.size):.3g}", str(len(space.choices)), str(len(space.all_op_signatures())),
                      f"{space.input_channels}x{space.input_resolution}px {space.num_classes} cls")
    console.print(table)


@app.command()
def show(name: Annotated[str, typer.Argument(help="A shipped space's name, or a definition file")],
         as_json: Annotated[bool, typer.Option("--json", help="Print the (normalised) definition as JSON")] = False
         ) -> None:
    """A space's size, network, content hash and each position's choices."""
    try:
        space = resolve_space(name)
    except SpaceDefinitionError as exc:
        fail_definition(exc)
    except KeyError as exc:
        fail(str(exc.args[0]), "`hwnas spaces list` names the shipped spaces; or give a definition file")
    if as_json:
        console.print_json(json.dumps(space.definition()))
        return
    console.print(f"[bold]{space.name}[/]: {space.description}", soft_wrap=True)
    for line in _summary(space):
        console.print("  " + line, highlight=False, soft_wrap=True)
    console.print(f"  op signatures  {len(space.all_op_signatures())}")
    for i, choices in enumerate(space.choices):
        console.print(f"  [{i}] {' | '.join(choices)}", highlight=False, markup=False)


@app.command()
def validate(file: Annotated[str, typer.Argument(help="A definition file (hwnas.space/1, .json)")]) -> None:
    """Check a definition: prints the number of architectures and its op signatures, or each error
    with its JSON path (exit code 1)."""
    try:
        space = load_space_file(file)
    except SpaceDefinitionError as exc:
        fail_definition(exc)
    signatures = space.all_op_signatures()
    console.print(f"{file}: valid search space {space.name!r}", highlight=False)
    for line in _summary(space):
        console.print("  " + line, highlight=False, soft_wrap=True)
    console.print(f"  op signatures  {len(signatures)} (the entries a latency table needs):", highlight=False)
    for sig in signatures:
        console.print(f"    {sig}", highlight=False, markup=False)

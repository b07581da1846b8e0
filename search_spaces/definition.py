"""Reading ``hwnas.space/1`` definitions: the format's envelope and its errors.

A definition is a JSON object (YAML welcome where pyyaml is installed) with
``"format": "hwnas.space/1"``, a ``name`` and a ``type``; each type (``blocks``: see
``search_spaces.blocks``) parses the rest. Every problem found is reported at once,
each with the JSON path of the field at fault, e.g. ``("$.stages[1].stride",
"must be 1 or 2")``, so a CLI can print them all and an API can answer 422 naming the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

FORMAT = "hwnas.space/1"
#: Names a definition may take: they become table keys and file names.
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
#: Bound on a definition file read from disk or a request body (bytes).
MAX_DEFINITION_BYTES = 256 * 1024


class SpaceDefinitionError(ValueError):
    """A definition that does not parse; ``errors`` lists (json_path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]], source: str | None = None):
        self.errors = list(errors)
        self.source = source
        lines = [f"{path}: {message}" for path, message in self.errors]
        head = f"{source}: " if source else ""
        super().__init__(head + "invalid search space definition: " + "; ".join(lines))


#: type name -> parser(obj) returning a SearchSpace or raising SpaceDefinitionError
SPACE_TYPES: dict[str, Callable[[dict[str, Any]], Any]] = {}


def register_type(name: str, parser: Callable[[dict[str, Any]], Any]) -> None:
    SPACE_TYPES[name] = parser


def check_envelope(obj: Any) -> list[tuple[str, str]]:
    """Errors of the fields every definition has (format, name, type)."""
    if not isinstance(obj, dict):
        return [("$", "must be a JSON object")]
    errors: list[tuple[str, str]] = []
    if obj.get("format") != FORMAT:
        errors.append(("$.format", f"must be {FORMAT!r}"))
    name = obj.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        errors.append(("$.name", "must be a string of lowercase letters, digits, '_', '-', '.' (at most 63)"))
    kind = obj.get("type")
    if kind not in SPACE_TYPES:
        errors.append(("$.type", f"must be one of {', '.join(sorted(SPACE_TYPES))}"))
    return errors


def parse_space_definition(obj: Any):  # -> SearchSpace
    """A definition (already-decoded JSON) -> its SearchSpace; raises SpaceDefinitionError."""
    errors = check_envelope(obj)
    if errors:
        raise SpaceDefinitionError(errors)
    return SPACE_TYPES[obj["type"]](obj)


def read_definition(path: str | Path) -> Any:
    """The decoded contents of a definition file (.json, or .yaml/.yml with pyyaml)."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_DEFINITION_BYTES:
            raise SpaceDefinitionError([("$", f"file is {size} bytes; at most {MAX_DEFINITION_BYTES}")], str(path))
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpaceDefinitionError([("$", f"cannot read: {exc.strerror or exc}")], str(path)) from None
    except UnicodeDecodeError:
        raise SpaceDefinitionError([("$", "not UTF-8 text")], str(path)) from None
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise SpaceDefinitionError([("$", "YAML definitions need pyyaml installed; use JSON")],
                                       str(path)) from None
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise SpaceDefinitionError([("$", f"not valid YAML: {exc}")], str(path)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpaceDefinitionError([("$", f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}")],
                                   str(path)) from None


def load_space_file(path: str | Path):  # -> SearchSpace
    """Parse a definition file; errors carry the file name as ``source``."""
    obj = read_definition(path)
    try:
        return parse_space_definition(obj)
    except SpaceDefinitionError as exc:
        raise SpaceDefinitionError(exc.errors, str(path)) from None

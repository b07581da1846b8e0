"""The import layers (pyproject.toml, [tool.importlinter]) hold, and plug-ins are found through registries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nas.registry import Registry

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_spec_module_loads_no_strategy() -> None:
    """Importing the job spec alone pulls in no strategy or evaluator (they register on first lookup)."""
    code = ("import sys, nas.spec; loaded = [m for m in sys.modules if m.startswith(('nas.strategies', "
            "'nas.evaluators', 'hwnas'))]; print(loaded); assert not loaded")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_registries_find_every_builtin_plugin() -> None:
    from nas.evaluators.kinds import EVALUATORS
    from nas.spec import EvaluatorSpec, JobSpec
    from nas.strategies import STRATEGIES, Strategy

    assert {"default", "evolution", "nsga2", "rl", "tpe", "optuna-nsga2", "random", "darts", "fbnet"} \
        <= set(STRATEGIES)
    assert all(issubclass(cls, Strategy) and cls.name == name for name, cls in STRATEGIES.items())
    # every evaluator type the spec accepts has a kind, and no kind lacks a spec
    spec_types = {m.model_fields["type"].annotation.__args__[0] for m in EvaluatorSpec.__origin__.__args__}
    assert spec_types == set(EVALUATORS)
    assert JobSpec.model_json_schema()["$defs"]["StrategySpec"]["properties"]["name"]["enum"] == STRATEGIES.names()


def test_a_registry_refuses_a_second_plugin_of_one_name() -> None:
    class A:
        name = "a"

    class B:
        name = "a"

    registry: Registry[type] = Registry("thing", "nas.registry", lambda c: c.name)
    registry.register(A)
    registry.register(A)  # the same one again is fine
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(B)
    with pytest.raises(KeyError, match="unknown thing 'b'; valid: a"):
        registry["b"]


def test_migration_revisions_import_only_alembic_and_sqlalchemy() -> None:
    """The revision files are no package (import-linter cannot see them): each must stand alone,
    never importing the live models or anything else of hwnas."""
    import ast

    allowed = ("alembic", "sqlalchemy", "__future__")
    revisions = sorted((ROOT / "migrations" / "versions").glob("*.py"))
    assert revisions
    for path in revisions:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            bad = [n for n in names if n.split(".")[0] not in allowed]
            assert not bad, f"{path.name} imports {bad}"

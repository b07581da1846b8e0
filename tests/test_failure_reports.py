"""The suite's own reporting: a failure pytest cannot draw fails its test, not the whole run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

LINELESS = '''
def raise_without_a_line():
    raise ValueError("raised where no line is known")
raise_without_a_line.__code__ = raise_without_a_line.__code__.replace(co_linetable=b"")

def test_lineless_failure():
    raise_without_a_line()

def test_after_it():
    pass
'''


def test_an_exception_without_a_line_number_fails_its_test_and_the_run_goes_on(tmp_path: Path) -> None:
    (tmp_path / "test_lineless.py").write_text(LINELESS)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
         "-c", "/dev/null", "--rootdir", str(tmp_path), str(tmp_path / "test_lineless.py")],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert "INTERNALERROR" not in run.stdout + run.stderr, run.stdout + run.stderr
    assert "1 failed, 1 passed" in run.stdout, run.stdout
    assert "ValueError: raised where no line is known" in run.stdout

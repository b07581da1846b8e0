"""How soon the command evaluator returns after a timeout, when the command's children hold its pipes.

    .venv/bin/python benchmarks/command_timeout.py [--timeout 0.5] [--repeats 5]

Each run is ``sh -c 'sleep 300 & sleep 300; echo {}'`` with ``timeout_s``: the evaluator must kill
the whole process group, or it would wait 300 s for the pipes. Prints the time from the
call to the timed-out result, minus the timeout (the kill-and-reap overhead), per run.
tests/nas/test_command_evaluator.py checks the behaviour (the group is gone, the reason
recorded); this prints the figure.
"""

from __future__ import annotations

import argparse
import statistics
import time

from nas.evaluators import CommandEvaluator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    overheads = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        (r,) = CommandEvaluator("sh -c 'sleep 300 & sleep 300; echo {}'", timeout_s=args.timeout).evaluate(["x"])
        overheads.append(time.perf_counter() - started - args.timeout)
        assert not r.ok and "timed out" in (r.error or ""), r.error
    print(f"timeout {args.timeout:g} s: returned {statistics.median(overheads) * 1000:.0f} ms after it "
          f"(median of {args.repeats}; worst {max(overheads) * 1000:.0f} ms; "
          f"load average {open('/proc/loadavg').read().split()[0]})")


if __name__ == "__main__":
    main()

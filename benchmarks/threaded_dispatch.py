"""Wall time of one embedded-mode batch search on 1, 2 and 4 threads (``ThreadedDispatch``).

    .venv/bin/python benchmarks/threaded_dispatch.py [--threads 1 2 4] [--evaluations 16] [--sleep 0.3]

The same search (nb201, evolution, seed 5, batches of 8) with a command evaluator that
sleeps ``--sleep`` seconds per candidate, run in this process on N threads. Prints the
wall time, the speed-up over the first row and the most evaluations seen in flight at
once. tests/nas/test_fanout.py checks the behaviour (N in flight, the same trials as one
thread); this prints the figure, which depends on how busy the machine is.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from nas.catalog import MemoryCatalog
from nas.engine import MemoryRecorder, TrialRecord, run_search
from nas.fanout import ThreadedDispatch
from nas.resolve import build_search
from nas.spec import JobSpec


def in_flight(trials: list[TrialRecord]) -> int:
    edges = sorted([(t.started_at, 1) for t in trials] + [(t.finished_at, -1) for t in trials],
                   key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, step in edges:
        running += step
        peak = max(peak, running)
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--evaluations", type=int, default=16)
    parser.add_argument("--sleep", type=float, default=0.3)
    args = parser.parse_args()
    load = lambda: open("/proc/loadavg").read().split()[0]  # noqa: E731
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "eval.py"
        script.write_text("import json, sys, time, zlib\n"
                          f"time.sleep({args.sleep})\n"
                          "print(json.dumps({'accuracy': zlib.crc32(sys.argv[1].encode()) % 1000 / 10}))\n")
        first = None
        print(f"{args.evaluations} evaluations of {args.sleep:g} s, batches of 8 "
              f"(load average {load()})")
        for n in args.threads:
            spec = {"space": "nb201", "budget": {"evaluations": args.evaluations}, "seed": 5, "batch_size": 8,
                    "parallelism": n,
                    "strategy": {"name": "evolution", "params": {"population_size": 8, "sample_size": 3}},
                    "objectives": [{"metric": "accuracy", "goal": "maximize"},
                                   {"metric": "latency_ms", "device": "pixel3", "goal": "minimize"}],
                    "evaluator": {"type": "command", "command": f"{sys.executable} {script} {{arch}}"}}
            search = build_search(JobSpec.model_validate(spec), MemoryCatalog())
            recorder = MemoryRecorder()
            started = time.perf_counter()
            run_search(search, recorder, dispatcher=ThreadedDispatch(search.evaluator, n, lambda: False))
            wall = time.perf_counter() - started
            first = first or wall
            print(f"  {n} thread(s): {wall:6.2f} s  speed-up {first / wall:4.2f}x  "
                  f"at most {in_flight(recorder.trials)} in flight  (load {load()})")


if __name__ == "__main__":
    main()

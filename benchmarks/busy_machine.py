"""Wall time of the demo job and the docs' darts example on an idle machine and with two
busy processes pinned to the cores (the thread policy's target: loaded <= 2.5x idle,
identical fronts for the same seed).

    .venv/bin/python benchmarks/busy_machine.py [--demo-budget 40] [--device raspi4] [--busy 2] [--only demo darts]

Each job runs as ``hwnas search --spec FILE --json OUT`` (the CLI, so the thread policy
of a real run applies), first as the machine is, then with ``--busy`` processes spinning
in pure Python, each pinned to a core with ``taskset`` (started and stopped here). The
load average before each run is printed: on a machine shared with other work, "idle"
is whatever that work leaves.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hwnas.cli.demo import demo_spec

ROOT = Path(__file__).resolve().parents[1]
DARTS = ROOT / "docs" / "examples" / "darts_nb201_pixel3.json"


@contextmanager
def busy(count: int) -> Iterator[None]:
    cores = sorted(os.sched_getaffinity(0))
    procs = [subprocess.Popen(["taskset", "-c", str(cores[i % len(cores)]), sys.executable, "-c", "while True: pass"])
             for i in range(count)]
    try:
        time.sleep(1.0)
        yield
    finally:
        for p in procs:
            p.kill()
            p.wait()


def run(spec: dict[str, object], out_dir: Path, tag: str) -> tuple[float, list[dict[str, object]]]:
    spec_file, out = out_dir / f"{tag}.spec.json", out_dir / f"{tag}.json"
    spec_file.write_text(json.dumps(spec))
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "hwnas.cli.main", "search", "--spec", str(spec_file),
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{tag} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return wall, json.loads(out.read_text())["pareto"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--demo-budget", type=int, default=40)
    parser.add_argument("--device", default="raspi4")
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("--only", nargs="+", choices=["demo", "darts"], default=["demo", "darts"])
    args = parser.parse_args()
    jobs = {"demo": demo_spec(args.demo_budget, args.device, 15.0), "darts": json.loads(DARTS.read_text())}
    threads = os.environ.get("HWNAS_TORCH_THREADS", "policy default")
    print(f"cores {len(os.sched_getaffinity(0))}, HWNAS_TORCH_THREADS {threads}, busy processes {args.busy}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            load_idle = os.getloadavg()[0]
            idle, front_idle = run(jobs[name], Path(tmp), f"{name}-idle")
            with busy(args.busy):
                load_busy = os.getloadavg()[0]
                loaded, front_busy = run(jobs[name], Path(tmp), f"{name}-busy")
            same = front_idle == front_busy
            print(f"{name:5s}: idle {idle:7.1f}s (load {load_idle:.2f})  loaded {loaded:7.1f}s (load {load_busy:.2f})"
                  f"  ratio {loaded / idle:4.2f}x  fronts {'identical' if same else 'DIFFER'} "
                  f"({len(front_idle)} architectures)", flush=True)


if __name__ == "__main__":
    main()

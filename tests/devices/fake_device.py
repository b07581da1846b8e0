"""A stand-in for a device's benchmark tool (an adb + benchmark_model wrapper, say).

Usage: fake_device.py ARCH [MODEL_FILE]. Sleeps FAKE_SLEEP_S (default 0.05 s) per model, then
prints JSON whose latency is an additive function of the nb201 cell's ops, so a fitted table
can learn it. The first edge decides misbehaviour: ``none`` exits 3 with a message on stderr,
``avg_pool_3x3`` hangs (for the agent's timeout), unless FAKE_WELL_BEHAVED is set.
"""

import json
import os
import sys
import time

COST = {"none": 0.0, "skip_connect": 0.05, "nor_conv_1x1": 0.4, "nor_conv_3x3": 1.1, "avg_pool_3x3": 0.25}

arch = sys.argv[1]
if len(sys.argv) > 2 and not os.path.getsize(sys.argv[2]):
    sys.exit("empty model file")
ops = [token.split("~")[0] for token in arch.split("|") if "~" in token]
if not os.environ.get("FAKE_WELL_BEHAVED"):
    if ops[0] == "none":
        print("starting", flush=True)
        sys.stderr.write("device busy: benchmark_model returned 3\n")
        sys.exit(3)
    if ops[0] == "avg_pool_3x3":
        time.sleep(60)
time.sleep(float(os.environ.get("FAKE_SLEEP_S", "0.05")))
latency = 0.8 + sum(COST[op] * (1.0 + 0.15 * i) for i, op in enumerate(ops))
print("benchmark done")
print(json.dumps({"latency_ms": round(latency, 4), "energy_mj": round(2.0 * latency, 4)}))

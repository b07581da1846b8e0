"""Shared by the in-process runtimes: interleaved timing with ``latency_tables.profile.Timer``."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nas.devices.runtimes.base import RuntimeResult


def time_interleaved(calls: list[Callable[[], object] | str], *, rounds: int,
                     seed: int) -> tuple[list[RuntimeResult], float | None]:
    """Time the callables together as ``tables profile`` times probes: warm-up, then rounds that
    visit them in a fresh random order, each sample normalised by its round's median; a str in
    ``calls`` is a model that could not be built (its error). Also returns the drift reference's
    slowest over fastest time in the batch (how much the machine drifted while it measured)."""
    from latency_tables.profile import Timer

    timer = Timer("cpu", seed)
    results: list[RuntimeResult | None] = [None] * len(calls)
    runnable: dict[str, Callable[[], object]] = {}
    drift = None
    for i, call in enumerate(calls):
        if isinstance(call, str):
            results[i] = RuntimeResult(error=call)
            continue
        try:
            call()  # fails fast on a model the runtime cannot run
        except Exception as exc:  # a runtime's own errors: recorded per model
            results[i] = RuntimeResult(error=f"{type(exc).__name__}: {str(exc)[:500]}")
            continue
        runnable[str(i)] = call
    if runnable:
        estimate = timer.measure(runnable, rounds=rounds, repeats=3, warmup=3)
        ref = np.asarray(timer.reference_times)
        drift = float(ref.max() / ref.min()) if len(ref) else None
        for key, value in estimate.items():
            results[int(key)] = RuntimeResult(latency_ms=float(value))
    return [r if r is not None else RuntimeResult(error="not measured") for r in results], drift

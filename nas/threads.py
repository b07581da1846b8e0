"""One thread policy for everything that runs torch or onnxruntime in this process.

Why: torch's default (one intra-op thread per core in every process) oversubscribes a
shared machine; with several workers, or other work on the cores, OpenMP threads spin
on each other and a one-second training takes tens of seconds. It also makes results
depend on the machine: a reduction split over two threads sums in another order than
over one.

The policy:

- ``HWNAS_TORCH_THREADS`` threads per evaluation; by default the process's cores
  (its CPU affinity) divided by the evaluations it runs at once (``configure``), at
  least 1. Applied with ``torch.set_num_threads`` before every torch computation
  (training, proxies, supernet search, export checks) and to onnxruntime sessions
  (``session_options``); one inter-op thread (nothing here runs independent ops).
- Before torch is first imported (``prepare_environment``, called by the entry
  points): OpenMP threads that sleep instead of spinning when idle
  (``OMP_WAIT_POLICY=PASSIVE``), and no dynamic thread counts (``OMP_DYNAMIC``,
  ``MKL_DYNAMIC`` false: libgomp's dynamic mode sizes teams from the load average,
  which would make numerics depend on the load).
- Results that do not depend on the thread count: torch's deterministic algorithms
  (``torch.use_deterministic_algorithms``, warn-only, so an op without a deterministic
  CPU kernel still runs), oneDNN (mkldnn) convolutions off, and MKL's strict
  conditional numerical reproducibility (``MKL_CBWR=COMPATIBLE,STRICT``). oneDNN splits
  a convolution's weight-gradient reduction over the threads and MKL's GEMM picks its
  blocking by thread count, so training at 1 and at 2 threads otherwise gives
  different weights (measured: a darts search's alpha differs after 4 epochs, and
  agrees bit for bit with both switches). The native convolution's weight gradient
  still splits the batch over threads (3x3 convolutions; measured: only those
  gradients differ between 1 and 2 threads), so backward passes run on one thread
  (``backward``): forward passes and optimiser steps use the policy's threads. oneDNN
  stays off even so: its GEMM-based 1x1 convolutions on small feature maps (960->1280 at
  7x7, a 1x1 classifier) give other last bits at 2 threads than at 1 in the forward pass
  too. (Enabling it for backward passes alone, on their one thread, would halve a fbnet
  supernet's epoch, measured 2026-12-01, but the switch is process-wide: an evaluation
  running a forward pass in another thread meanwhile would take oneDNN by chance.)
  The cost is speed where oneDNN is fastest: a depthwise 5x5 convolution's forward
  and backward at one thread took 71-77 ms without it and 37-42 ms with it (measured
  2026-12-01), so fbnet-style supernets train about half as fast.
  BatchNorm on a 1x1 feature map adds per-thread partial sums in torch's CPU kernel;
  block-space networks route it around that (``search_spaces.blocks_network.BatchNorm``).
  Even without oneDNN that 960->1280 1x1 convolution at batch 1 differed at 3 threads
  (1, 2 and 4 agreed), so an odd thread count is not covered, and neither is another CPU model (presumably its vectorised kernels:
  the same code gave the demo hypervolume 3563 on an AMD EPYC, 3586 on another machine). Where this cannot hold otherwise: CUDA kernels
  without a deterministic variant, a torch not built with MKL, or a process that
  imported torch before ``nas`` (MKL reads ``MKL_CBWR`` once); there the same seed
  gives the same result only at the same thread count. The count is recorded with
  each trial (metric ``torch_threads``) so a difference can be told.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

ENV = "HWNAS_TORCH_THREADS"
_lock = threading.Lock()
_concurrent = 1
_applied: int | None = None
_once = False


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def configure(concurrent_evaluations: int) -> None:
    """Tell the policy how many evaluations this process runs at once (worker threads, pool size)."""
    global _concurrent
    _concurrent = max(1, int(concurrent_evaluations))


def torch_threads() -> int:
    """Threads one evaluation may use: ``HWNAS_TORCH_THREADS`` or cores // concurrent evaluations."""
    raw = os.environ.get(ENV, "").strip()
    if raw:
        try:
            value = int(raw)
        except ValueError:
            raise ValueError(f"{ENV} must be a whole number of threads >= 1, got {raw!r}") from None
        if value < 1:
            raise ValueError(f"{ENV} must be >= 1, got {value}")
        return value
    return max(1, cores() // _concurrent)


def prepare_environment() -> None:
    """Set OpenMP/MKL variables that only count before torch is imported (no-op afterwards)."""
    if "torch" in sys.modules:
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("OMP_DYNAMIC", "FALSE")
    os.environ.setdefault("MKL_DYNAMIC", "FALSE")
    os.environ.setdefault("MKL_CBWR", "COMPATIBLE,STRICT")


def apply() -> int:
    """Apply the policy to torch in this process (cheap: call it before each torch computation)."""
    global _applied, _once
    import torch

    threads = torch_threads()
    with _lock:
        if not _once:
            _once = True
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.mkldnn.enabled = False
            try:
                torch.set_num_interop_threads(1)
            except RuntimeError:  # already set, or inter-op work already ran: keep what is there
                pass
        if _applied != threads or torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
            _applied = threads
    return threads


def backward(loss: Any) -> None:
    """``loss.backward()`` on one intra-op thread, so gradients do not depend on the thread count."""
    import torch

    threads = torch.get_num_threads()
    if threads == 1:
        loss.backward()
        return
    torch.set_num_threads(1)
    try:
        loss.backward()
    finally:
        torch.set_num_threads(threads)


def session_options(threads: int | None = None) -> Any:
    """onnxruntime session options under the policy (``threads`` overrides, e.g. a pinned measurement)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return options


def describe() -> dict[str, Any]:
    """What the policy is (for logs and ``/v1/health``-style reports)."""
    return {"torch_threads": torch_threads(), "cores": cores(), "concurrent_evaluations": _concurrent,
            "source": ENV if os.environ.get(ENV, "").strip() else "cores // concurrent evaluations"}

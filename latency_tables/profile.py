"""Profile a space on this machine with torch: time every op signature, then validate end to end.

This machine may be a noisy shared VM, so timing fights noise:

* a pinned thread count (``torch.set_num_threads``) and ``inference_mode``;
* warm-up, then many short rounds; each round visits the probes in a fresh random
  order, so a slow spell hits every probe alike instead of a few of them;
* drift is common to everything timed in one round, so each sample is divided by
  its round's median over all probes; a probe's estimate is the geometric mean of
  these ratios over the rounds, times a low percentile of the round medians (the
  speed this machine reaches when it is quiet). Measured here, on two passes over
  the same 40 networks this ranks them at Kendall tau ~0.70 between passes, where
  the minimum of raw repeats reached ~0.47 and dividing by a re-timed reference
  kernel ~0.26: a single small kernel is too noisy a drift gauge;
* a reference kernel is still re-timed every round and its spread recorded, so a
  table says how much the machine drifted while it was built;
* the graph is profiled as eager torch runs it: ``none`` edges run (``x * 0``),
  every edge runs whether or not its output is used, and the per-cell dispatch and
  node sums are timed as their own term (an all-``skip`` cell minus its identities).

Denormal floats are flushed to zero while timing: an untrained network in eval mode
carries a vanishing signal, and denormals in it slow x86 kernels several times over
(an untrained mbv2-160 network ran 11.6 ms in torch with them, 3.6 ms without), which
trained weights do not do. ``runtime="onnxruntime"`` times every probe and network as
an ONNX graph in onnxruntime (one thread per session, as ``tables measure-export`` runs
an ONNX export), for tables that predict ONNX deployments.

Op timings in isolation miss what a whole network adds or saves (caches, dispatch),
so a calibration set of ``calibrate_archs`` networks timed end to end fits one
non-negative scale per op type (ridge towards 1) -- a correction recorded in the
provenance. Validation then measures ``validate_archs`` *other* networks end to end
twice (two interleaved copies of each network), and records how well the table,
FLOPs, parameter count and the second measurement each predict the first one.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from latency_tables.fit import signature_group, validation_report
from latency_tables.table import Entry, LatencyTable
from search_spaces.base import MissingHook, Probe, SearchSpace

Progress = Callable[[str, int, int], None]


class ProfileError(RuntimeError):
    """The profile cannot run here (no CUDA, unknown space, ...)."""


RUNTIMES = ("torch", "onnxruntime")


def onnxruntime_call(module: object, x: object, threads: int) -> Callable[[], object]:
    """``module(x)`` as an onnxruntime session (TorchScript ONNX export, opset 17, denormals as zero)."""
    import io
    import warnings

    import onnxruntime as ort
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (x,), buffer, dynamo=False, opset_version=17, input_names=["input"])
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.add_session_config_entry("session.set_denormal_as_zero", "1")
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.detach().cpu().numpy()}  # type: ignore[attr-defined]
    return lambda: session.run(None, feed)


def _call(module: object, x: object, runtime: str, threads: int) -> Callable[[], object]:
    if runtime == "onnxruntime":
        return onnxruntime_call(module, x, threads)
    return lambda: module(x)  # type: ignore[operator]


def plan_for(space: SearchSpace, batch: int) -> tuple[dict[str, Probe], dict[str, dict[str, float]]]:
    """The space's ``profile_plan``: probes to time, and each signature's entry as probe multiplicities."""
    try:
        plan = space.profile_plan(batch)
    except MissingHook as exc:
        raise ProfileError(str(exc)) from exc
    missing = sorted(set(space.all_op_signatures()) - set(plan.entries))
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ProfileError(f"space {space.name!r}: its profile plan has no entry for {missing[0]!r}{more}")
    return plan.probes, plan.entries


class Timer:
    """Interleaved timing of callables in rounds, robust to drift shared within a round."""

    def __init__(self, torch_device: str, seed: int = 0):
        import torch

        self.torch = torch
        self.device = torch.device(torch_device)
        self.rng = np.random.default_rng(seed)
        self.reference = torch.nn.Conv2d(64, 64, 3, padding=1).eval().to(self.device)
        self.reference_input = torch.randn(1, 64, 16, 16, device=self.device)
        self.reference_times: list[float] = []

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize()

    def once(self, fn: Callable[[], object], repeats: int) -> float:
        self._sync()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        self._sync()
        return (time.perf_counter() - start) * 1000.0 / repeats

    def measure(self, calls: dict[str, Callable[[], object]], *, rounds: int, repeats: int, warmup: int = 3,
                progress: Callable[[int], None] | None = None) -> dict[str, float]:
        """Per key, ms per call: round-normalised geometric mean (see the module docstring)."""
        for fn in [lambda: self.reference(self.reference_input), *calls.values()]:
            for _ in range(warmup):
                fn()
        keys = list(calls)
        raw = np.zeros((len(keys), rounds))
        for r in range(rounds):
            self.reference_times.append(min(self.once(lambda: self.reference(self.reference_input), 1)
                                            for _ in range(3)))
            for j in self.rng.permutation(len(keys)):
                raw[j, r] = self.once(calls[keys[j]], repeats)
            if progress:
                progress(r + 1)
        return dict(zip(keys, robust_estimate(raw).tolist()))


def robust_estimate(raw: np.ndarray) -> np.ndarray:
    """(keys, rounds) times -> (keys,) estimates, robust to drift shared within a round."""
    raw = np.maximum(raw, 1e-9)
    if raw.shape[0] < 3:  # too few probes to estimate a round's drift from
        return raw.min(axis=1)
    level = np.median(raw, axis=0)
    relative = np.exp(np.log(raw / level[None, :]).mean(axis=1))
    return relative * float(np.percentile(level, 10))


#: Rounds timing each whole network (calibration and validation). On the 224 px space at one
#: thread, 10 rounds left two measurements of the same networks at Kendall tau ~0.73 and the
#: table's own tau at ~0.80; 60 rounds (about 4 minutes there) gave 0.88-0.90 and 0.86-0.87.
NETWORK_ROUNDS = 60


def _environment(threads: int, batch: int, torch_device: str) -> dict[str, object]:
    import torch

    env: dict[str, object] = {"python": platform.python_version(), "torch": torch.__version__,
                              "machine": platform.machine(), "processor": platform.processor() or platform.machine(),
                              "cpu_count": os.cpu_count(), "threads": threads, "batch_size": batch,
                              "torch_device": torch_device}
    try:
        env["cpu_model"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                                if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch_device == "cuda":
        env["gpu"] = torch.cuda.get_device_name(0)
    return env


def profile_entries(space: SearchSpace, *, timer: Timer, batch: int, rounds: int = 10,
                    only: list[str] | None = None, progress: Progress | None = None,
                    runtime: str = "torch", threads: int = 1) -> dict[str, Entry]:
    """Time the probes behind every signature (or just ``only``) and combine them into entries."""
    import torch

    probes, plan = plan_for(space, batch)
    if only is not None:
        unknown = [s for s in only if s not in plan]
        if unknown:
            raise ProfileError(f"space {space.name!r} has no signature {unknown[0]!r}")
        plan = {s: plan[s] for s in only}
    needed = sorted({p for cost in plan.values() for p in cost})
    calls: dict[str, Callable[[], object]] = {}
    for key in needed:
        module = probes[key].module.eval().to(timer.device)  # type: ignore[attr-defined]
        x = torch.randn(*probes[key].shape, device=timer.device)
        calls[key] = _call(module, x, runtime, threads)
    with torch.inference_mode():
        passes = [timer.measure(calls, rounds=rounds, repeats=5,
                                progress=(lambda r: progress(f"timing ops, pass {k}", r, rounds)) if progress else None)
                  for k in (1, 2)]
    entries = {}
    for sig, cost in plan.items():
        values = [max(0.0, sum(m * t[p] for p, m in cost.items())) for t in passes]
        entries[sig] = Entry(mean=float(np.mean(values)), std=float(abs(values[0] - values[1]) / 2), count=2 * rounds)
    return entries


def measure_networks(space: SearchSpace, archs: list[str], *, timer: Timer, batch: int, rounds: int,
                     progress: Progress | None = None, runtime: str = "torch",
                     threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Two independent end-to-end measurements (ms) of each architecture.

    Both copies of every network run interleaved in the same rounds, so the two
    measurements see the same conditions and their disagreement is the noise floor.
    """
    import torch

    calls = {}
    for i, arch in enumerate(archs):
        model = space.build_model(arch).eval().to(timer.device)
        x = torch.randn(*space.input_shape(batch), device=timer.device)
        for copy in "ab":
            calls[f"{i}{copy}"] = _call(model, x, runtime, threads)
    with torch.inference_mode():
        estimate = timer.measure(calls, rounds=rounds, repeats=1, warmup=2,
                                 progress=(lambda r: progress("timing networks", r, rounds)) if progress else None)
    return (np.array([estimate[f"{i}a"] for i in range(len(archs))]),
            np.array([estimate[f"{i}b"] for i in range(len(archs))]))


def calibrate(space: SearchSpace, table: LatencyTable, archs: list[str], measured: np.ndarray,
              strength: float = 0.05) -> dict[str, float]:
    """Scale each op-type group of entries so whole networks are predicted in relative error;
    ridge towards scale 1 keeps groups the calibration set barely exercises as profiled."""
    from latency_tables.fit import nonnegative_lstsq, row_weights

    vocabulary = space.all_op_signatures()
    groups = sorted({signature_group(s) for s in vocabulary})
    counts = space.signature_matrix(np.stack([space.encode(a) for a in archs]))
    means = np.asarray(table.means(vocabulary))
    features = np.stack([(counts * means * np.array([signature_group(s) == g for s in vocabulary])).sum(axis=1)
                         for g in groups], axis=1)
    wt = row_weights(measured)
    n = len(archs)
    a = np.vstack([features * wt[:, None], np.sqrt(strength * n) * np.eye(len(groups))])
    b = np.concatenate([measured * wt, np.sqrt(strength * n) * np.ones(len(groups))])
    scales = dict(zip(groups, nonnegative_lstsq(a, b).tolist()))
    for sig, entry in table.entries.items():
        k = scales[signature_group(sig)]
        entry.mean *= k
        entry.std *= k
    return scales


def flops_and_params(space: SearchSpace, archs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    flops, params = [], []
    for arch in archs:
        model = space.build_model(arch).eval()
        with torch.inference_mode(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(*space.input_shape(1)))
        flops.append(counter.get_total_flops())
        params.append(sum(p.numel() for p in model.parameters()))
    return np.asarray(flops, float), np.asarray(params, float)


def profile_space(space: SearchSpace, *, threads: int = 1, batch: int = 1, torch_device: str = "cpu",
                  device_name: str | None = None, validate_archs: int = 100, seed: int = 0,
                  rounds: int = 10, network_rounds: int = NETWORK_ROUNDS, calibrate_archs: int = 30,
                  only: list[str] | None = None,
                  progress: Progress | None = None, runtime: str = "torch") -> LatencyTable:
    """A table for this machine; with ``validate_archs`` > 0 also its end-to-end validation block."""
    import torch

    if runtime not in RUNTIMES:
        raise ProfileError(f"--runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if torch_device == "cuda" and not torch.cuda.is_available():
        raise ProfileError("--torch-device cuda: no CUDA device is available to torch here")
    if runtime == "onnxruntime" and torch_device != "cpu":
        raise ProfileError("--runtime onnxruntime profiles on the CPU: use --torch-device cpu")
    torch.set_flush_denormal(True)
    try:
        return _profile(space, threads=threads, batch=batch, torch_device=torch_device, device_name=device_name,
                        validate_archs=validate_archs, seed=seed, rounds=rounds, network_rounds=network_rounds,
                        calibrate_archs=calibrate_archs, only=only, progress=progress, runtime=runtime)
    finally:
        torch.set_flush_denormal(False)


def _profile(space: SearchSpace, *, threads: int, batch: int, torch_device: str, device_name: str | None,
             validate_archs: int, seed: int, rounds: int, network_rounds: int, calibrate_archs: int,
             only: list[str] | None, progress: Progress | None, runtime: str) -> LatencyTable:
    import torch

    started = time.perf_counter()
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    timer = Timer(torch_device, seed)
    entries = profile_entries(space, timer=timer, batch=batch, rounds=rounds, only=only, progress=progress,
                              runtime=runtime, threads=threads)
    name = device_name or f"{platform.node() or 'this-machine'}-{torch_device}-t{threads}-b{batch}"
    env = _environment(threads, batch, torch_device)
    table = LatencyTable(
        device={"name": name, "kind": "gpu" if torch_device == "cuda" else "cpu", "runtime": _runtime_name(runtime),
                "batch_size": batch, "threads": threads, "hardware": env.get("gpu", env.get("cpu_model", env["machine"])),
                "measured": "hwnas tables profile"},
        space=space.name, entries=entries,
        provenance={"source": "hwnas tables profile", "method": f"per-op {runtime} timing (denormals flushed): 2 passes x {rounds} interleaved rounds x 5 calls, "
                    "round-normalised geometric mean; per-op-type scales calibrated on whole networks", "date": dt.datetime.now(dt.UTC).isoformat(),
                    "environment": env})
    if validate_archs > 0 and only is None:
        rng = np.random.default_rng(seed + 1)
        archs = [space.sample(rng) for _ in range(calibrate_archs + validate_archs)]
        passes = measure_networks(space, archs, timer=timer, batch=batch, rounds=network_rounds, progress=progress,
                                  runtime=runtime, threads=threads)
        calibration, held_out = slice(0, calibrate_archs), slice(calibrate_archs, None)
        both = np.sqrt(passes[0] * passes[1])
        first, second = passes[0][held_out], passes[1][held_out]
        if calibrate_archs:
            scales = calibrate(space, table, archs[calibration],
                               both[calibration])
            table.provenance["calibration"] = {"networks": calibrate_archs, "scale_per_op_type": scales}
        from latency_tables.estimator import LatencyEstimator

        predicted = LatencyEstimator(table, space).predict(archs[held_out])
        flops, params = flops_and_params(space, archs[held_out])
        table.validation = {"held_out": True, "source": f"{validate_archs} random networks (seed {seed + 1}, "
                            f"not in the calibration set) timed end to end twice, interleaved, {network_rounds} "
                            "rounds each; compared with the first measurement",
                            **validation_report(predicted, first),
                            "noise_floor": validation_report(second, first),
                            "flops_kendall_tau": validation_report(flops, first)["kendall_tau"],
                            "params_kendall_tau": validation_report(params, first)["kendall_tau"]}
    ref = np.asarray(timer.reference_times)
    table.provenance["reference_drift"] = {"fastest_ms": float(ref.min()), "slowest_ms": float(ref.max()),
                                           "ratio": float(ref.max() / ref.min())}
    table.provenance["build_seconds"] = time.perf_counter() - started
    return table


def _runtime_name(runtime: str) -> str:
    import torch

    if runtime == "onnxruntime":
        import onnxruntime as ort

        return f"onnxruntime {ort.__version__}"
    return f"pytorch {torch.__version__} eager"

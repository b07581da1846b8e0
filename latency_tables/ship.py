"""Rebuild the shipped tables from the published measurements in ../shared/data.

    python -m latency_tables.ship                # every space with a <space>_hw.csv there
    python -m latency_tables.ship SPACE          # one space
    python -m latency_tables.ship profile [SPACE]  # profiled on this machine's CPU (minutes; default: the default space)
    python -m latency_tables.ship band [SPACE]   # add the held-out error band to the shipped tables

For every ``lat_<device>`` column: fit on a seeded random ``FIT_ROWS`` rows with
``fit_table`` (no basis: each shipped table stands on its own device's data), then
validate on all the other rows and store that as the table's validation block, with
the error band (quantiles of measured / predicted on those rows). The raw CSVs stay
outside the repository.
"""

from __future__ import annotations

import sys

import numpy as np

from latency_tables.estimator import LatencyEstimator
from latency_tables.fit import fit_table, ratio_quantiles, validation_report
from latency_tables.measurements import SHARED_DATA, read_shared
from latency_tables.table import SHIPPED_DIR, load_table, save_table
from search_spaces import DEFAULT_SPACE, SPACES, get_space

MEASURED_BY = "HELP (Lee et al., NeurIPS 2021) / HW-NAS-Bench (Li et al., ICLR 2021)"
HARDWARE = {"1080ti": ("gpu", "pytorch", "NVIDIA GTX 1080 Ti"), "titan_rtx": ("gpu", "pytorch", "NVIDIA Titan RTX"),
            "silver_4114": ("cpu", "pytorch", "Intel Xeon Silver 4114"),
            "gold_6240": ("cpu", "pytorch", "Intel Xeon Gold 6240"),
            "essential_ph_1": ("mobile", "tflite", "Essential PH-1"),
            "samsung_s7": ("mobile", "tflite", "Samsung Galaxy S7"), "pixel3": ("mobile", "tflite", "Google Pixel 3"),
            "raspi4": ("edge", "tflite", "Raspberry Pi 4"), "eyeriss": ("asic", "simulator", "Eyeriss"),
            "fpga": ("fpga", "simulator", "FPGA accelerator")}
FIT_ROWS = 1000
SEED = 0


def device_metadata(device: str) -> dict[str, object]:
    """'1080ti_32' -> GPU at batch 32; other names are batch 1."""
    family, _, batch = device.rpartition("_")
    if family in HARDWARE and batch.isdigit():
        kind, runtime, hardware = HARDWARE[family]
        batch_size = int(batch)
    else:
        kind, runtime, hardware = HARDWARE[device]
        batch_size = 1
    return {"name": device, "kind": kind, "runtime": runtime, "batch_size": batch_size,
            "hardware": hardware, "measured": MEASURED_BY}


def ship_space(space_name: str) -> None:
    space = get_space(space_name)
    archs, columns = read_shared(space)
    order = np.random.default_rng(SEED).permutation(len(archs))
    fit_idx, val_idx = order[:FIT_ROWS], order[FIT_ROWS:]
    val_codes = np.stack([space.encode(archs[i]) for i in val_idx])
    for device, y in columns.items():
        table = fit_table(space, [archs[i] for i in fit_idx], y[fit_idx], device=device_metadata(device),
                          source=f"{space.name}_hw.csv (shared data), {FIT_ROWS} rows, seed {SEED}")
        predicted = LatencyEstimator(table, space).predict_codes(val_codes)
        table.validation = {"held_out": True, "source": f"{space.name}_hw.csv rows not used by the fit",
                            **validation_report(predicted, y[val_idx]),
                            "residual_ratio_quantiles": ratio_quantiles(y[val_idx], predicted)}
        out = SHIPPED_DIR / f"{space.name}__{device}.json"
        save_table(table, out)
        v = table.validation
        print(f"{out.name:32s} within 10% {v['within_10pct']:6.1%}  tau {v['kendall_tau']:.3f}  "
              f"spearman {v['spearman']:.3f}  (n={v['n']})")


def ship_band(space_name: str) -> None:
    """Add ``validation.residual_ratio_quantiles`` to the shipped tables of ``space_name`` from the
    same held-out rows their validation block was computed on, leaving every entry as it is."""
    space = get_space(space_name)
    archs, columns = read_shared(space)
    order = np.random.default_rng(SEED).permutation(len(archs))
    val_idx = order[FIT_ROWS:]
    val_codes = np.stack([space.encode(archs[i]) for i in val_idx])
    for device, y in columns.items():
        path = SHIPPED_DIR / f"{space.name}__{device}.json"
        table = load_table(path)
        if table.provenance.get("source") != f"{space.name}_hw.csv (shared data), {FIT_ROWS} rows, seed {SEED}":
            sys.exit(f"{path.name}: not fitted on the rows this command holds out; refit it with ship")
        predicted = LatencyEstimator(table, space).predict_codes(val_codes)
        check = validation_report(predicted, y[val_idx])
        if check["n"] != table.validation.get("n") or abs(check["kendall_tau"] - table.validation["kendall_tau"]) > 1e-9:
            sys.exit(f"{path.name}: its validation block was not computed on these held-out rows")
        table.validation["residual_ratio_quantiles"] = ratio_quantiles(y[val_idx], predicted)
        save_table(table, path)
        q = table.validation["residual_ratio_quantiles"]
        print(f"{path.name:32s} measured/predicted 0.05 {q['0.05']:.3f}  0.5 {q['0.5']:.3f}  0.95 {q['0.95']:.3f}")


PROFILED_DEVICE = "dev_vm_cpu_1t"
#: the space whose profiled table ships (the one README's CPU figures are for)
PROFILED_SPACE = DEFAULT_SPACE


def ship_profile(space_name: str = PROFILED_SPACE) -> None:
    """A space on this machine's CPU, one thread: ops timed, 100 held-out networks validated."""
    from latency_tables.profile import profile_space

    space = get_space(space_name)
    table = profile_space(space, threads=1, device_name=PROFILED_DEVICE, validate_archs=100)
    out = SHIPPED_DIR / f"{space.name}__{PROFILED_DEVICE}.json"
    save_table(table, out)
    v, floor = table.validation, table.validation["noise_floor"]
    print(f"{out.name}: within 10% {v['within_10pct']:.1%}, tau {v['kendall_tau']:.3f}; noise floor within 10% "
          f"{floor['within_10pct']:.1%}, tau {floor['kendall_tau']:.3f}; FLOPs tau {v['flops_kendall_tau']:.3f}, "
          f"params tau {v['params_kendall_tau']:.3f}; built in {table.provenance['build_seconds']:.0f} s")


def main(argv: list[str]) -> None:
    if argv[:1] == ["profile"]:
        ship_profile(*argv[1:2])
        return
    if argv and argv[0] == "band":
        for name in argv[1:] or [s for s in SPACES if (SHARED_DATA / f"{s}_hw.csv").is_file()]:
            ship_band(name)
        return
    if not SHARED_DATA.is_dir():
        sys.exit(f"{SHARED_DATA} is missing: the measurements live beside the checkout")
    for name in argv or [s for s in SPACES if (SHARED_DATA / f"{s}_hw.csv").is_file()]:
        ship_space(name)


if __name__ == "__main__":
    main(sys.argv[1:])

"""Rebuild the shipped tables from published measurements.

    python -m latency_tables.ship ../shared/data/nb201_hw.csv

Fits each ``lat_<device>`` column on a seeded random 1,000 rows and validates
on all the others; the raw CSV stays outside the repository.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from latency_tables.fit import fit_additive, validation_report
from latency_tables.table import SHIPPED_DIR, save_table
from search_spaces import get_space

DEVICES: dict[str, dict[str, object]] = {
    "1080ti_1": {"kind": "gpu", "runtime": "pytorch", "batch_size": 1, "hardware": "NVIDIA GTX 1080 Ti"},
    "1080ti_32": {"kind": "gpu", "runtime": "pytorch", "batch_size": 32, "hardware": "NVIDIA GTX 1080 Ti"},
    "1080ti_256": {"kind": "gpu", "runtime": "pytorch", "batch_size": 256, "hardware": "NVIDIA GTX 1080 Ti"},
    "titan_rtx_1": {"kind": "gpu", "runtime": "pytorch", "batch_size": 1, "hardware": "NVIDIA Titan RTX"},
    "titan_rtx_32": {"kind": "gpu", "runtime": "pytorch", "batch_size": 32, "hardware": "NVIDIA Titan RTX"},
    "titan_rtx_256": {"kind": "gpu", "runtime": "pytorch", "batch_size": 256, "hardware": "NVIDIA Titan RTX"},
    "silver_4114": {"kind": "cpu", "runtime": "pytorch", "batch_size": 1, "hardware": "Intel Xeon Silver 4114"},
    "gold_6240": {"kind": "cpu", "runtime": "pytorch", "batch_size": 1, "hardware": "Intel Xeon Gold 6240"},
    "essential_ph_1": {"kind": "mobile", "runtime": "tflite", "batch_size": 1, "hardware": "Essential PH-1"},
    "samsung_s7": {"kind": "mobile", "runtime": "tflite", "batch_size": 1, "hardware": "Samsung Galaxy S7"},
    "pixel3": {"kind": "mobile", "runtime": "tflite", "batch_size": 1, "hardware": "Google Pixel 3"},
    "raspi4": {"kind": "edge", "runtime": "tflite", "batch_size": 1, "hardware": "Raspberry Pi 4"},
    "eyeriss": {"kind": "asic", "runtime": "simulator", "batch_size": 1, "hardware": "Eyeriss"},
    "fpga": {"kind": "fpga", "runtime": "simulator", "batch_size": 1, "hardware": "FPGA accelerator"},
}
FIT_ROWS = 1000


def main(csv_path: str, space_name: str = "nb201") -> None:
    space = get_space(space_name)
    with open(csv_path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    archs = [space.normalize(r["arch"]) for r in rows]
    order = np.random.default_rng(0).permutation(len(rows))
    fit_idx, val_idx = order[:FIT_ROWS], order[FIT_ROWS:]
    for device, meta in DEVICES.items():
        y = np.array([float(r[f"lat_{device}"]) for r in rows])
        table = fit_additive(space, [archs[i] for i in fit_idx], y[fit_idx],
                             device={"name": device, **meta,
                                     "measured": "HELP (Lee et al. 2021) / HW-NAS-Bench (Li et al. 2021)"},
                             source=Path(csv_path).name)
        from latency_tables.estimator import LatencyEstimator

        predicted = LatencyEstimator(table, space).predict_codes(
            np.stack([space.encode(archs[i]) for i in val_idx]))
        table.validation = {"held_out": True, **validation_report(predicted, y[val_idx])}
        out = SHIPPED_DIR / f"{space.name}__{device}.json"
        save_table(table, out)
        print(f"{out.name}: within 10% {table.validation['within_10pct']:.1%}, "
              f"tau {table.validation['kendall_tau']:.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:])

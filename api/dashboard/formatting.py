"""Numbers for people: the one place a page formats a percentage, a latency or a count.

The templates use these as Jinja filters; ``static/dashboard.js`` has the same rules
(``fmt.pct``, ``fmt.ms``, ``fmt.si``, ``fmt.metric``) for what the browser draws, and
tests/api/dashboard/test_units.py checks both agree on the same values.
Fractions stay fractions in storage (a table's ``mape`` of 0.0104 is 1.04 %); only
``percent`` multiplies by 100.
"""

from __future__ import annotations

import math
from typing import Any

DASH = "–"
_SI = ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def sig(value: float | None, digits: int = 3) -> str:
    """``digits`` significant digits, no exponent for everyday magnitudes, no trailing zeros."""
    if _missing(value):
        return DASH
    v = float(value)  # type: ignore[arg-type]
    if v == 0:
        return "0"
    if abs(v) >= 10 ** digits:  # 12345.6 -> "12346", never "1.23e+04"
        return f"{v:.0f}"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(v))))
    text = f"{v:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(fraction: float | None, digits: int = 3) -> str:
    """A fraction as a percentage: 0.667 -> "66.7 %", 1.043 -> "104 %"."""
    return DASH if _missing(fraction) else f"{sig(100 * float(fraction), digits)} %"  # type: ignore[arg-type]


def si(value: float | None, digits: int = 3) -> str:
    """Counts (parameters, MACs): 51036800 -> "51.0 M"."""
    if _missing(value):
        return DASH
    v = float(value)  # type: ignore[arg-type]
    for scale, prefix in _SI:
        if abs(v) >= scale:
            return f"{_fixed(v / scale, digits)} {prefix}"
    return sig(v, digits)


def _fixed(v: float, digits: int) -> str:
    """Significant digits keeping trailing zeros (51.0, 1.50): a unit's digits line up."""
    if v == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(v))))
    return f"{v:.{decimals}f}"


def duration_s(seconds: float | None) -> str:
    """8e-06 s -> "8 µs", 0.0123 -> "12.3 ms", 75 -> "75.0 s", 3600 -> "60 min"."""
    if _missing(seconds):
        return DASH
    s = float(seconds)  # type: ignore[arg-type]
    if s < 1e-3:
        return f"{sig(s * 1e6)} µs"
    if s < 1:
        return f"{sig(s * 1e3)} ms"
    if s < 600:
        return f"{_fixed(s, 3)} s"
    return f"{sig(s / 60)} min"


def milliseconds(ms: float | None) -> str:
    """A latency given in ms: below 1 s as ms, above as s."""
    if _missing(ms):
        return DASH
    return duration_s(float(ms) / 1e3)  # type: ignore[arg-type]


def kilobytes(kb: float | None) -> str:
    if _missing(kb):
        return DASH
    v = float(kb)  # type: ignore[arg-type]
    return f"{_fixed(v / 1024, 3)} MB" if abs(v) >= 1024 else f"{sig(v)} KB"


def metric(key: str, value: float | None) -> str:
    """A trial metric by its key's unit (``latency_ms@pixel3``, ``macs``, ``peak_memory_kb``, ...)."""
    name = key.split("@", 1)[0]
    if name == "latency_ms":
        return milliseconds(value)
    if name == "energy_mj":
        return DASH if _missing(value) else f"{sig(value)} mJ"
    if name.endswith("_kb"):
        return kilobytes(value)
    if name in ("params", "macs", "flops", "memory_access_cost"):
        return si(value)
    return sig(value, 4)


def metric_value(value: float | None, key: str) -> str:
    """``metric`` with the value first, for Jinja's ``value|metric_value(key)``."""
    return metric(key, value)


FILTERS = {"metric_value": metric_value, "sig": sig, "percent": percent, "si": si, "duration_s": duration_s, "milliseconds": milliseconds,
           "kilobytes": kilobytes}

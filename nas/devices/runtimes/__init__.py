"""Device runtimes by registry: ``RUNTIMES[name]`` (one file each; tests run every entry)."""

from nas.devices.runtimes.base import DeviceRuntime, ModelRef, RuntimeConfigError, RuntimeResult
from nas.devices.runtimes.command import CommandRuntime
from nas.devices.runtimes.onnxruntime import OnnxRuntime
from nas.devices.runtimes.torch import TorchRuntime

RUNTIMES: dict[str, type[DeviceRuntime]] = {cls.name: cls for cls in (OnnxRuntime, TorchRuntime, CommandRuntime)}


def make_runtime(name: str, **options: object) -> DeviceRuntime:
    """The runtime ``name`` built with ``options``; RuntimeConfigError names what to fix."""
    if name not in RUNTIMES:
        raise RuntimeConfigError(f"unknown runtime {name!r}; valid: {', '.join(sorted(RUNTIMES))}")
    cls = RUNTIMES[name]
    if not cls.takes_command and options.get("command"):
        raise RuntimeConfigError(f"--command is only for --runtime command, not {name!r}")
    return cls(**options)  # type: ignore[arg-type]


__all__ = ["RUNTIMES", "DeviceRuntime", "ModelRef", "RuntimeConfigError", "RuntimeResult", "make_runtime"]

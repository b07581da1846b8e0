"""What a device runtime is: one way an agent measures a model file on its device.

A runtime is one file in this package plus an entry in ``RUNTIMES`` (``__init__.py``).
The agent exports each model it is sent in the runtime's ``export_format`` (ONNX,
standalone torch code, or nothing when the user's tool builds the model from the
architecture string) and calls ``measure`` on a batch, so in-process runtimes can
interleave the batch's models in rounds (a slow spell then hits them all alike).
"""

from __future__ import annotations

import os
import platform
import socket
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar


class RuntimeConfigError(ValueError):
    """The runtime cannot be set up as asked (a missing --command, a tool that is not installed, ...)."""


@dataclass(frozen=True)
class ModelRef:
    """One model to measure: its architecture, and the exported file when the runtime needs one."""

    space: str
    arch: str
    path: Path | None
    input_shape: tuple[int, ...]


@dataclass
class RuntimeResult:
    """A measurement, or the reason there is none (never a silent 0)."""

    latency_ms: float | None = None
    energy_mj: float | None = None
    peak_memory_kb: float | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.latency_ms is not None


class DeviceRuntime(ABC):
    name: ClassVar[str]
    description: ClassVar[str]
    #: Whether the runtime runs a user-given ``--command``.
    takes_command: ClassVar[bool] = False
    #: Whether ``measure`` times a batch's models interleaved in one process: the agent then adds
    #: its anchor model to every batch, so batches timed at different loads share one scale.
    interleaved: ClassVar[bool] = False

    def __init__(self, *, threads: int = 1, command: str | None = None, timeout_s: float = 300.0,
                 rounds: int = 10, seed: int = 0):
        if threads < 1:
            raise RuntimeConfigError("--threads must be at least 1")
        self.threads, self.command, self.timeout_s, self.rounds, self.seed = threads, command, timeout_s, rounds, seed
        #: In-process runtimes: the reference kernel's slowest / fastest time in the last batch.
        self.reference_drift: float | None = None

    @property
    @abstractmethod
    def export_format(self) -> str | None:
        """``onnx`` or ``torch``: what the agent exports for it; None: the architecture string is enough."""

    @abstractmethod
    def measure(self, models: list[ModelRef]) -> list[RuntimeResult]:
        """One result per model, in order; a model that cannot be measured gets its error."""

    def environment(self) -> dict[str, Any]:
        """What the measurements were taken with (stored with every result)."""
        return {"runtime": self.name, "threads": self.threads, **host_environment()}

    @classmethod
    def example_options(cls, workdir: Path) -> dict[str, Any]:
        """Options under which this runtime measures here (the conformance test constructs it so)."""
        return {}


def host_environment() -> dict[str, Any]:
    env: dict[str, Any] = {"host": socket.gethostname(), "machine": platform.machine(),
                           "python": platform.python_version(), "cpu_count": os.cpu_count()}
    try:
        env["cpu_model"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                                if line.startswith("model name"))
    except (OSError, StopIteration):
        env["cpu_model"] = platform.processor() or platform.machine()
    return env

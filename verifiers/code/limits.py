"""Resource limits for one sandboxed submission."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Limits applied to the solution's processes.

    cpu_seconds: CPU time per test case (the verdict is judged on CPU time, so
        a loaded machine does not turn slow-but-correct code into a timeout).
    wall_seconds: wall-clock backstop per test case.
    memory_bytes: address space per process (RLIMIT_AS).
    max_processes: processes and threads of the sandbox uid (RLIMIT_NPROC);
        works because the solution runs as an unprivileged uid.
    max_output_bytes: stdout per case / size of one serialised return value.
    max_file_bytes: largest file the solution may write (RLIMIT_FSIZE); the
        writable tmpfs is twice this size (at least 64 MiB).
    max_open_files: RLIMIT_NOFILE.
    total_wall_seconds: cap on the whole submission (all cases); cases not
        started in time count as timeouts.
    compile_seconds: CPU and wall limit for compiling (C++).
    """

    cpu_seconds: float = 4.0
    wall_seconds: float = 12.0
    memory_bytes: int = 1 << 30
    max_processes: int = 16
    max_output_bytes: int = 8 << 20
    max_file_bytes: int = 32 << 20
    max_open_files: int = 256
    total_wall_seconds: float = 60.0
    compile_seconds: float = 30.0

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not value > 0:
                raise ValueError(f"SandboxLimits.{name} must be positive, got {value!r}")
        if self.max_processes < 4:
            raise ValueError("SandboxLimits.max_processes must be at least 4")

    @property
    def tmpfs_bytes(self) -> int:
        return max(64 << 20, 2 * self.max_file_bytes)

    def guest(self) -> dict[str, Any]:
        """The limits in the launcher's wire format."""
        return {
            "cpu": self.cpu_seconds,
            "wall": self.wall_seconds,
            "memory": self.memory_bytes,
            "nproc": self.max_processes,
            "output": self.max_output_bytes,
            "fsize": self.max_file_bytes,
            "nofile": self.max_open_files,
            "total": self.total_wall_seconds,
        }

    def guest_compile(self) -> dict[str, Any]:
        """Limits for the compiler, in the launcher's wire format."""
        return {
            "cpu": self.compile_seconds,
            "wall": self.compile_seconds,
            "memory": max(self.memory_bytes, 2 << 30),
            "nproc": max(self.max_processes, 32),
            "output": 1 << 20,
            "nofile": max(self.max_open_files, 256),
        }

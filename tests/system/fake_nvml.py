"""A stand-in for ``pynvml``: the NVML functions autolog's NVIDIA sampler calls, over fake GPUs.

It is a real object with the same function names, error class and constants as ``pynvml``, so
the sampler runs its real code against it. Each fake GPU holds its readings; ``fail`` makes one
call raise for one GPU, ``lost`` makes every call for a GPU raise ``GPU is lost``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_UNKNOWN = 999
NVML_TEMPERATURE_GPU = 0
NVML_CLOCK_SM = 1


class NVMLError(Exception):
    def __init__(self, value: int):
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return {1: "Uninitialized", 3: "Not Supported", 9: "Driver Not Loaded",
                12: "NVML Shared Library Not Found", 15: "GPU is lost"}.get(self.value,
                                                                           "Unknown Error")


class NVMLLibraryMismatchError(Exception):
    """What pynvml raises when the driver lacks the newest version of a function."""


@dataclass
class FakeGPU:
    name: str
    uuid: str
    memory_total: int = 16 * 2**30
    memory_used: int = 4 * 2**30
    utilization: int = 50
    power_mw: int = 150_000
    power_limit_mw: int = 300_000
    temperature: int = 60
    sm_clock: int = 1410
    processes: list[tuple[int, int | None]] = field(default_factory=list)  # (pid, bytes)
    fail: set[str] = field(default_factory=set)  # function names that raise NVML_ERROR_UNKNOWN
    unsupported: set[str] = field(default_factory=set)  # ... that raise NOT_SUPPORTED
    lost: bool = False


class FakeNVML:
    """Implements the ``pynvml`` functions the sampler uses, over ``gpus``."""

    NVMLError = NVMLError
    NVMLLibraryMismatchError = NVMLLibraryMismatchError
    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU
    NVML_CLOCK_SM = NVML_CLOCK_SM

    def __init__(self, gpus: list[FakeGPU], *, init_error: int | None = None,
                 driver: str | bytes = "550.54.15", cuda: int = 12040,
                 old_driver: bool = False):
        self.gpus = gpus
        self.init_error = init_error
        self.driver = driver
        self.cuda = cuda
        self.old_driver = old_driver  # no ..._v3 process list: pynvml raises a mismatch error
        self.initialized = 0  # NVML counts nvmlInit / nvmlShutdown pairs
        self.calls: list[str] = []

    # -- library ---------------------------------------------------------------------------

    def nvmlInit(self) -> None:
        if self.init_error is not None:
            raise NVMLError(self.init_error)
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        self._check()
        self.initialized -= 1

    def nvmlSystemGetDriverVersion(self) -> str | bytes:
        self._check()
        return self.driver

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._check()
        return self.cuda

    def nvmlDeviceGetCount(self) -> int:
        self._check()
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGPU:
        self._check()
        if not 0 <= index < len(self.gpus):
            raise NVMLError(2)
        return self.gpus[index]

    # -- per device --------------------------------------------------------------------------

    def nvmlDeviceGetName(self, gpu: FakeGPU) -> str:
        return self._call("nvmlDeviceGetName", gpu, lambda: gpu.name)

    def nvmlDeviceGetUUID(self, gpu: FakeGPU) -> str:
        return self._call("nvmlDeviceGetUUID", gpu, lambda: gpu.uuid)

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGPU) -> Any:
        return self._call("nvmlDeviceGetMemoryInfo", gpu, lambda: SimpleNamespace(
            total=gpu.memory_total, used=gpu.memory_used, free=gpu.memory_total - gpu.memory_used))

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGPU) -> Any:
        return self._call("nvmlDeviceGetUtilizationRates", gpu,
                          lambda: SimpleNamespace(gpu=gpu.utilization, memory=10))

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGPU) -> int:
        return self._call("nvmlDeviceGetPowerUsage", gpu, lambda: gpu.power_mw)

    def nvmlDeviceGetEnforcedPowerLimit(self, gpu: FakeGPU) -> int:
        return self._call("nvmlDeviceGetEnforcedPowerLimit", gpu, lambda: gpu.power_limit_mw)

    def nvmlDeviceGetTemperature(self, gpu: FakeGPU, sensor: int) -> int:
        assert sensor == NVML_TEMPERATURE_GPU
        return self._call("nvmlDeviceGetTemperature", gpu, lambda: gpu.temperature)

    def nvmlDeviceGetClockInfo(self, gpu: FakeGPU, clock: int) -> int:
        assert clock == NVML_CLOCK_SM
        return self._call("nvmlDeviceGetClockInfo", gpu, lambda: gpu.sm_clock)

    def nvmlDeviceGetComputeRunningProcesses(self, gpu: FakeGPU) -> list[Any]:
        if self.old_driver:
            raise NVMLLibraryMismatchError("Unversioned function called ...")
        return self.nvmlDeviceGetComputeRunningProcesses_v2(gpu)

    def nvmlDeviceGetComputeRunningProcesses_v2(self, gpu: FakeGPU) -> list[Any]:
        return self._call("nvmlDeviceGetComputeRunningProcesses", gpu, lambda: [
            SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in gpu.processes])

    def _call(self, name: str, gpu: FakeGPU, read: Any) -> Any:
        self._check()
        self.calls.append(name)
        if gpu.lost:
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if name in gpu.unsupported:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        if name in gpu.fail:
            raise NVMLError(NVML_ERROR_UNKNOWN)
        return read()

    def _check(self) -> None:
        if self.initialized <= 0:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)


def two_gpus() -> list[FakeGPU]:
    return [
        FakeGPU("NVIDIA A100-SXM4-40GB", "GPU-aaaa1111-0000-0000-0000-000000000000",
                memory_total=40 * 2**30, memory_used=10 * 2**30, utilization=87,
                power_mw=250_500, power_limit_mw=400_000, temperature=61, sm_clock=1410),
        FakeGPU("NVIDIA A100-SXM4-40GB", "GPU-bbbb2222-0000-0000-0000-000000000000",
                memory_total=40 * 2**30, memory_used=2 * 2**30, utilization=3,
                power_mw=60_000, power_limit_mw=400_000, temperature=35, sm_clock=210),
    ]

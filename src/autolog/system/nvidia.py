"""NVIDIA GPUs, read with NVML (``pynvml``, from the ``nvidia-ml-py`` distribution).

Only the GPUs this process can use are sampled: ``CUDA_VISIBLE_DEVICES`` is honoured (indices or
``GPU-`` UUID prefixes, read the way CUDA reads it: the list stops at the first entry that names no
GPU), and GPU ``<i>`` in the metric names is the CUDA ordinal the process sees (``cuda:<i>``).
``AUTOLOG_GPU_ALL_DEVICES=1`` samples every GPU instead, named by its NVML index.

Without ``pynvml``, without a driver, or with no visible GPU, the sampler is off: one
informational log message says why, and ``autolog doctor`` shows the same reason. While sampling,
a failing NVML call (a GPU that fell off the bus, a reading the board does not support) costs that
reading, never the other readings or the other GPUs.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from typing import TYPE_CHECKING, Any

from ..hookspecs import hookimpl
from . import Sampler, SamplerUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..config import Settings

__all__ = ["NvidiaSampler", "visible_devices"]

TAG = "autolog.system."
ALL_DEVICES_VAR = "AUTOLOG_GPU_ALL_DEVICES"
_NOT_SUPPORTED = 3  # NVML_ERROR_NOT_SUPPORTED
_FUNCTION_NOT_FOUND = 13  # NVML_ERROR_FUNCTION_NOT_FOUND: an older driver
_log = logging.getLogger("autolog")
_told_off = False  # the "GPU sampling is off" message is given once per process


@hookimpl
def autolog_register_samplers(register: Callable[[type[Sampler]], None]) -> None:
    register(NvidiaSampler)


class _Device:
    __slots__ = ("handle", "label", "name", "skip", "uuid")

    def __init__(self, label: str, handle: Any, uuid: str, name: str):
        self.label = label
        self.handle = handle
        self.uuid = uuid
        self.name = name
        self.skip: set[str] = set()  # readings this GPU does not support: never asked again


class NvidiaSampler(Sampler):
    """Per visible GPU: utilization, memory, power, temperature, SM clock, this process's memory.

    ``nvml`` is the NVML binding to use (default: ``import pynvml``); tests give a stand-in.
    """

    name = "nvidia"

    @classmethod
    def warm(cls) -> None:
        _import_pynvml()

    def __init__(self, settings: Settings, nvml: Any = None):
        super().__init__(settings)
        self.nvml = nvml if nvml is not None else _import_pynvml()
        # pynvml raises this (not an NVMLError) when the driver lacks a function's newest version
        self._mismatch = getattr(self.nvml, "NVMLLibraryMismatchError", ())
        self._errors = (self.nvml.NVMLError, *((self._mismatch,) if self._mismatch else ()))
        try:
            self.nvml.nvmlInit()
        except self.nvml.NVMLError as exc:
            raise _off(f"NVML could not start ({exc}): no NVIDIA driver on this machine?")
        try:
            self.devices = self._open_devices()
        except BaseException:
            self._shutdown()
            raise

    def _open_devices(self) -> list[_Device]:
        nvml = self.nvml
        try:
            count = nvml.nvmlDeviceGetCount()
        except nvml.NVMLError as exc:
            raise _off(f"NVML could not count GPUs ({exc})")
        if count == 0:
            raise _off("NVML found no NVIDIA GPU")
        devices = []
        for label, index in self._selected(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            except nvml.NVMLError as exc:
                _log.info("autolog: GPU %d is not sampled: %s", index, exc)
                continue
            devices.append(_Device(label, handle, self._text(nvml.nvmlDeviceGetUUID, handle),
                                   self._text(nvml.nvmlDeviceGetName, handle)))
        if not devices:
            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            raise _off(f"no GPU to sample among the {count} NVML sees"
                       + (f" (CUDA_VISIBLE_DEVICES={visible!r})" if visible is not None else ""))
        return devices

    def _selected(self, count: int) -> list[tuple[str, int]]:
        """(label, NVML index) of the GPUs to sample."""
        cuda_visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        if cuda_visible is None or _all_devices(self.settings):
            return [(str(i), i) for i in range(count)]
        uuids = []
        for i in range(count):
            try:
                uuids.append(self._text(self.nvml.nvmlDeviceGetUUID,
                                        self.nvml.nvmlDeviceGetHandleByIndex(i)))
            except self.nvml.NVMLError:
                uuids.append("")
        indices = visible_devices(cuda_visible, uuids)
        return [(str(ordinal), index) for ordinal, index in enumerate(indices)]

    def static_tags(self) -> dict[str, str]:
        nvml = self.nvml
        tags = {TAG + "gpu_count": str(len(self.devices))}
        driver = self._try(nvml.nvmlSystemGetDriverVersion)
        if driver is not None:
            tags[TAG + "gpu_driver_version"] = _decode(driver)
        cuda = self._try(nvml.nvmlSystemGetCudaDriverVersion)
        if cuda:  # 12040 -> "12.4"
            tags[TAG + "cuda_driver_version"] = f"{cuda // 1000}.{cuda % 1000 // 10}"
        for dev in self.devices:
            prefix = f"{TAG}gpu.{dev.label}."
            tags[prefix + "name"] = dev.name
            tags[prefix + "uuid"] = dev.uuid
            memory = self._try(nvml.nvmlDeviceGetMemoryInfo, dev.handle)
            if memory is not None:
                tags[prefix + "memory_total_bytes"] = str(memory.total)
        return {key: value for key, value in tags.items() if value}

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        family: set[int] | None = None
        for dev in self.devices:
            prefix = f"gpu/{dev.label}/"
            for key, value in self._device_readings(dev).items():
                out[prefix + key] = value
            processes = self._read(dev, "processes", self._compute_processes)
            if processes is not None:
                if family is None and processes:
                    from .cpu import family_pids

                    family = family_pids()
                out[prefix + "process_memory_bytes"] = float(sum(
                    p.usedGpuMemory or 0 for p in processes if family and p.pid in family))
        return out

    def _device_readings(self, dev: _Device) -> dict[str, float]:
        nvml, out = self.nvml, {}
        util = self._read(dev, "utilization", nvml.nvmlDeviceGetUtilizationRates)
        if util is not None:
            out["utilization_percent"] = float(util.gpu)
        memory = self._read(dev, "memory", nvml.nvmlDeviceGetMemoryInfo)
        if memory is not None:
            out["memory_used_bytes"] = float(memory.used)
            out["memory_total_bytes"] = float(memory.total)
            if memory.total:
                out["memory_percent"] = 100.0 * memory.used / memory.total
        milliwatts = self._read(dev, "power", nvml.nvmlDeviceGetPowerUsage)
        if milliwatts is not None:
            out["power_watts"] = milliwatts / 1000.0
            limit = self._read(dev, "power_limit", nvml.nvmlDeviceGetEnforcedPowerLimit)
            if limit:
                out["power_percent"] = 100.0 * milliwatts / limit
        sensor = getattr(nvml, "NVML_TEMPERATURE_GPU", 0)
        temperature = self._read(dev, "temperature", nvml.nvmlDeviceGetTemperature, sensor)
        if temperature is not None:
            out["temperature_celsius"] = float(temperature)
        sm = getattr(nvml, "NVML_CLOCK_SM", 1)
        clock = self._read(dev, "sm_clock", nvml.nvmlDeviceGetClockInfo, sm)
        if clock is not None:
            out["sm_clock_mhz"] = float(clock)
        return out

    # -- calling NVML ------------------------------------------------------------------------

    def _compute_processes(self, handle: Any) -> list[Any]:
        """Processes with a CUDA context on the GPU; drivers before R470 need the ``_v2`` call."""
        try:
            return self.nvml.nvmlDeviceGetComputeRunningProcesses(handle)
        except self._errors as exc:
            older = getattr(self.nvml, "nvmlDeviceGetComputeRunningProcesses_v2", None)
            if older is None or not self._is_missing(exc):
                raise
            return older(handle)

    def _is_missing(self, exc: BaseException) -> bool:
        """The driver does not have this function or reading: asking again will not help."""
        return isinstance(exc, self._mismatch) or getattr(exc, "value", None) in (
            _NOT_SUPPORTED, _FUNCTION_NOT_FOUND)

    def _read(self, dev: _Device, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        """One NVML reading of one GPU, or None: a failure costs this reading only."""
        if what in dev.skip:
            return None
        try:
            return fn(dev.handle, *args)
        except self._errors as exc:
            if self._is_missing(exc):
                dev.skip.add(what)
                _log.info("autolog: GPU %s does not report %s (%s); not asked again",
                          dev.label, what, exc)
            else:
                _log.debug("autolog: GPU %s: reading %s failed: %s", dev.label, what, exc)
            return None

    def _try(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except self.nvml.NVMLError:
            return None

    def _text(self, fn: Callable[[Any], Any], handle: Any) -> str:
        value = self._try(fn, handle)
        return "" if value is None else _decode(value)

    def close(self) -> None:
        self._shutdown()

    def _shutdown(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except self.nvml.NVMLError:
            pass


def visible_devices(cuda_visible: str | None, uuids: list[str]) -> list[int]:
    """NVML indices of the GPUs ``CUDA_VISIBLE_DEVICES`` makes visible, in CUDA's order.

    ``uuids[i]`` is the UUID of NVML device ``i``. Unset: every GPU. Entries are indices or UUID
    prefixes (``GPU-8d1f``); as in CUDA, the first entry that names no GPU (out of range,
    ambiguous, ``-1``, a MIG instance) ends the list, and a repeated GPU is counted once.
    """
    if cuda_visible is None:
        return list(range(len(uuids)))
    chosen: list[int] = []
    for entry in (e.strip() for e in cuda_visible.split(",")):
        index = _device_index(entry, uuids)
        if index is None:
            break
        if index not in chosen:
            chosen.append(index)
    return chosen


def _device_index(entry: str, uuids: list[str]) -> int | None:
    if entry.isdigit():
        index = int(entry)
        return index if index < len(uuids) else None
    if entry.upper().startswith("GPU-"):
        matches = [i for i, uuid in enumerate(uuids)
                   if uuid and uuid.lower().startswith(entry.lower())]
        return matches[0] if len(matches) == 1 else None
    return None


def _all_devices(settings: Settings) -> bool:
    configured = getattr(settings, "gpu_all_devices", None)
    if configured is not None:
        return bool(configured)
    from ..config import parse_bool

    return parse_bool(ALL_DEVICES_VAR, os.environ.get(ALL_DEVICES_VAR), False)


def _import_pynvml() -> Any:
    """``pynvml``; on Linux, not even imported (14 ms) where there is no NVIDIA device."""
    if "pynvml" not in sys.modules:
        if importlib.util.find_spec("pynvml") is None:
            raise _off("pynvml is not installed; pip install nvidia-ml-py")
        if not _may_have_a_driver():
            raise _off("no NVIDIA driver on this machine (no /proc/driver/nvidia, /dev/nvidia*)")
    try:
        import pynvml
    except ImportError as exc:
        raise _off(f"pynvml is not installed ({exc}); pip install nvidia-ml-py")
    return pynvml


def _may_have_a_driver() -> bool:
    """False only on Linux with none of the NVIDIA driver's device files (``/dev/dxg``: WSL)."""
    if sys.platform != "linux":
        return True
    return (os.path.exists("/proc/driver/nvidia") or os.path.exists("/dev/dxg")
            or any(name.startswith("nvidia") for name in _listdir("/dev")))


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _off(reason: str) -> SamplerUnavailable:
    """The exception that switches GPU sampling off, after one informational message."""
    global _told_off
    if not _told_off:
        _told_off = True
        _log.info("autolog: GPU sampling is off: %s", reason)
    return SamplerUnavailable(reason)


def _decode(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)

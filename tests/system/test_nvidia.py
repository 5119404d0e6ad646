"""The NVIDIA sampler against a stand-in NVML (tests/system/fake_nvml.py): mapping, CUDA device
visibility, failing calls, lost GPUs, and being off without NVML."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time

import pytest

import autolog
from autolog import testing
from autolog.api import get_settings
from autolog.hookspecs import hookimpl
from autolog.plugins import get_plugins
from autolog.system import SamplerUnavailable, nvidia
from autolog.system.nvidia import NvidiaSampler, visible_devices

from .fake_nvml import NVML_ERROR_DRIVER_NOT_LOADED, FakeNVML, two_gpus

GiB = 2**30
UUIDS = ["GPU-aaaa1111-0000", "GPU-bbbb2222-0000", "GPU-aaab3333-0000"]


@pytest.fixture(autouse=True)
def gpu_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(nvidia, "_told_off", False)


def sampler(nvml: FakeNVML) -> NvidiaSampler:
    return NvidiaSampler(get_settings(), nvml=nvml)


def test_readings_and_tags_of_two_gpus():
    nvml = FakeNVML(two_gpus())
    s = sampler(nvml)
    assert s.sample() == {
        "gpu/0/utilization_percent": 87.0,
        "gpu/0/memory_used_bytes": 10.0 * GiB,
        "gpu/0/memory_total_bytes": 40.0 * GiB,
        "gpu/0/memory_percent": 25.0,
        "gpu/0/power_watts": 250.5,
        "gpu/0/power_percent": 62.625,
        "gpu/0/temperature_celsius": 61.0,
        "gpu/0/sm_clock_mhz": 1410.0,
        "gpu/0/process_memory_bytes": 0.0,
        "gpu/1/utilization_percent": 3.0,
        "gpu/1/memory_used_bytes": 2.0 * GiB,
        "gpu/1/memory_total_bytes": 40.0 * GiB,
        "gpu/1/memory_percent": 5.0,
        "gpu/1/power_watts": 60.0,
        "gpu/1/power_percent": 15.0,
        "gpu/1/temperature_celsius": 35.0,
        "gpu/1/sm_clock_mhz": 210.0,
        "gpu/1/process_memory_bytes": 0.0,
    }
    assert s.static_tags() == {
        "autolog.system.gpu_count": "2",
        "autolog.system.gpu_driver_version": "550.54.15",
        "autolog.system.cuda_driver_version": "12.4",
        "autolog.system.gpu.0.name": "NVIDIA A100-SXM4-40GB",
        "autolog.system.gpu.0.uuid": "GPU-aaaa1111-0000-0000-0000-000000000000",
        "autolog.system.gpu.0.memory_total_bytes": str(40 * GiB),
        "autolog.system.gpu.1.name": "NVIDIA A100-SXM4-40GB",
        "autolog.system.gpu.1.uuid": "GPU-bbbb2222-0000-0000-0000-000000000000",
        "autolog.system.gpu.1.memory_total_bytes": str(40 * GiB),
    }
    s.close()
    assert nvml.initialized == 0


def test_bytes_from_old_pynvml_are_decoded():
    gpus = two_gpus()
    gpus[0].name = b"Tesla V100"  # type: ignore[assignment]
    s = sampler(FakeNVML(gpus, driver=b"470.82"))
    tags = s.static_tags()
    assert tags["autolog.system.gpu.0.name"] == "Tesla V100"
    assert tags["autolog.system.gpu_driver_version"] == "470.82"
    s.close()


@pytest.mark.parametrize(("visible", "expected"), [
    (None, [0, 1, 2]),
    ("", []),
    ("1", [1]),
    ("2,0", [2, 0]),
    (" 1 , 0 ", [1, 0]),
    ("0,7,1", [0]),  # CUDA stops at the first entry naming no GPU
    ("-1", []),
    ("1,1,0", [1, 0]),
    ("GPU-bbbb", [1]),
    ("gpu-BBBB2222-0000", [1]),
    ("GPU-aaa", []),  # ambiguous prefix: GPU-aaaa... and GPU-aaab...
    ("GPU-aaab,0", [2, 0]),
    ("MIG-0f0e0d0c,0", []),
])
def test_cuda_visible_devices(visible, expected):
    assert visible_devices(visible, UUIDS) == expected


def test_visible_gpus_are_named_by_their_cuda_ordinal(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb2222")
    s = sampler(FakeNVML(two_gpus()))
    readings = s.sample()
    assert {k.split("/")[1] for k in readings} == {"0"}
    assert readings["gpu/0/utilization_percent"] == 3.0  # the second physical GPU is cuda:0
    assert s.static_tags()["autolog.system.gpu.0.uuid"].startswith("GPU-bbbb2222")
    assert s.static_tags()["autolog.system.gpu_count"] == "1"
    s.close()


def test_all_devices_overrides_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    monkeypatch.setenv("AUTOLOG_GPU_ALL_DEVICES", "1")
    readings = sampler(FakeNVML(two_gpus())).sample()
    assert readings["gpu/0/utilization_percent"] == 87.0
    assert readings["gpu/1/utilization_percent"] == 3.0


def test_one_failing_call_costs_one_reading():
    gpus = two_gpus()
    gpus[0].fail = {"nvmlDeviceGetTemperature"}
    gpus[1].fail = {"nvmlDeviceGetEnforcedPowerLimit"}
    s = sampler(FakeNVML(gpus))
    for _ in range(2):
        readings = s.sample()
        assert "gpu/0/temperature_celsius" not in readings
        assert readings["gpu/0/sm_clock_mhz"] == 1410.0
        assert readings["gpu/0/power_percent"] == 62.625
        assert "gpu/1/power_percent" not in readings
        assert readings["gpu/1/power_watts"] == 60.0
        assert readings["gpu/1/temperature_celsius"] == 35.0
        assert len(readings) == 16


def test_unsupported_reading_is_not_asked_again():
    gpus = two_gpus()
    gpus[1].unsupported = {"nvmlDeviceGetPowerUsage"}
    nvml = FakeNVML(gpus)
    s = sampler(nvml)
    for _ in range(3):
        readings = s.sample()
    assert "gpu/1/power_watts" not in readings and "gpu/0/power_watts" in readings
    assert nvml.calls.count("nvmlDeviceGetPowerUsage") == 3 + 1  # GPU 0 each time, GPU 1 once


def test_a_gpu_lost_mid_run_costs_its_metrics_only():
    gpus = two_gpus()
    nvml = FakeNVML(gpus)
    s = sampler(nvml)
    assert len(s.sample()) == 18
    gpus[0].lost = True
    readings = s.sample()
    assert sorted({k.split("/")[1] for k in readings}) == ["1"]
    assert len(readings) == 9
    gpus[0].lost = False  # back after a reset: read again
    assert len(s.sample()) == 18
    s.close()


def test_process_memory_counts_this_process_and_its_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        gpus = two_gpus()
        gpus[0].processes = [(os.getpid(), 3 * GiB), (child.pid, GiB), (1, 20 * GiB)]
        gpus[1].processes = [(child.pid, None), (os.getpid(), GiB // 2)]  # None: not available
        readings = sampler(FakeNVML(gpus)).sample()
    finally:
        child.kill()
        child.wait()
    assert readings["gpu/0/process_memory_bytes"] == 4.0 * GiB
    assert readings["gpu/1/process_memory_bytes"] == 0.5 * GiB


def test_old_driver_falls_back_to_the_older_process_list_call(monkeypatch):
    gpus = two_gpus()
    gpus[0].processes = [(os.getpid(), GiB)]
    nvml = FakeNVML(gpus, old_driver=True)
    assert sampler(nvml).sample()["gpu/0/process_memory_bytes"] == 1.0 * GiB
    monkeypatch.delattr(FakeNVML, "nvmlDeviceGetComputeRunningProcesses_v2")
    readings = sampler(nvml).sample()  # nothing to fall back on: that reading only is lost
    assert "gpu/0/process_memory_bytes" not in readings and len(readings) == 16


def test_no_driver_switches_off_with_one_info_message(caplog):
    caplog.set_level(logging.INFO, logger="autolog")
    for _ in range(3):
        with pytest.raises(SamplerUnavailable, match=r"NVML could not start.*Driver Not Loaded"):
            sampler(FakeNVML(two_gpus(), init_error=NVML_ERROR_DRIVER_NOT_LOADED))
    messages = [r for r in caplog.records if "GPU sampling is off" in r.getMessage()]
    assert len(messages) == 1 and messages[0].levelno == logging.INFO


@pytest.mark.parametrize(("gpus", "visible", "why"), [
    ([], None, "found no NVIDIA GPU"),
    (two_gpus(), "", "no GPU to sample among the 2.*CUDA_VISIBLE_DEVICES=''"),
])
def test_nothing_to_sample_switches_off_and_releases_nvml(monkeypatch, gpus, visible, why):
    if visible is not None:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    nvml = FakeNVML(gpus)
    with pytest.raises(SamplerUnavailable, match=why):
        sampler(nvml)
    assert nvml.initialized == 0


def test_without_pynvml_doctor_says_why(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)  # what `import pynvml` meets when absent
    with pytest.raises(SamplerUnavailable, match="pynvml is not installed"):
        NvidiaSampler(get_settings())
    from autolog.doctor import report

    status = {s["name"]: s["status"] for s in report()["samplers"]}
    assert status["nvidia"].startswith("off: pynvml is not installed")


class _FakeGpuPlugin:
    class Sampler(NvidiaSampler):
        name = "fake-nvidia"
        nvml = FakeNVML(two_gpus())

        def __init__(self, settings):
            super().__init__(settings, nvml=type(self).nvml)

    @hookimpl
    def autolog_register_samplers(self, register):
        register(self.Sampler)


def test_gpu_metrics_reach_the_run_through_the_monitor(monkeypatch):
    monkeypatch.setenv("AUTOLOG_SYSTEM_METRICS", "1")
    monkeypatch.setenv("AUTOLOG_SYSTEM_INTERVAL", "0.2")
    monkeypatch.setenv("AUTOLOG_DISABLE_PLUGINS", "nvidia,cpu")  # only the fake GPUs here
    plugin = _FakeGpuPlugin()
    get_plugins(get_settings()).register(plugin, name="fake-gpu")
    with autolog.start_run() as run:
        deadline = time.monotonic() + 20
        while len(autolog.get_run(run.id).history("system/gpu/1/power_watts")) < 3:
            assert time.monotonic() < deadline, "the monitor logged fewer than 3 samples"
            time.sleep(0.1)
    record = autolog.get_run(run.id)
    points = record.history("system/gpu/0/utilization_percent")
    assert [step for step, _, _ in points] == list(range(len(points)))
    assert {value for _, value, _ in points} == {87.0}
    assert record.tags["autolog.system.gpu.1.uuid"].startswith("GPU-bbbb2222")
    assert record.tags["autolog.system.cuda_driver_version"] == "12.4"
    assert _FakeGpuPlugin.Sampler.nvml.initialized == 1  # kept for the process's next runs
    testing.reset()
    assert _FakeGpuPlugin.Sampler.nvml.initialized == 0  # released with the monitor

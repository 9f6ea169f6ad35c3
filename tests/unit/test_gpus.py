"""GPU backends: the fake one in process, the NVML one against a C stub of libnvidia-ml."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from gsched.agent import gpus
from gsched.agent.gpus import FakeBackend, GpuBackend, GpuError, NoGpus, detect, gpu_type
from gsched.common import xids

pytestmark = pytest.mark.timeout(60)

# ---------------------------------------------------------------- types


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("NVIDIA A100-SXM4-80GB", "a100"),
        ("NVIDIA A100 80GB PCIe", "a100"),
        ("NVIDIA H100 80GB HBM3", "h100"),
        ("NVIDIA H200", "h200"),
        ("NVIDIA GH200 480GB", "gh200"),
        ("Tesla V100-SXM2-16GB", "v100"),
        ("Tesla T4", "t4"),
        ("NVIDIA L40S", "l40s"),
        ("NVIDIA A10G", "a10g"),
        ("NVIDIA GeForce RTX 4090", "rtx4090"),
        ("NVIDIA RTX A6000", "a6000"),
        ("NVIDIA", "gpu"),
    ],
)
def test_gpu_type(name: str, expected: str) -> None:
    assert gpu_type(name) == expected


# ---------------------------------------------------------------- fake / none / detect


def test_fake_backend_inventory() -> None:
    backend = detect("fake:4", node_name="n1")
    assert isinstance(backend, FakeBackend)
    assert isinstance(backend, GpuBackend)
    assert backend.name == "fake"
    samples = backend.probe()
    assert [s.index for s in samples] == [0, 1, 2, 3]
    assert {s.type for s in samples} == {"a100"}
    assert all(s.healthy and s.health_reason == "" for s in samples)
    assert samples[0].name == "NVIDIA A100-SXM4-80GB"
    assert gpu_type(samples[0].name) == samples[0].type
    assert samples[0].memory_mb == 81920
    assert len({s.uuid for s in samples}) == 4
    assert [s.uuid for s in backend.probe()] == [s.uuid for s in samples]  # stable
    other_node = detect("fake:4", node_name="n2").probe()
    assert not {s.uuid for s in other_node} & {s.uuid for s in samples}
    backend.close()


def test_fake_backend_type_and_proto() -> None:
    samples = detect("fake:2:h100").probe()
    assert [(s.type, s.name) for s in samples] == [("h100", "NVIDIA H100 80GB HBM3")] * 2
    info = samples[1].to_proto()
    assert (info.index, info.type, info.healthy, info.memory_mb) == (1, "h100", True, 81559)
    assert [s.type for s in detect("fake:1:mi300").probe()] == ["mi300"]


def test_fake_faults_injected_at_runtime(tmp_path: Path) -> None:
    faults = tmp_path / "faults.json"
    backend = FakeBackend(4, faults_path=faults)
    assert all(s.healthy for s in backend.probe())  # no file yet: no faults

    faults.write_text(json.dumps({"1": "xid 79", "3": {"temperature_c": 97, "utilization": 55}}))
    samples = backend.probe()
    assert [(s.healthy, s.health_reason) for s in samples] == [
        (True, ""),
        (False, "xid 79"),
        (True, ""),
        (True, ""),
    ]
    assert (samples[3].temperature_c, samples[3].utilization) == (97, 55)

    faults.write_text("{not json")  # a half-written file keeps the last faults
    assert [s.healthy for s in backend.probe()] == [True, False, True, True]

    faults.write_text("{}")
    assert all(s.healthy for s in backend.probe())


def test_fake_faults_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    faults = tmp_path / "f.json"
    faults.write_text('{"0": "nvml: GPU is lost"}')
    monkeypatch.setenv(gpus.FAKE_FAULTS_ENV, str(faults))
    samples = detect("fake:2").probe()
    assert [(s.healthy, s.health_reason) for s in samples] == [
        (False, "nvml: GPU is lost"),
        (True, ""),
    ]


def test_no_gpus_and_bad_specs() -> None:
    for spec in ("none", ""):
        backend = detect(spec)
        assert isinstance(backend, NoGpus)
        assert backend.name == "none"
        assert backend.probe() == []
        backend.close()
    for bad in ("fake", "fake:x", "fake:2:", "gpus", "nvml:0"):
        with pytest.raises(GpuError):
            detect(bad)


# ---------------------------------------------------------------- NVML against the stub


@pytest.fixture(scope="module")
def stub_libs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("gcc is not installed")
    path = Path(__file__).resolve().parents[1] / "nvml_stub" / "build.py"
    spec = importlib.util.spec_from_file_location("gsched_tests_nvml_stub_build", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    build_stub = module.build_stub
    base = tmp_path_factory.mktemp("nvml")
    return {
        "events": build_stub(base / "events"),
        "no_events": build_stub(base / "no_events", events=False),
    }


PROBE = """
import json, sys
from gsched.agent import gpus

def dump(backend):
    return [s.__dict__ for s in backend.probe()]

out = {}
try:
    backend = gpus.detect(sys.argv[1])
except gpus.GpuError as exc:
    out["error"] = str(exc)
else:
    out["backend"] = backend.name
    out["probes"] = [dump(backend)]
    for step in sys.argv[2:]:
        path, _, text = step.partition("=")
        with open(path, "w") as fh:
            fh.write(text)
        out["probes"].append(dump(backend))
    out["probes"].append(dump(backend))
    backend.close()
    backend.close()
print(json.dumps(out))
"""


def run_probe(libdir: Path, spec: str, *steps: str, **stub_env: str) -> dict[str, Any]:
    """Run detect(spec) and probes in a fresh interpreter (pynvml caches its library).

    Each ``steps`` item ``PATH=TEXT`` writes TEXT to PATH before one more probe.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("STUB_NVML_")}
    env["LD_LIBRARY_PATH"] = str(libdir)
    env.update(stub_env)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(PROBE), spec, *steps],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def health(probe: list[dict[str, Any]]) -> list[tuple[bool, str]]:
    return [(g["healthy"], g["health_reason"]) for g in probe]


def test_nvml_four_gpus_one_lost_and_a_fatal_xid(stub_libs: dict[str, Path]) -> None:
    out = run_probe(
        stub_libs["events"],
        "auto",
        STUB_NVML_COUNT="4",
        STUB_NVML_LOST="1",
        STUB_NVML_XID="2:79,0:13",
    )
    assert out["backend"] == "nvml"
    first, last = out["probes"]
    expected = [(True, ""), (False, "nvml: GPU is lost"), (False, "xid 79"), (True, "")]
    assert health(first) == expected
    assert health(last) == expected  # a fatal XID stays until the agent restarts
    gpu0 = first[0]
    assert gpu0 == {
        "index": 0,
        "uuid": "GPU-5eb5c0de-0000-4000-8000-000000000000",
        "name": "NVIDIA A100-SXM4-80GB",
        "type": "a100",
        "memory_mb": 81920,
        "temperature_c": 40,
        "utilization": 0,
        "healthy": True,
        "health_reason": "",
    }
    assert (first[3]["temperature_c"], first[3]["utilization"]) == (43, 30)


def test_nvml_gpu_lost_at_runtime_keeps_its_identity(
    stub_libs: dict[str, Path], tmp_path: Path
) -> None:
    lost = tmp_path / "lost"
    out = run_probe(
        stub_libs["events"],
        "nvml",
        f"{lost}=3",
        STUB_NVML_COUNT="4",
        STUB_NVML_LOST_FILE=str(lost),
    )
    before, after, _ = out["probes"]
    assert all(g["healthy"] for g in before)
    assert health(after) == [(True, "")] * 3 + [(False, "nvml: GPU is lost")]
    assert after[3]["uuid"] == before[3]["uuid"] != ""
    assert after[3]["type"] == "a100"


def test_nvml_memory_health_ecc_retired_pages_and_row_remapping(
    stub_libs: dict[str, Path], tmp_path: Path
) -> None:
    memory = tmp_path / "memory"
    out = run_probe(
        stub_libs["events"],
        "nvml",
        f"{memory}=ecc:0:2,retired:1,remap:2,remapfail:3,ecc:3:1",
        f"{memory}=",  # the operator reset the GPUs: counters and pending flags clear
        STUB_NVML_COUNT="5",
        STUB_NVML_MEMORY_FILE=str(memory),
    )
    healthy, faulty, reset, _ = out["probes"]
    assert health(healthy) == [(True, "")] * 5
    assert health(faulty) == [
        (False, "ecc: 2 volatile uncorrectable error(s)"),
        (False, "retired pages pending (reset needed)"),
        (False, "row remap pending (reset needed)"),
        # a failed remap outranks the ECC count on the same GPU
        (False, "row remap failure (uncorrectable memory error could not be repaired)"),
        (True, ""),
    ]
    assert health(reset) == [(True, "")] * 5
    actions = [xids.action_for(g["health_reason"]) for g in faulty[:4]]
    assert actions == ["reset_gpu", "reset_gpu", "reset_gpu", "drain_node"]
    tags = [xids.failure_tag(g["health_reason"]) for g in faulty[:4]]
    assert tags == ["gpu_ecc", "gpu_retired", "gpu_remap", "gpu_remap"]


def test_nvml_memory_queries_not_supported_are_healthy(stub_libs: dict[str, Path]) -> None:
    out = run_probe(
        stub_libs["events"],
        "nvml",
        STUB_NVML_COUNT="2",
        STUB_NVML_MEMORY="ecc:0:5,retired:1",
        STUB_NVML_NO_ECC="1",  # a consumer GPU: no ECC, no page retirement
    )
    assert health(out["probes"][0]) == [(True, "")] * 2


def test_nvml_without_event_functions(stub_libs: dict[str, Path]) -> None:
    out = run_probe(
        stub_libs["no_events"],
        "auto",
        STUB_NVML_COUNT="2",
        STUB_NVML_NAME="NVIDIA H100 80GB HBM3",
        STUB_NVML_MEMORY_MB="81559",
        STUB_NVML_XID="0:79",
    )
    assert out["backend"] == "nvml"
    probe = out["probes"][0]
    assert [(g["type"], g["memory_mb"], g["healthy"]) for g in probe] == [("h100", 81559, True)] * 2


def test_no_driver_means_no_gpus(stub_libs: dict[str, Path]) -> None:
    out = run_probe(stub_libs["events"], "auto", STUB_NVML_NO_DRIVER="1")
    assert out["backend"] == "none"
    assert out["probes"] == [[], []]
    out = run_probe(stub_libs["events"], "nvml", STUB_NVML_NO_DRIVER="1")
    assert out == {"error": "NVML unavailable: Driver Not Loaded"}


def test_no_library_means_no_gpus(tmp_path: Path) -> None:
    out = run_probe(tmp_path, "auto")  # an empty directory: unless the host has real NVML
    if out.get("backend") == "nvml":
        pytest.skip("this host has a real NVML library")
    assert out["backend"] == "none"

"""GPU backends: what GPUs this node has and whether each one is healthy.

Every backend implements :class:`GpuBackend`: ``probe()`` returns one
:class:`GpuSample` per GPU, never raises for a broken GPU (that GPU comes back
with ``healthy=False`` and a reason instead), and ``close()`` releases what the
backend holds. ``probe()`` may block for a while on real hardware (a lost GPU can
make NVML calls slow), so an asyncio caller runs it with ``asyncio.to_thread``.

Backends:

* :class:`NvmlBackend` (``nvml``): the real GPUs through nvidia-ml-py (``pynvml``).
  Fatal XID events (:data:`FATAL_XIDS`) mark their GPU unhealthy for the rest of
  the agent's life (``"xid 79"``), as a GPU that fell off the bus needs a reset.
* :class:`FakeBackend` (``fake:N[:TYPE]``): N identical GPUs for tests and demos.
  Faults come from a JSON file (``{"1": "xid 79"}``) that is re-read on every
  probe, so a test can break a GPU of a running agent.
* :class:`NoGpus` (``none``): a CPU-only node.

:func:`detect` turns the agent's ``gpus`` setting into a backend; ``auto`` means
NVML when it initialises and no GPUs otherwise (no driver or library is normal on
a CPU node, never an error).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import os
import re
import uuid
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from gsched.common.xids import XIDS

if TYPE_CHECKING:
    from gsched.protos import gsched_pb2

__all__ = [
    "FAKE_FAULTS_ENV",
    "FATAL_XIDS",
    "FakeBackend",
    "GpuBackend",
    "GpuError",
    "GpuSample",
    "NoGpus",
    "NvmlBackend",
    "detect",
    "gpu_type",
]

logger = logging.getLogger(__name__)

#: Environment variable naming the fault file of :class:`FakeBackend`.
FAKE_FAULTS_ENV = "GSCHED_FAKE_GPU_FAULTS"

#: XIDs after which a GPU must not get new work (NVIDIA's XID catalogue: double-bit
#: ECC, row-remap failure, fallen off the bus, NVLink, contained/uncontained ECC...).
FATAL_XIDS = frozenset(XIDS)  # the one table lives in gsched.common.xids

_XID_CRITICAL_EVENT = 0x8  # nvmlEventTypeXidCriticalError


class GpuError(Exception):
    """A GPU backend could not be set up (e.g. ``nvml`` asked for but unusable)."""


@dataclasses.dataclass(frozen=True)
class GpuSample:
    """One GPU as one probe saw it. Field names match ``gsched_pb2.GpuInfo``."""

    index: int
    uuid: str
    name: str
    type: str
    memory_mb: int
    temperature_c: int = 0
    utilization: int = 0
    healthy: bool = True
    health_reason: str = ""

    def to_proto(self) -> gsched_pb2.GpuInfo:
        """This sample as the wire message."""
        from gsched.protos import gsched_pb2

        return gsched_pb2.GpuInfo(**dataclasses.asdict(self))


@runtime_checkable
class GpuBackend(Protocol):
    """What the agent needs from a source of GPUs."""

    name: str

    def probe(self) -> list[GpuSample]:
        """Sample every GPU; a broken GPU is reported unhealthy, never raised."""
        ...

    def close(self) -> None:
        """Release the backend's resources; safe to call twice."""
        ...


_VENDOR_WORDS = {"nvidia", "tesla", "geforce", "quadro"}


def gpu_type(product_name: str) -> str:
    """Short lowercase type used in ``--gres=gpu:TYPE:N`` from an NVML product name.

    ``"NVIDIA A100-SXM4-80GB"`` -> ``"a100"``, ``"NVIDIA H100 80GB HBM3"`` ->
    ``"h100"``, ``"Tesla V100-SXM2-16GB"`` -> ``"v100"``, ``"NVIDIA GeForce RTX
    4090"`` -> ``"rtx4090"``, ``"NVIDIA RTX A6000"`` -> ``"a6000"``.
    """
    words = [w for w in re.split(r"\s+", product_name.strip()) if w]
    words = [w for w in words if w.lower() not in _VENDOR_WORDS]
    if not words:
        return "gpu"
    first = words[0].split("-")[0].lower()
    if first in ("rtx", "gtx", "titan") and len(words) > 1:
        second = words[1].split("-")[0].lower()
        # "RTX A6000" names the model by its second word; "RTX 4090" needs both.
        first = second if second[:1].isalpha() else first + second
    return re.sub(r"[^a-z0-9_.]", "", first) or "gpu"


# ---------------------------------------------------------------- none


class NoGpus:
    """A node without GPUs."""

    name = "none"

    def probe(self) -> list[GpuSample]:
        """No GPUs: always an empty list."""
        return []

    def close(self) -> None:
        """Nothing to release."""


# ---------------------------------------------------------------- fake

_FAKE_PRODUCTS = {
    "a100": ("NVIDIA A100-SXM4-80GB", 81920),
    "h100": ("NVIDIA H100 80GB HBM3", 81559),
    "h200": ("NVIDIA H200", 143771),
    "v100": ("Tesla V100-SXM2-16GB", 16384),
    "l40s": ("NVIDIA L40S", 46068),
    "t4": ("Tesla T4", 15360),
}


class FakeBackend:
    """``count`` identical pretend GPUs, with faults injected from a JSON file.

    The fault file maps a GPU index (as a string) to either a reason string, which
    makes that GPU unhealthy (``{"1": "xid 79"}``), or an object that may set
    ``reason``, ``temperature_c`` and ``utilization`` (``{"2": {"temperature_c":
    95}}`` changes telemetry only). It is re-read on every probe; a missing file
    means no faults, an unreadable one keeps the faults last read.
    """

    name = "fake"

    def __init__(
        self,
        count: int,
        gpu_type: str = "a100",
        faults_path: str | os.PathLike[str] | None = None,
        node_name: str = "",
    ) -> None:
        """Create the fake GPUs.

        Args:
            count: number of GPUs.
            gpu_type: short type reported for every GPU.
            faults_path: JSON fault file; default ``$GSCHED_FAKE_GPU_FAULTS`` (none if unset).
            node_name: mixed into the UUIDs so fake agents on one host differ.
        """
        if count < 0:
            raise ValueError(f"fake GPU count must be >= 0, not {count}")
        self.count = count
        self.gpu_type = gpu_type.lower()
        if faults_path is None:
            faults_path = os.environ.get(FAKE_FAULTS_ENV) or None
        self.faults_path = os.fspath(faults_path) if faults_path is not None else None
        self.node_name = node_name
        self._faults: dict[int, dict[str, Any]] = {}
        product, memory = _FAKE_PRODUCTS.get(
            self.gpu_type, (f"NVIDIA {self.gpu_type.upper()}", 16384)
        )
        self._product = product
        self._memory_mb = memory
        self._uuids = [
            "GPU-" + str(uuid.uuid5(uuid.NAMESPACE_OID, f"{node_name}/{i}")) for i in range(count)
        ]

    def _read_faults(self) -> dict[int, dict[str, Any]]:
        if not self.faults_path:
            return {}
        try:
            with open(self.faults_path, encoding="utf-8") as fh:
                raw = json.load(fh)
            faults: dict[int, dict[str, Any]] = {}
            for key, value in raw.items():
                entry = {"reason": value} if isinstance(value, str) else dict(value)
                faults[int(key)] = entry
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            logger.warning("fake GPUs: cannot read fault file %s: %s", self.faults_path, exc)
            return self._faults
        return faults

    def probe(self) -> list[GpuSample]:
        """One sample per fake GPU, with the fault file's faults applied."""
        self._faults = self._read_faults()
        samples = []
        for index in range(self.count):
            fault = self._faults.get(index, {})
            reason = str(fault.get("reason") or "")
            samples.append(
                GpuSample(
                    index=index,
                    uuid=self._uuids[index],
                    name=self._product,
                    type=self.gpu_type,
                    memory_mb=self._memory_mb,
                    temperature_c=int(fault.get("temperature_c", 35)),
                    utilization=int(fault.get("utilization", 0)),
                    healthy=not reason,
                    health_reason=reason,
                )
            )
        return samples

    def close(self) -> None:
        """Nothing to release."""


# ---------------------------------------------------------------- nvml


@dataclasses.dataclass
class _Device:
    index: int
    handle: Any = None
    name: str = ""
    uuid: str = ""
    memory_mb: int = 0


class NvmlBackend:
    """The node's real GPUs through NVML.

    Raises :class:`pynvml.NVMLError` from the constructor when NVML cannot be
    initialised (no library, no driver); :func:`detect` decides what that means.
    """

    name = "nvml"

    def __init__(self) -> None:
        """Initialise NVML, enumerate the GPUs and subscribe to XID events."""
        import pynvml

        self._nvml = pynvml
        pynvml.nvmlInit()
        self._open = True
        self._xid_faults: dict[int, str] = {}
        self._event_set: Any = None
        try:
            count = pynvml.nvmlDeviceGetCount()
        except pynvml.NVMLError:
            self.close()
            raise
        self._devices = [_Device(i) for i in range(count)]
        for dev in self._devices:
            self._get_handle(dev)
        self._subscribe_xids()
        try:
            driver = pynvml.nvmlSystemGetDriverVersion()
        except pynvml.NVMLError:
            driver = "?"
        logger.info("nvml: driver %s, %d GPU(s)", driver, count)

    def _get_handle(self, dev: _Device) -> str:
        """Fetch the device handle if missing; return an error reason or ""."""
        if dev.handle is not None:
            return ""
        try:
            dev.handle = self._nvml.nvmlDeviceGetHandleByIndex(dev.index)
        except self._nvml.NVMLError as exc:
            return f"nvml: {exc}"
        return ""

    @staticmethod
    def _address(handle: Any) -> int | None:
        return ctypes.cast(handle, ctypes.c_void_p).value

    def _subscribe_xids(self) -> None:
        nv = self._nvml
        try:
            self._event_set = nv.nvmlEventSetCreate()
        except nv.NVMLError as exc:
            logger.info("nvml: XID events unavailable: %s", exc)
            return
        for dev in self._devices:
            if dev.handle is None:
                continue
            try:
                nv.nvmlDeviceRegisterEvents(dev.handle, _XID_CRITICAL_EVENT, self._event_set)
            except nv.NVMLError as exc:
                logger.info("nvml: GPU %d: no XID events: %s", dev.index, exc)

    def _index_of(self, handle: Any) -> int | None:
        address = self._address(handle)
        for dev in self._devices:
            if dev.handle is not None and self._address(dev.handle) == address:
                return dev.index
        try:
            return int(self._nvml.nvmlDeviceGetIndex(handle))
        except self._nvml.NVMLError:
            return None

    def _drain_xids(self) -> None:
        """Read every pending XID event without waiting; remember fatal ones."""
        nv = self._nvml
        if self._event_set is None:
            return
        for _ in range(1000):  # bounded: a storm of events must not stall the probe
            try:
                data = nv.nvmlEventSetWait_v2(self._event_set, 0)
            except nv.NVMLError_Timeout:
                return
            except nv.NVMLError as exc:
                logger.debug("nvml: event wait failed: %s", exc)
                return
            if not data.eventType & _XID_CRITICAL_EVENT:
                continue
            xid = int(data.eventData)
            index = self._index_of(data.device)
            if xid in FATAL_XIDS and index is not None:
                if index not in self._xid_faults:
                    logger.warning("nvml: GPU %d: fatal XID %d", index, xid)
                self._xid_faults.setdefault(index, f"xid {xid}")
            else:
                logger.info("nvml: GPU %s: XID %d", index, xid)

    def _sample(self, dev: _Device) -> GpuSample:
        nv = self._nvml
        reason = self._get_handle(dev)
        temperature = utilization = 0
        if not reason:
            try:
                if not dev.uuid:
                    dev.name = str(nv.nvmlDeviceGetName(dev.handle))
                    dev.uuid = str(nv.nvmlDeviceGetUUID(dev.handle))
                memory = nv.nvmlDeviceGetMemoryInfo(dev.handle)
                dev.memory_mb = int(memory.total) // (1024 * 1024)
                temperature = self._optional(
                    nv.nvmlDeviceGetTemperature, dev.handle, nv.NVML_TEMPERATURE_GPU
                )
                rates = self._optional(nv.nvmlDeviceGetUtilizationRates, dev.handle)
                utilization = int(rates.gpu) if rates else 0
                reason = self._memory_health(dev)
            except nv.NVMLError as exc:
                reason = f"nvml: {exc}"
        reason = self._xid_faults.get(dev.index, "") or reason
        return GpuSample(
            index=dev.index,
            uuid=dev.uuid,
            name=dev.name,
            type=gpu_type(dev.name) if dev.name else "",
            memory_mb=dev.memory_mb,
            temperature_c=int(temperature or 0),
            utilization=utilization,
            healthy=not reason,
            health_reason=reason,
        )

    def _memory_health(self, dev: _Device) -> str:
        """The GPU memory's health: "" or the worst of its faults, as a health reason.

        Volatile uncorrectable ECC errors (since the last reset), pages waiting to be
        retired, and row remapping (Ampere and later) pending or failed. GPUs without
        ECC answer "not supported", which is healthy.
        """
        nv = self._nvml
        remap = self._optional(nv.nvmlDeviceGetRemappedRows, dev.handle)
        if remap and remap[3]:
            return "row remap failure (uncorrectable memory error could not be repaired)"
        ecc = self._optional(
            nv.nvmlDeviceGetTotalEccErrors,
            dev.handle,
            nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            nv.NVML_VOLATILE_ECC,
        )
        if ecc:
            return f"ecc: {int(ecc)} volatile uncorrectable error(s)"
        if remap and remap[2]:
            return "row remap pending (reset needed)"
        if self._optional(nv.nvmlDeviceGetRetiredPagesPendingStatus, dev.handle):
            return "retired pages pending (reset needed)"
        return ""

    def _optional(self, fn: Any, *args: Any) -> Any:
        """Call an NVML query some GPUs lack; "not supported" gives None."""
        nv = self._nvml
        try:
            return fn(*args)
        except (nv.NVMLError_NotSupported, nv.NVMLError_FunctionNotFound):
            return None

    def probe(self) -> list[GpuSample]:
        """Sample every GPU found at start; a failing one is unhealthy with the NVML error."""
        if not self._open:
            raise GpuError("NVML backend is closed")
        self._drain_xids()
        return [self._sample(dev) for dev in self._devices]

    def close(self) -> None:
        """Free the event set and shut NVML down; errors are logged, not raised."""
        if not self._open:
            return
        self._open = False
        nv = self._nvml
        if self._event_set is not None:
            try:
                nv.nvmlEventSetFree(self._event_set)
            except nv.NVMLError as exc:
                logger.debug("nvml: event set free failed: %s", exc)
            self._event_set = None
        try:
            nv.nvmlShutdown()
        except nv.NVMLError as exc:
            logger.debug("nvml: shutdown failed: %s", exc)


# ---------------------------------------------------------------- detect

_FAKE_SPEC = re.compile(r"^fake:(\d+)(?::([A-Za-z0-9_.-]+))?$")


def detect(spec: str, *, node_name: str = "", faults_path: str | None = None) -> GpuBackend:
    """The backend the agent's ``gpus`` setting names.

    Args:
        spec: ``auto`` (NVML when it initialises, else no GPUs), ``nvml`` (NVML or
            an error), ``none``, or ``fake:N[:TYPE]``.
        node_name: the agent's node name, used by the fake backend's UUIDs.
        faults_path: the fake backend's fault file when $GSCHED_FAKE_GPU_FAULTS is unset
            (the agent passes ``<agent state dir>/fake-gpu-faults.json``).

    Raises:
        GpuError: the spec is invalid, or ``nvml`` was asked for and NVML failed.
    """
    spec = spec.strip()
    if spec in ("", "none"):
        return NoGpus()
    fake = _FAKE_SPEC.match(spec)
    if fake:
        path = os.environ.get(FAKE_FAULTS_ENV) or faults_path
        return FakeBackend(int(fake.group(1)), fake.group(2) or "a100", faults_path=path,
                           node_name=node_name)
    if spec not in ("auto", "nvml"):
        raise GpuError(f"invalid gpus setting {spec!r}: expected auto, nvml, none or fake:N[:TYPE]")
    try:
        import pynvml
    except ImportError as exc:  # nvidia-ml-py is a dependency, but a CPU node may lack it
        if spec == "nvml":
            raise GpuError("NVML unavailable: nvidia-ml-py is not installed") from exc
        return NoGpus()
    try:
        return NvmlBackend()
    except pynvml.NVMLError as exc:
        if spec == "nvml":
            raise GpuError(f"NVML unavailable: {exc}") from exc
        if isinstance(exc, (pynvml.NVMLError_LibraryNotFound, pynvml.NVMLError_DriverNotLoaded)):
            logger.info("no NVIDIA GPUs (%s)", exc)
        else:
            logger.warning("NVML failed to initialise (%s); running without GPUs", exc)
        return NoGpus()

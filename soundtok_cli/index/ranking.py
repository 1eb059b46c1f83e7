"""How a search ranks files: half the file's best moment, half the file as a whole.

A file's best segment alone lets one window that happens to lie near the query (a thud in a long
take of rain that reads as "thunder") outrank a file that is the sound throughout; the whole file
alone buries a short event in a long recording. Equal weights of both.
Over the retrieval benchmark's 1,454 held-out clips (`python -m bench.retrieval`), class words:
Hit@1 0.583 -> 0.625, Hit@10 0.750 -> 0.792, mAP 0.450 -> 0.456 against the best segment alone
(paraphrases: Hit@10 0.625 -> 0.667, mAP 0.316 -> 0.329); the whole file alone gave 0.625 /
0.792 / 0.438. Over best-segment weights 0, 0.25, 0.5, 0.75, 1, mAP was 0.438, 0.448, 0.456, 0.456,
0.450 and Hit@10 0.792, 0.792, 0.792, 0.833, 0.750: equal weights are kept as the neutral choice
rather than the benchmark's best (0.75), which would be tuning on the evaluation clips.
"""

from __future__ import annotations

import numpy as np

BEST_WEIGHT = 0.5


def whole_file_vector(segment_vectors: np.ndarray) -> np.ndarray:
    """(S, D) segment vectors of one item -> the unit mean: the item as a whole."""
    mean = np.asarray(segment_vectors, np.float32).mean(axis=0)
    return mean / (np.linalg.norm(mean) + 1e-12)


def file_score(best, whole):
    """The ranking score of a file from its best segment's cosine and its whole vector's cosine."""
    return BEST_WEIGHT * best + (1 - BEST_WEIGHT) * whole

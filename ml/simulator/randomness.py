"""Counter-based random numbers: a draw is a pure function of (seed, stream, keys).

Each random quantity of the world is keyed by what it belongs to (a person, a person and a
campaign, a person and a day). Results therefore do not depend on how people are split into
chunks, on row order, or on how many people are generated in total, and every draw is
vectorised numpy arithmetic.
"""

from __future__ import annotations

import hashlib

import numpy as np
from scipy.special import ndtri

_GOLDEN = 0x9E3779B97F4A7C15


def mix64(values: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser: a bijection of uint64 that scrambles every bit."""
    x = np.array(values, dtype=np.uint64, copy=True, ndmin=1)
    with np.errstate(over="ignore"):  # wrap-around multiplication is the point
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x.reshape(np.shape(values))


def stream_key(seed: int, stream: str) -> np.uint64:
    """A stable 64-bit key for a named stream (Python's hash() is salted per process)."""
    digest = hashlib.blake2b(f"{seed}/{stream}".encode(), digest_size=8).digest()
    return np.uint64(int.from_bytes(digest, "little"))


def hashed_bits(seed: int, stream: str, *keys: np.ndarray | int) -> np.ndarray:
    """64 random bits per element of the broadcast keys."""
    arrays = [np.asarray(k).astype(np.uint64, copy=False) for k in keys]
    shape = np.broadcast_shapes(*(a.shape for a in arrays)) if arrays else ()
    h = np.full(shape, stream_key(seed, stream), dtype=np.uint64)
    for key in arrays:
        with np.errstate(over="ignore"):
            h = mix64(h + key * np.uint64(_GOLDEN))
    return h


def uniform(seed: int, stream: str, *keys: np.ndarray | int) -> np.ndarray:
    """Uniform floats in the open interval (0, 1)."""
    bits = hashed_bits(seed, stream, *keys)
    return ((bits >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / 2**53)


def normal(seed: int, stream: str, *keys: np.ndarray | int) -> np.ndarray:
    """Standard normal draws (inverse CDF of a uniform)."""
    return ndtri(uniform(seed, stream, *keys))


def integers(seed: int, stream: str, high: int | np.ndarray, *keys: np.ndarray | int) -> np.ndarray:
    """Integers in [0, high)."""
    draws = np.floor(uniform(seed, stream, *keys) * high).astype(np.int64)
    return np.minimum(draws, np.asarray(high) - 1)


def unique_ids(seed: int, stream: str, row_uids: np.ndarray) -> np.ndarray:
    """Scrambled 64-bit ids: distinct row uids give distinct ids (the mix is a bijection)."""
    return mix64(np.asarray(row_uids, dtype=np.uint64) ^ stream_key(seed, stream))

"""Fast, vectorised conversion of numbers to the landing files' string columns.

Millions of ids and timestamps are rendered as byte matrices with numpy and handed to
Arrow as one buffer, instead of building a Python string per row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_HEX_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_ZERO = ord("0")


def strings_from_matrix(matrix: np.ndarray, start: np.ndarray | None = None) -> pa.StringArray:
    """Row i becomes the ASCII string ``matrix[i, start[i]:]`` (``start`` defaults to 0)."""
    n, width = matrix.shape
    if start is None:
        data = np.ascontiguousarray(matrix, dtype=np.uint8).reshape(-1)
        offsets = np.arange(n + 1, dtype=np.int64) * width
    else:
        start = np.asarray(start, dtype=np.int64)
        keep = np.arange(width)[None, :] >= start[:, None]
        data = np.ascontiguousarray(matrix[keep], dtype=np.uint8)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(width - start, out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError("too many characters for one Arrow string array; use smaller chunks")
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data.tobytes())
    )


# "00".."99" as a (100, 2) byte table: two digits per lookup instead of per-digit arithmetic.
_TWO_DIGITS = np.array([[_ZERO + i // 10, _ZERO + i % 10] for i in range(100)], dtype=np.uint8)


def _decimal_digits(values: np.ndarray, width: int) -> np.ndarray:
    """Zero-padded decimal digits of non-negative integers as a (n, width) byte matrix."""
    values = np.asarray(values, dtype=np.int64)
    out = np.empty((values.size, width), dtype=np.uint8)
    rest = values.copy()
    col = width
    while col >= 2:
        rest, pair = np.divmod(rest, 100)
        out[:, col - 2 : col] = _TWO_DIGITS[pair]
        col -= 2
    if col == 1:
        out[:, 0] = (rest % 10 + _ZERO).astype(np.uint8)
    return out


def _prefixed(prefix: str, body: np.ndarray) -> np.ndarray:
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    return np.hstack([np.broadcast_to(head, (body.shape[0], head.size)), body])


def decimal_ids(prefix: str, values: np.ndarray, width: int) -> pa.StringArray:
    """``prefix`` followed by the zero-padded number, e.g. ``C00012345``."""
    values = np.asarray(values, dtype=np.int64)
    if values.size and (values.min() < 0 or values.max() >= 10**width):
        raise ValueError(f"ids must fit in {width} digits")
    return strings_from_matrix(_prefixed(prefix, _decimal_digits(values, width)))


def decimal_ids_with_letters(letters: np.ndarray, values: np.ndarray, width: int) -> pa.StringArray:
    """A per-row one-letter prefix followed by the zero-padded number, e.g. ``C…`` or ``E…``."""
    values = np.asarray(values, dtype=np.int64)
    head = np.asarray(letters, dtype="S1").view(np.uint8).reshape(-1, 1)
    return strings_from_matrix(np.hstack([head, _decimal_digits(values, width)]))


def hex_ids(prefix: str, values: np.ndarray) -> pa.StringArray:
    """``prefix`` followed by the 16 hex digits of each uint64."""
    big_endian = np.ascontiguousarray(np.asarray(values, dtype=np.uint64).astype(">u8"))
    octets = big_endian.view(np.uint8).reshape(-1, 8)
    nibbles = np.empty((octets.shape[0], 16), dtype=np.uint8)
    nibbles[:, 0::2] = octets >> 4
    nibbles[:, 1::2] = octets & 15
    return strings_from_matrix(_prefixed(prefix, _HEX_DIGITS[nibbles]))


def civil_from_epoch_seconds(seconds: np.ndarray) -> tuple[np.ndarray, ...]:
    """(year, month, day, hour, minute, second) of UTC epoch seconds (proleptic Gregorian)."""
    seconds = np.asarray(seconds, dtype=np.int64)
    days, second_of_day = np.divmod(seconds, 86_400)
    # Howard Hinnant's days-to-civil algorithm, vectorised.
    z = days + 719_468
    era = np.floor_divide(z, 146_097)
    day_of_era = z - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    mp = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = year_of_era + era * 400 + (month <= 2)
    hour, rest = np.divmod(second_of_day, 3600)
    minute, second = np.divmod(rest, 60)
    return year, month, day, hour, minute, second


def timestamps(seconds: np.ndarray) -> pa.StringArray:
    """UTC epoch seconds as ``YYYY-MM-DD HH:MM:SS`` strings (years 1000-9999)."""
    year, month, day, hour, minute, second = civil_from_epoch_seconds(seconds)
    matrix = np.empty((len(year), 19), dtype=np.uint8)
    matrix[:, 0:2] = _TWO_DIGITS[year // 100]
    matrix[:, 2:4] = _TWO_DIGITS[year % 100]
    for col, part in ((5, month), (8, day), (11, hour), (14, minute), (17, second)):
        matrix[:, col : col + 2] = _TWO_DIGITS[part]
    matrix[:, 4] = matrix[:, 7] = ord("-")
    matrix[:, 10] = ord(" ")
    matrix[:, 13] = matrix[:, 16] = ord(":")
    return strings_from_matrix(matrix)


def amounts(values: np.ndarray) -> pa.StringArray:
    """Non-negative money amounts with two decimals, e.g. ``49.90``."""
    cents = np.rint(np.asarray(values, dtype=np.float64) * 100).astype(np.int64)
    if cents.size and cents.min() < 0:
        raise ValueError("amounts must not be negative")
    whole, fraction = np.divmod(cents, 100)
    width = max(1, len(str(int(whole.max())))) if whole.size else 1
    n_digits = np.maximum(1, np.floor(np.log10(np.maximum(whole, 1))).astype(np.int64) + 1)
    matrix = np.hstack([
        _decimal_digits(whole, width),
        np.full((len(cents), 1), ord("."), dtype=np.uint8),
        _decimal_digits(fraction, 2),
    ])
    return strings_from_matrix(matrix, start=width - n_digits)


def epoch_seconds(moment) -> int:
    """Epoch seconds of a naive-UTC datetime."""
    return int((np.datetime64(moment, "s") - np.datetime64(0, "s")).astype(np.int64))

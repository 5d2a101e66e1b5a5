"""The vendored Hillstrom file: checksum pinning and installation (its published arm means are
checked by dbt: tests/dbt/test_hillstrom_published.py)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ml.landing.hillstrom import (
    HILLSTROM_SHA256,
    ChecksumMismatchError,
    install_hillstrom,
    sha256_of,
    verify_hillstrom,
)

VENDORED = Path(__file__).resolve().parents[2] / "data" / "hillstrom" / "hillstrom.csv"

@pytest.fixture()
def altered_copy(tmp_path: Path) -> Path:
    """The vendored file with exactly one byte changed (a data digit, not the header)."""
    data = bytearray(VENDORED.read_bytes())
    position = len(data) // 2
    while not chr(data[position]).isdigit():
        position += 1
    data[position] = ord("0") if data[position] != ord("0") else ord("1")
    path = tmp_path / "hillstrom.csv"
    path.write_bytes(bytes(data))
    return path


def test_sha256_of_matches_hashlib_across_chunk_boundaries(tmp_path: Path) -> None:
    # Larger than one read chunk so streaming must concatenate chunks correctly.
    payload = bytes(range(256)) * 9000
    path = tmp_path / "blob.bin"
    path.write_bytes(payload)
    assert sha256_of(path) == hashlib.sha256(payload).hexdigest()


def test_sha256_of_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert sha256_of(path) == hashlib.sha256(b"").hexdigest()


def test_vendored_file_verifies() -> None:
    assert sha256_of(VENDORED) == HILLSTROM_SHA256
    verify_hillstrom(VENDORED)  # does not raise


def test_one_byte_altered_copy_is_refused_with_a_clear_error(altered_copy: Path) -> None:
    with pytest.raises(ChecksumMismatchError) as excinfo:
        verify_hillstrom(altered_copy)
    error = excinfo.value
    assert isinstance(error, ValueError)
    message = str(error)
    assert str(altered_copy) in message
    assert HILLSTROM_SHA256 in message
    actual = hashlib.sha256(altered_copy.read_bytes()).hexdigest()
    assert actual in message and actual != HILLSTROM_SHA256
    assert "git checkout" in message  # tells the reader what to do
    assert (error.path, error.expected, error.actual) == (altered_copy, HILLSTROM_SHA256, actual)


def test_verify_accepts_an_explicit_expected_digest(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    path.write_bytes(b"a,b\n1,2\n")
    digest = hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    verify_hillstrom(path, expected=digest.upper())  # case of the hex digest does not matter
    with pytest.raises(ChecksumMismatchError):
        verify_hillstrom(path)


def test_install_copies_and_verifies(tmp_path: Path) -> None:
    landing = tmp_path / "landing" / "nested"
    installed = install_hillstrom(VENDORED, landing)
    assert installed == landing / "hillstrom.csv"
    assert sha256_of(installed) == HILLSTROM_SHA256
    assert sorted(p.name for p in landing.iterdir()) == ["hillstrom.csv"]  # no partial left over


def test_install_overwrites_a_stale_landing_copy(tmp_path: Path) -> None:
    (tmp_path / "hillstrom.csv").write_text("stale")
    installed = install_hillstrom(VENDORED, tmp_path)
    assert sha256_of(installed) == HILLSTROM_SHA256


def test_install_refuses_an_altered_source_and_writes_nothing(altered_copy: Path, tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    with pytest.raises(ChecksumMismatchError):
        install_hillstrom(altered_copy, landing)
    assert not (landing / "hillstrom.csv").exists()


def test_install_refuses_a_copy_that_does_not_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Simulate a copy corrupted on the way (e.g. a full disk): the copy must be refused.
    import ml.landing.hillstrom as hillstrom

    def corrupting_copy(source: Path, destination: Path) -> None:
        Path(destination).write_bytes(Path(source).read_bytes()[:-1])

    monkeypatch.setattr(hillstrom.shutil, "copyfile", corrupting_copy)
    landing = tmp_path / "landing"
    with pytest.raises(ChecksumMismatchError) as excinfo:
        install_hillstrom(VENDORED, landing)
    assert ".hillstrom.csv.partial" in str(excinfo.value)
    assert list(landing.iterdir()) == []

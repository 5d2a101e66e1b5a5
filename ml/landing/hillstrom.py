"""The vendored Hillstrom e-mail experiment: checksum verification and installation.

`data/hillstrom/hillstrom.csv` is Kevin Hillstrom's MineThatData E-Mail Analytics challenge
data (see `data/hillstrom/PROVENANCE.md`). It is pinned by SHA-256 so a silently edited or
truncated copy can never feed the experiment marts.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path


HILLSTROM_SHA256 = "0e5893329d8b93cefecc571777672028290ab69865718020c78c7284f291aece"

# File name of the verified copy in the state folder's reference data, where dbt reads it.
INSTALLED_FILE_NAME = "hillstrom.csv"

_READ_CHUNK_BYTES = 1 << 20


class ChecksumMismatchError(ValueError):
    """A file's SHA-256 is not the pinned one."""

    def __init__(self, path: Path, expected: str, actual: str) -> None:
        self.path = Path(path)
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{self.path}: SHA-256 mismatch, expected {expected} but the file has {actual}. "
            "The file was altered, truncated or replaced, so it is refused. Restore the vendored "
            "copy from the repository (git checkout -- data/hillstrom/hillstrom.csv) or download "
            "the MineThatData challenge file again (see data/hillstrom/PROVENANCE.md) and check "
            "that its SHA-256 matches before using it."
        )


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks so large files need little memory."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(_READ_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verify_hillstrom(path: Path, expected: str = HILLSTROM_SHA256) -> None:
    """Raise `ChecksumMismatchError` unless the file at `path` has the `expected` SHA-256."""
    actual = sha256_of(path)
    if actual != expected.lower():
        raise ChecksumMismatchError(Path(path), expected.lower(), actual)


def install_hillstrom(vendored_path: Path, target_dir: Path) -> Path:
    """Verify the vendored file, copy it to `<target_dir>/hillstrom.csv`, verify the copy.

    The copy is written under a temporary name and renamed into place only after it verifies,
    so readers never see a partial or corrupt `hillstrom.csv`. Returns the installed path.
    """
    verify_hillstrom(vendored_path)
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / INSTALLED_FILE_NAME
    partial = target_dir / f".{INSTALLED_FILE_NAME}.partial"
    try:
        shutil.copyfile(vendored_path, partial)
        verify_hillstrom(partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target

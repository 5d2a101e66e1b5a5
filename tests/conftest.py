"""Test-session wiring shared by every test folder."""

from __future__ import annotations


def pytest_collection_modifyitems(session, config, items) -> None:
    """End-to-end files first, each file's tests kept together and in order: `make test` runs
    files on two workers (--dist loadfile), and a long end-to-end file scheduled last leaves
    one worker running for minutes after the other has finished."""
    items[:] = sorted(items, key=lambda item: item.get_closest_marker("e2e") is None)

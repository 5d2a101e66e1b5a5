"""Headless Chromium (the Debian package) for tests that look at the HTML reports.

`render` opens a file in a fresh headless browser with every host name unresolvable (so
the page gets only what is on disk, as offline), takes a screenshot and returns it with
every console message the page produced (Chromium logs them to stderr as CONSOLE lines).
`make chromium` installs it; without it the tests skip and say so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL = "make chromium (apt-get install -y chromium, as root)"
_CONSOLE = re.compile(r":CONSOLE[:(]\d*\)?\] (.*)$", re.M)
_REMOTE = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)=[\"'](?:https?:)?//[^\"']*", re.I)


def chromium() -> str:
    """The Chromium executable, or a skip naming the command that installs it."""
    found = shutil.which("chromium") or (Path("/usr/bin/chromium").exists() and "/usr/bin/chromium")
    if not found:
        pytest.skip(f"Chromium is not installed: run `{INSTALL}` to render the reports in a browser")
    return str(found)


@dataclass(frozen=True)
class Rendering:
    screenshot: Path
    console: tuple[str, ...]


def render(page: Path, workdir: Path, *, width: int = 1280, height: int = 1000) -> Rendering:
    """Render `page` headless, offline; its screenshot and console messages."""
    workdir.mkdir(parents=True, exist_ok=True)
    screenshot = workdir / f"{page.stem}.png"
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={workdir / 'profile'}", "--enable-logging=stderr", "--v=0",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: no host name resolves
        f"--window-size={width},{height}", f"--screenshot={screenshot}", page.resolve().as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    if completed.returncode != 0 or not screenshot.exists():
        raise RuntimeError(f"chromium failed on {page} (exit {completed.returncode}): {completed.stderr[-2000:]}")
    return Rendering(screenshot, tuple(_CONSOLE.findall(completed.stderr)))


def ink_share(png: Path) -> float:
    """The share of the screenshot's pixels that are not the page background (its most common colour)."""
    from PIL import Image

    image = Image.open(png).convert("RGB")
    colours = image.getcolors(maxcolors=image.width * image.height)
    background = max(colours)[0]
    return 1 - background / (image.width * image.height)


def remote_references(html: str) -> list[str]:
    """Scripts, stylesheets, images and frames the page would fetch from another host."""
    return _REMOTE.findall(html)

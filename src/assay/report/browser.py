"""Render HTML with headless Chromium, when it is installed: PDF for people, PNG for looking at it in tests."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from assay.errors import AssayError

__all__ = ["find_chromium", "html_to_pdf", "html_to_png"]

# Flags for a headless print on a machine with no display and a closed network.
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def _render(html: Path, out: Path, flag: str, extra: tuple[str, ...], timeout_s: float) -> Path:
    """Run Chromium once; `out` appears whole or not at all."""
    browser = find_chromium()
    if browser is None:
        raise AssayError(f"rendering {out.name} needs Chromium (e.g. `apt-get install chromium`)")
    tmp = out.with_name(out.name + ".tmp" + out.suffix)
    with tempfile.TemporaryDirectory(prefix="assay-chromium-") as profile:
        cmd = [browser, *_FLAGS, *extra, f"--user-data-dir={profile}", f"{flag}={tmp}", html.resolve().as_uri()]
        try:
            subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise AssayError(f"Chromium did not render {html} within {timeout_s:g}s") from None
    if not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise AssayError(f"Chromium produced no {out.suffix} for {html}")
    tmp.replace(out)
    return out


def html_to_pdf(html: Path, pdf: Path, timeout_s: float = 90.0) -> Path:
    """Print `html` to `pdf` (the page's print styles make the scorecard one A4 page)."""
    return _render(html, pdf, "--print-to-pdf", ("--no-pdf-header-footer",), timeout_s)


def html_to_png(html: Path, png: Path, width: int = 1200, height: int = 1400, timeout_s: float = 90.0) -> Path:
    """A screenshot of `html` at a window size, as a reader's screen would show it."""
    return _render(html, png, "--screenshot", ("--hide-scrollbars", f"--window-size={width},{height}"), timeout_s)

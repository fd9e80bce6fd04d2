"""Print the HTML scorecard to PDF with headless Chromium, when it is installed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from assay.errors import AssayError

__all__ = ["find_chromium", "html_to_pdf"]

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
    "--no-pdf-header-footer",
)


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


def html_to_pdf(html: Path, pdf: Path, timeout_s: float = 90.0) -> Path:
    """Render `html` to `pdf`; the PDF appears whole or not at all."""
    browser = find_chromium()
    if browser is None:
        raise AssayError("--pdf needs Chromium (e.g. `apt-get install chromium`); the HTML scorecard was written")
    tmp = pdf.with_name(pdf.name + ".tmp.pdf")
    with tempfile.TemporaryDirectory(prefix="assay-chromium-") as profile:
        cmd = [browser, *_FLAGS, f"--user-data-dir={profile}", f"--print-to-pdf={tmp}", html.resolve().as_uri()]
        try:
            subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            tmp.unlink(missing_ok=True)
            raise AssayError(f"Chromium did not print {html} within {timeout_s:g}s") from None
    if not tmp.exists() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        raise AssayError(f"Chromium produced no PDF for {html}")
    tmp.replace(pdf)
    return pdf

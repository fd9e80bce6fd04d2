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
    """Print `html` to `pdf` as one page, A4 wide and as tall as the scorecard (at least A4 tall).

    The report itself has no scripts; the copy printed here carries one that measures the content and
    sizes the page. The window is as wide as the printed layout (194 mm at the print zoom of 60% is
    1222 CSS px), so the height measured on screen is the height that prints.
    """
    text = html.read_text(encoding="utf-8")
    if "</head>" not in text:
        raise AssayError(f"{html} is not an HTML page with a <head>")
    sized = html.with_name(f".{html.stem}.print.html")
    sized.write_text(text.replace("</head>", _PAGE_TO_CONTENT + "</head>", 1), encoding="utf-8")
    try:
        return _render(sized, pdf, "--print-to-pdf", ("--no-pdf-header-footer", "--window-size=1222,1000"), timeout_s)
    finally:
        sized.unlink(missing_ok=True)


# mm of content = CSS px x print zoom x 25.4 / 96, plus the 8 mm margins and a little slack.
_PAGE_TO_CONTENT = """<script>
addEventListener("load", () => {
  const mm = document.querySelector("main").scrollHeight * 0.6 * 25.4 / 96 + 2 * 8 + 6;
  const page = document.createElement("style");
  page.textContent = `@page { size: 210mm ${Math.max(297, Math.ceil(mm))}mm; margin: 8mm; }`;
  document.head.appendChild(page);
});
</script>
"""


def html_to_png(html: Path, png: Path, width: int = 1200, height: int = 1400, timeout_s: float = 90.0) -> Path:
    """A screenshot of `html` at a window size, as a reader's screen would show it."""
    return _render(html, png, "--screenshot", ("--hide-scrollbars", f"--window-size={width},{height}"), timeout_s)

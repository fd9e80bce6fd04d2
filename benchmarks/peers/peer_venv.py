"""A peer tool in a throwaway virtualenv of its own: never committed, never a dependency of assay."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def ensure_peer(venv: Path, exe: str, requirement: str, drop: tuple[str, ...] = ()) -> Path:
    """The peer's command in `venv`, installing `requirement` there the first time (then `drop`ping packages)."""
    path = venv / "bin" / exe
    if not path.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", requirement], check=True)
        if drop:
            subprocess.run([str(venv / "bin" / "pip"), "uninstall", "-y", "-q", *drop], check=True)
    return path

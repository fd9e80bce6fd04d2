"""Put tiktoken's encodings (o200k_base, cl100k_base, p50k_base) in its cache, so token counts are exact offline.

tiktoken downloads an encoding the first time it is used; assay never does
(a count must not hang on a machine without network). Run this once where
PyPI is reachable (CI here, where tiktoken's own host is not): it takes the
files from the litellm wheel, which ships them under tiktoken's cache names
(tiktoken checks each file's SHA-256 when it loads it).

    python scripts/tiktoken_cache.py [CACHE_DIR]    # default: $TIKTOKEN_CACHE_DIR
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ENCODINGS = ("o200k_base", "cl100k_base", "p50k_base")
BLOB = "https://openaipublic.blob.core.windows.net/encodings/{}.tiktoken"
WHEEL_DIR = "litellm/litellm_core_utils/tokenizers/"


def cache_name(encoding: str) -> str:
    return hashlib.sha1(BLOB.format(encoding).encode()).hexdigest()


def main() -> int:
    dest = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("TIKTOKEN_CACHE_DIR", ""))
    if not str(dest):
        print("usage: tiktoken_cache.py CACHE_DIR (or set TIKTOKEN_CACHE_DIR)", file=sys.stderr)
        return 2
    dest.mkdir(parents=True, exist_ok=True)
    missing = [e for e in ENCODINGS if not (dest / cache_name(e)).is_file()]
    if not missing:
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        got = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary",
                ":all:",
                "-d",
                tmp,
                "litellm",
            ],
            capture_output=True,
            text=True,
        )
        wheels = list(Path(tmp).glob("litellm-*.whl"))
        if got.returncode != 0 or not wheels:
            print(f"tiktoken_cache: could not fetch the litellm wheel: {got.stderr.strip()[-300:]}", file=sys.stderr)
            return 1
        with zipfile.ZipFile(wheels[0]) as z:
            names = set(z.namelist())
            for enc in missing:
                member = WHEEL_DIR + cache_name(enc)
                if member in names:
                    (dest / cache_name(enc)).write_bytes(z.read(member))
    left = [e for e in ENCODINGS if not (dest / cache_name(e)).is_file()]
    if left:
        print(f"tiktoken_cache: not found in the wheel: {', '.join(left)}", file=sys.stderr)
    print(f"tiktoken_cache: {len(ENCODINGS) - len(left)} encodings in {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

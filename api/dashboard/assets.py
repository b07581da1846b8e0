"""The dashboard's static files: content-hashed URLs, compressed once, cached for a year.

``url("plot.js")`` is ``/assets/plot.<hash>.js``: the hash is the file's SHA-256, so a
URL names exactly one content and browsers may keep it forever (``immutable``). Bodies
are compressed once per process, brotli where the ``brotli`` package is installed and
the browser accepts it, else gzip. The plain name without a hash still works, with a
short cache, for anything that kept an old link.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import threading
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent / "static"


#: The only files /assets serves: name -> (path, media type).
FILES: dict[str, tuple[Path, str]] = {
    "dashboard.js": (HERE / "dashboard.js", "text/javascript"),
    "early.js": (HERE / "early.js", "text/javascript"),
    "plot.js": (HERE / "plot.js", "text/javascript"),
    "dashboard.css": (HERE / "dashboard.css", "text/css"),
}
HASHED = re.compile(r"^(?P<stem>.+)\.(?P<hash>[0-9a-f]{12})\.(?P<ext>js|css)$")
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "public, max-age=300"


@dataclass
class _Entry:
    raw: bytes
    digest: str
    encoded: dict[str, bytes]


_lock = threading.Lock()
_cache: dict[str, _Entry] = {}


def _entry(name: str) -> _Entry:
    with _lock:
        entry = _cache.get(name)
        if entry is None:
            raw = FILES[name][0].read_bytes()
            entry = _cache[name] = _Entry(raw, hashlib.sha256(raw).hexdigest()[:12], {})
        return entry


def url(name: str) -> str:
    stem, _, ext = name.rpartition(".")
    return f"/assets/{stem}.{_entry(name).digest}.{ext}"


def _brotli() -> object | None:
    try:
        import brotli
    except ImportError:
        return None
    return brotli


def encodings() -> list[str]:
    return ["br", "gzip"] if _brotli() is not None else ["gzip"]


def body(name: str, encoding: str | None) -> bytes:
    """The file, compressed with ``encoding`` ("br", "gzip" or None), compressed once per process."""
    entry = _entry(name)
    if encoding is None:
        return entry.raw
    with _lock:
        data = entry.encoded.get(encoding)
    if data is None:
        if encoding == "br":
            data = _brotli().compress(entry.raw, quality=9)  # type: ignore[attr-defined]
        else:
            data = gzip.compress(entry.raw, compresslevel=9, mtime=0)
        with _lock:
            entry.encoded[encoding] = data
    return data


def pick_encoding(accept: str) -> str | None:
    offered = {part.split(";")[0].strip().lower() for part in accept.split(",")
               if not part.strip().endswith(";q=0")}
    return next((e for e in encodings() if e in offered), None)


def resolve(requested: str) -> tuple[str, str] | None:
    """(file name, Cache-Control) for ``/assets/<requested>``; None for anything else."""
    if requested in FILES:
        return requested, SHORT
    match = HASHED.match(requested)
    if match is None:
        return None
    name = f"{match['stem']}.{match['ext']}"
    if name not in FILES:
        return None
    # an old hash still gets today's content, but only the current hash may be kept forever
    return name, IMMUTABLE if match["hash"] == _entry(name).digest else SHORT


def warm() -> None:
    """Compress everything now (start-up thread), so the first page view does not wait."""
    for name in FILES:
        for encoding in encodings():
            body(name, encoding)

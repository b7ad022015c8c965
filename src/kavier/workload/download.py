"""Download a remote named trace into the cache folder, once.

The cache folder is ``$KAVIER_CACHE_DIR`` when set, else ``~/.cache/kavier``; traces go to its
``traces/`` subfolder under their original file names. A download is written to a temporary
file beside the target and renamed into place only when complete and verified (an interrupted
download leaves no file that looks complete). The sha256 of the bytes is checked against the
registry's value when it has one; otherwise the first download records it in ``<file>.sha256``
and later downloads of the same name must match it. Network and HTTP failures are one-line
:class:`~kavier.errors.WorkloadError` messages that say how to get the file by hand.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from kavier.errors import WorkloadError

CACHE_VARIABLE = "KAVIER_CACHE_DIR"
TIMEOUT_S = 30.0  # per socket operation
BLOCK_BYTES = 1 << 20


def cache_dir() -> Path:
    """``$KAVIER_CACHE_DIR`` or ``~/.cache/kavier``."""
    value = os.environ.get(CACHE_VARIABLE)
    return Path(value).expanduser() if value else Path.home() / ".cache" / "kavier"


def cached_path(file: str) -> Path:
    """Where the remote trace stored as ``file`` is (or will be)."""
    return cache_dir() / "traces" / file


def fetch(name: str, url: str, file: str, sha256: str | None = None, quiet: bool = False) -> Path:
    """The cached copy ``file`` of the trace called ``name`` at ``url``, downloaded first when it
    is not there yet; ``sha256`` (hex), when given, must match the download."""
    target = cached_path(file)
    if target.is_file():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkloadError(
            f"cannot create the cache folder {target.parent} ({exc.strerror}); "
            f"set {CACHE_VARIABLE} to a writable folder"
        ) from None
    if not quiet:
        print(f"downloading trace {name} from {url} to {target}", file=sys.stderr)
    digest = _download(name, url, target)
    record = target.with_name(target.name + ".sha256")
    expected = sha256 or (record.read_text().split()[0] if record.is_file() else None)
    if expected is not None and digest != expected.lower():
        target.unlink(missing_ok=True)
        raise WorkloadError(
            f"trace {name}: the download from {url} has sha256 {digest}, expected "
            f"{expected}; the file changed upstream or the download is corrupt, try again"
        )
    if expected is None:
        record.write_text(f"{digest}  {file}\n")
    return target


def _download(name: str, url: str, target: Path) -> str:
    """Stream ``url`` to ``target`` atomically; return the sha256 of the bytes (hex)."""
    digest = hashlib.sha256()
    handle, temp = tempfile.mkstemp(prefix=target.name + ".", suffix=".part", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "kavier"})
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                while block := response.read(BLOCK_BYTES):
                    digest.update(block)
                    out.write(block)
        os.replace(temp, target)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        Path(temp).unlink(missing_ok=True)
        if isinstance(exc, urllib.error.HTTPError):
            reason: object = f"HTTP {exc.code} {exc.reason}"
        else:
            reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or exc
        raise WorkloadError(
            f"cannot download trace {name} from {url} ({reason}); check the network, "
            f"or download the file yourself and pass its path to --trace"
        ) from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()

"""A real full disk for one process: its data folder on a small tmpfs in a private mount namespace.

`unshare --mount --propagation private` gives the process a mount namespace of its own, so the
tmpfs exists for it alone and vanishes with it: the host's mounts are never touched. The
harness fills that tmpfs from outside through `/proc/PID/root` (the process's view of the file
system), so the process meets ENOSPC exactly as on a full SD card, and frees it again.
Needs root (CAP_SYS_ADMIN) and util-linux `unshare`; `unavailable()` says why not otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

FILLER = "filler.bin"


@functools.cache
def unavailable() -> str | None:
    """None if a private tmpfs can be mounted here, else the reason."""
    if shutil.which("unshare") is None:
        return "no unshare (util-linux) on this machine"
    with tempfile.TemporaryDirectory(prefix="rp-tmpfs-probe-") as point:
        probe = subprocess.run(wrap(["true"], Path(point), 64 * 1024), check=False,
                               capture_output=True, text=True, timeout=10)
    if probe.returncode != 0:
        return f"cannot mount a tmpfs in a private mount namespace: {(probe.stdout + probe.stderr).strip()[:200]}"
    return None


def wrap(argv: list[str], mount_point: Path, size_bytes: int) -> list[str]:
    """`argv` run with `mount_point` on a tmpfs of `size_bytes` that only it sees (same PID: exec)."""
    script = f'mount -t tmpfs -o size={size_bytes},mode=0755 tmpfs "$0" && exec "$@"'
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(mount_point), *argv]


def _inside(pid: int, path: Path) -> Path:
    return Path(f"/proc/{pid}/root") / path.resolve().relative_to("/")


def fill(pid: int, mount_point: Path) -> int:
    """Fill the process's tmpfs until ENOSPC; returns the bytes the filler took."""
    written = 0
    chunk = b"\0" * 4096
    fd = os.open(_inside(pid, mount_point) / FILLER, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        while True:
            try:
                n = os.write(fd, chunk)
            except OSError as exc:
                if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                    return written
                raise
            written += n
    finally:
        os.close(fd)


def free(pid: int, mount_point: Path) -> None:
    with contextlib.suppress(FileNotFoundError, ProcessLookupError):
        (_inside(pid, mount_point) / FILLER).unlink()


def free_bytes(pid: int, mount_point: Path) -> int:
    st = os.statvfs(_inside(pid, mount_point))
    return st.f_bavail * st.f_frsize

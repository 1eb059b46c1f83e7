"""The writers' lock: an exclusive `fcntl.flock` on ``INDEX/LOCK`` held for a whole
read-modify-write, so two `soundtok index` runs on one index never interleave.

A second writer waits for the first (up to ``timeout`` seconds, then a clear one-line error):
`make -j` or parallel shells appending to one index simply take turns. The kernel drops the lock
when its holder dies, so a killed writer never leaves a stale lock behind. Readers take no lock:
they read whatever generation CURRENT names, which writers never modify.
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from collections.abc import Callable

from soundtok_cli.errors import UsageError

LOCK_FILE = "LOCK"
POLL_SECONDS = 0.05


class WriterLock:
    """``with WriterLock(index_dir, timeout, on_wait):`` holds the index's writer lock."""

    def __init__(self, directory: str, timeout: float, on_wait: Callable[[str], None] | None = None):
        self.directory = directory
        self.path = os.path.join(directory, LOCK_FILE)
        self.timeout = timeout
        self.on_wait = on_wait
        self.fd: int | None = None

    def __enter__(self) -> "WriterLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = time.monotonic() + max(0.0, self.timeout)
        told = False
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as error:
                    if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                        raise
                holder = _holder(fd)
                if time.monotonic() >= deadline:
                    raise UsageError(
                        f"another soundtok index ({holder}) is still writing this index after "
                        f"{self.timeout:g} s; try again later or give a longer --wait",
                        self.directory,
                    )
                if not told and self.on_wait is not None:
                    self.on_wait(f"waiting for another soundtok index ({holder}) writing {self.directory}")
                    told = True
                time.sleep(POLL_SECONDS)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 64, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "unknown process"

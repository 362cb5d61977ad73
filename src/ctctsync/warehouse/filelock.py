"""One writer at a time per warehouse file (a DuckDB file), for threads and for processes.

Two loads into one DuckDB file at once fail: within a process, two dlt loads creating the
same catalog entries (``_dlt_loads``, the staging schema) collide with "Catalog write-write
conflict"; across processes, DuckDB lets only one process open a file for writing ("Could
not set lock on file"). :class:`FileGate` serializes both, per resolved path:

- ``loading()``: one load at a time among this process's threads (they share DuckDB's one
  database instance per file, so only their loads need to take turns);
- ``holding()``: an exclusive ``fcntl.flock`` on ``<file>.lock`` while any ``Loader`` of this
  process keeps the file open. The loader keeps one DuckDB connection open for a whole run
  (docs/performance.md), so another process's loads wait until that run ends; its reading
  goes on meanwhile (up to the read-ahead). The kernel drops the lock when a process dies,
  so a SIGKILLed run never leaves the file locked.

The ``.lock`` file stays next to the warehouse file (removing a lock file while another
process waits on it would let two processes hold "the" lock at once).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class FileGate:
    """The lock of one warehouse file; get it with :func:`gate_for` (one per path)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._loads = threading.Lock()
        self._mutex = threading.Lock()
        self._holders = 0
        self._fd: int | None = None

    @contextmanager
    def loading(self) -> Iterator[None]:
        """Hold the file (see :meth:`holding`) and be the only load of this process."""
        with self.holding(), self._loads:
            yield

    @contextmanager
    def holding(self) -> Iterator[None]:
        """Hold the cross-process lock for the block (shared by this process's threads)."""
        self._acquire()
        try:
            yield
        finally:
            self._release()

    def _acquire(self) -> None:
        with self._mutex:
            if self._holders == 0:
                self.lock_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    # blocks while another process writes the file
                    fcntl.flock(fd, fcntl.LOCK_EX)
                except BaseException:
                    os.close(fd)
                    raise
                self._fd = fd
            self._holders += 1

    def _release(self) -> None:
        with self._mutex:
            self._holders -= 1
            if self._holders == 0 and self._fd is not None:
                fd, self._fd = self._fd, None
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)


_GATES: dict[Path, FileGate] = {}
_GATES_MUTEX = threading.Lock()


def gate_for(path: Path) -> FileGate:
    """The process's one gate for ``path`` (resolved: two spellings of one file share it)."""
    key = Path(path).expanduser().resolve()
    with _GATES_MUTEX:
        gate = _GATES.get(key)
        if gate is None:
            gate = _GATES[key] = FileGate(key)
        return gate

"""The results store: a Parquet dataset that loses nothing when a run is interrupted.

Layout of a store directory::

    metadata.json            format version, simfunnel version, spec, base scenario,
                             design, seeds, and one entry per invocation (start, end,
                             status, points done and failed)
    points/part-000042.parquet   every replication of point 42, written once
    lock                     the writer's lock; records its pid, host and start
    quarantine/              damaged parts set aside by a resume (then recomputed)

A point is written to a temporary file, flushed to disk and linked into place, so a
crash at any moment leaves either the whole point or nothing, and a point already
stored is never replaced unless asked. Completed points are never written again: a
resumed sweep only runs the points that have no file.

One process writes to a store at a time: a writer holds an exclusive ``flock`` on
``lock`` for its whole run (the kernel releases it when the holder dies, however it
dies, so a killed sweep never leaves a stale lock), and every read-modify-write of
``metadata.json`` happens under it. A second writer is refused in one line naming the
holder. On resume every part is verified (readable, with the expected rows, seeds and
schema); a damaged one is moved into ``quarantine/`` and recomputed.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from simfunnel.errors import StoreError

#: Version of the on-disk layout; a store written with another is refused.
FORMAT_VERSION = 1
METADATA = "metadata.json"
POINTS = "points"
LOCK = "lock"
QUARANTINE = "quarantine"
#: Columns every part has, whatever the model.
PART_COLUMNS = ("point", "replication", "seed", "status")


class StoreLockedError(StoreError):
    """Another process is writing to the store."""


def is_disk_full(exc: OSError) -> bool:
    """Whether an OSError means the disk (or the user's quota) is full."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


def now_iso() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _write_atomic(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` to a temporary file, flush it to disk, and move it to ``path``.

    With ``replace`` false the move is a hard link, which fails if ``path`` exists, so
    a point is never silently written twice. The temporary file is removed whatever
    happens (a full disk included).
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _holder_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def check_store_path(path: Path) -> None:
    """Refuse, before any work, a store path that cannot be a folder or be written.

    Raises
    ------
    StoreError
        ``path`` is a file, lies under a file, or its nearest existing folder is not
        writable.
    """
    if path.exists() and not path.is_dir():
        raise StoreError(f"{path}: is a file, not a results folder; choose another --out")
    parent = path
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise StoreError(f"{path}: {parent} is not a folder; choose another --out")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise StoreError(f"{path}: cannot write in {parent}; choose another --out")


class ResultsStore:
    """A results directory: create it, open it, add points, read it back.

    Writing (points, metadata) happens under the store's lock: :meth:`locked` holds
    it for a whole run, and each write takes it for itself when no run holds it.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.points_dir = self.path / POINTS
        self._lock_fd: int | None = None
        self._lock_depth = 0

    # ----------------------------------------------------------- lifecycle

    @staticmethod
    def exists(path: str | Path) -> bool:
        """Whether ``path`` holds a store."""
        return (Path(path) / METADATA).is_file()

    def make_dirs(self) -> None:
        """Create the store's folders (not its metadata), or say in one line why not."""
        try:
            self.points_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{self.path}: cannot create the results folder: {exc.strerror or exc}"
            ) from None

    def is_empty(self) -> bool:
        """True when the folder holds nothing but an empty ``points/`` and the lock."""
        if not self.path.exists():
            return True
        if not self.path.is_dir():
            return False
        others = [p for p in self.path.iterdir() if p.name not in (POINTS, LOCK)]
        parts = list(self.points_dir.glob("part-*.parquet")) if self.points_dir.is_dir() else []
        return not others and not parts

    def refuse_if_not_empty(self, what: str = "sweep") -> None:
        """Raise StoreError unless :meth:`is_empty` (``what`` the folder would hold)."""
        if not self.is_empty():
            raise StoreError(
                f"{self.path}: already exists and is not empty; choose another "
                f"--out, or pass --resume to continue the {what} stored there"
            )

    def initialize(self, metadata: dict[str, Any]) -> None:
        """Write the metadata of a new store; the folder must hold no results yet."""
        with self.locked():
            self.refuse_if_not_empty()
            meta = {
                "format_version": FORMAT_VERSION,
                "created": now_iso(),
                "invocations": [],
                **metadata,
            }
            self.write_metadata(meta)

    @classmethod
    def create(cls, path: str | Path, metadata: dict[str, Any]) -> ResultsStore:
        """Make a new store; ``path`` must not exist or be an empty directory."""
        store = cls(path)
        store.refuse_if_not_empty()
        store.make_dirs()
        with store.locked():
            store.refuse_if_not_empty()
            store.initialize(metadata)
        return store

    @classmethod
    def open(cls, path: str | Path) -> ResultsStore:
        """Open an existing store, checking its format version."""
        store = cls(path)
        if not cls.exists(path):
            raise StoreError(f"{store.path}: no results store here (no {METADATA})")
        version = store.metadata().get("format_version")
        if version != FORMAT_VERSION:
            raise StoreError(
                f"{store.path}: written in store format {version!r}, this "
                f"simfunnel reads format {FORMAT_VERSION}; rerun the sweep or "
                "use the simfunnel version that wrote it"
            )
        return store

    # ---------------------------------------------------------------- lock

    @contextmanager
    def locked(self) -> Iterator[ResultsStore]:
        """Hold the store's exclusive lock (re-entrant within this object).

        Raises
        ------
        StoreLockedError
            Another process holds it; the message names its pid, host and start.
        """
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield self
            finally:
                self._lock_depth -= 1
            return
        self._acquire()
        self._lock_depth = 1
        try:
            yield self
        finally:
            self._lock_depth = 0
            self._release()

    def _acquire(self) -> None:
        path = self.path / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"{path}: cannot open the lock: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._describe_holder(fd)
            os.close(fd)
            raise StoreLockedError(
                f"{self.path}: in use by {holder}; wait for it to finish or stop it, "
                "then rerun with --resume"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(
                f"{path}: cannot lock the store: {exc.strerror or exc}; use a local folder"
            ) from None
        # The lock is ours: a previous holder, if the file names one, is dead (the
        # kernel released its lock), so its record is stale and is replaced.
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now_iso()})
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, record.encode(), 0)
        except OSError:
            pass  # the record only serves messages; the flock is what excludes
        self._lock_fd = fd

    def _release(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass
        os.close(fd)  # closing releases the flock

    @staticmethod
    def _describe_holder(fd: int) -> str:
        try:
            info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        except (OSError, ValueError):
            info = {}
        if not isinstance(info, dict) or "pid" not in info:
            return "another simfunnel process"
        host = info.get("host", "?")
        here = host == socket.gethostname()
        alive = "" if not here or _holder_alive(int(info["pid"])) else " (starting up)"
        since = f" since {info['since']}" if info.get("since") else ""
        return f"simfunnel pid {info['pid']} on {host}{since}{alive}"

    # ------------------------------------------------------------ metadata

    def metadata(self) -> dict[str, Any]:
        """The metadata file's contents.

        Raises
        ------
        StoreError
            The file is missing, unreadable, or not a store's metadata.
        """
        path = self.path / METADATA
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"{path}: missing; no results store here") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise StoreError(
                f"{path}: unreadable ({str(exc).splitlines()[0]}); "
                "the store is damaged: rerun the sweep into a new --out"
            ) from None
        if not isinstance(data, dict):
            raise StoreError(
                f"{path}: holds a {type(data).__name__}, not a store's metadata; "
                "the store is damaged: rerun the sweep into a new --out"
            )
        missing = [k for k in ("format_version", "invocations") if k not in data]
        if "format_version" in data and data["format_version"] != FORMAT_VERSION:
            missing = []  # open() names the version mismatch
        if missing or not isinstance(data.get("invocations", []), list):
            what = f"has no {missing[0]!r}" if missing else "has a damaged 'invocations'"
            raise StoreError(
                f"{path}: {what}; the store is damaged: rerun the sweep into a new --out"
            )
        return data

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the metadata file atomically (under the lock)."""
        text = json.dumps(metadata, indent=2, default=str)
        with self.locked():
            _write_atomic(self.path / METADATA, text.encode())

    def update_invocation(self, run_id: str, **fields: Any) -> None:
        """Add or update the record of one invocation (read-modify-write under the lock)."""
        with self.locked():
            meta = self.metadata()
            for entry in meta["invocations"]:
                if entry.get("run_id") == run_id:
                    entry.update(fields)
                    break
            else:
                meta["invocations"].append({"run_id": run_id, **fields})
            self.write_metadata(meta)

    # -------------------------------------------------------------- points

    def _part(self, point: int) -> Path:
        return self.points_dir / f"part-{point:06d}.parquet"

    def completed_points(self) -> set[int]:
        """Points with a file (done or failed)."""
        if not self.points_dir.is_dir():
            return set()
        return {int(p.stem.split("-")[1]) for p in self.points_dir.glob("part-*.parquet")}

    def failed_points(self) -> set[int]:
        """Points whose file records a failure."""
        frame = self.load()
        if frame.empty:
            return set()
        return set(frame.loc[frame["status"] == "error", "point"].astype(int))

    def write_point(self, point: int, rows: list[dict[str, Any]], replace: bool = False) -> None:
        """Write every row of one point durably; never overwrite unless ``replace``.

        Raises
        ------
        StoreError
            The point is already stored (and ``replace`` is false).
        OSError
            Writing failed, a full disk for instance; nothing is left behind.
        """
        path = self._part(point)
        table = pa.Table.from_pylist(rows)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        with self.locked():
            if path.exists() and not replace:
                raise StoreError(f"{path}: point {point} is already stored")
            try:
                _write_atomic(path, sink.getvalue().to_pybytes(), replace=replace)
            except FileExistsError:
                raise StoreError(f"{path}: point {point} is already stored") from None

    def read_point(self, point: int) -> pd.DataFrame:
        """The stored rows of one point (verify them first: see :meth:`damaged_parts`)."""
        return pq.read_table(self._part(point)).to_pandas()

    def remove_temporaries(self) -> int:
        """Delete half-written files left by an interrupted run; return how many."""
        with self.locked():
            stale = list(self.points_dir.glob(".*.tmp")) + list(self.path.glob(".*.tmp"))
            for path in stale:
                path.unlink(missing_ok=True)
        return len(stale)

    def damaged_parts(
        self,
        seeds: Sequence[int],
        points: Sequence[dict[str, Any]] | Mapping[int, dict[str, Any]] | None = None,
    ) -> dict[int, str]:
        """Parts that fail verification, with the reason: point -> reason.

        A part must be readable Parquet, hold one row per replication of its point
        with the expected seeds, and the columns every part has. With ``points``
        (the design, or the expected column values by point), its columns must hold
        those values too; a part of a point not in ``points`` fails.
        """
        bad: dict[int, str] = {}
        for point in sorted(self.completed_points()):
            reason = self._verify(point, seeds, points)
            if reason:
                bad[point] = reason
        return bad

    def _verify(
        self,
        point: int,
        seeds: Sequence[int],
        points: Sequence[dict[str, Any]] | Mapping[int, dict[str, Any]] | None,
    ) -> str:
        try:
            frame = pq.read_table(self._part(point)).to_pandas()
        except (OSError, pa.ArrowException) as exc:
            return f"unreadable ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        missing = [c for c in PART_COLUMNS if c not in frame.columns]
        if missing:
            return f"no {missing[0]!r} column"
        if points is not None and (
            point not in points if isinstance(points, Mapping) else point >= len(points)
        ):
            return f"point {point} is not in the design"
        if len(frame) != len(seeds):
            return f"{len(frame)} rows, expected {len(seeds)}"
        if set(frame["point"]) != {point}:
            return "rows of another point"
        frame = frame.sort_values("replication")
        if frame["replication"].tolist() != list(range(len(seeds))):
            return "replications out of order or repeated"
        if [int(x) for x in frame["seed"]] != [int(x) for x in seeds]:
            return "seeds differ from the spec's"
        if points is not None:
            for key, value in points[point].items():
                if key not in frame.columns or (frame[key] != value).any():
                    return f"{key} differs from the design's (rows of another point)"
        return ""

    def quarantine(self, points: Sequence[int]) -> Path:
        """Move the parts of ``points`` into ``quarantine/`` (under the lock)."""
        target = self.path / QUARANTINE
        with self.locked():
            target.mkdir(exist_ok=True)
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            for point in points:
                part = self._part(point)
                os.replace(part, target / f"{part.stem}.{stamp}.parquet")
            _fsync_dir(self.points_dir)
        return target

    def load(self) -> pd.DataFrame:
        """Every stored row, sorted by point and replication.

        Raises
        ------
        StoreError
            A part cannot be read; it names the file and what to do.
        """
        parts = sorted(self.points_dir.glob("part-*.parquet"))
        if not parts:
            return pd.DataFrame(columns=["point", "replication", "status"])
        frames = []
        for part in parts:
            try:
                frames.append(pq.read_table(part).to_pandas())
            except (OSError, pa.ArrowException) as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise StoreError(
                    f"{part}: unreadable ({first}); rerun the sweep with --resume to "
                    "set it aside and recompute it"
                ) from None
        frame = pd.concat(frames, ignore_index=True)
        return frame.sort_values(["point", "replication"]).reset_index(drop=True)


def load_results(path: str | Path) -> pd.DataFrame:
    """The tidy results of a stored sweep: one row per point and replication.

    Columns: ``point, replication, seed``, one column per swept parameter (its dotted
    path), the KPIs, ``status`` (``ok`` or ``error``), ``error``, ``elapsed_seconds``
    and ``run_id`` (the invocation that computed the row).

    Raises
    ------
    StoreError
        If ``path`` holds no store, or one written in another format version.
    """
    return ResultsStore.open(path).load()

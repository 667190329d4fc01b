"""The results store: a Parquet dataset that loses nothing when a run is interrupted.

Layout of a store directory::

    metadata.json            format version, simfunnel version, spec, base scenario,
                             design, seeds, and one entry per invocation (start, end,
                             status, points done and failed)
    points/part-000042.parquet   every replication of point 42, written once

A point is written to a temporary file, flushed to disk and renamed into place, so
a crash at any moment leaves either the whole point or nothing. Completed points are
never written again: a resumed sweep only runs the points that have no file.
"""

from __future__ import annotations

import json
import os
import uuid
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


def now_iso() -> str:
    """The current UTC time, ISO 8601."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
    """A results directory: create it, open it, add points, read it back."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.points_dir = self.path / POINTS

    # ----------------------------------------------------------- lifecycle

    @staticmethod
    def exists(path: str | Path) -> bool:
        """Whether ``path`` holds a store."""
        return (Path(path) / METADATA).is_file()

    @classmethod
    def create(cls, path: str | Path, metadata: dict[str, Any]) -> ResultsStore:
        """Make a new store; ``path`` must not exist or be an empty directory."""
        store = cls(path)
        if store.path.exists() and (not store.path.is_dir() or any(store.path.iterdir())):
            raise StoreError(
                f"{store.path}: already exists and is not empty; choose another "
                "--out, or pass --resume to continue the sweep stored there"
            )
        try:
            store.points_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{store.path}: cannot create the results folder: {exc.strerror or exc}"
            ) from None
        meta = {
            "format_version": FORMAT_VERSION,
            "created": now_iso(),
            "invocations": [],
            **metadata,
        }
        store.write_metadata(meta)
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

    # ------------------------------------------------------------ metadata

    def metadata(self) -> dict[str, Any]:
        """The metadata file's contents."""
        try:
            data: dict[str, Any] = json.loads((self.path / METADATA).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StoreError(f"{self.path / METADATA}: unreadable: {exc}") from None
        return data

    def write_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the metadata file atomically."""
        text = json.dumps(metadata, indent=2, default=str)
        _write_atomic(self.path / METADATA, text.encode())

    def update_invocation(self, run_id: str, **fields: Any) -> None:
        """Add or update the record of one invocation (a run or a resume)."""
        meta = self.metadata()
        for entry in meta["invocations"]:
            if entry["run_id"] == run_id:
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
        """Write every row of one point durably; never overwrite unless ``replace``."""
        path = self._part(point)
        if path.exists() and not replace:
            raise StoreError(f"{path}: point {point} is already stored")
        table = pa.Table.from_pylist(rows)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        _write_atomic(path, sink.getvalue().to_pybytes())

    def remove_temporaries(self) -> int:
        """Delete half-written files left by an interrupted run; return how many."""
        stale = list(self.points_dir.glob(".*.tmp")) + list(self.path.glob(".*.tmp"))
        for path in stale:
            path.unlink(missing_ok=True)
        return len(stale)

    def load(self) -> pd.DataFrame:
        """Every stored row, sorted by point and replication."""
        parts = sorted(self.points_dir.glob("part-*.parquet"))
        if not parts:
            return pd.DataFrame(columns=["point", "replication", "status"])
        frames = [pq.read_table(p).to_pandas() for p in parts]
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

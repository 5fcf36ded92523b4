"""Write-ahead log of one shard replica: an append-only file of framed records.

A record is acknowledged only after write + fsync, so every acknowledged
add/remove survives the death of the process at any moment.

Byte layout (little-endian), one record:

    offset  size        field
    0       4           magic  b"AWL1"
    4       4   u32     body_len  (bytes of the body that follows the header)
    8       4   u32     crc32 of the body (zlib.crc32)
    12      body_len    body:
                          0   8  u64  seq   (the shard's write number, 1, 2, 3...)
                          8   1  u8   op    (OP_ADD, OP_REMOVE)
                          9   8  u64  n     (number of ids)
                          17  4  u32  d     (vector dimension; 0 for OP_REMOVE)
                          21  8n      ids   int64[n]
                          ..  4nd     x     float32[n * d]   (OP_ADD only)

A torn tail (the process died inside a write: a short header, a short body or
a CRC mismatch in the *last* record) was never acknowledged: recovery drops it
and truncates the file there.  Damage anywhere else (a bad record followed by
more bytes) is reported as IndexFileError rather than silently truncated,
because it would drop acknowledged writes.  Every size read from the file is
bounds-checked against the file and against the record's own layout.
"""
from __future__ import annotations

import os
import struct
import zlib

import numpy as np

from .._core import IndexFileError

__all__ = ["WriteAheadLog", "OP_ADD", "OP_REMOVE", "fsync_dir"]

OP_ADD = 1
OP_REMOVE = 2

_MAGIC = b"AWL1"
_HEADER = struct.Struct("<4sII")
_BODY_HEAD = struct.Struct("<QBQI")
# a single record never exceeds this (4 GiB of vectors per write is far beyond any batch)
_MAX_BODY = (1 << 32) - 1


def fsync_dir(path):
    """fsync a directory so a file created or renamed in it survives a crash."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def encode_record(seq, op, ids, x=None):
    """The framed bytes of one record (ids: int64 (n,), x: float32 (n, d) or None)."""
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    n = ids.shape[0]
    if op == OP_ADD:
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[0] != n:
            raise ValueError("OP_ADD record needs x of shape (n, d)")
        d = x.shape[1]
        payload = ids.tobytes() + x.tobytes()
    elif op == OP_REMOVE:
        d = 0
        payload = ids.tobytes()
    else:
        raise ValueError(f"unknown log op {op}")
    body = _BODY_HEAD.pack(int(seq), op, n, d) + payload
    if len(body) > _MAX_BODY:
        raise ValueError(f"log record of {len(body)} bytes is too large; add in smaller batches")
    return _HEADER.pack(_MAGIC, len(body), zlib.crc32(body)) + body


def _decode_body(body, path, offset):
    if len(body) < _BODY_HEAD.size:
        raise IndexFileError(f"{path}: log record at offset {offset} is shorter than its header")
    seq, op, n, d = _BODY_HEAD.unpack_from(body, 0)
    if op not in (OP_ADD, OP_REMOVE):
        raise IndexFileError(f"{path}: log record at offset {offset} has unknown op {op}")
    if op == OP_REMOVE and d != 0:
        raise IndexFileError(f"{path}: remove record at offset {offset} has d={d}")
    rest = len(body) - _BODY_HEAD.size
    # sizes are checked in Python integers (no overflow) against the body length
    if n * 8 + n * d * 4 != rest:
        raise IndexFileError(
            f"{path}: log record at offset {offset} says n={n}, d={d} but holds {rest} payload bytes")
    ids = np.frombuffer(body, dtype=np.int64, count=n, offset=_BODY_HEAD.size).copy()
    x = None
    if op == OP_ADD:
        x = np.frombuffer(body, dtype=np.float32, count=n * d, offset=_BODY_HEAD.size + 8 * n).reshape(n, d).copy()
    return seq, op, ids, x


def read_records(path):
    """(records, good_length): the valid records of a log file as (seq, op, ids, x)
    and the byte length they cover (anything after it is a torn tail)."""
    with open(path, "rb") as f:
        data = f.read()
    records = []
    pos = 0
    size = len(data)
    while pos < size:
        if size - pos < _HEADER.size:
            break  # torn header at the tail
        magic, body_len, crc = _HEADER.unpack_from(data, pos)
        end = pos + _HEADER.size + body_len
        if magic != _MAGIC:
            if end < size and data.find(_MAGIC, pos + 1) >= 0:
                raise IndexFileError(f"{path}: bad log record magic at offset {pos} with records after it")
            break
        if end > size:
            break  # torn body at the tail
        body = data[pos + _HEADER.size:end]
        if zlib.crc32(body) != crc:
            if end < size:
                raise IndexFileError(
                    f"{path}: log record at offset {pos} fails its CRC check and is not the last record; "
                    "the log is damaged (not a torn write), refusing to drop acknowledged records")
            break  # torn (partially written) last record
        records.append(_decode_body(body, path, pos))
        pos = end
    return records, pos


class WriteAheadLog:
    """Append-only log file; append() returns only once the record is on disk."""

    def __init__(self, path, *, sync=True):
        self.path = os.fspath(path)
        self.sync = bool(sync)
        existed = os.path.exists(self.path)
        self._f = open(self.path, "ab")
        if not existed:
            os.fsync(self._f.fileno())
            fsync_dir(os.path.dirname(self.path) or ".")
        self.size = self._f.tell()

    def append(self, seq, op, ids, x=None):
        """Write one record and fsync; returns the file size before it (for rollback)."""
        rec = encode_record(seq, op, ids, x)
        before = self.size
        try:
            self._f.write(rec)
            self._f.flush()
            if self.sync:
                os.fsync(self._f.fileno())
        except BaseException:
            self.truncate(before)
            raise
        self.size = before + len(rec)
        return before

    def truncate(self, size):
        """Cut the log back to size bytes (undo a record whose apply failed, or a torn tail)."""
        self._f.flush()
        os.truncate(self.path, size)
        self._f.seek(0, os.SEEK_END)
        if self.sync:
            os.fsync(self._f.fileno())
        self.size = size

    def close(self):
        if not self._f.closed:
            self._f.close()

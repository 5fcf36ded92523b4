"""Faiss's IO objects for write_index / read_index on streams:
PyCallbackIOWriter / PyCallbackIOReader (a Python callable per chunk),
VectorIOWriter / VectorIOReader (an in-memory byte vector), FileIOWriter /
FileIOReader, and the BufferedIO wrappers.

An index goes through them as its serialized bytes (serialize_index /
deserialize_index, the same bytes as an index file).  A reader takes exactly
one index's bytes from its stream: the 64-byte header gives the body length,
so several indexes can follow each other in one stream (or a pipe).
"""
from __future__ import annotations

import os
import struct

import numpy as np

from ._core import IndexFileError, InvalidArgumentError, InvalidTypeError
from .compat import UInt8Vector, ptr_array

__all__ = ["IOWriter", "IOReader", "PyCallbackIOWriter", "PyCallbackIOReader", "VectorIOWriter",
           "VectorIOReader", "FileIOWriter", "FileIOReader", "BufferedIOWriter", "BufferedIOReader"]

_HEADER = 64
_MAGIC = b"ANNVIL\x00\x01"


class IOWriter:
    """A byte sink: write(b) for bytes, writer(ptr, size, nitems) as in Faiss."""

    name = ""

    def write(self, data):
        raise NotImplementedError

    def __call__(self, ptr, size, nitems):
        n = int(size) * int(nitems)
        a = ptr_array(ptr, None, None, "ptr")
        self.write(a.view(np.uint8)[:n].tobytes())
        return int(nitems)

    def flush(self):
        pass


class IOReader:
    """A byte source: read(n) returns up to n bytes (fewer only at the end)."""

    name = ""

    def read(self, n):
        raise NotImplementedError

    def __call__(self, ptr, size, nitems):
        n = int(size) * int(nitems)
        out = ptr_array(ptr, None, None, "ptr", writable=True).view(np.uint8)
        if out.size < n:
            raise InvalidArgumentError(f"the destination holds {out.size} bytes, {n} requested")
        b = self.read(n)
        out[:len(b)] = np.frombuffer(b, np.uint8)
        return len(b) // int(size) if int(size) else 0

    def read_exactly(self, n, what):
        b = self.read(n)
        if len(b) != n:
            raise IndexFileError(f"read_index: the stream ended after {len(b)} of the {n} bytes of {what}")
        return b


class PyCallbackIOWriter(IOWriter):
    """Writes by calling callback(bytes) with chunks of at most bs bytes."""

    def __init__(self, callback, bs=1024 * 1024):
        self.callback = callback
        self.bs = int(bs)
        if self.bs <= 0:
            raise InvalidArgumentError(f"bs must be positive, got {bs}")

    def write(self, data):
        if not callable(self.callback):
            raise InvalidTypeError(f"PyCallbackIOWriter: the callback {self.callback!r} is not callable")
        mv = memoryview(data)
        for i in range(0, len(mv), self.bs):
            self.callback(bytes(mv[i:i + self.bs]))


class PyCallbackIOReader(IOReader):
    """Reads by calling callback(n) (n <= bs), which returns at most n bytes."""

    def __init__(self, callback, bs=1024 * 1024):
        self.callback = callback
        self.bs = int(bs)
        if self.bs <= 0:
            raise InvalidArgumentError(f"bs must be positive, got {bs}")

    def read(self, n):
        if not callable(self.callback):
            raise InvalidTypeError(f"PyCallbackIOReader: the callback {self.callback!r} is not callable")
        parts, got = [], 0
        while got < n:
            b = self.callback(min(self.bs, n - got))
            if not b:
                break
            if len(b) > n - got:
                raise IndexFileError(f"PyCallbackIOReader: the callback returned {len(b)} bytes, "
                                     f"at most {n - got} were requested")
            parts.append(bytes(b))
            got += len(b)
        return b"".join(parts)


class VectorIOWriter(IOWriter):
    """Appends to `data`, a UInt8Vector (vector_to_array(writer.data))."""

    def __init__(self):
        self.data = UInt8Vector()

    def write(self, data):
        self.data._a = np.concatenate([self.data._a, np.frombuffer(bytes(data), np.uint8)])


class VectorIOReader(IOReader):
    """Reads `data` (a UInt8Vector, filled with copy_array_to_vector) from rpos."""

    def __init__(self):
        self.data = UInt8Vector()
        self.rpos = 0

    def read(self, n):
        a = self.data._a
        b = a[self.rpos:self.rpos + int(n)].tobytes()
        self.rpos += len(b)
        return b


class FileIOWriter(IOWriter):
    """Writes to a file name (created/truncated) or an open binary file."""

    def __init__(self, f):
        if isinstance(f, (str, bytes, os.PathLike)):
            self.name = os.fspath(f)
            self._f, self._own = open(f, "wb"), True
        else:
            self._f, self._own = f, False

    def write(self, data):
        self._f.write(data)

    def flush(self):
        self._f.flush()

    def __del__(self):
        if getattr(self, "_own", False):
            self._f.close()


class FileIOReader(IOReader):
    """Reads from a file name or an open binary file."""

    def __init__(self, f):
        if isinstance(f, (str, bytes, os.PathLike)):
            self.name = os.fspath(f)
            try:
                self._f, self._own = open(f, "rb"), True
            except OSError as e:
                raise IndexFileError(f"cannot open {self.name} for reading: {e.strerror}") from None
        else:
            self._f, self._own = f, False

    def read(self, n):
        return self._f.read(int(n))

    def __del__(self):
        if getattr(self, "_own", False):
            self._f.close()


class BufferedIOWriter(IOWriter):
    """Faiss's BufferedIOWriter(writer, bsz): forwards to writer in chunks of bsz."""

    def __init__(self, writer, bsz=1024 * 1024):
        self.writer, self.bsz = writer, int(bsz)

    def write(self, data):
        mv = memoryview(data)
        for i in range(0, len(mv), max(self.bsz, 1)):
            self.writer.write(bytes(mv[i:i + self.bsz]))

    def flush(self):
        self.writer.flush()


class BufferedIOReader(IOReader):
    """Faiss's BufferedIOReader(reader, bsz): reads from reader in chunks of bsz."""

    def __init__(self, reader, bsz=1024 * 1024):
        self.reader, self.bsz = reader, int(bsz)

    def read(self, n):
        parts, got = [], 0
        while got < n:
            b = self.reader.read(min(max(self.bsz, 1), n - got))
            if not b:
                break
            parts.append(b)
            got += len(b)
        return b"".join(parts)


def write_to(writer, data):
    """Write serialized index bytes (uint8 array) to an IOWriter or a file-like object."""
    b = np.asarray(data, dtype=np.uint8).tobytes()
    if isinstance(writer, IOWriter):
        writer.write(b)
        writer.flush()
    elif hasattr(writer, "write"):
        writer.write(b)
    else:
        raise InvalidTypeError(f"write_index needs a path, an IOWriter or a file object, got {type(writer).__name__}")


def read_from(reader):
    """The bytes of one serialized index from an IOReader or a file-like object."""
    if isinstance(reader, IOReader):
        read = reader.read
    elif hasattr(reader, "read"):
        read = reader.read
    else:
        raise InvalidTypeError(f"read_index needs a path, an IOReader or a file object, got {type(reader).__name__}")

    def exactly(n, what):
        parts, got = [], 0
        while got < n:
            b = read(n - got)
            if not b:
                break
            parts.append(bytes(b))
            got += len(b)
        b = b"".join(parts)
        if len(b) != n:
            raise IndexFileError(f"read_index: the stream ended after {len(b)} of the {n} bytes of {what}")
        return b

    head = exactly(_HEADER, "the header")
    if head[:8] != _MAGIC:
        # not annvil's framing (another format): the rest of the stream is the index
        parts = [head]
        while True:
            b = read(1 << 20)
            if not b:
                break
            parts.append(bytes(b))
        return np.frombuffer(b"".join(parts), dtype=np.uint8)
    (body_len,) = struct.unpack_from("<Q", head, 16)
    rest = exactly(body_len + 8, "the index body")
    return np.frombuffer(head + rest, dtype=np.uint8)

"""Capturing what Copier and child processes print, while `check` and `bench` keep the terminal
for their progress display."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

__all__ = ["captured_output"]

_CAPTURE_LOCK = threading.Lock()


@contextlib.contextmanager
def captured_output() -> Iterator[io.StringIO]:
    """Capture everything written to stdout/stderr, by Python and by child processes alike.

    Copier prints notices and the template's tasks print to the inherited descriptors, which
    `check` and `bench` keep for their progress display. The text is available in the yielded
    buffer afterwards. One capture at a time (the descriptors are process-wide).
    """
    buffer = io.StringIO()
    with _CAPTURE_LOCK, tempfile.TemporaryFile() as sink:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
                yield buffer
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            buffer.write(sink.read().decode("utf-8", errors="replace"))

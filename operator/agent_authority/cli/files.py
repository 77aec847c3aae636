"""Files the CLI writes that hold credentials: created owner-only (0600) before a byte is written.

Writing first and restricting afterwards leaves a window in which another local user can open the
file and keep the descriptor; creating it with mode 0600 (and restricting a file that already
existed before writing into it) closes that window.
"""

from __future__ import annotations

import os
import pathlib

PRIVATE = 0o600


def write_private(path: pathlib.Path, text: str) -> None:
    """Write ``text`` to ``path``, which is readable and writable by its owner only throughout."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, PRIVATE)
    try:
        os.fchmod(fd, PRIVATE)  # an existing file keeps its mode through O_CREAT: restrict it
        data = text.encode()
        while data:
            written = os.write(fd, data)
            data = data[written:]
    finally:
        os.close(fd)

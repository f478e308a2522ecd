"""The events file (``--events FILE``): one JSON object per line, for programs and tests.

Kinds: ``listening`` (endpoints), ``started`` (players), ``player`` (a status change),
``memory_guard`` (a connection the memory guard cut) and ``end`` (reason, tick). Each line
is written and flushed at once, so a reader polling the file sees an event as soon as it
happened; nothing is written per tick unless a status
changes.
"""

from __future__ import annotations

import json
import time
from typing import IO, Any

from tickwire.protocol import ConfigError


class EventLog:
    """Appends events to ``path``; with ``path=None`` every call does nothing."""

    def __init__(self, path: str | None) -> None:
        self._file: IO[str] | None = None
        if path is not None:
            try:
                self._file = open(path, "a", encoding="utf-8")
            except OSError as e:
                raise ConfigError(
                    f"cannot open the events file {path!r} (--events, "
                    f"TICKWIRE_EVENTS): {e}; choose a writable path"
                ) from e

    def emit(self, event: str, **fields: Any) -> None:
        """Write one event line: ``{"event": ..., "time": <unix seconds>, **fields}``."""
        if self._file is None:
            return
        record = {"event": event, "time": round(time.time(), 6), **fields}
        self._file.write(json.dumps(record, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

"""Function logs: one file per function under ``<workdir>/logs``, optionally the console."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import TextIO


class LogSink:
    """Where function log lines go.

    Every line goes to ``<directory>/<function label>.log`` (rewritten by each run);
    with ``console`` it is also printed, prefixed with the function's label.
    """

    def __init__(self, directory: Path, *, console: bool = False, stream: TextIO | None = None):
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.console = console
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()
        self._files: dict[str, TextIO] = {}
        self._closed = False

    def path(self, label: str) -> Path:
        return self.directory / f"{label}.log"

    def write(self, label: str, line: str) -> None:
        line = line.rstrip("\n")
        with self._lock:
            if self._closed:
                return
            handle = self._files.get(label)
            if handle is None:
                # A new run starts each function's file afresh.
                handle = self._files[label] = self.path(label).open("w", encoding="utf-8")
            handle.write(line + "\n")
            handle.flush()
            if self.console:
                print(f"[{label}] {line}", file=self.stream, flush=True)

    def platform(self, label: str, record_type: str, record: dict[str, object]) -> None:
        """A Lambda platform record (``platform.start``, ``platform.report``) as JSON."""
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        self.write(label, json.dumps({"time": now, "type": record_type, "record": record}))

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for handle in self._files.values():
                handle.close()
            self._files.clear()

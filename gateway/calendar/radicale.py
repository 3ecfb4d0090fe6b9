"""The embedded CalDAV counterpart: Radicale (from PyPI) on loopback, in a child process.

``plus-gateway serve --with-simulators`` (``make run``) starts it as the default stand-in for
the E-case unified calendar, and the tests start one per module. Two accounts: the gateway's
(``calendar.username``) and ``ecase`` (password ``ecase``), which plays the calendar side
(an institution putting booking requests into ``requests``). Rights ``authenticated``: both
read and write the gateway's collections, as the unified calendar lets its parties do.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["CALENDAR_SIDE", "RadicaleServer"]

#: The account of the simulated calendar side (user, password).
CALENDAR_SIDE = ("ecase", "ecase")


class RadicaleServer:
    """One Radicale process serving ``storage`` on ``host:port``."""

    def __init__(
        self, *, host: str, port: int, storage: Path, username: str, password: str
    ) -> None:
        self.host = host
        self.port = port
        self.storage = Path(storage)
        self.username = username
        self.password = password
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{self.host}:{self.port}"

    def _write_config(self) -> Path:
        self.storage.mkdir(parents=True, exist_ok=True)
        users = self.storage / "users"
        # Plain passwords: a loopback test double whose accounts are documented demo values.
        users.write_text(
            f"{self.username}:{self.password}\n{CALENDAR_SIDE[0]}:{CALENDAR_SIDE[1]}\n",
            encoding="utf-8",
        )
        config = self.storage / "radicale.conf"
        config.write_text(
            "\n".join(
                [
                    "[server]",
                    f"hosts = {self.host}:{self.port}",
                    "[auth]",
                    "type = htpasswd",
                    f"htpasswd_filename = {users}",
                    "htpasswd_encryption = plain",
                    "[rights]",
                    "type = authenticated",
                    "[storage]",
                    f"filesystem_folder = {self.storage / 'collections'}",
                    "[web]",
                    "type = none",
                    "[logging]",
                    "level = warning",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        return config

    def start(self, timeout: float = 20.0) -> RadicaleServer:
        """Start the process and wait until it accepts connections."""
        config = self._write_config()
        log = (self.storage / "radicale.log").open("ab")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"Radicale exited at start; see {self.storage / 'radicale.log'}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Radicale did not listen on {self.host}:{self.port}")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the process (the calendar is 'down' until :meth:`start` again)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)

    @property
    def running(self) -> bool:
        """True while the process runs."""
        return self._process is not None and self._process.poll() is None

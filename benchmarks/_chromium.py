"""A tiny driver for headless Chromium over the DevTools protocol, on a pipe.

Used by the timeline's browser test, by ``benchmarks.timeline_render`` and to draw the
README's timeline picture. It speaks the DevTools protocol over
``--remote-debugging-pipe``: Chromium reads commands from its file descriptor 3 and
writes replies and events to its descriptor 4, each message a JSON text ended by a NUL
byte. A pipe needs no port, no websocket library and no polling for the browser to come
up, and the browser dies with its pipe if this process does.

Only what the callers need is here: open a page, evaluate an expression, take a
screenshot, and collect the console errors, uncaught exceptions and network requests the
page made.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ("CHROMIUM", "Chromium", "ChromiumError", "find_chromium")

#: Debian's ``chromium`` package puts the browser here.
CHROMIUM = "/usr/bin/chromium"

_FLAGS = (
    "--headless",
    "--no-sandbox",  # CI runs as root, where the sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


class ChromiumError(RuntimeError):
    """The browser failed, answered with an error, or did not answer in time."""


def find_chromium() -> str | None:
    """The path of a Chromium executable, or None when there is none."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _high_pipe() -> tuple[int, int]:
    """A pipe whose ends are above descriptor 9, so moving them to 3 and 4 in the child
    cannot overwrite one with the other."""
    ends = []
    for fd in os.pipe():
        ends.append(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10))
        os.close(fd)
    return ends[0], ends[1]


class Chromium:
    """A headless Chromium with one page, driven synchronously.

    Use as a context manager; leaving it closes the browser and removes its profile.

    Args:
        executable: The browser to run; :func:`find_chromium` by default.
        width: Viewport width in CSS pixels.
        height: Viewport height in CSS pixels.
        timeout: Seconds to wait for any one reply.
    """

    def __init__(
        self,
        executable: str | None = None,
        *,
        width: int = 1280,
        height: int = 800,
        timeout: float = 30.0,
    ) -> None:
        found = executable or find_chromium()
        if found is None:
            raise ChromiumError(f"no Chromium found (install Debian's chromium: {CHROMIUM})")
        self.executable = found
        self.width = width
        self.height = height
        self.timeout = timeout
        self.console_errors: list[str] = []
        self.requests: list[str] = []
        self._ids = 0
        self._buffer = b""
        self._events: list[dict[str, Any]] = []
        self._session: str | None = None
        self._profile = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._to_browser = self._from_browser = -1

    def __enter__(self) -> Chromium:
        self._profile = tempfile.mkdtemp(prefix="microscheduler-chromium-")
        to_read, to_write = _high_pipe()  # the browser reads commands from to_read
        from_read, from_write = _high_pipe()  # and writes replies to from_write
        # The shell moves the two pipe ends to descriptors 3 and 4 before it becomes the
        # browser, which a plain Popen cannot do without a preexec hook.
        command = [
            "/bin/bash",  # dash redirects only descriptors 0-9
            "-c",
            f'exec "$0" "$@" 3<&{to_read} 4>&{from_write} {to_read}<&- {from_write}>&-',
            self.executable,
            *_FLAGS,
            f"--user-data-dir={self._profile}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        try:
            self._process = subprocess.Popen(
                command,
                pass_fds=(to_read, from_write),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        finally:
            os.close(to_read)
            os.close(from_write)
        self._to_browser, self._from_browser = to_write, from_read
        try:
            target = self.call("Target.createTarget", url="about:blank")["targetId"]
            attached = self.call("Target.attachToTarget", targetId=target, flatten=True)
            self._session = attached["sessionId"]
            for domain in ("Page", "Runtime", "Log", "Network"):
                self.call(f"{domain}.enable")
            self.call(
                "Emulation.setDeviceMetricsOverride",
                width=self.width,
                height=self.height,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the browser (politely, then by force) and remove its profile."""
        process = self._process
        if process is not None and process.poll() is None:
            try:
                self._send("Browser.close", {}, session=False)
            except OSError:
                pass
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._process = None
        for fd in (self._to_browser, self._from_browser):
            if fd >= 0:
                os.close(fd)
        self._to_browser = self._from_browser = -1
        if self._profile:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = ""

    # -- protocol --------------------------------------------------------------------------

    def _send(self, method: str, params: dict[str, Any], *, session: bool = True) -> int:
        self._ids += 1
        message: dict[str, Any] = {"id": self._ids, "method": method, "params": params}
        if session and self._session is not None:
            message["sessionId"] = self._session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_browser, data) :]
        return self._ids

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise ChromiumError("the browser did not answer in time")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise ChromiumError("the browser closed its pipe (it crashed or quit)")
            self._buffer += chunk
        raw, _, self._buffer = self._buffer.partition(b"\0")
        message: dict[str, Any] = json.loads(raw)
        if "method" in message:
            self._note(message)
        return message

    def _note(self, event: dict[str, Any]) -> None:
        method, params = event["method"], event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            args = params.get("args", [])
            self.console_errors.append(" ".join(str(a.get("value", a)) for a in args))
        elif method == "Runtime.exceptionThrown":
            self.console_errors.append(str(params["exceptionDetails"].get("text")))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.console_errors.append(str(params["entry"].get("text")))
        elif method == "Network.requestWillBeSent":
            self.requests.append(str(params["request"]["url"]))
        self._events.append(event)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one command and return its result.

        Raises:
            ChromiumError: The browser answered with an error or not in time.
        """
        number = self._send(method, params)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == number:
                if "error" in message:
                    raise ChromiumError(f"{method} failed: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def wait_for(self, method: str) -> dict[str, Any]:
        """Wait for the next event called ``method`` (one already received counts)."""
        deadline = time.monotonic() + self.timeout
        while True:
            for i, event in enumerate(self._events):
                if event["method"] == method:
                    del self._events[: i + 1]
                    params: dict[str, Any] = event.get("params", {})
                    return params
            self._events.clear()
            self._receive(deadline)

    # -- what callers use ------------------------------------------------------------------

    def open(self, path: str | os.PathLike[str]) -> float:
        """Load a local file and wait until it is drawn.

        Returns:
            Milliseconds from the start of navigation to the second animation frame after
            the load event: parsing, layout and the first paint of the whole page.
        """
        self._events.clear()
        self.call("Page.navigate", url=Path(path).resolve().as_uri())
        self.wait_for("Page.loadEventFired")
        drawn: float = self.evaluate(
            "new Promise(done => requestAnimationFrame(() => "
            "requestAnimationFrame(() => done(performance.now()))))"
        )
        return drawn

    def evaluate(self, expression: str) -> Any:
        """Evaluate a JavaScript expression in the page (awaiting a promise) and return it.

        Raises:
            ChromiumError: The expression threw.
        """
        reply = self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in reply:
            raise ChromiumError(f"{expression!r} threw: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def screenshot(self, path: str | os.PathLike[str], selector: str = "body") -> None:
        """Save a PNG of the element ``selector`` (its bounding box, plus a margin)."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            f".getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }})()"
        )
        x, y, width, height = box
        margin = 8
        shot = self.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={
                "x": max(0, x - margin),
                "y": max(0, y - margin),
                "width": width + 2 * margin,
                "height": height + 2 * margin,
                "scale": 1,
            },
        )
        Path(path).write_bytes(base64.b64decode(shot["data"]))

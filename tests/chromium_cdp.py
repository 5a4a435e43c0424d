"""A minimal headless-Chromium driver over the DevTools protocol, stdlib only.

Chromium is started with ``--remote-debugging-pipe``: it reads JSON commands,
each ended by a NUL byte, from file descriptor 3 and writes replies and events
to file descriptor 4. :class:`Browser` opens one page, records what the
Runtime, Log and Network domains report while it loads, evaluates
expressions in it and takes full-page screenshots. Used by
``tests/test_html_browser.py`` (and handy for looking at a report by hand:
``python tests/chromium_cdp.py page.html shot.png``).
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM = os.environ.get("DLGRADE_CHROMIUM", "/usr/bin/chromium")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
         "--disable-extensions", "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
         "--remote-debugging-pipe")
TIMEOUT_S = 60.0


def find_chromium() -> str | None:
    for cand in (CHROMIUM, shutil.which("chromium"), shutil.which("chromium-browser"),
                 shutil.which("google-chrome")):
        if cand and os.path.exists(cand) and os.access(cand, os.X_OK):
            return cand
    return None


class BrowserError(Exception):
    """Chromium did not start, answer, or load the page in time."""


class Browser:
    """One headless Chromium with one page; use as a context manager."""

    def __init__(self, binary: str | None = None, width: int = 1100, height: int = 900):
        self.binary = binary or find_chromium()
        if not self.binary:
            raise BrowserError("chromium not found")
        self.width, self.height = width, height
        self.events: list[dict] = []
        self._replies: dict[int, dict] = {}
        self._queue: queue.Queue = queue.Queue()
        self._next_id = 0
        self.session: str | None = None

    # -- process and pipe
    def __enter__(self) -> "Browser":
        self.profile = tempfile.mkdtemp(prefix="dlgrade-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def wire_fds():  # in the child: its fd 3 reads our commands, its fd 4 writes to us
            r = fcntl.fcntl(to_child_r, fcntl.F_DUPFD, 10)
            w = fcntl.fcntl(from_child_w, fcntl.F_DUPFD, 10)
            os.dup2(r, 3)
            os.dup2(w, 4)

        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self.profile}", f"--window-size={self.width},{self.height}",
             "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
            close_fds=False, preexec_fn=wire_fds,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.send(f"{domain}.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
                  session=True)
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", timeout=5)
                except BrowserError:
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        finally:
            for fd in (self._to_child, self._from_child):
                try:
                    os.close(fd)
                except OSError:
                    pass
            shutil.rmtree(self.profile, ignore_errors=True)

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self._queue.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                self._queue.put(json.loads(raw))

    def _pump(self, deadline: float) -> bool:
        """Move one message from the pipe to replies/events; False on timeout."""
        try:
            msg = self._queue.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            return False
        if msg is None:
            raise BrowserError("chromium closed the DevTools pipe: " + self.stderr_text()[-2000:])
        if "id" in msg:
            self._replies[msg["id"]] = msg
        else:
            self.events.append(msg)
        return True

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace")

    # -- protocol
    def send(self, method: str, params: dict | None = None, session: bool = False,
             timeout: float = TIMEOUT_S) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = self.session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while self._next_id not in self._replies:
            if time.monotonic() > deadline:
                raise BrowserError(f"no reply to {method} within {timeout:g} s")
            self._pump(deadline)
        reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_for(self, method: str, timeout: float = TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        seen = 0
        while True:
            for ev in self.events[seen:]:
                if ev.get("method") == method:
                    return ev
            seen = len(self.events)
            if time.monotonic() > deadline:
                raise BrowserError(f"no {method} within {timeout:g} s")
            self._pump(deadline)

    def settle(self, seconds: float = 0.5) -> None:
        """Collect events for a little while (late console messages, requests)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._pump(deadline)

    # -- page
    def open(self, url: str) -> None:
        """Navigate and wait for the load event; earlier events are discarded."""
        self.events.clear()
        self.send("Page.navigate", {"url": url}, session=True)
        self.wait_for("Page.loadEventFired")
        self.settle()

    def evaluate(self, expression: str):
        res = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in res:
            raise BrowserError(f"evaluating {expression!r} raised {res['exceptionDetails']}")
        return res["result"].get("value")

    def screenshot(self, path) -> Path:
        """A PNG of the whole page (not just the viewport)."""
        metrics = self.send("Page.getLayoutMetrics", session=True)
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = int(min(max(size["height"], self.height), 16000))
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=True)
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                         session=True)["data"]
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
                  session=True)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    # -- what happened while loading
    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries (CSP violations included)."""
        out = []
        for ev in self.events:
            m, p = ev.get("method"), ev.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
            elif m == "Runtime.exceptionThrown":
                out.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(f"log ({p['entry'].get('source')}): {p['entry'].get('text')}")
        return out

    def console_messages(self) -> list[str]:
        return [" ".join(str(a.get("value", "")) for a in ev["params"].get("args", []))
                for ev in self.events if ev.get("method") == "Runtime.consoleAPICalled"]

    def requests(self) -> list[str]:
        return [ev["params"]["request"]["url"] for ev in self.events
                if ev.get("method") == "Network.requestWillBeSent"]


def main(argv: list[str]) -> int:
    """``python tests/chromium_cdp.py PAGE.html OUT.png [WIDTH]``: a full-page screenshot."""
    page, out = Path(argv[0]).resolve(), argv[1]
    width = int(argv[2]) if len(argv) > 2 else 1100
    with Browser(width=width) as b:
        b.open(page.as_uri())
        b.screenshot(out)
        for line in b.console_errors():
            print(line)
        print("requests:", b.requests())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

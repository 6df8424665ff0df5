"""A real headless browser for tests: Debian's chromium, driven by chromedriver over W3C WebDriver.

WebDriver is plain HTTP + JSON, so httpx (already a dependency) speaks it and no Selenium is needed.
chromedriver runs in its own process group and the group is killed on the way out, so a browser never
outlives a test, even one that fails half way. `missing()` says what is not installed; under CI=true
the browser tests fail with that reason instead of skipping (.ci/run installs both packages).
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

CHROMIUM_BINARIES = ("/usr/lib/chromium/chromium", "/usr/bin/chromium", "/usr/bin/chromium-browser")
INSTALL_HINT = "apt-get install -y chromium chromium-driver (Debian), as .ci/run does"
START_TIMEOUT_S = 30.0
ELEMENT_KEY = "element-6066-11e4-a52e-4f735466cecf"  # how W3C WebDriver names an element reference


def _chromium() -> str | None:
    return next((path for path in CHROMIUM_BINARIES if os.access(path, os.X_OK)), None)


def missing() -> str | None:
    """Why no browser test can run here, or None when chromium and chromedriver are installed."""
    absent = [name for name, found in (("chromium", _chromium()), ("chromedriver", shutil.which("chromedriver")))
              if not found]
    return f"{' and '.join(absent)} not installed: {INSTALL_HINT}" if absent else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Browser:
    client: httpx.Client
    session: str

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        response = self.client.request(method, f"/session/{self.session}{path}", json=payload)
        body = response.json()
        if response.status_code != 200:
            raise RuntimeError(f"WebDriver {method} {path}: {body.get('value', body)}")
        return body["value"]

    def open(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def script(self, source: str, *args: Any) -> Any:
        """Run `source` (a function body; `arguments[i]` are args) in the page; returns its value."""
        return self._call("POST", "/execute/sync", {"script": source, "args": list(args)})

    def console(self) -> list[dict[str, Any]]:
        """The page's console messages and uncaught errors since the last call (chromedriver's browser log)."""
        entries: list[dict[str, Any]] = self._call("POST", "/se/log", {"type": "browser"})
        return entries

    def screenshot(self) -> bytes:
        """The viewport as PNG."""
        return base64.b64decode(self._call("GET", "/screenshot"))

    def elements(self, css: str) -> list[str]:
        """The WebDriver references of the elements matching `css`."""
        found = self._call("POST", "/elements", {"using": "css selector", "value": css})
        return [element[ELEMENT_KEY] for element in found]

    def element_screenshot(self, element: str) -> bytes:
        """One element as PNG, scrolled to the middle of the viewport first (chromedriver clips an element
        it would have to scroll to)."""
        self.script("arguments[0].scrollIntoView({block: 'center'});", {ELEMENT_KEY: element})
        return base64.b64decode(self._call("GET", f"/element/{element}/screenshot"))

    def resize(self, width: int, height: int) -> None:
        self._call("POST", "/window/rect", {"width": width, "height": height})


@contextmanager
def browser(*, width: int = 1400, height: int = 1000) -> Iterator[Browser]:
    chromium = _chromium()
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise RuntimeError(missing())
    port = _free_port()
    process = subprocess.Popen([driver, f"--port={port}"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, process_group=0)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            _wait_ready(client, process)
            capabilities = {"browserName": "chrome", "goog:loggingPrefs": {"browser": "ALL"},
                            "goog:chromeOptions": {"binary": chromium, "args": [
                                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                                "--hide-scrollbars", f"--window-size={width},{height}",
                                "--force-device-scale-factor=1"]}}
            response = client.post("/session", json={"capabilities": {"alwaysMatch": capabilities}})
            value = response.json()["value"]
            if response.status_code != 200:
                raise RuntimeError(f"chromedriver could not start chromium: {value.get('message', value)}")
            session = Browser(client, value["sessionId"])
            try:
                yield session
            finally:
                client.delete(f"/session/{session.session}")
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _wait_ready(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chromedriver exited with {process.returncode} before it was ready")
        try:
            if client.get("/status").json()["value"]["ready"]:
                return
        except (httpx.TransportError, ValueError, KeyError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"chromedriver not ready within {START_TIMEOUT_S:g}s")

"""A stand-in for the internet on loopback: an HTTP server that records what reaches it, serves bytes, and
serves a PEP 503 package index of wheels built on the spot (``build_wheel``).

    with Origin() as origin:                     # http://127.0.0.1:<port>
        origin.add_wheel("tinypkg", "0.1", {"tinypkg/__init__.py": "VALUE = 42\\n"})
        urllib.request.urlopen(origin.url + "/bytes/1048576").read()
        origin.requests[-1].headers["User-Agent"]

Routes: ``/bytes/N`` (N bytes), ``/simple/`` and ``/simple/<name>/`` (the index), ``/packages/<file>`` (the
wheels), ``POST /store`` (answers with the body it was sent, as any API with uploads, notes or files does);
anything else answers 200 with ``ok``. No response echoes the request's headers.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import io
import ssl
import threading
import zipfile
from dataclasses import dataclass


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


def build_wheel(name: str, version: str, files: dict[str, str]) -> tuple[str, bytes]:
    """A pure-Python wheel's file name and bytes (``files``: path in the wheel -> text)."""
    dist = f"{name}-{version}.dist-info"
    contents = dict(files)
    contents[f"{dist}/METADATA"] = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    contents[f"{dist}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: sandlot.testing\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    record = []
    for path, text in contents.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    record.append(f"{dist}/RECORD,,")
    contents[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for path, text in contents.items():
            z.writestr(path, text)
    return f"{name}-{version}-py3-none-any.whl", out.getvalue()


class Origin:
    """A threaded HTTP server on 127.0.0.1 (a free port); use it with ``with``."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """With ``tls``, HTTPS (its certificate's names are the client's to trust)."""
        self.requests: list[Seen] = []
        self.wheels: dict[str, bytes] = {}
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                origin.requests.append(Seen("GET", self.path, dict(self.headers.items())))
                self._answer(*origin.route(self.path))

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                origin.requests.append(Seen("POST", self.path, dict(self.headers.items())))
                if self.path.split("?")[0] == "/store":
                    self._answer(200, "application/octet-stream", body)
                else:
                    self._answer(200, "text/plain", b"ok")

            def _answer(self, status: int, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="origin", daemon=True)

    def __enter__(self) -> Origin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def add_wheel(self, name: str, version: str, files: dict[str, str]) -> str:
        filename, data = build_wheel(name, version, files)
        self.wheels[filename] = data
        return filename

    def downloads(self, filename: str) -> int:
        return sum(1 for seen in self.requests if seen.path.endswith("/" + filename))

    def route(self, path: str) -> tuple[int, str, bytes]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        if len(parts) == 2 and parts[0] == "bytes" and parts[1].isdigit():
            return 200, "application/octet-stream", b"x" * int(parts[1])
        if parts[:1] == ["simple"]:
            if len(parts) == 1:
                names = sorted({f.split("-")[0] for f in self.wheels})
                links = "".join(f'<a href="/simple/{n}/">{n}</a>\n' for n in names)
                return 200, "text/html", f"<!DOCTYPE html><html><body>\n{links}</body></html>".encode()
            wanted = parts[1].replace("-", "_").lower()
            files = [f for f in self.wheels if f.split("-")[0].lower() == wanted]
            if not files:
                return 404, "text/plain", b"no such project"
            links = "".join(f'<a href="/packages/{f}#sha256={hashlib.sha256(self.wheels[f]).hexdigest()}">{f}</a>\n'
                            for f in files)
            return 200, "text/html", f"<!DOCTYPE html><html><body>\n{links}</body></html>".encode()
        if len(parts) == 2 and parts[0] == "packages" and parts[1] in self.wheels:
            return 200, "application/octet-stream", self.wheels[parts[1]]
        return 200, "text/plain", b"ok"

"""A local HTTP endpoint for the tests of outbound calls (webhooks, group robots, chat hooks): it keeps
every POST it is sent and answers what the test asks for."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str


Answer = tuple[int, str, bytes]
"""Status, content type and body of a reply."""


def plain(status: int) -> Answer:
    return status, "text/plain", f"answer {status}".encode()


class Receiver:
    """Records every POST and replies ``answer(request)``: a status (plain text body) or a whole :data:`Answer`."""

    def __init__(self, answer: Callable[[Received], int | Answer] = lambda _request: 200) -> None:
        self.answer = answer
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("content-length") or 0)
                request = Received(self.path, {k.lower(): v for k, v in self.headers.items()},
                                   self.rfile.read(length).decode("utf-8"))
                with receiver._lock:
                    receiver.requests.append(request)
                reply = receiver.answer(request)
                status, content_type, body = plain(reply) if isinstance(reply, int) else reply
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

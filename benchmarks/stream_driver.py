"""Logged-in Streamlit sessions without a browser: the load driver of ``benchmarks pages`` and ``cluster``.

A browser session is a websocket to ``/_stcore/stream`` carrying Streamlit's own protobuf messages:
the browser sends a ``BackMsg`` asking for a run (the page's script hash, the query string, the
widgets' values) and the server answers with ``ForwardMsg`` s (the page's elements) until
``script_finished``. :class:`StreamSession` sends and reads exactly those messages, with the
message classes of the pinned Streamlit (``streamlit.proto``), so a Streamlit upgrade that
changes the protocol fails ``tests/integration/test_stream_driver.py``, not a benchmark months later.

Why (decision 0061): ten Chromium renderers take this machine's two cores from the server they
measure (decision 0036); a session here costs a few milliseconds of CPU per page. What it does not
do is what a browser adds on top of the server: parse and draw the elements, run components'
JavaScript (whose own reruns it therefore does not cause) and fetch static files.

The session logs in as a returning user does: with the host's signed ``kestrel_session`` cookie
(``crm_ui.session_cookie``), which the frame checks against the user's ``sessions_valid_after``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

STREAM_PATH = "/_stcore/stream"


class SessionFailed(RuntimeError):
    """The run ended in an exception element, a missing page or no answer in time."""


@dataclass
class Run:
    """What one script run drew: its wall time from the request to ``script_finished``, and the parts a walk reads."""

    seconds: float = 0.0
    headings: list[str] = field(default_factory=list)
    text_inputs: dict[str, str] = field(default_factory=dict)  # widget id → label
    links: list[str] = field(default_factory=list)  # page links' labels (a grid's customer names, the menu)
    exceptions: list[str] = field(default_factory=list)
    elements: int = 0


@dataclass
class StreamSession:
    """One browser tab's session with the host at ``url``, logged in by ``cookie`` (``name=value``)."""

    url: str
    cookie: str
    timeout: float = 60.0
    pages: dict[str, str] = field(default_factory=dict)  # url path ("" for the landing page) → page script hash
    _socket: Any = None

    async def __aenter__(self) -> StreamSession:
        from websockets.asyncio.client import connect
        from websockets.typing import Subprotocol

        parts = urlsplit(self.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        self._socket = await connect(
            f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}{parts.path.rstrip('/')}{STREAM_PATH}",
            subprotocols=[Subprotocol("streamlit")],
            additional_headers={"Cookie": self.cookie, "Origin": origin},
            max_size=None, open_timeout=self.timeout)
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._socket is not None:
            await self._socket.close()

    async def open(self, path: str = "", query: str = "", widgets: dict[str, str] | None = None) -> Run:
        """Run the page at ``path`` (as a link to it does) and wait until its script is over."""
        message = BackMsg()
        state = message.rerun_script
        state.query_string = query
        state.page_name = path
        if self.pages and path not in self.pages:
            raise SessionFailed(f"no page at {path!r} in this user's menu: {sorted(self.pages)}")
        state.page_script_hash = self.pages.get(path, "")
        state.context_info.timezone = "Asia/Shanghai"
        state.context_info.timezone_offset = -480
        state.context_info.locale = "en-US"
        state.context_info.url = f"{self.url.rstrip('/')}/{path}" + (f"?{query}" if query else "")
        for widget_id, value in (widgets or {}).items():
            state.widget_states.widgets.append(WidgetState(id=widget_id, string_value=value))
        started = time.perf_counter()
        await self._socket.send(message.SerializeToString())
        run = Run()
        async with asyncio.timeout(self.timeout):
            while True:
                forward = ForwardMsg()
                forward.ParseFromString(await self._socket.recv())
                kind = forward.WhichOneof("type")
                if kind == "delta":
                    self._read_delta(forward, run)
                elif kind == "navigation":
                    self.pages.update({page.url_pathname: page.page_script_hash
                                       for page in forward.navigation.app_pages})
                elif kind == "page_not_found":
                    raise SessionFailed(f"page not found: {path!r}")
                elif kind == "script_finished":
                    if forward.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                        continue  # st.rerun / st.switch_page: the next run draws the page
                    run.seconds = time.perf_counter() - started
                    if forward.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                        raise SessionFailed(f"{path or 'landing page'}: the script did not compile")
                    if run.exceptions:
                        raise SessionFailed(f"{path or 'landing page'}: {run.exceptions[0]}")
                    return run

    @staticmethod
    def _read_delta(forward: ForwardMsg, run: Run) -> None:
        if forward.delta.WhichOneof("type") != "new_element":
            return
        element = forward.delta.new_element
        run.elements += 1
        kind = element.WhichOneof("type")
        if kind == "heading":
            run.headings.append(element.heading.body)
        elif kind == "page_link":
            run.links.append(element.page_link.label)
        elif kind == "text_input":
            run.text_inputs[element.text_input.id] = element.text_input.label
        elif kind == "exception":
            run.exceptions.append(f"{element.exception.type}: {element.exception.message}"[:200])

    @staticmethod
    def widget(run: Run, key: str) -> str:
        """The id of the text input with widget key ``key`` in ``run`` (Streamlit ends a keyed widget's id with it)."""
        for widget_id in run.text_inputs:
            if widget_id.endswith(f"-{key}"):
                return widget_id
        raise SessionFailed(f"no text input {key!r} among {sorted(run.text_inputs.values())}")

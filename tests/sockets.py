"""A websocket test client whose consumer handles database connections as it does in a server,
and how to read the dashboard frames it receives."""

import re
from html.parser import HTMLParser

from asgiref.testing import ApplicationCommunicator
from channels.testing import WebsocketCommunicator

from realtime.fragments import ROW_LISTS


class ServerLikeCommunicator(WebsocketCommunicator):
    """Channels' communicator, without its pause of ``close_old_connections``.

    Channels turns connection closing into a no-op while its communicator runs, so a test inside
    one transaction keeps its connection. The socket tests here are transactional: the consumer's
    threads may close their connections after each call, as in a server, instead of leaving one
    checked out of PostgreSQL's pool per test, which starves the pool later in the run.
    """

    send_input = ApplicationCommunicator.send_input
    receive_output = ApplicationCommunicator.receive_output


LIST_FRAGMENTS = {element_id: name for name, element_id in ROW_LISTS.items()}


def fragment_id(frame: str) -> str:
    """Return the fragment a dashboard frame carries: its root element's id, or the fragment whose list its rows join."""
    rows = re.match(r'\s*<[a-z]+ hx-swap-oob="beforeend:#([a-z-]+)"', frame)
    if rows:
        return LIST_FRAGMENTS[rows.group(1)]
    return re.match(r'\s*<[a-z]+ id="([a-z-]+)"', frame).group(1)


def is_rows_frame(frame: str) -> bool:
    """Tell whether a frame carries rows on their own rather than a whole fragment."""
    return 'hx-swap-oob="beforeend:#' in frame.split(">", 1)[0]


class _TopLevel(HTMLParser):
    """Find where each top-level element of an HTML string starts."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.depth = 0
        self.starts: list[tuple[int, int]] = []

    def handle_starttag(self, tag, attrs):
        if self.depth == 0:
            self.starts.append(self.getpos())
        if tag not in self.VOID:
            self.depth += 1

    def handle_startendtag(self, tag, attrs):
        if self.depth == 0:
            self.starts.append(self.getpos())

    def handle_endtag(self, tag):
        if tag not in self.VOID:
            self.depth -= 1


def frame_parts(frame: str) -> list[str]:
    """Split a websocket frame into the elements it swaps (a frame carries everything due at once)."""
    parser = _TopLevel()
    parser.feed(frame)
    parser.close()
    line_offsets = [0]
    for line in frame.splitlines(keepends=True):
        line_offsets.append(line_offsets[-1] + len(line))
    starts = [line_offsets[line - 1] + column for line, column in parser.starts]
    return [frame[start:end] for start, end in zip(starts, starts[1:] + [len(frame)], strict=True)]

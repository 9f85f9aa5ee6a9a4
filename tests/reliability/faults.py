"""Faults on demand, on 127.0.0.1 only: a TCP proxy that can play a stopped service, and a tiny
websocket client for talking to a real daphne process.

The PostgreSQL and Redis these tests use are shared, so they are never stopped. A server process
under test reaches them through a ``ServiceProxy`` instead; ``cut()`` closes every proxied
connection and the listening socket (new connections are refused, exactly as for a stopped
service) and ``restore()`` listens again on the same port.
"""

import base64
import os
import re
import socket
import struct
import threading
import time
from http.cookies import SimpleCookie

from tests.sockets import frame_parts

ACCEPT_POLL_SECONDS = 0.1


class ServiceProxy:
    """Forward 127.0.0.1:<port> to ``target``; ``cut()`` and ``restore()`` stop and start the service."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = 0
        self.connections_served = 0
        self._listener: socket.socket | None = None
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()
        self._accepting = False
        self._thread: threading.Thread | None = None

    # --- control --------------------------------------------------------------------------

    def start(self) -> "ServiceProxy":
        self._listen()
        return self

    def cut(self) -> None:
        """Refuse new connections and drop every open one, mid-query or not."""
        self._accepting = False
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            pairs, self._pairs = list(self._pairs), set()
        for pair in pairs:
            for end in pair:
                _close(end)

    def restore(self) -> None:
        """Accept connections again, on the same port."""
        self._listen()

    def close(self) -> None:
        self.cut()

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    # --- forwarding -------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(ACCEPT_POLL_SECONDS)
        self.port = listener.getsockname()[1]
        self._listener, self._accepting = listener, True
        self._thread = threading.Thread(target=self._accept_loop, args=(listener,), daemon=True, name="proxy-accept")
        self._thread.start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._accepting:
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            pair = (client, upstream)
            with self._lock:
                if not self._accepting:
                    _close(client)
                    _close(upstream)
                    return
                self._pairs.add(pair)
                self.connections_served += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink, pair), daemon=True, name="proxy-pump").start()

    def _pump(self, source: socket.socket, sink: socket.socket, pair) -> None:
        try:
            while True:
                chunk = source.recv(65536)
                if not chunk:
                    break
                sink.sendall(chunk)
        except OSError:
            pass
        with self._lock:
            self._pairs.discard(pair)
        _close(source)
        _close(sink)


def _close(end: socket.socket) -> None:
    try:
        end.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    end.close()


# --- a websocket client, enough for the dashboard's text frames ---------------------------------


class WebsocketRefused(Exception):
    """The server answered the handshake with something other than 101."""

    def __init__(self, status: int):
        self.status = status
        super().__init__(f"handshake answered {status}")


class DashboardSocket:
    """One browser tab's dashboard websocket, as the page opens it: session cookie and Origin."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.closed = False
        self.close_code: int | None = None
        self._buffer = b""

    @classmethod
    def open(cls, port: int, *, session_cookie: str | None, origin: str | None = None,
             path: str = "/ws/dashboard/", timeout: float = 10) -> "DashboardSocket":
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        lines.append(f"Origin: {origin if origin is not None else f'http://127.0.0.1:{port}'}")
        if session_cookie:
            lines.append(f"Cookie: {session_cookie}")
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        connection = cls(sock)
        head = connection._read_until(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            sock.close()
            raise WebsocketRefused(status)
        return connection

    def receive(self, timeout: float) -> str | None:
        """Return the next text frame, or None once the server has closed the socket."""
        if self.closed:
            return None
        self.sock.settimeout(timeout)
        message = b""
        while True:
            try:
                first, second = self._read_exactly(2)
            except (ConnectionError, EOFError, OSError) as error:
                if isinstance(error, TimeoutError):
                    raise
                self._mark_closed(None)
                return None
            opcode, length = first & 0x0F, second & 0x7F
            if length == 126:
                length = struct.unpack("!H", self._read_exactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", self._read_exactly(8))[0]
            payload = self._read_exactly(length)
            if opcode == 0x8:
                self._mark_closed(struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None)
                return None
            if opcode == 0x9:
                self._send(0xA, payload)
                continue
            if opcode in (0x1, 0x0):
                message += payload
                if first & 0x80:
                    return message.decode()

    def receive_until(self, predicate, *, deadline: float) -> list[str]:
        """Collect the elements frames carry until ``predicate(elements)`` holds or the socket closes; fail at the deadline."""
        frames: list[str] = []
        end = time.monotonic() + deadline
        while not predicate(frames):
            remaining = end - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {deadline}s")
            frame = self.receive(timeout=remaining)
            if frame is None:
                break
            frames.extend(frame_parts(frame))
        return frames

    def close(self) -> None:
        if not self.closed:
            try:
                self._send(0x8, struct.pack("!H", 1000))
            except OSError:
                pass
        self._mark_closed(self.close_code)

    def _mark_closed(self, code: int | None) -> None:
        self.closed, self.close_code = True, code
        try:
            self.sock.close()
        except OSError:
            pass

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        else:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        masked = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def _read_until(self, marker: bytes) -> bytes:
        while marker not in self._buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed during the handshake")
            self._buffer += chunk
        head, self._buffer = self._buffer.split(marker, 1)
        return head

    def _read_exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data


def session_cookie(client) -> str:
    """The ``Cookie`` header value of a logged-in Django test client."""
    cookies: SimpleCookie = client.cookies
    return "; ".join(f"{name}={morsel.value}" for name, morsel in cookies.items())


def metric_value(frame: str, metric: str) -> str | None:
    """The value a metric-cards frame shows for ``metric`` (e.g. ``orders.today_count``)."""
    found = re.search(rf'data-metric="{re.escape(metric)}"[^>]*>\s*([^<]*?)\s*<', frame)
    return found.group(1) if found else None



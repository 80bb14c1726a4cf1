"""A slow uplink for tests: a TCP relay on 127.0.0.1 to a port on 127.0.0.1 that passes at most `bytes_per_s`
towards it (answers come back at full speed). A push through it takes seconds instead of milliseconds, so a test
can stop the pushing process while the device holds only part of the upload. TLS passes through untouched: the
relay sees only encrypted bytes, and the device and the console check each other as on a direct link.

When either side closes, the relay closes the other: a console killed mid-upload is seen by the device as a cut
link (it keeps what arrived, as tus says)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

PIECE = 1024  # bytes passed at a time towards the device; then the relay waits as long as the rate says


class SlowLink:
    def __init__(self, port: int, bytes_per_s: float) -> None:
        self.target = ("127.0.0.1", port)
        self.bytes_per_s = bytes_per_s
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.1)  # accept() wakes up to see the link closed (closing does not wake it)
        self.port = self._server.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self._start(self._accept)

    def _start(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True, name="slow-link")
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            client.settimeout(None)
            try:
                device = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._closed:
                    client.close()
                    device.close()
                    return
                self._sockets += [client, device]
            self._start(self._pump, client, device, self.bytes_per_s)
            self._start(self._pump, device, client, None)

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, bytes_per_s: float | None) -> None:
        try:
            while data := source.recv(PIECE if bytes_per_s else 1 << 16):
                sink.sendall(data)
                if bytes_per_s:
                    time.sleep(len(data) / bytes_per_s)
        except OSError:
            pass  # either side went away: close both below
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets, threads = list(self._sockets), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(10)
        self._server.close()
        for sock in sockets:
            sock.close()

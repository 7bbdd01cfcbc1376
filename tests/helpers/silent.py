"""A provider that hangs: a real local server that takes connections and never answers."""

import contextlib
import socket
import threading


class SilentProvider:
    """Accepts every connection and never answers; `connections` counts those it took."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/"
        self.held: list[socket.socket] = []
        threading.Thread(target=self.hold, daemon=True).start()

    @property
    def connections(self) -> int:
        return len(self.held)

    def hold(self) -> None:
        with contextlib.suppress(OSError):  # closed at the end of the test
            while True:
                self.held.append(self.listener.accept()[0])

    def close(self) -> None:
        self.listener.close()
        for held in self.held:
            held.close()

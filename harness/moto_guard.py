"""Runs moto's standalone server (`moto_server`) on 127.0.0.1 for as long as the
process that started us lives.

Prints the port on the first line of stdout once the server answers, then waits for
stdin to close: the test binary (or script) holds the other end of the pipe, so the
server stops when its owner exits, however it exits.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(port: int, server: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    url = f"http://127.0.0.1:{port}/moto-api/"
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"moto_server exited with {server.returncode} before answering")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit(f"moto_server did not answer on port {port} within {timeout}s")


def main() -> None:
    # moto's server with the call record of the least-privilege check.
    moto_server = os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_server.py")
    log = open(os.environ.get("MOTO_LOG", os.devnull), "ab")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, moto_server, "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    wait_until_up(port, server)
    print(port, flush=True)
    try:
        sys.stdin.read()
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    main()

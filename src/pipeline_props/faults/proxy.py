"""A small threaded TCP fault proxy owned by the harness, loopback only.

The pipeline's clients connect to ``127.0.0.1:<proxy.port>``; the proxy forwards
to the real service port and can, switched at run time:

* ``delay``: hold every chunk for ``delay_s`` seconds (latency);
* ``loss``: a TCP proxy cannot drop single packets without corrupting the stream,
  so packet loss is modelled the way TCP shows it to an application: each chunk
  is, with probability ``loss_rate``, held for ``retransmit_s`` seconds (a
  retransmission), and with probability ``reset_rate`` the connection is reset;
* ``cut``: every open connection is closed and new ones are closed on accept (a
  full network partition, seen by the client as refused/reset connections);
* ``replay_produce``: each Kafka ProduceRequest is sent to the broker twice and
  the second response is swallowed. That is exactly what a lost ack followed by
  a client retry looks like to the broker, so an idempotent producer's batch is
  deduplicated by the broker and a non-idempotent one is appended twice.

Only 127.0.0.0/8 targets are accepted: fault traffic never leaves this machine.
"""

from __future__ import annotations

import ipaddress
import random
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

from pipeline_props.errors import InfrastructureError, UsageError

_CHUNK = 65536
_KAFKA_PRODUCE_API_KEY = 0


@dataclass
class ProxyStats:
    """What the proxy did since it started (for reports and tests)."""

    connections: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    delayed_chunks: int = 0
    resets: int = 0
    refused: int = 0
    replayed_requests: int = 0
    swallowed_responses: int = 0
    errors: list[str] = field(default_factory=list)


def _check_loopback(host: str) -> None:
    try:
        ok = ipaddress.ip_address(host) in ipaddress.ip_network("127.0.0.0/8")
    except ValueError:
        ok = False
    if not ok:
        raise UsageError(f"fault proxy: {host!r} is not a 127.0.0.0/8 address; "
                         "fault traffic stays on loopback")


def _end(sock: socket.socket, reset: bool) -> None:
    """End one side of a proxied connection so that its peer sees it at once.

    close() alone is not enough: the other pump thread is usually blocked in
    recv() on this very socket, and on Linux a close() from another thread
    neither wakes that recv() nor releases the kernel socket, so the peer saw
    nothing and waited for data forever (the packet_loss / cut hang: a Postgres
    client stuck reading a response inside its session). shutdown() acts on the
    socket itself: the blocked recv() returns, and the kernel socket is
    released at once.
    """
    try:
        if reset:  # RST instead of FIN: what a dropped link looks like
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # SHUT_RD wakes the blocked reader without sending a FIN, so a reset stays
        # a pure RST (sent when the last reference goes, linger 0); a normal end
        # also shuts the write side down (FIN).
        sock.shutdown(socket.SHUT_RD if reset else socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Conn:
    """One proxied connection: client socket, upstream socket, two pump threads."""

    def __init__(self, proxy: FaultProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.closed = threading.Event()
        # correlation ids of replayed produce requests whose first response passed
        self._replayed: dict[int, int] = {}
        self._lock = threading.Lock()

    def start(self) -> None:
        threading.Thread(target=self._pump_up, daemon=True, name="pp-proxy-up").start()
        threading.Thread(target=self._pump_down, daemon=True, name="pp-proxy-down").start()

    def close(self, reset: bool = False) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for s in (self.client, self.upstream):
            _end(s, reset)
        self.proxy._forget(self)

    def _impair(self) -> bool:
        """Apply delay/loss before forwarding a chunk; False when the connection must die."""
        p = self.proxy
        if p.is_cut:
            return False
        if p.delay_s > 0:
            p.stats.delayed_chunks += 1
            time.sleep(p.delay_s)
        if p.loss_rate > 0 or p.reset_rate > 0:
            with p._rng_lock:
                r1, r2 = p._rng.random(), p._rng.random()
            if r2 < p.reset_rate:
                p.stats.resets += 1
                return False
            if r1 < p.loss_rate:
                p.stats.delayed_chunks += 1
                time.sleep(p.retransmit_s)
        return not p.is_cut

    def _recv_exact(self, sock: socket.socket, n: int) -> bytes | None:
        buf = bytearray()
        while len(buf) < n:
            chunk = sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def _pump_up(self) -> None:
        try:
            while not self.closed.is_set():
                if self.proxy.kafka_framing:
                    head = self._recv_exact(self.client, 4)
                    if head is None:
                        break
                    (size,) = struct.unpack(">i", head)
                    body = self._recv_exact(self.client, size)
                    if body is None:
                        break
                    data = head + body
                else:
                    data = self.client.recv(_CHUNK)
                    if not data:
                        break
                if not self._impair():
                    self.close(reset=True)
                    return
                replay = False
                if self.proxy.kafka_framing and self.proxy.replay_produce and len(data) >= 12:
                    api_key, _ver, cid = struct.unpack(">hhi", data[4:12])
                    if api_key == _KAFKA_PRODUCE_API_KEY:
                        replay = True
                        with self._lock:  # before sending: the first response may come back at once
                            self._replayed[cid] = 0
                self.upstream.sendall(data)
                self.proxy.stats.bytes_up += len(data)
                if replay:
                    self.upstream.sendall(data)  # the "retry" of a request whose ack got lost
                    self.proxy.stats.replayed_requests += 1
        except OSError:
            pass
        self.close()

    def _pump_down(self) -> None:
        try:
            while not self.closed.is_set():
                if self.proxy.kafka_framing:
                    head = self._recv_exact(self.upstream, 4)
                    if head is None:
                        break
                    (size,) = struct.unpack(">i", head)
                    body = self._recv_exact(self.upstream, size)
                    if body is None:
                        break
                    data = head + body
                    if len(body) >= 4:
                        (cid,) = struct.unpack(">i", body[:4])
                        with self._lock:
                            seen = self._replayed.get(cid)
                            if seen is not None:
                                if seen == 0:
                                    self._replayed[cid] = 1
                                else:
                                    del self._replayed[cid]
                                    self.proxy.stats.swallowed_responses += 1
                                    continue
                else:
                    data = self.upstream.recv(_CHUNK)
                    if not data:
                        break
                if not self._impair():
                    self.close(reset=True)
                    return
                self.client.sendall(data)
                self.proxy.stats.bytes_down += len(data)
        except OSError:
            pass
        self.close()


class FaultProxy:
    """A TCP proxy on ``127.0.0.1:port`` forwarding to ``127.0.0.1:target_port``, with switchable faults.

    ``kafka_framing`` makes the proxy forward whole Kafka protocol frames
    (needed by ``replay_produce``; harmless otherwise). Use as a context
    manager, or :meth:`start` / :meth:`stop`.
    """

    def __init__(self, target_port: int, *, port: int = 0, target_host: str = "127.0.0.1",
                 host: str = "127.0.0.1", kafka_framing: bool = False, seed: int = 0) -> None:
        _check_loopback(target_host)
        _check_loopback(host)
        self.target = (target_host, target_port)
        self.host = host
        self._requested_port = port
        self.port = port
        self.kafka_framing = kafka_framing
        self.delay_s = 0.0
        self.loss_rate = 0.0
        self.reset_rate = 0.0
        self.retransmit_s = 0.2
        self.replay_produce = False
        self.is_cut = False
        self.stats = ProxyStats()
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()
        self._conns: set[_Conn] = set()
        self._conns_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FaultProxy:
        """Listen and start accepting (idempotent)."""
        if self._sock is not None:
            return self
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError as exc:
            sock.close()
            raise InfrastructureError(
                "fault proxy", f"cannot listen on {self.host}:{self._requested_port}: {exc.strerror}",
                hint="another fault injector (a running `pipeline-props errors` or fault test) holds it; "
                     "let it finish first") from None
        sock.listen(64)
        sock.settimeout(0.2)
        self._sock = sock
        self.port = sock.getsockname()[1]
        self._stop.clear()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="pp-proxy-accept")
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        if self._sock is not None:
            self._sock.close()
        self._sock = None
        self.drop_connections()

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except (TimeoutError, socket.timeout):
                continue
            except OSError:
                return
            if self.is_cut:
                self.stats.refused += 1
                try:
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    client.close()
                except OSError:
                    pass
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError as exc:
                self.stats.errors.append(f"upstream {self.target[1]}: {exc}")
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conn = _Conn(self, client, upstream)
            with self._conns_lock:
                self._conns.add(conn)
            self.stats.connections += 1
            conn.start()

    def _forget(self, conn: _Conn) -> None:
        with self._conns_lock:
            self._conns.discard(conn)

    def drop_connections(self) -> None:
        """Reset every open connection (clients must reconnect)."""
        with self._conns_lock:
            conns = list(self._conns)
        for c in conns:
            c.close(reset=True)

    # -- switches ------------------------------------------------------------
    def set_delay(self, seconds: float) -> None:
        """Latency added to every forwarded chunk, both ways."""
        self.delay_s = max(0.0, float(seconds))

    def set_loss(self, rate: float, *, reset_rate: float = 0.0, retransmit_s: float = 0.2) -> None:
        """Packet loss as TCP shows it: retransmission stalls, and optional resets."""
        self.loss_rate, self.reset_rate, self.retransmit_s = float(rate), float(reset_rate), retransmit_s

    def cut(self) -> None:
        """Full partition: reset open connections, refuse new ones."""
        self.is_cut = True
        self.drop_connections()

    def heal(self) -> None:
        """Undo every switch."""
        self.is_cut = False
        self.delay_s = 0.0
        self.loss_rate = self.reset_rate = 0.0
        self.replay_produce = False


__all__ = ["FaultProxy", "ProxyStats"]

"""A raw TLS / HTTP/2 client for the TLS tests (Python's ssl module, frames written by hand).

It does what curl and h2load cannot be made to do: keep a connection idle, stall a request body
half-way, or take its time before the handshake, and report when the gateway ends the stream or
the connection. It prints one line per event, `<what> <seconds since the TCP connect>`, and
exits 0 (a test asserts on the lines).

  h2raw.py idle  PORT PATH LIMIT                  a GET, its answer, then nothing
  h2raw.py stall PORT PATH DECLARED SENT LIMIT    a PUT declaring DECLARED bytes, sending SENT
  h2raw.py late  PORT DELAY ALPN LIMIT            the handshake after DELAY seconds, then (http/1.1)
                                                  a request head trickled a byte a second, or
                                                  (h2) nothing at all

HPACK: every header a literal without indexing and without Huffman coding (RFC 7541 §6.2.2),
which any decoder must accept. Answers are only classified (the status when the server sends it
as an indexed static entry, as the h2 crate does for the common ones).
"""

import socket
import ssl
import struct
import sys
import time

DATA, HEADERS, RST_STREAM, SETTINGS, PING, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 6, 7, 8
END_STREAM, ACK, END_HEADERS = 0x1, 0x1, 0x4
STATIC_STATUS = {0x88: 200, 0x89: 204, 0x8A: 206, 0x8B: 304, 0x8C: 400, 0x8D: 404, 0x8E: 500}

START = time.monotonic()


def now():
    return time.monotonic() - START


def say(what):
    print(f"{what} {now():.2f}", flush=True)


def integer(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def literal(name, value):
    name, value = name.encode(), value.encode()
    return b"\x00" + integer(len(name), 7) + name + integer(len(value), 7) + value


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


class Conn:
    def __init__(self, port, alpn, delay=0.0):
        self.raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        if delay:
            time.sleep(delay)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols([alpn])
        self.tls = ctx.wrap_socket(self.raw, server_hostname="localhost")
        self.buf = b""
        self.port = port

    def h2_start(self):
        if self.tls.selected_alpn_protocol() != "h2":
            say(f"alpn-{self.tls.selected_alpn_protocol()}")
            sys.exit(0)
        self.tls.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0))

    def request(self, method, path, extra=(), end=True):
        block = b"".join(
            literal(k, v)
            for k, v in [
                (":method", method),
                (":scheme", "https"),
                (":authority", f"127.0.0.1:{self.port}"),
                (":path", path),
                *extra,
            ]
        )
        flags = END_HEADERS | (END_STREAM if end else 0)
        self.tls.sendall(frame(HEADERS, flags, 1, block))

    def next_frame(self, until):
        """The next frame, `None` at EOF, or "timeout" once `until` (monotonic) has passed."""
        while len(self.buf) < 9 or len(self.buf) < 9 + int.from_bytes(self.buf[:3], "big"):
            left = until - time.monotonic()
            if left <= 0:
                return "timeout"
            self.tls.settimeout(min(left, 1.0))
            try:
                got = self.tls.recv(65536)
            except (socket.timeout, TimeoutError):
                continue
            except (ssl.SSLError, OSError):
                return None
            if not got:
                return None
            self.buf += got
        length = int.from_bytes(self.buf[:3], "big")
        kind, flags = self.buf[3], self.buf[4]
        stream = struct.unpack(">I", self.buf[5:9])[0] & 0x7FFFFFFF
        payload = self.buf[9 : 9 + length]
        self.buf = self.buf[9 + length :]
        if kind == SETTINGS and not flags & ACK:
            self.tls.sendall(frame(SETTINGS, ACK, 0))
        if kind == PING and not flags & ACK:
            self.tls.sendall(frame(PING, ACK, 0, payload))
        if kind == DATA and length:
            # Keep the server's windows open whatever it sends.
            increment = struct.pack(">I", length)
            self.tls.sendall(frame(WINDOW_UPDATE, 0, 0, increment) + frame(WINDOW_UPDATE, 0, stream, increment))
        return kind, flags, stream, payload

    def until_stream_ends(self, until):
        """Reads until stream 1 ends; says how (`answered`, `reset`, `goaway`, `eof`, `open`)."""
        status = None
        while True:
            f = self.next_frame(until)
            if f == "timeout":
                say("open")
                return False
            if f is None:
                say("eof")
                return False
            kind, flags, stream, payload = f
            if kind == GOAWAY:
                say("goaway")
                return False
            if stream != 1:
                continue
            if kind == HEADERS and payload:
                status = STATIC_STATUS.get(payload[0], status or "other")
            if kind == RST_STREAM:
                say("reset")
                return True
            if kind in (HEADERS, DATA) and flags & END_STREAM:
                say(f"answered-{status}")
                return True

    def until_closed(self, until):
        """Reads until the connection ends; says how (`goaway`, `eof`, or `open` at `until`)."""
        while True:
            f = self.next_frame(until)
            if f == "timeout":
                say("open")
                return
            if f is None:
                say("eof")
                return
            if f[0] == GOAWAY:
                say("goaway")
                return


def idle(port, path, limit):
    c = Conn(port, "h2")
    c.h2_start()
    c.request("GET", path)
    if c.until_stream_ends(time.monotonic() + 30):
        c.until_closed(time.monotonic() + limit)


def stall(port, path, declared, sent, limit):
    c = Conn(port, "h2")
    c.h2_start()
    c.request("PUT", path, [("content-type", "application/octet-stream"), ("content-length", str(declared))], end=False)
    c.tls.sendall(frame(DATA, 0, 1, b"x" * sent))
    say("stalled")
    c.until_stream_ends(time.monotonic() + limit)


def late(port, delay, alpn, limit):
    try:
        c = Conn(port, alpn, delay)
    except (ssl.SSLError, OSError) as e:
        say(f"handshake-failed:{type(e).__name__}")
        return
    say(f"handshake-{c.tls.selected_alpn_protocol()}")
    until = time.monotonic() + limit
    head = b"GET /s/AAAAnotalink HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    sent = 0
    while time.monotonic() < until:
        if alpn == "http/1.1" and sent < len(head):
            try:
                c.tls.sendall(head[sent : sent + 1])
            except (ssl.SSLError, OSError):
                say("closed")
                return
            sent += 1
        c.tls.settimeout(1.0)
        try:
            got = c.tls.recv(4096)
        except (socket.timeout, TimeoutError):
            continue
        except (ssl.SSLError, OSError):
            say("closed")
            return
        if not got:
            say("closed")
            return
    say("open")


def main(args):
    mode = args[0]
    if mode == "idle":
        idle(int(args[1]), args[2], float(args[3]))
    elif mode == "stall":
        stall(int(args[1]), args[2], int(args[3]), int(args[4]), float(args[5]))
    elif mode == "late":
        late(int(args[1]), float(args[2]), args[3], float(args[4]))
    else:
        sys.exit(f"unknown mode {mode}")


if __name__ == "__main__":
    main(sys.argv[1:])

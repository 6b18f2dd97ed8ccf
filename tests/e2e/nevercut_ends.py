"""The two ends of tests/e2e/nevercut.py (issue 16: a response still arriving is never cut):

  backend  an HTTP/1.1 keep-alive server (on 0.0.0.0 in the test's namespace; X-Backend: the
           address the client connected to) with four answers:
             /small       a small JSON answer at once (the busy traffic)
             /big?piece=N 1 MB (a fixed pattern, Content-Length) in pieces of N bytes, 50 ms
                          apart: the first piece with the headers
             /stream      a chunked stream: the headers at once, then 60 chunks of 64 bytes
                          ("tick NNN ..."), 50 ms apart, the first one 50 ms after the headers
             /slow        the small answer, 2 s late
  client   python requests (a Session: one keep-alive connection), the phases of nevercut.py's
           docstring, one JSON line per request and per phase (run with /usr/bin/python3).

Both run as `nevercut.py backend|client` (the driver's internal subcommands).
"""

import hashlib
import json
import os
import time

BIG = 1 << 20
PAUSE = 0.05
TICKS = 60
TICK_SIZE = 64
SLOW_S = 2.0
# The phases of a run: (mode, kind). after: the drain is under way (seen in the shim's log) and the
# socket busy with small exchanges when the special answer is asked for; during: the special answer
# is asked for at the move, so that the drain starts while it arrives.
PHASES = [("after", "big"), ("after", "stream"), ("after", "slow"),
          ("during", "big16"), ("during", "stream"), ("during", "slow")]
PATHS = {"small": "/small", "big": "/big?piece=65536", "big16": "/big?piece=16384",
         "stream": "/stream", "slow": "/slow"}
TRIES = 3           # a phase the shim did not exercise (the drain came too early or too late) again
AFTER_SMALLS = 25   # back-to-back small exchanges on the draining socket before the special one
CHECK_PAUSE = 0.25  # after the special answer: the idle gap in which the socket should be shut


def big_body():
    block = hashlib.sha256(b"nevercut").digest() * 32       # 1 KB
    return block * (BIG // len(block))


def tick(i):
    line = ("tick %03d " % i).encode()
    return line + b"." * (TICK_SIZE - len(line) - 1) + b"\n"


def expected(kind, body):
    """None when body is the whole answer of kind, else what is wrong with it."""
    if kind in ("big", "big16"):
        if len(body) != BIG:
            return "%d of %d bytes" % (len(body), BIG)
        return None if body == big_body() else "the bytes differ"
    if kind == "stream":
        want = b"".join(tick(i) for i in range(TICKS))
        if body != want:
            return "%d of %d ticks" % (body.count(b"\n"), TICKS)
        return None
    try:
        return None if "backend" in json.loads(body) else "no backend in %r" % body[:80]
    except ValueError:
        return "not JSON: %r" % body[:80]


def run_backend(args):
    import http.server
    import socketserver
    from urllib.parse import parse_qs, urlparse

    big = big_body()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        @property
        def addr(self):
            return self.connection.getsockname()[0]

        def small(self):
            body = json.dumps({"backend": self.addr, "client_port": self.client_address[1],
                               "pad": "x" * 40}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("X-Backend", self.addr)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urlparse(self.path)
            if url.path == "/small":
                return self.small()
            if url.path == "/slow":
                time.sleep(SLOW_S)
                return self.small()
            if url.path == "/big":
                piece = int(parse_qs(url.query).get("piece", ["65536"])[0])
                self.send_response(200)
                self.send_header("X-Backend", self.addr)
                self.send_header("Content-Length", str(BIG))
                self.end_headers()
                for off in range(0, BIG, piece):
                    if off:
                        time.sleep(PAUSE)
                    self.wfile.write(big[off:off + piece])
                return None
            if url.path == "/stream":
                self.send_response(200)
                self.send_header("X-Backend", self.addr)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for i in range(TICKS):
                    time.sleep(PAUSE)
                    data = tick(i)
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.write(b"0\r\n\r\n")
                return None
            self.send_error(404)
            return None

    class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    srv = Server((args.addr, args.port), Handler)
    print("ready", flush=True)
    srv.serve_forever()


class Client:
    """The python requests end: one Session, the phases in order, each tried up to TRIES times."""

    def __init__(self, args):
        import requests
        self.args = args
        self.session = requests.Session()
        self.out = open(args.out, "a", buffering=1)
        self.moves = 0

    def emit(self, rec):
        self.out.write(json.dumps(rec) + "\n")

    def drains(self):
        """The drains the shim has started in this process so far (its log's lines)."""
        try:
            with open(self.args.shim_log, errors="replace") as f:
                return f.read().count("draining fd")
        except OSError:
            return 0

    def get(self, kind, phase):
        rec = {"type": "req", "kind": kind, "phase": phase, "t": time.time()}
        try:
            r = self.session.get(self.args.base + PATHS[kind], stream=True, timeout=15)
        except Exception as e:
            rec.update(ok=False, stage="request", error=repr(e)[:300], t_end=time.time())
            self.emit(rec)
            return rec
        try:
            rec["port"] = r.raw._connection.sock.getsockname()[1]
        except Exception:
            rec["port"] = None
        rec["backend"] = r.headers.get("X-Backend")
        body = bytearray()
        try:
            for piece in r.raw.stream(65536, decode_content=False):
                body += piece
            wrong = expected(kind, bytes(body))
            rec.update(ok=wrong is None, bytes=len(body))
            if wrong:
                rec.update(stage="body", error=wrong)
        except Exception as e:
            rec.update(ok=False, stage="body", bytes=len(body), error=repr(e)[:300])
        finally:
            r.close()
        rec["t_end"] = time.time()
        self.emit(rec)
        return rec

    def move(self):
        """Asks the driver to move the name and waits until DNS answers the new address."""
        self.moves += 1
        d = self.args.dir
        open(os.path.join(d, "%s.want-move.%d" % (self.args.tag, self.moves)), "w").close()
        done = os.path.join(d, "%s.moved.%d" % (self.args.tag, self.moves))
        end = time.time() + 10
        while not os.path.exists(done):
            if time.time() > end:
                raise SystemExit("the driver did not move the name within 10 s")
            time.sleep(0.01)
        with open(done) as f:
            return f.read().strip()

    def phase(self, mode, kind, n):
        ph = "%s-%s-%d" % (mode, kind, n)
        rec = {"type": "phase", "mode": mode, "kind": kind, "try": n, "phase": ph}
        d0 = self.drains()
        rec["to"] = self.move()
        if mode == "after":
            end = time.time() + (1.2 if self.args.control else 5.0)
            while (self.args.control or self.drains() == d0) and time.time() < end:
                self.get("small", ph)
                time.sleep(0.01)
            rec["drain_seen"] = self.drains() > d0
            smalls = [self.get("small", ph) for _ in range(AFTER_SMALLS)]
            rec["ports_before"] = [s.get("port") for s in smalls]
        rec["drains_before"] = self.drains() - d0
        special = self.get(kind, ph)
        rec["drains_after"] = self.drains() - d0
        rec["special_port"] = special.get("port")
        time.sleep(CHECK_PAUSE)
        check = self.get("small", ph)
        rec["check_backend"] = check.get("backend")
        rec["check_port"] = check.get("port")
        if mode == "after":
            # The special answer went over the socket that was draining and busy.
            rec["covered"] = (rec["drain_seen"] and rec["drains_before"] == 1
                              and set(rec["ports_before"]) == {special.get("port")})
        else:
            # The drain started while the special answer was arriving.
            rec["covered"] = rec["drains_before"] == 0 and rec["drains_after"] == 1
        self.emit(rec)
        return rec["covered"]

    def run(self):
        end = time.time() + 1.0
        while time.time() < end:
            self.get("small", "warm")
            time.sleep(0.01)
        for mode, kind in PHASES:
            for n in range(1, (1 if self.args.control else TRIES) + 1):
                if self.phase(mode, kind, n) or self.args.control:
                    break
        self.emit({"type": "done", "t": time.time()})
        return 0


def run_client(args):
    return Client(args).run()

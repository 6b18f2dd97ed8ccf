"""The two HTTP ends of the end-to-end tests (split out of tests/e2e/dnsmove.py, which runs them
as its internal subcommands `dnsmove.py backend` and `dnsmove.py client`):

  run_backend  an HTTP/1.1 keep-alive server answering with its own address (IPv4 or IPv6; HTTPS
               with --cert/--key; every answer --delay seconds late), logging connects,
               requests and closes as JSON lines. Used by dnsmove.py's Scene,
               tests/e2e/matrix_scene.py, adapter_trial.py and tools/demo.py.
  run_client   a requests.Session loop at a fixed rate, one JSON line per request (needs
               python3-requests; run with /usr/bin/python3).
"""

import json
import os
import signal
import socket
import time

SLOW_ANSWER = 1.5          # seconds, the matrix's slow request


# --------------------------------------------------------------------------------------------
# backend: HTTP/1.1 keep-alive server answering with its own address
# --------------------------------------------------------------------------------------------

def run_backend(args):
    import http.server
    import socketserver
    import ssl
    import threading

    lock = threading.Lock()
    out = open(args.log, "a", buffering=1)
    addr = args.addr
    tls = None
    if args.cert:
        # HTTPS: the same server behind TLS (--cert and --key, PEM), handshake per connection.
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(args.cert, args.key)

    def record(event, client, **extra):
        line = json.dumps(dict({"t": time.time(), "event": event, "backend": addr,
                                "client_ip": client[0], "client_port": client[1]}, **extra))
        with lock:
            out.write(line + "\n")

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: with Nagle on, the body would wait for
        # the client's delayed ACK (40 ms) and cap a keep-alive client at ~22 requests/s.
        disable_nagle_algorithm = True

        def setup(self):
            super().setup()
            if tls is None:
                record("connect", self.client_address)
            else:
                record("connect", self.client_address, tls=self.request.version())

        def finish(self):
            try:
                super().finish()
            finally:
                record("close", self.client_address)

        def do_GET(self):
            record("request", self.client_address)
            # The matrix asks for one slow answer per client by creating slow.<Host> in the
            # backend's working directory; whoever unlinks it first serves the slow answer.
            host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
            if host and "/" not in host:
                try:
                    os.unlink("slow." + host)
                    record("slow", self.client_address)
                    time.sleep(SLOW_ANSWER)
                except FileNotFoundError:
                    pass
            if args.delay:
                time.sleep(args.delay)      # --delay: every answer late (busy-back-to-back)
            body = json.dumps({"backend": addr, "client_ip": self.client_address[0],
                               "client_port": self.client_address[1]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, fmt, *a):
            pass

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True
        address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET

        def server_bind(self):
            # HTTPServer.server_bind would do a reverse lookup (getfqdn) of the address.
            socketserver.TCPServer.server_bind(self)
            self.server_name = addr
            self.server_port = self.server_address[1]

        def finish_request(self, request, client_address):
            # The TLS handshake in the connection's thread: a slow or failed one (the driver's
            # port probe) holds up no other connection.
            if tls is None:
                return super().finish_request(request, client_address)
            try:
                conn = tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
            with conn:
                super().finish_request(conn, client_address)

    srv = Server((addr, args.port), Handler)
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
    srv.serve_forever()


# --------------------------------------------------------------------------------------------
# client: requests.Session loop, one JSON line per request
# --------------------------------------------------------------------------------------------

def run_client(args):
    import requests

    out = open(args.out, "a", buffering=1)

    def emit(obj):
        out.write(json.dumps(obj) + "\n")

    lib_loaded = []
    with open("/proc/self/maps") as f:
        for line in f:
            if "libdnsaware" in line:
                p = line.split()[-1]
                if p not in lib_loaded:
                    lib_loaded.append(p)
    emit({"type": "meta", "t": time.time(), "pid": os.getpid(), "preloaded": lib_loaded,
          "ld_preload": os.environ.get("LD_PRELOAD", "")})

    # Count the program's own resolutions (urllib3 calls socket.getaddrinfo per new connection;
    # the call still goes through libc's getaddrinfo, which the shim interposes).
    real_gai = socket.getaddrinfo

    def counting_gai(host, *a, **kw):
        t = time.time()
        try:
            res = real_gai(host, *a, **kw)
        except Exception as e:
            emit({"type": "gai", "t": t, "host": host, "error": repr(e)})
            raise
        emit({"type": "gai", "t": t, "host": host,
              "addrs": sorted({r[4][0] for r in res})})
        return res

    socket.getaddrinfo = counting_gai

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *a: stop.update(now=True))

    s = requests.Session()
    s.trust_env = False          # no proxies from the environment, ever
    interval = 1.0 / args.rate
    start = time.monotonic()
    deadline = start + args.max_duration
    seq = 0
    nxt = start
    while not stop["now"] and not os.path.exists(args.stop_file) and time.monotonic() < deadline:
        now = time.monotonic()
        if now < nxt:
            time.sleep(nxt - now)
            continue
        nxt += interval
        if nxt < now:            # fell behind (slow request): do not burst to catch up
            nxt = now + interval
        rec = {"type": "req", "seq": seq, "t": time.time()}
        seq += 1
        try:
            r = s.get(args.url, timeout=(2, 5))
            rec["status"] = r.status_code
            try:
                body = r.json()
                rec["backend"] = body.get("backend")
                rec["client_port"] = body.get("client_port")
            except ValueError:
                rec["body"] = r.text[:200]
            rec["ok"] = r.status_code == 200 and rec.get("backend") is not None
        except Exception as e:
            rec["ok"] = False
            rec["error"] = "%s: %s" % (type(e).__name__, e)
        rec["t_end"] = time.time()
        emit(rec)
    s.close()
    emit({"type": "end", "t": time.time()})

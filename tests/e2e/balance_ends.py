"""The ends of tests/e2e/balance.py (issue 17, DNSAWARE_BALANCE): the backend, the three clients,
and the watch on the wire that sees connection attempts to the refusing address.

  backend  one process, HTTP/1.1 keep-alive, listening on every --listen ADDR:PORT (0.0.0.0:8080,
           [::]:8080 IPv6-only, and 127.0.0.10-.12 on the cooldown scenario's ports: nothing on
           127.0.0.13 there, so connects to it are refused). GET / answers
           {"backend": the local address the client connected to, "client_port": its port};
           every accepted connection is logged (JSON line: t, local, lport, peer, pport).
  pool     N keep-alive connections (http.client), used round-robin, each every --period s.
           Before reusing a connection it checks it the way urllib3 does (is_connection_dropped:
           readable means the peer closed, or the shim shut it down): such a connection is
           closed and a new one opened (a reconnect). A request that fails is recorded as failed
           (no retry: requests' default) and its connection replaced at its next turn.
  fresh    python requests.get per request (a Session and a connection of its own each time,
           `Connection: close`): --count requests at --rate per second. requests/urllib3 try the
           next getaddrinfo address when a connect fails.
  mixed    two families in one process: --workers threads per family, each opening a fresh
           connection per request to the name resolved with getaddrinfo(AF_INET) or
           getaddrinfo(AF_INET6) only (http.client, a socket of that family).

Every client writes one JSON line per request: {"type": "req", "t", "t_end", "ok", "backend",
"port" (the client's local port), "error", ...}; the pool adds "slot" and "reconnect" and a
{"type": "ready"} line once every connection has answered once. All run as
`balance.py backend|pool|fresh|mixed` (the driver's internal subcommands; /usr/bin/python3).

SynWatch (used by the driver, inside the namespace, root): a packet socket on lo with a BPF
filter for IPv4 packets from or to one address; records the TCP SYNs sent to it and the RSTs it
sends back, with their ports and times.
"""

import json
import os
import select
import socket
import struct
import threading
import time

BACKEND_HEADER = "X-Backend"


# --------------------------------------------------------------------------------------------
# backend
# --------------------------------------------------------------------------------------------

def parse_listen(text):
    """'127.0.0.10:8081' or '[::]:8080' -> (family, host, port)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return socket.AF_INET6, host, int(port)
    host, _, port = text.rpartition(":")
    return socket.AF_INET, host, int(port)


def run_backend(args):
    import http.server
    import socketserver

    log_lock = threading.Lock()
    accept_log = open(args.log, "a", buffering=1)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def log_message(self, *a):
            pass

        def setup(self):
            super().setup()
            local = self.connection.getsockname()
            self.local = local[0]
            rec = {"t": time.time(), "local": local[0], "lport": local[1],
                   "peer": self.client_address[0], "pport": self.client_address[1]}
            with log_lock:
                accept_log.write(json.dumps(rec) + "\n")

        def do_GET(self):
            body = json.dumps({"backend": self.local, "client_port": self.client_address[1]}
                              ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header(BACKEND_HEADER, self.local)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def server_class(family):
        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True
            address_family = family
            request_queue_size = 256

            def server_bind(self):
                if family == socket.AF_INET6:
                    self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                socketserver.TCPServer.server_bind(self)
                # BaseHTTPRequestHandler wants these; no getfqdn (a DNS lookup) at start.
                self.server_name = "backend"
                self.server_port = self.server_address[1]
        return Server

    servers = []
    for text in args.listen:
        family, host, port = parse_listen(text)
        servers.append(server_class(family)((host, port), Handler))
    for srv in servers[1:]:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
    print("ready", flush=True)
    servers[0].serve_forever()


# --------------------------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------------------------

class Out:
    def __init__(self, path):
        self.f = open(path, "a", buffering=1)
        self.lock = threading.Lock()

    def emit(self, rec):
        line = json.dumps(rec) + "\n"
        with self.lock:
            self.f.write(line)


def answer_of(body):
    """(backend, client_port) from the backend's JSON body."""
    j = json.loads(body)
    return j["backend"], j["client_port"]


def dropped(sock):
    """urllib3's is_connection_dropped: readable (EOF, or anything unexpected) means dropped."""
    try:
        r, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(r)


def run_pool(args):
    import http.client

    out = Out(args.out)
    n = args.conns
    conns = [None] * n
    gap = args.period / n
    deadline = time.time() + args.max_duration

    def connect(i):
        c = http.client.HTTPConnection(args.host, args.port, timeout=5)
        c.connect()
        c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns[i] = c
        return c

    def request(i):
        rec = {"type": "req", "slot": i, "t": time.time(), "reconnect": None}
        c = conns[i]
        if c is not None and (c.sock is None or dropped(c.sock)):
            c.close()
            conns[i] = c = None
            rec["reconnect"] = "dropped"
        try:
            if c is None:
                if rec["reconnect"] is None:
                    rec["reconnect"] = "after-error" if had[i] else "first"
                had[i] = True
                c = connect(i)
            sock = c.sock
            rec["port"] = sock.getsockname()[1]
            rec["peer"] = sock.getpeername()[0]
            rec["fd"] = sock.fileno()
            c.request("GET", "/?slot=%d" % i)
            r = c.getresponse()
            body = r.read()
            rec["backend"], _ = answer_of(body)
            rec["ok"] = r.status == 200
            if not rec["ok"]:
                rec["error"] = "status %d" % r.status
        except Exception as e:
            rec.update(ok=False, error=repr(e)[:300])
            if conns[i] is not None:
                conns[i].close()
            conns[i] = None
        rec["t_end"] = time.time()
        out.emit(rec)
        return rec

    had = [False] * n
    for i in range(n):
        request(i)
    out.emit({"type": "ready", "t": time.time()})
    k = 0
    next_t = time.time() + gap
    while time.time() < deadline and not os.path.exists(args.stop_file):
        now = time.time()
        if next_t > now:
            time.sleep(next_t - now)
        elif next_t < now - 1.0:
            next_t = now            # a long stall: go on from now, do not burst
        request(k % n)
        k += 1
        next_t += gap
    out.emit({"type": "done", "t": time.time()})
    for c in conns:
        if c is not None:
            c.close()
    return 0


def run_fresh(args):
    import requests

    out = Out(args.out)
    url = "http://%s:%d/" % (args.host, args.port)
    t0 = time.time()
    for seq in range(args.count):
        wait = t0 + seq / args.rate - time.time()
        if wait > 0:
            time.sleep(wait)
        rec = {"type": "req", "seq": seq, "t": time.time()}
        try:
            r = requests.get(url, timeout=5, headers={"Connection": "close"})
            rec["backend"], rec["port"] = answer_of(r.content)
            rec["ok"] = r.status_code == 200
        except Exception as e:
            rec.update(ok=False, error=repr(e)[:300])
        rec["t_end"] = time.time()
        out.emit(rec)
    out.emit({"type": "done", "t": time.time()})
    return 0


def run_mixed(args):
    import http.client

    class FamilyConnection(http.client.HTTPConnection):
        """http.client with the name resolved in one family only (getaddrinfo(family)), each
        address tried in order, a socket of that family."""

        def __init__(self, host, port, family):
            super().__init__(host, port, timeout=5)
            self.family = family

        def connect(self):
            err = OSError("getaddrinfo returned nothing")
            for fam, st, proto, _, sa in socket.getaddrinfo(self.host, self.port, self.family,
                                                             socket.SOCK_STREAM):
                s = socket.socket(fam, st, proto)
                s.settimeout(self.timeout)
                try:
                    s.connect(sa)
                except OSError as e:
                    err = e
                    s.close()
                    continue
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self.sock = s
                return
            raise err

    out = Out(args.out)
    families = {4: socket.AF_INET, 6: socket.AF_INET6}

    def worker(fam, w):
        time.sleep(w * args.interval / args.workers)
        for seq in range(args.per_worker):
            t_next = time.time() + args.interval
            rec = {"type": "req", "family": fam, "worker": w, "seq": seq, "t": time.time()}
            c = FamilyConnection(args.host, args.port, families[fam])
            try:
                c.connect()
                rec["peer"] = c.sock.getpeername()[0]
                rec["port"] = c.sock.getsockname()[1]
                c.request("GET", "/", headers={"Connection": "close"})
                r = c.getresponse()
                rec["backend"], _ = answer_of(r.read())
                rec["ok"] = r.status == 200
            except Exception as e:
                rec.update(ok=False, error=repr(e)[:300])
            finally:
                c.close()
            rec["t_end"] = time.time()
            out.emit(rec)
            time.sleep(max(0.0, t_next - time.time()))

    threads = [threading.Thread(target=worker, args=(fam, w))
               for fam in (4, 6) for w in range(args.workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    out.emit({"type": "done", "t": time.time()})
    return 0


# --------------------------------------------------------------------------------------------
# the watch on the wire (driver side)
# --------------------------------------------------------------------------------------------

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800
SO_ATTACH_FILTER = 26
PACKET_OUTGOING = 4
TCP_SYN, TCP_RST, TCP_ACK = 0x02, 0x04, 0x10


def _bpf_ipv4_host(addr):
    """A classic BPF program: accept IPv4 frames from or to addr (lo's 14-byte header)."""
    k = struct.unpack("!I", socket.inet_aton(addr))[0]
    ins = [(0x28, 0, 0, 12),            # ldh [12]   (ethertype)
           (0x15, 0, 5, ETH_P_IP),      # jeq IPv4 ? next : drop
           (0x20, 0, 0, 30),            # ld [30]    (destination)
           (0x15, 2, 0, k),             # jeq addr ? accept : next
           (0x20, 0, 0, 26),            # ld [26]    (source)
           (0x15, 0, 1, k),             # jeq addr ? accept : drop
           (0x06, 0, 0, 0xFFFF),        # accept
           (0x06, 0, 0, 0)]             # drop
    return b"".join(struct.pack("HBBI", *i) for i in ins), len(ins)


class SynWatch:
    """Watches lo for TCP packets from or to one IPv4 address. events: (t, kind, port) with
    kind "syn" (a connection attempt to addr, port its destination port) or "rst" (addr
    refused, port the refused connection's destination port on addr)."""

    def __init__(self, addr):
        self.addr = addr
        self.events = []
        self.lock = threading.Lock()
        self.stopping = False
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.filtered = False
        try:
            import ctypes
            prog, n = _bpf_ipv4_host(addr)
            self._prog = ctypes.create_string_buffer(prog)
            fprog = struct.pack("HL", n, ctypes.addressof(self._prog))
            self.sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            self.filtered = True
        except (OSError, ImportError):
            pass                         # unfiltered: every frame is parsed here instead
        self.sock.bind(("lo", 0))
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        packed = socket.inet_aton(self.addr)
        while not self.stopping:
            try:
                frame, sll = self.sock.recvfrom(256)
            except socket.timeout:
                continue
            except OSError:
                return
            if sll[2] != PACKET_OUTGOING or len(frame) < 14 + 20 + 14:
                continue                 # lo shows each packet twice: count it once
            ip = frame[14:]
            if struct.unpack("!H", frame[12:14])[0] != ETH_P_IP or ip[9] != 6:
                continue
            ihl = (ip[0] & 0x0F) * 4
            src, dst = ip[12:16], ip[16:20]
            tcp = ip[ihl:]
            sport, dport = struct.unpack("!HH", tcp[:4])
            flags = tcp[13]
            t = time.time()
            if dst == packed and flags & TCP_SYN and not flags & TCP_ACK:
                with self.lock:
                    self.events.append((t, "syn", dport))
            elif src == packed and flags & TCP_RST:
                with self.lock:
                    self.events.append((t, "rst", sport))

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()

    def snapshot(self):
        with self.lock:
            return list(self.events)

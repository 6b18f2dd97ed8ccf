#!/usr/bin/python3
"""End-to-end test: a name moves in real DNS under a keep-alive HTTP client.

Scenarios (one per meson test):

  move     client under the shim; svc.test moves 127.0.0.10 -> 127.0.0.11 (TTL 1 s).
           Asserts: every request sent from change + TTL + 2 s on lands on .11, no request
           fails. Reports the time from the change to the last request on .10 and the
           background DNS queries for the name per TTL.
  control  the same run without the shim. Asserts: every request lands on .10 (keep-alive
           pins the old address), no request fails.
  outage   client under the shim; dnsmasq is stopped mid-run for several TTLs, then restarted
           with the same answer. Asserts: no request fails and no reconnect (all requests on
           one client local port).

Each scenario runs in a private mount and network namespace (`unshare --mount --net`, the
script re-executes itself): `lo` is brought up, so all of 127.0.0.0/8 is local and private;
a generated resolv.conf (nameserver 127.0.0.1), hosts file (localhost only) and nsswitch.conf
(hosts: files dns) are bind-mounted over /etc. dnsmasq serves svc.test from an addn-hosts
file with --local-ttl=1; the answer is changed by rewriting the file and sending SIGHUP.
Two python HTTP/1.1 keep-alive backends listen on 127.0.0.10:8080 and 127.0.0.11:8080. The
client is a requests.Session loop at 5 requests/s (run with /usr/bin/python3, which has
requests). Only the client gets LD_PRELOAD.

Usage: dnsmove.py {move,control,outage} [--lib PATH] [--workdir DIR] [--keep] ...
The library path defaults to $DNSAWARE_LIB, then <repo>/build/src/libdnsaware.so.
Needs root (namespaces, bind mounts, port 53). Exit status: 0 pass, 1 assertion failed,
2 prerequisite missing or harness error (both are failures; nothing is ever skipped).

Internal subcommands (used by the driver): backend, client.
"""

import argparse
import json
import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

PYTHON = "/usr/bin/python3"
NAME = "svc.test"
OLD = "127.0.0.10"
NEW = "127.0.0.11"
PORT = 8080
DNS = "127.0.0.1"
DRIVER_SRC = "127.0.0.2"   # the driver's own DNS queries come from here (told apart in the log)
TTL = 1                    # seconds, dnsmasq --local-ttl
TTL_FLOOR = "200ms"
RATE = 5.0                 # requests per second
SLOW_ANSWER = 1.5          # seconds, the matrix's slow request
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

EXIT_FAIL = 1
EXIT_HARNESS = 2


class Failure(Exception):
    """An assertion of the scenario failed."""


class HarnessError(Exception):
    """A prerequisite is missing or the harness could not set the scene up."""


def log(msg):
    print(msg, flush=True)


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


# --------------------------------------------------------------------------------------------
# a tiny DNS client (the driver checks answers without glibc or the shim)
# --------------------------------------------------------------------------------------------

def _dns_name(buf, off):
    labels = []
    jumped = False
    end = None
    for _ in range(128):
        ln = buf[off]
        if ln == 0:
            off += 1
            break
        if ln & 0xC0 == 0xC0:
            ptr = struct.unpack("!H", buf[off:off + 2])[0] & 0x3FFF
            if not jumped:
                end = off + 2
            jumped = True
            off = ptr
            continue
        labels.append(buf[off + 1:off + 1 + ln].decode("ascii", "replace"))
        off += 1 + ln
    return ".".join(labels), (end if jumped else off)


def dns_query_a(name, timeout=0.5):
    """Ask the test DNS server for A records of name. Returns (rcode, [(addr, ttl)]).
    Raises OSError (refused, timeout) when the server does not answer."""
    qid = random.randrange(65536)
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(l)]) + l.encode() for l in name.split(".")) + b"\0"
    q += struct.pack("!HH", 1, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((DRIVER_SRC, 0))
        s.connect((DNS, 53))
        s.settimeout(timeout)
        s.send(q)
        t_end = time.monotonic() + timeout
        while True:
            s.settimeout(max(0.01, t_end - time.monotonic()))
            buf = s.recv(4096)
            if len(buf) >= 12 and struct.unpack("!H", buf[:2])[0] == qid:
                break
    _, flags, qd, an, _, _ = struct.unpack("!HHHHHH", buf[:12])
    off = 12
    for _ in range(qd):
        _, off = _dns_name(buf, off)
        off += 4
    answers = []
    for _ in range(an):
        _, off = _dns_name(buf, off)
        rtype, _, ttl, rdlen = struct.unpack("!HHIH", buf[off:off + 10])
        off += 10
        if rtype == 1 and rdlen == 4:
            answers.append((socket.inet_ntoa(buf[off:off + 4]), ttl))
        off += rdlen
    return flags & 0xF, answers


# --------------------------------------------------------------------------------------------
# the driver, inside the namespaces
# --------------------------------------------------------------------------------------------

def _pdeathsig(sig=signal.SIGKILL):
    # Children die with the driver even if it is SIGKILLed.
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig))  # PR_SET_PDEATHSIG
    except Exception:
        pass


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DNSAWARE_") and k != "LD_PRELOAD"
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def preload(lib):
    """LD_PRELOAD for a program under the shim. In a sanitized build meson sets
    DNSAWARE_TEST_PRELOAD_PREFIX to the sanitizer runtime (with its separator), which must come
    first in LD_PRELOAD of a program that is not itself built with the sanitizer."""
    return os.environ.get("DNSAWARE_TEST_PRELOAD_PREFIX", "") + lib


class Scene:
    def __init__(self, opts, workdir):
        self.opts = opts
        self.wd = workdir
        self.procs = []          # (name, Popen)
        self.dnsmasq = None
        self.dnsmasq_logs = []
        self.hosts_file = os.path.join(workdir, "dns-hosts")

    def path(self, name):
        return os.path.join(self.wd, name)

    def spawn(self, name, argv, env=None, stdout=None):
        out = open(self.path(name + ".out"), "ab") if stdout is None else stdout
        p = subprocess.Popen(argv, env=env if env is not None else clean_env(),
                             stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True, preexec_fn=_pdeathsig, cwd=self.wd)
        self.procs.append((name, p))
        return p

    def kill(self, p, timeout=3.0):
        if p.poll() is not None:
            return
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                return
            try:
                p.wait(timeout)
                return
            except subprocess.TimeoutExpired:
                continue
        p.wait(timeout)

    def cleanup(self):
        for _, p in reversed(self.procs):
            try:
                self.kill(p)
            except Exception as e:
                log("cleanup: could not stop pid %d: %s" % (p.pid, e))

    # ---- namespace set-up ----
    def setup_namespace(self):
        def run(*argv):
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            if r.returncode != 0:
                raise HarnessError("%s failed (status %d): %s"
                                   % (" ".join(argv), r.returncode, r.stdout.strip()))
        run("mount", "--make-rprivate", "/")
        run("ip", "link", "set", "lo", "up")
        with open(self.path("resolv.conf"), "w") as f:
            f.write("nameserver %s\noptions timeout:1 attempts:2\n" % DNS)
        with open(self.path("hosts"), "w") as f:
            f.write("127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
        run("mount", "--bind", self.path("resolv.conf"), "/etc/resolv.conf")
        run("mount", "--bind", self.path("hosts"), "/etc/hosts")
        # Make sure names go files -> dns (no mdns, resolved, nscd detours on odd hosts).
        if os.path.exists("/etc/nsswitch.conf"):
            lines = []
            with open("/etc/nsswitch.conf") as f:
                for line in f:
                    if line.split(":")[0].strip() != "hosts":
                        lines.append(line)
            lines.append("hosts: files dns\n")
            with open(self.path("nsswitch.conf"), "w") as f:
                f.writelines(lines)
            run("mount", "--bind", self.path("nsswitch.conf"), "/etc/nsswitch.conf")
        # Sanity: nothing but loopback, and 127.0.0.10/11 are local.
        for a in (OLD, NEW, DRIVER_SRC):
            with socket.socket() as s:
                try:
                    s.bind((a, 0))
                except OSError as e:
                    raise HarnessError("cannot bind %s inside the namespace: %s" % (a, e))

    # ---- DNS ----
    def write_answer(self, addr):
        tmp = self.hosts_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%s %s\n" % (addr, NAME))
        os.rename(tmp, self.hosts_file)

    def start_dnsmasq(self):
        n = len(self.dnsmasq_logs)
        logf = self.path("dnsmasq.%d.log" % n)
        self.dnsmasq_logs.append(logf)
        argv = [self.opts.dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null",
                "--no-resolv", "--no-hosts", "--no-poll",
                "--addn-hosts=" + self.hosts_file, "--local=/test/",
                "--local-ttl=%d" % TTL, "--listen-address=" + DNS, "--bind-interfaces",
                "--port=53", "--user=root", "--pid-file=" + self.path("dnsmasq.pid"),
                "--log-queries=extra", "--log-facility=" + logf]
        self.dnsmasq = self.spawn("dnsmasq.%d" % n, argv)

    def stop_dnsmasq(self):
        self.kill(self.dnsmasq)
        self.dnsmasq = None

    def wait_answer(self, addr, timeout=5.0):
        """Poll the server until it answers NAME -> exactly [addr] with TTL. Returns the time."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if self.dnsmasq is not None and self.dnsmasq.poll() is not None:
                raise HarnessError("dnsmasq exited with status %s (see %s)"
                                   % (self.dnsmasq.returncode, self.wd))
            try:
                rcode, ans = dns_query_a(NAME, timeout=0.3)
                last = (rcode, ans)
                if rcode == 0 and [a for a, _ in ans] == [addr]:
                    if ans[0][1] != TTL:
                        raise HarnessError("dnsmasq answers %s with TTL %d, expected %d"
                                           % (NAME, ans[0][1], TTL))
                    return time.time()
            except OSError as e:
                last = e
            time.sleep(0.02)
        raise HarnessError("DNS server did not answer %s -> %s within %.0fs (last: %r)"
                           % (NAME, addr, timeout, last))

    def wait_dns_down(self, timeout=3.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                dns_query_a(NAME, timeout=0.2)
            except OSError:
                return time.time()
            time.sleep(0.05)
        raise HarnessError("DNS server still answers after being stopped")

    def move_answer(self, addr):
        self.write_answer(addr)
        t_write = time.time()
        os.kill(self.dnsmasq.pid, signal.SIGHUP)
        return t_write, self.wait_answer(addr)

    # ---- backends ----
    def start_backends(self):
        for a in (OLD, NEW):
            self.spawn("backend-" + a, [PYTHON, os.path.abspath(__file__), "backend",
                                        "--addr", a, "--port", str(PORT),
                                        "--log", self.path("backend-%s.jsonl" % a)])
        for a in (OLD, NEW):
            end = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection((a, PORT), timeout=0.5).close()
                    break
                except OSError as e:
                    if time.monotonic() > end:
                        raise HarnessError("backend %s:%d did not come up: %s" % (a, PORT, e))
                    time.sleep(0.05)

    # ---- client ----
    def start_client(self, shim):
        env = clean_env()
        if shim:
            env["LD_PRELOAD"] = preload(self.opts.lib)
            env["DNSAWARE_TTL_FLOOR"] = TTL_FLOOR
            env["DNSAWARE_LOG"] = self.opts.log_level
            env["DNSAWARE_LOG_FILE"] = self.path("shim.log")
            env["DNSAWARE_STATS_FILE"] = self.path("shim-stats.prom")
            env["DNSAWARE_STATS_INTERVAL"] = "1s"
        self.client_out = self.path("client.jsonl")
        self.stop_file = self.path("client.stop")
        self.client = self.spawn("client", [PYTHON, os.path.abspath(__file__), "client",
                                            "--url", "http://%s:%d/" % (NAME, PORT),
                                            "--rate", str(RATE), "--out", self.client_out,
                                            "--stop-file", self.stop_file,
                                            "--max-duration", "90"], env=env)

    def client_records(self):
        recs = []
        try:
            with open(self.client_out) as f:
                for line in f:
                    line = line.strip()
                    if line:
                        try:
                            recs.append(json.loads(line))
                        except ValueError:
                            pass       # partial last line while the client runs
        except FileNotFoundError:
            pass
        return recs

    def wait_first_request(self, timeout=15.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.client.poll() is not None:
                raise HarnessError("the client exited early with status %s; output:\n%s"
                                   % (self.client.returncode, tail(self.path("client.out"))))
            reqs = [r for r in self.client_records() if r.get("type") == "req"]
            if reqs:
                if not reqs[0]["ok"]:
                    raise HarnessError("the first request failed: %s" % reqs[0])
                return reqs[0]["t"]
            time.sleep(0.05)
        raise HarnessError("the client made no request within %.0fs" % timeout)

    def sleep_until(self, t):
        while True:
            d = t - time.time()
            if d <= 0:
                return
            if self.client.poll() is not None:
                raise HarnessError("the client exited early with status %s; output:\n%s"
                                   % (self.client.returncode, tail(self.path("client.out"))))
            time.sleep(min(d, 0.05))

    def stop_client(self):
        with open(self.stop_file, "w"):
            pass
        try:
            self.client.wait(10)
        except subprocess.TimeoutExpired:
            raise HarnessError("the client did not stop within 10s of being told to")
        if self.client.returncode != 0:
            raise HarnessError("the client exited with status %d; output:\n%s"
                               % (self.client.returncode, tail(self.path("client.out"))))


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
        return "".join(lines[-n:]).rstrip()
    except OSError:
        return "(no %s)" % path


def dns_query_counts(logfiles):
    """Queries for NAME in the dnsmasq logs: {(source, qtype): count}."""
    counts = {}
    for lf in logfiles:
        try:
            with open(lf, errors="replace") as f:
                for line in f:
                    # "... dnsmasq[N]: 3 127.0.0.1/50859 query[A] svc.test from 127.0.0.1"
                    i = line.find(" query[")
                    if i < 0:
                        continue
                    parts = line[i + 1:].split()
                    if len(parts) < 4 or parts[1] != NAME:
                        continue
                    key = (parts[3], parts[0][6:-1])
                    counts[key] = counts.get(key, 0) + 1
        except OSError:
            pass
    return counts


# --------------------------------------------------------------------------------------------
# analysis and report
# --------------------------------------------------------------------------------------------

class Results:
    def __init__(self, scene, shim):
        recs = scene.client_records()
        self.meta = next((r for r in recs if r.get("type") == "meta"), {})
        self.reqs = [r for r in recs if r.get("type") == "req"]
        self.gai = [r for r in recs if r.get("type") == "gai" and r.get("host") == NAME]
        self.failed = [r for r in self.reqs if not r.get("ok")]
        self.ports = []
        for r in self.reqs:
            p = r.get("client_port")
            if p is not None and p not in self.ports:
                self.ports.append(p)
        self.by_backend = {}
        for r in self.reqs:
            b = r.get("backend") or "failed"
            self.by_backend[b] = self.by_backend.get(b, 0) + 1
        self.dns = dns_query_counts(scene.dnsmasq_logs)
        self.shim = shim
        self.scene = scene

    def span(self):
        if not self.reqs:
            return 0.0
        return self.reqs[-1]["t_end"] - self.reqs[0]["t"]

    def background_queries(self, served_seconds):
        """Queries for NAME from 127.0.0.1 not made by the program's own getaddrinfo
        (glibc asks one A and one AAAA per AF_UNSPEC call)."""
        a = self.dns.get(("127.0.0.1", "A"), 0)
        aaaa = self.dns.get(("127.0.0.1", "AAAA"), 0)
        n_gai = len(self.gai)
        bg_a = a - n_gai
        bg_aaaa = aaaa - n_gai
        per_ttl = bg_a * TTL / served_seconds if served_seconds > 0 else float("nan")
        return a, aaaa, n_gai, bg_a, bg_aaaa, per_ttl

    def report_common(self):
        log("  requests: %d sent, %d failed; by backend: %s"
            % (len(self.reqs), len(self.failed),
               ", ".join("%s=%d" % kv for kv in sorted(self.by_backend.items()))))
        log("  connections (distinct client ports): %d -> %d reconnect(s); "
            "program getaddrinfo(%s) calls: %d"
            % (len(self.ports), max(0, len(self.ports) - 1), NAME, len(self.gai)))
        for r in self.failed[:10]:
            log("  failed request seq %d at %.3f: %s"
                % (r["seq"], r["t"], r.get("error") or r.get("status") or r.get("body")))

    def report_dns(self, served_seconds):
        a, aaaa, n_gai, bg_a, bg_aaaa, per_ttl = self.background_queries(served_seconds)
        log("  DNS queries for %s seen by dnsmasq from the client host: %d A, %d AAAA; "
            "%d A + %d AAAA from the program's getaddrinfo"
            % (NAME, a, aaaa, n_gai, n_gai))
        if self.shim:
            log("  background (shim) DNS queries: %d A, %d AAAA over %.1fs of served DNS "
                "= %.2f A queries per name per TTL (TTL %ds, floor %s)"
                % (bg_a, bg_aaaa, served_seconds, per_ttl, TTL, TTL_FLOOR))

    def report_shim(self):
        if not self.shim:
            return
        p = self.scene.path("shim.log")
        try:
            with open(p, errors="replace") as f:
                lines = f.readlines()
        except OSError:
            lines = []
        log("  shim log (%s): %d lines%s" % (p, len(lines), "; last ones:" if lines else ""))
        for line in lines[-12:]:
            log("    " + line.rstrip())
        st = self.scene.path("shim-stats.prom")
        if os.path.exists(st):
            with open(st, errors="replace") as f:
                vals = [l.strip() for l in f if l.startswith("dnsaware_")]
            if vals:
                log("  shim metrics: " + "; ".join(vals))

    def check_preload(self):
        pre = self.meta.get("preloaded", [])
        if self.shim and not pre:
            raise Failure("expected the client to run with libdnsaware.so mapped "
                          "(LD_PRELOAD=%s); /proc/self/maps of the client has no libdnsaware"
                          % self.meta.get("ld_preload"))
        if not self.shim and pre:
            raise Failure("the control client must run without the shim, but it has %s mapped"
                          % pre)

    def check_no_failures(self):
        if self.failed:
            r = self.failed[0]
            raise Failure("expected no failed request; %d of %d failed, the first (seq %d at "
                          "%.3f): %s" % (len(self.failed), len(self.reqs), r["seq"], r["t"],
                                         r.get("error") or r.get("status") or r.get("body")))

    def check_min_requests(self, t_from, n_min, what):
        n = len([r for r in self.reqs if r["t"] >= t_from])
        if n < n_min:
            raise HarnessError("too few requests %s to judge (%d, need %d): is the client slow?"
                               % (what, n, n_min))


# --------------------------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------------------------

def start_traffic(scene, shim):
    """svc.test -> OLD in DNS, the backends up, the client sending, past its warm-up."""
    scene.write_answer(OLD)
    scene.start_dnsmasq()
    scene.wait_answer(OLD)
    scene.start_backends()
    scene.start_client(shim)
    t0 = scene.wait_first_request()
    scene.sleep_until(t0 + scene.opts.warmup)


def scenario_move(scene, shim):
    o = scene.opts
    start_traffic(scene, shim)
    t_write, t_change = scene.move_answer(NEW)
    deadline = t_change + TTL + 2.0
    scene.sleep_until(deadline + o.after)
    scene.stop_client()
    scene.stop_dnsmasq()

    res = Results(scene, shim)
    label = "move with shim" if shim else "move without shim (control)"
    log("%s: %s moved %s -> %s at %.3f (file written %.0f ms before the server answered it)"
        % (label, NAME, OLD, NEW, t_change, (t_change - t_write) * 1000))
    res.report_common()
    on_old = [r for r in res.reqs if r.get("backend") == OLD]
    after = [r for r in res.reqs if r["t"] >= deadline]
    if on_old:
        last_old = on_old[-1]
        log("  last request on %s: sent change%+.3fs (seq %d)"
            % (OLD, last_old["t"] - t_change, last_old["seq"]))
    first_new = next((r for r in res.reqs if r.get("backend") == NEW), None)
    if first_new:
        log("  first request on %s: sent change%+.3fs (seq %d)"
            % (NEW, first_new["t"] - t_change, first_new["seq"]))
    res.report_dns(res.span())
    res.report_shim()

    res.check_preload()
    before = [r for r in res.reqs if r["t_end"] < t_change]
    if not before or any(r.get("backend") != OLD for r in before if r.get("ok")):
        raise HarnessError("requests before the change did not all land on %s: %s"
                           % (OLD, res.by_backend))
    res.check_min_requests(deadline, int(o.after * RATE * 0.6),
                           "after change + TTL + 2s")
    res.check_no_failures()
    if shim:
        stale = [r for r in after if r.get("backend") != NEW]
        if stale:
            raise Failure(
                "expected every request sent from change + TTL + 2s (change%+.1fs) on to land "
                "on %s; %d of %d landed on %s instead (last one sent change%+.3fs, client port "
                "%s) - the keep-alive connection was not moved"
                % (TTL + 2.0, NEW, len(stale), len(after), stale[-1].get("backend"),
                   stale[-1]["t"] - t_change, stale[-1].get("client_port")))
        _, _, _, bg_a, _, _ = res.background_queries(res.span())
        if bg_a <= 0:
            raise Failure("expected the shim to re-resolve %s in the background; dnsmasq saw "
                          "no A query beyond the program's own %d getaddrinfo call(s)"
                          % (NAME, len(res.gai)))
    else:
        moved = [r for r in res.reqs if r.get("backend") != OLD]
        if moved:
            raise Failure("control: expected every request to stay on %s (keep-alive without "
                          "the shim never re-resolves); %d landed elsewhere, first at "
                          "change%+.3fs on %s"
                          % (OLD, len(moved), moved[0]["t"] - t_change, moved[0].get("backend")))
        if len(on_old) != len(res.reqs):
            raise Failure("control: not all requests answered by %s" % OLD)
    log("PASS: %s (%d requests, %d after the deadline, all on %s)"
        % (label, len(res.reqs), len(after), NEW if shim else OLD))


def scenario_outage(scene, shim):
    o = scene.opts
    start_traffic(scene, shim)
    t_stop = time.time()
    scene.stop_dnsmasq()
    t_down = scene.wait_dns_down()
    scene.sleep_until(t_down + o.outage)
    scene.start_dnsmasq()
    t_up = scene.wait_answer(OLD)
    scene.sleep_until(t_up + o.after)
    scene.stop_client()
    scene.stop_dnsmasq()

    res = Results(scene, shim)
    log("DNS outage with%s shim: dnsmasq stopped at %.3f, down (verified) %.1fs, answering "
        "again at %.3f (%.1fs without DNS = %.0f TTLs)"
        % ("" if shim else "out", t_stop, t_up - t_down, t_up, t_up - t_stop,
           (t_up - t_stop) / TTL))
    res.report_common()
    during = [r for r in res.reqs if t_stop <= r["t"] <= t_up]
    log("  requests during the outage: %d" % len(during))
    served = res.span() - (t_up - t_stop)
    res.report_dns(served)
    after_restart = dns_query_counts(scene.dnsmasq_logs[1:])
    gai_after = len([g for g in res.gai if g["t"] >= t_up])
    log("  after the restart (%.1fs): %d A queries for %s from the client host, %d of them "
        "the program's getaddrinfo" % (res.reqs[-1]["t_end"] - t_up if res.reqs else 0.0,
                                       after_restart.get(("127.0.0.1", "A"), 0), NAME,
                                       gai_after))
    res.report_shim()

    res.check_preload()
    res.check_min_requests(t_up, int(o.after * RATE * 0.6), "after the restart")
    if len(during) < int((t_up - t_stop) * RATE * 0.6):
        raise HarnessError("too few requests during the outage (%d)" % len(during))
    res.check_no_failures()
    if len(res.ports) != 1:
        raise Failure("expected no reconnect across the DNS outage (all requests on one client "
                      "port); saw %d connections, ports %s, first new one at %s"
                      % (len(res.ports), res.ports,
                         next(("%.3f (outage began %.3f, ended %.3f)" % (r["t"], t_stop, t_up)
                               for r in res.reqs if r.get("client_port") == res.ports[1]),
                              "?")))
    if any(r.get("backend") != OLD for r in res.reqs):
        raise Failure("expected every request on %s; got %s" % (OLD, res.by_backend))
    if shim:
        _, _, _, bg_a, _, _ = res.background_queries(served)
        if bg_a <= 0:
            raise Failure("expected the shim to re-resolve %s in the background (else this "
                          "scenario proves nothing); dnsmasq saw no A query beyond the "
                          "program's own %d getaddrinfo call(s)" % (NAME, len(res.gai)))
    log("PASS: DNS outage: %d requests, 0 failed, 1 connection throughout" % len(res.reqs))


SCENARIOS = {
    "move": (scenario_move, True),
    "control": (scenario_move, False),
    "outage": (scenario_outage, True),
}


def guarded(label, scene, body, harness_status=EXIT_HARNESS):
    """Runs body() inside the namespaces and returns its status: EXIT_FAIL when an assertion
    fails, harness_status for anything else that goes wrong; the scene is always cleaned up."""
    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return body()
    except Failure as e:
        log("FAIL (%s): %s" % (label, e))
        return EXIT_FAIL
    except HarnessError as e:
        log("ERROR (%s): harness: %s" % (label, e))
        return harness_status
    except KeyboardInterrupt as e:
        log("ERROR (%s): interrupted (%s)" % (label, e))
        return harness_status
    except Exception:
        import traceback
        traceback.print_exc()
        log("ERROR (%s): harness bug (traceback above)" % label)
        return harness_status
    finally:
        scene.cleanup()


def inside(opts):
    fn, shim = SCENARIOS[opts.scenario]
    scene = Scene(opts, opts.workdir)

    def body():
        scene.setup_namespace()
        fn(scene, shim)
        return 0
    return guarded(opts.scenario, scene, body)


# --------------------------------------------------------------------------------------------
# outside: prerequisites, then re-exec under unshare
# --------------------------------------------------------------------------------------------

def prerequisites(opts, shim):
    missing = []
    if os.geteuid() != 0:
        missing.append("must run as root (namespaces, bind mounts over /etc, port 53)")
    for prog in ("unshare", "ip", "mount"):
        if not shutil.which(prog):
            missing.append("%s not found on PATH (util-linux / iproute2)" % prog)
    if not opts.dnsmasq or not os.access(opts.dnsmasq, os.X_OK):
        missing.append("dnsmasq not found (install dnsmasq-base; looked for %s)"
                       % (opts.dnsmasq or "/usr/sbin/dnsmasq and PATH"))
    if not os.access(PYTHON, os.X_OK):
        missing.append("%s not found" % PYTHON)
    else:
        r = subprocess.run([PYTHON, "-c", "import requests"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=clean_env())
        if r.returncode != 0:
            missing.append("%s cannot import requests (install python3-requests): %s"
                           % (PYTHON, r.stdout.strip().splitlines()[-1:]))
    if shim:
        if not opts.lib:
            missing.append("no library: set DNSAWARE_LIB or pass --lib")
        elif not os.path.isfile(opts.lib):
            missing.append("library %s does not exist (build it: meson setup build && "
                           "ninja -C build)" % opts.lib)
    return missing


def prepare_workdir(workdir, prefix, marker=".dnsmove-workdir"):
    """The run's log directory: workdir (emptied first, only if one of these scripts made it)
    or a new temporary one. Returns its path, or None when workdir is someone else's."""
    if workdir:
        wd = os.path.abspath(workdir)
        if os.path.isdir(wd) and os.listdir(wd):
            if not os.path.exists(os.path.join(wd, marker)):
                log("--workdir %s exists and was not made by this script; refusing to empty it"
                    % wd)
                return None
            shutil.rmtree(wd)
        os.makedirs(wd, exist_ok=True)
    else:
        wd = tempfile.mkdtemp(prefix=prefix)
    os.chmod(wd, 0o755)
    open(os.path.join(wd, marker), "w").close()
    return wd


def keep_or_remove(wd, passed, keep, what="logs kept in %s"):
    """A passing run's temporary logs go; a failing or kept run's stay, and their place is said."""
    if passed and not keep:
        shutil.rmtree(wd, ignore_errors=True)
    else:
        log(what % wd)


def run_in_namespaces(script, args):
    """Runs `script args` under `unshare --mount --net` and returns its exit status; signals
    reach the namespaced driver, which also gets SIGTERM if this process dies."""
    argv = ["unshare", "--mount", "--net", "--", PYTHON, os.path.abspath(script)] + args
    env = clean_env()
    if "DNSAWARE_TEST_PRELOAD_PREFIX" in os.environ:   # for preload(), in there
        env["DNSAWARE_TEST_PRELOAD_PREFIX"] = os.environ["DNSAWARE_TEST_PRELOAD_PREFIX"]
    p = subprocess.Popen(argv, env=env, preexec_fn=lambda: _pdeathsig(signal.SIGTERM))

    def forward(signum, frame):
        try:
            p.send_signal(signum)
        except ProcessLookupError:
            pass
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    while True:
        try:
            return p.wait()
        except InterruptedError:
            continue


def outside(opts):
    fn, shim = SCENARIOS[opts.scenario]
    missing = prerequisites(opts, shim)
    if missing:
        for m in missing:
            log("FAIL (%s): prerequisite missing: %s" % (opts.scenario, m))
        return EXIT_HARNESS

    keep = opts.keep or opts.workdir is not None
    wd = prepare_workdir(opts.workdir, "dnsaware-e2e-%s-" % opts.scenario)
    if wd is None:
        return EXIT_HARNESS
    args = [opts.scenario, "--inside", "--workdir", wd, "--dnsmasq", opts.dnsmasq,
            "--warmup", str(opts.warmup), "--after", str(opts.after),
            "--outage", str(opts.outage), "--log-level", opts.log_level]
    if opts.lib:
        args += ["--lib", opts.lib]
    rc = run_in_namespaces(__file__, args)
    if rc < 0:
        log("FAIL (%s): the namespaced driver died of signal %d" % (opts.scenario, -rc))
        rc = EXIT_HARNESS
    elif rc not in (0, EXIT_FAIL, EXIT_HARNESS):
        log("FAIL (%s): unshare/driver exited with status %d (can this host create mount and "
            "network namespaces?)" % (opts.scenario, rc))
        rc = EXIT_HARNESS
    keep_or_remove(wd, rc == 0, keep)
    return rc


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "backend":
        ap = argparse.ArgumentParser(prog="dnsmove.py backend")
        ap.add_argument("backend")
        ap.add_argument("--addr", required=True)
        ap.add_argument("--port", type=int, default=PORT)
        ap.add_argument("--log", required=True)
        ap.add_argument("--cert", help="serve HTTPS with this certificate (PEM; needs --key)")
        ap.add_argument("--key")
        return run_backend(ap.parse_args())
    if len(sys.argv) > 1 and sys.argv[1] == "client":
        ap = argparse.ArgumentParser(prog="dnsmove.py client")
        ap.add_argument("client")
        ap.add_argument("--url", required=True)
        ap.add_argument("--rate", type=float, default=RATE)
        ap.add_argument("--out", required=True)
        ap.add_argument("--stop-file", required=True)
        ap.add_argument("--max-duration", type=float, default=90)
        return run_client(ap.parse_args())

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--lib", default=os.environ.get("DNSAWARE_LIB")
                    or os.path.join(REPO, "build", "src", "libdnsaware.so"),
                    help="libdnsaware.so to preload (default: $DNSAWARE_LIB, then "
                         "<repo>/build/src/libdnsaware.so)")
    ap.add_argument("--dnsmasq", default=shutil.which("dnsmasq")
                    or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None))
    ap.add_argument("--workdir", help="keep logs here (emptied first; kept after the run)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workdir on success")
    ap.add_argument("--warmup", type=float, default=3.0,
                    help="seconds of traffic before the change / outage")
    ap.add_argument("--after", type=float, default=6.0,
                    help="seconds of traffic after the deadline / the restart")
    ap.add_argument("--outage", type=float, default=5.0, help="seconds without DNS")
    ap.add_argument("--log-level", default="info", help="DNSAWARE_LOG for the client")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.lib:
        opts.lib = os.path.abspath(opts.lib)
    if opts.inside:
        return inside(opts)
    return outside(opts)


if __name__ == "__main__":
    sys.exit(main())

"""The scene of tests/e2e/dnsmove.py (split out of it; dnsmove.py re-exports every name here):
inside a private mount and network namespace, dnsmasq serving svc.test from an addn-hosts file,
the HTTP backends on 127.0.0.10 and 127.0.0.11 and the keep-alive client (both run as
`dnsmove.py backend|client`, see dnsmove_http.py), and a tiny DNS client for the driver's own
checks. Scene is the base of tests/e2e/matrix_scene.py's MatrixScene, adapter_trial.py's Trial,
tests/bench/bench_proxy_scene.py's BenchScene and tools/demo.py's DemoScene.
"""

import os
import random
import signal
import socket
import struct
import subprocess
import time

from dnsmove_ns import PYTHON, HarnessError, _pdeathsig, clean_env, log, preload, read_jsonl, tail

NAME = "svc.test"
OLD = "127.0.0.10"
NEW = "127.0.0.11"
PORT = 8080
DNS = "127.0.0.1"
DRIVER_SRC = "127.0.0.2"   # the driver's own DNS queries come from here (told apart in the log)
TTL = 1                    # seconds, dnsmasq --local-ttl
TTL_FLOOR = "200ms"
RATE = 5.0                 # requests per second
HERE = os.path.dirname(os.path.abspath(__file__))
DNSMOVE = os.path.join(HERE, "dnsmove.py")   # runs the backend and the client (subcommands)


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
# the scene, inside the namespaces
# --------------------------------------------------------------------------------------------

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
            self.spawn("backend-" + a, [PYTHON, DNSMOVE, "backend",
                                        "--addr", a, "--port", str(PORT),
                                        "--log", self.path("backend-%s.jsonl" % a)])
        wait_listening((OLD, NEW), PORT)

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
            # The shim's stored answers: the run's own, empty (no answer from another run).
            os.makedirs(self.path("shim-state"), mode=0o700, exist_ok=True)
            env["DNSAWARE_STATE_DIR"] = self.path("shim-state")
        self.client_out = self.path("client.jsonl")
        self.stop_file = self.path("client.stop")
        self.client = self.spawn("client", [PYTHON, DNSMOVE, "client",
                                            "--url", "http://%s:%d/" % (NAME, PORT),
                                            "--rate", str(RATE), "--out", self.client_out,
                                            "--stop-file", self.stop_file,
                                            "--max-duration", "90"], env=env)

    def client_records(self):
        return read_jsonl(self.client_out)

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


def wait_port(addr, port, what="backend", timeout=10.0):
    """Waits until something accepts connections on addr:port (matrix_scene, adapter_trial)."""
    end = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((addr, port), timeout=0.5).close()
            return
        except OSError as e:
            if time.monotonic() > end:
                raise HarnessError("%s %s:%d did not come up: %s" % (what, addr, port, e))
            time.sleep(0.05)


def wait_listening(addrs, port, timeout=10.0):
    """Waits until a backend accepts connections on every addr:port."""
    for a in addrs:
        wait_port(a, port, "backend", timeout)


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

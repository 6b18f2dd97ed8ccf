#!/usr/bin/python3
"""End-to-end matrix: real, unmodified clients under names that move or misbehave in DNS.

One run is one scenario (a DNS behaviour). Every client of the scenario runs at once, in one
private mount + network namespace (the script re-executes itself under
`unshare --mount --net`, as tests/e2e/dnsmove.py does, whose scene it reuses):

  - DNS: tests/e2e/dnsresponder.py, a programmable server, listens on 127.0.0.1:53 and
    127.0.0.3:53. Programs reach it through /etc/resolv.conf (127.0.0.1); the shim's background
    resolver is pointed at 127.0.0.3 (DNSAWARE_NAMESERVERS), so the query log tells the
    program's own queries from the shim's. Each client instance has its own name
    (<client>.e2e.test, and <client>.ctl.e2e.test for its control run), so queries are
    counted per client. TTL 1 s, shim TTL floor 200 ms.
  - Servers on 127.0.0.10-13: HTTP/1.1 keep-alive backends (dnsmove.py backend), redis-server,
    PostgreSQL, and nginx reverse proxies on 127.0.0.20 (under the shim) / 127.0.0.21 (control)
    whose upstream is a name.
  - Clients: tests/e2e/clients/ (contract in its README.md). Only the program under test gets
    LD_PRELOAD (for nginx that is nginx; its front client is plain).

Each scenario writes <results>/<scenario>.json; `matrix.py report` turns a results directory
into docs/compatibility.md. Exit status: 0 pass, 1 an assertion failed, 2 harness error or a
prerequisite missing (both fail the test; nothing is skipped), 77 every client of the scenario
left out under a sanitizer (SANITIZER_UNSUPPORTED).

Usage:
  matrix.py run SCENARIO [--clients a,b] [--results DIR] [--workdir DIR] [--shim-env VAR=VALUE]
  matrix.py report --results DIR [--out FILE]
  matrix.py list
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
CLIENT_DIR = os.path.join(HERE, "clients")
sys.path.insert(0, HERE)
import dnsmove  # noqa: E402  (namespace, process handling, HTTP backend)
import dnsresponder  # noqa: E402  (the programmable DNS server and its client helpers)
import promtext  # noqa: E402  (a strict Prometheus text-format parser)
import services  # noqa: E402  (redis-server, PostgreSQL, nginx)
from dnsmove import PYTHON, HarnessError, log, tail  # noqa: E402

PROGRAM_DNS = "127.0.0.1"  # /etc/resolv.conf inside the namespace
SHIM_DNS = "127.0.0.3"     # DNSAWARE_NAMESERVERS of every shim
ADDRS = ["127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"]
NGINX_LISTEN = {True: "127.0.0.20", False: "127.0.0.21"}
HTTP_PORT, REDIS_PORT, PG_PORT = 8080, 6379, 5432
TTL = 1
TTL_FLOOR = "200ms"
DOMAIN = "e2e.test"
SLOW_SECONDS = dnsmove.SLOW_ANSWER
EXIT_FAIL, EXIT_HARNESS = 1, 99   # 99: meson counts it as an error, even under should_fail
EXIT_SKIP = 77                    # meson: skipped


# --------------------------------------------------------------------------------------------
# clients
# --------------------------------------------------------------------------------------------

class Client:
    def __init__(self, cid, label, proto, argv, steering=False, conns=1, rate=None):
        self.cid = cid
        self.label = label          # for the report
        self.proto = proto          # http | redis | pg | nginx
        self.argv = argv            # adapter command, without the contract's options
        self.steering = steering    # keeps the address itself: follows by connect steering
        self.conns = conns
        self.rate = rate            # overrides the scenario's rate (requests/s)

    def port(self):
        return {"http": HTTP_PORT, "nginx": HTTP_PORT, "redis": REDIS_PORT,
                "pg": PG_PORT}[self.proto]


def _py(script, *extra):
    return [PYTHON, os.path.join(CLIENT_DIR, script)] + list(extra)


CLIENTS = [
    Client("curl", "curl, one invocation with many URLs", "http", _py("http_curl.py"),
           steering=True),
    Client("requests", "python requests.Session", "http", _py("http_requests.py")),
    Client("urllib3", "python urllib3.PoolManager", "http", _py("http_urllib3.py")),
    Client("java", "Java 17 HttpURLConnection (java File.java)", "http",
           ["java", os.path.join(CLIENT_DIR, "HttpLoop.java")], steering=True),
    Client("java-forever", "Java 17, InetAddress cache forever (-Dsun.net.inetaddr.ttl=-1)",
           "http", ["java", "-Dsun.net.inetaddr.ttl=-1", os.path.join(CLIENT_DIR, "HttpLoop.java")],
           steering=True),
    Client("node", "Node.js http.Agent({keepAlive: true})", "http",
           ["node", os.path.join(CLIENT_DIR, "http_node.js")]),
    Client("redis", "redis-py against redis-server", "redis", _py("redis_loop.py")),
    Client("postgres", "libpq (psycopg2), one session", "pg", _py("pg_loop.py")),
    Client("nginx", "nginx reverse proxy, upstream keepalive", "nginx",
           _py("http_requests.py"), steering=True),
]
MANY = Client("requests-200", "python requests, 200 keep-alive connections", "http",
              _py("http_requests.py"), conns=200)
ALL_CLIENTS = {c.cid: c for c in CLIENTS + [MANY]}

# Clients known to fail a request when the shim shuts their idle connection: they neither check
# a pooled connection before reusing it nor retry a request that was never sent. Each entry is
# the number of failed requests allowed per reconnect, and why (docs/compatibility.md).
FAILS_PER_RECONNECT = {
    "postgres": (1, "libpq sends a query on a connection the server (or the shim) has closed "
                    "and reports 'server closed the connection unexpectedly'; the application "
                    "reconnects only after that error. A server-side idle timeout costs the "
                    "same one failed query."),
}


def instance_name(client, shim):
    return "%s.%s" % (client.cid, DOMAIN) if shim else "%s.ctl.%s" % (client.cid, DOMAIN)


# --------------------------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------------------------

class Scenario:
    def __init__(self, name, title, initial, final=None, ttl_after=None, fault=None,
                 rotate=None, controls=False, rate=5.0, env=None, clients=None, slow=False,
                 expect="follow", run_after=6.0, failures_reported=False, settle=0.0,
                 refusing=(), connection="keep-alive"):
        self.name = name
        self.title = title
        self.initial = initial      # addresses at start
        self.final = final          # addresses after the change (None: no change of set)
        self.ttl_after = ttl_after  # TTL after the change (None: unchanged)
        self.fault = fault          # (mode, seconds): DNS misbehaves, then answers again
        self.rotate = rotate        # answer this many random addresses of the set per query
        self.controls = controls    # run every client a second time without the shim
        self.rate = rate
        self.env = env or {}
        self.clients = clients or [c.cid for c in CLIENTS]
        self.slow = slow            # a slow request is in flight across the change
        self.expect = expect        # follow | stay | recycle | pinned | failover
        self.run_after = run_after  # seconds of traffic after the change / fault
        # Busy clients are never idle: the shim fails their next request with EPIPE, before a
        # byte is sent, and clients that do not retry such a request report it. Counted and
        # reported per client, not asserted (docs/compatibility.md).
        self.failures_reported = failures_reported
        self.settle = settle        # added to the deadline: the client's own reuse interval
        self.refusing = list(refusing)  # addresses of the name where nothing listens
        self.connection = connection    # close: a fresh connection per request

    def removed(self):
        return set(self.initial) - set(self.final or self.initial)

    def deadline(self, t_change):
        """When every request must land on a current address (follow scenarios)."""
        extra = (self.ttl_after or TTL) * 1.1 if self.ttl_after else 0.0
        return (t_change + TTL + extra + 3.0 + (SLOW_SECONDS if self.slow else 0.0)
                + self.settle)


OLD, NEW = ADDRS[0], ADDRS[1]
SCENARIOS = {s.name: s for s in [
    Scenario("move", "A moves to B", [OLD], [NEW], controls=True),
    # The control of steering itself: without it, the clients that keep the address stay.
    Scenario("move-no-redirect", "A moves to B, DNSAWARE_REDIRECT=0", [OLD], [NEW],
             env={"DNSAWARE_REDIRECT": "0"}, clients=["curl", "java", "java-forever", "nginx"],
             expect="pinned"),
    Scenario("move-ttl", "A moves to B and the TTL goes from 1 s to 3 s", [OLD], [NEW],
             ttl_after=3, controls=True, run_after=8.0),
    Scenario("add-remove", "one address added to and one removed from a set of three",
             ADDRS[0:3], ADDRS[1:4], controls=True),
    Scenario("outage", "DNS server stopped for 5 s", [OLD], fault=("stopped", 5.0),
             expect="stay"),
    Scenario("servfail", "SERVFAIL for 4 s", [OLD], fault=("servfail", 4.0), expect="stay"),
    Scenario("nxdomain", "NXDOMAIN for 4 s", [OLD], fault=("nxdomain", 4.0), expect="stay"),
    Scenario("empty", "empty NOERROR answer for 4 s", [OLD], fault=("empty", 4.0),
             expect="stay"),
    Scenario("silent", "no answer at all (timeouts) for 4 s", [OLD], fault=("silent", 4.0),
             expect="stay"),
    Scenario("rotating", "2 random addresses out of 4 on each query", ADDRS, rotate=2,
             expect="stay", run_after=10.0),
    Scenario("slow", "a 1.5 s request in flight across the move", [OLD], [NEW],
             controls=True, slow=True),
    Scenario("max-age", "DNSAWARE_MAX_AGE=2s, no DNS change", [OLD],
             env={"DNSAWARE_MAX_AGE": "2s"}, expect="recycle", run_after=8.0, controls=True),
    Scenario("busy", "50 requests/s on one keep-alive connection, A moves to B", [OLD], [NEW],
             rate=50.0, controls=True, failures_reported=True),
    Scenario("failover", "3 addresses, the first refuses connections; a fresh connection per "
             "request", ADDRS[0:3], refusing=[OLD], connection="close", rate=10.0, run_after=10.0,
             clients=["curl", "requests", "java", "node"], controls=True, expect="failover"),
    Scenario("many", "200 keep-alive connections in one process, A moves to B", [OLD], [NEW],
             rate=100.0, clients=["requests-200"], controls=True, run_after=6.0,
             settle=2.0),   # each connection is used every 2 s: it reconnects at its next use
]}


# --------------------------------------------------------------------------------------------
# the scene
# --------------------------------------------------------------------------------------------

class MatrixScene(dnsmove.Scene):
    def __init__(self, opts, workdir, scenario, clients):
        super().__init__(opts, workdir)
        self.sc = scenario
        self.clients = clients
        self.zone = self.path("zone.json")
        self.dns_log = self.path("dns-queries.jsonl")
        self.responder = None
        self.instances = {}         # (cid, shim) -> Popen of the program we watch
        self.stop_file = self.path("clients.stop")
        self.nginx = {}             # shim -> master Popen
        self.pg_template = None

    # ---- DNS ----
    def zone_names(self, addrs, ttl, mode="answer"):
        names = {}
        for c in self.clients:
            for shim in self.shim_modes():
                entry = {"addrs": list(addrs), "ttl": ttl, "mode": mode}
                if self.sc.rotate:
                    entry["rotate"] = self.sc.rotate
                names[instance_name(c, shim)] = entry
        dnsresponder.write_zone(self.zone, names, default="nxdomain")

    def shim_modes(self):
        return (True, False) if self.sc.controls else (True,)

    def start_responder(self):
        n = len([p for name, p in self.procs if name.startswith("dns")])
        self.responder = self.spawn(
            "dns.%d" % n,
            [PYTHON, os.path.join(HERE, "dnsresponder.py"), "--listen", PROGRAM_DNS,
             "--listen", SHIM_DNS, "--port", "53", "--zone", self.zone, "--log", self.dns_log])
        self.wait_dns(lambda rcode, ans: rcode == 0 and ans, "answer")

    def stop_responder(self):
        self.kill(self.responder)
        self.responder = None

    def probe_name(self):
        return instance_name(self.clients[0], True)

    def wait_dns(self, ok, what, timeout=8.0):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if self.responder is not None and self.responder.poll() is not None:
                raise HarnessError("the DNS responder exited with status %s:\n%s"
                                   % (self.responder.returncode, tail(self.path("dns.0.out"))))
            try:
                rcode, ans, _ = dnsresponder.query(PROGRAM_DNS, self.probe_name(), "A",
                                                   timeout=0.3, src=dnsmove.DRIVER_SRC)
                last = (rcode, ans)
                if ok(rcode, ans):
                    return time.time()
            except OSError as e:
                last = e
                if ok(None, None):
                    return time.time()
            time.sleep(0.02)
        raise HarnessError("DNS never reached the state '%s' within %.0fs (last: %r)"
                           % (what, timeout, last))

    # ---- servers ----
    def start_servers(self):
        addrs = sorted((set(self.sc.initial) | set(self.sc.final or [])) - set(self.sc.refusing))
        protos = {c.proto for c in self.clients}
        if protos & {"http", "nginx"}:
            for a in addrs:
                self.spawn("backend-" + a, [PYTHON, dnsmove.__file__, "backend", "--addr", a,
                                            "--port", str(HTTP_PORT),
                                            "--log", self.path("backend-%s.jsonl" % a)])
        if "redis" in protos:
            for a in addrs:
                services.start_redis(self.spawn, self.wd, a, REDIS_PORT)
        if "pg" in protos:
            template = services.postgres_template(self.opts.cache or self.wd)
            for a in addrs:
                services.start_postgres(self.spawn, self.wd, a, PG_PORT, template=template)
        if protos & {"http", "nginx"}:
            for a in addrs:
                wait_port(a, HTTP_PORT, "HTTP backend")
        if "nginx" in protos:
            for shim in self.shim_modes():
                c = ALL_CLIENTS["nginx"]
                nwd = self.path("nginx-%s" % ("shim" if shim else "control"))
                os.makedirs(nwd, exist_ok=True)
                self.nginx[shim] = services.start_nginx(
                    self.spawn, nwd, NGINX_LISTEN[shim], HTTP_PORT, instance_name(c, shim),
                    HTTP_PORT, env=self.program_env(c, shim))

    # ---- clients ----
    def program_env(self, client, shim):
        env = dnsmove.clean_env()
        if shim:
            env["LD_PRELOAD"] = dnsmove.preload(self.opts.lib)
            env["DNSAWARE_TTL_FLOOR"] = TTL_FLOOR
            env["DNSAWARE_NAMESERVERS"] = SHIM_DNS
            env["DNSAWARE_LOG"] = self.opts.log_level
            env["DNSAWARE_LOG_FILE"] = self.path("shim-%s.log" % client.cid)
            # One file per process (nginx has a master and workers), as an operator's
            # node_exporter directory would have them.
            os.makedirs(self.stats_dir(client), exist_ok=True)
            env["DNSAWARE_STATS_FILE"] = os.path.join(self.stats_dir(client), "%p.prom")
            env["DNSAWARE_STATS_INTERVAL"] = "1s"
            env.update(self.sc.env)
            env.update(kv.split("=", 1) for kv in self.opts.shim_env or [])
        return env

    def stats_dir(self, client):
        return self.path("stats-%s" % client.cid)

    def out_file(self, client, shim):
        return self.path("client-%s-%s.jsonl" % (client.cid, "shim" if shim else "control"))

    def slow_file(self, client, shim):
        return self.path("slow-%s-%s" % (client.cid, "shim" if shim else "control"))

    def start_clients(self):
        for c in self.clients:
            for shim in self.shim_modes():
                rate = c.rate or self.sc.rate
                if c.proto == "nginx":
                    target = "%s:%d" % (NGINX_LISTEN[shim], HTTP_PORT)
                    env = dnsmove.clean_env()       # the front client is not under test
                else:
                    target = "%s:%d" % (instance_name(c, shim), c.port())
                    env = self.program_env(c, shim)
                argv = c.argv + ["--target", target, "--rate", "%g" % rate,
                                 "--out", self.out_file(c, shim), "--stop-file", self.stop_file,
                                 "--max-duration", "150"]
                if c.proto in ("redis", "pg"):
                    argv += ["--slow-file", self.slow_file(c, shim)]
                if c.conns > 1:
                    argv += ["--conns", str(c.conns)]
                if self.sc.connection != "keep-alive":
                    argv += ["--connection", self.sc.connection]
                p = self.spawn("client-%s-%s" % (c.cid, "shim" if shim else "control"), argv,
                               env=env)
                self.instances[(c.cid, shim)] = self.nginx[shim] if c.proto == "nginx" else p
                self.instances[(c.cid, shim, "front")] = p

    def records(self, client, shim):
        recs = []
        try:
            with open(self.out_file(client, shim)) as f:
                for line in f:
                    try:
                        recs.append(json.loads(line))
                    except ValueError:
                        pass            # a partial last line while the client writes
        except FileNotFoundError:
            pass
        return recs

    def check_alive(self):
        for key, p in self.instances.items():
            if p.poll() is not None:
                cid, shim = key[0], key[1]
                name = "client-%s-%s" % (cid, "shim" if shim else "control")
                raise HarnessError("%s exited early with status %s; output:\n%s"
                                   % (name, p.returncode, tail(self.path(name + ".out"))))

    def wait_all_started(self, timeout=40.0):
        """Until every client (and every one of its connections) has answered once."""
        end = time.monotonic() + timeout
        pending = None
        while time.monotonic() < end:
            self.check_alive()
            pending = []
            for c in self.clients:
                for shim in self.shim_modes():
                    reqs = [r for r in self.records(c, shim) if r.get("type") == "req"]
                    # Without the shim, a client that tries only the refusing address never
                    # gets an answer in the failover scenario: any attempt counts there.
                    conns = {r.get("conn", 0) for r in reqs
                             if r.get("ok") or (self.sc.refusing and not shim)}
                    if len(conns) < c.conns:
                        pending.append("%s%s (%d/%d)" % (c.cid, "" if shim else " control",
                                                         len(conns), c.conns))
            if not pending:
                return time.time()
            time.sleep(0.1)
        raise HarnessError("clients not answered within %.0fs: %s" % (timeout, pending))

    def sleep_until(self, t):
        while True:
            d = t - time.time()
            if d <= 0:
                return
            self.check_alive()
            time.sleep(min(d, 0.05))

    def stop_clients(self):
        open(self.stop_file, "w").close()
        end = time.monotonic() + 15
        for key, p in self.instances.items():
            if len(key) == 2 and key[0] == "nginx":
                continue                # the proxy is stopped at cleanup
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise HarnessError("client %s did not stop within 15s" % (key,))

    # ---- facts about the processes ----
    def preloaded(self, pid):
        try:
            with open("/proc/%d/maps" % pid) as f:
                return "libdnsaware" in f.read()
        except OSError:
            return None

    def shim_threads(self, pid):
        n = 0
        try:
            for tid in os.listdir("/proc/%d/task" % pid):
                try:
                    with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                        if f.read().strip() == "dnsaware":
                            n += 1
                except OSError:
                    pass
        except OSError:
            return None
        return n


def refuses(addr, port):
    """The failover scenario stands on this: a connect to addr:port is refused at once."""
    with socket.socket() as s:
        s.settimeout(1.0)
        try:
            s.connect((addr, port))
        except ConnectionRefusedError:
            return
        except OSError as e:
            raise HarnessError("%s:%d should refuse connections, got %s" % (addr, port, e))
    raise HarnessError("%s:%d should refuse connections, but something listens" % (addr, port))


def wait_port(addr, port, what, timeout=10.0):
    end = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((addr, port), timeout=0.5).close()
            return
        except OSError as e:
            if time.monotonic() > end:
                raise HarnessError("%s %s:%d did not come up: %s" % (what, addr, port, e))
            time.sleep(0.05)


# --------------------------------------------------------------------------------------------
# running a scenario
# --------------------------------------------------------------------------------------------

def run_scenario(scene, opts):
    sc = scene.sc
    scene.zone_names(sc.initial, TTL)
    scene.start_responder()
    scene.start_servers()
    for a in sc.refusing:
        refuses(a, HTTP_PORT)
    scene.start_clients()
    t_started = scene.wait_all_started()
    scene.sleep_until(t_started + opts.warmup)

    facts = {}
    for (cid, shim, *front), p in scene.instances.items():
        if front:
            continue
        facts[(cid, shim)] = {"preloaded": scene.preloaded(p.pid)}
    if "nginx" in [c.cid for c in scene.clients]:
        for shim, master in scene.nginx.items():
            m, workers = services.nginx_pids(master.pid)
            facts[("nginx", shim)].update(
                master_threads=scene.shim_threads(m),
                worker_threads=[scene.shim_threads(w) for w in workers])

    events = {}
    if sc.slow:
        # Ask each client for one slow request now, so it is in flight when DNS changes.
        for c in scene.clients:
            for shim in scene.shim_modes():
                if c.proto in ("redis", "pg"):
                    open(scene.slow_file(c, shim), "w").close()
                else:
                    name = instance_name(c, shim)
                    open(scene.path("slow." + name), "w").close()
        scene.sleep_until(time.time() + 0.5)

    if sc.final is not None:
        scene.zone_names(sc.final, sc.ttl_after or TTL)
        want = sorted(sc.final)
        t_change = scene.wait_dns(
            lambda rcode, ans: rcode == 0 and sorted(a for a, _ in ans) == want,
            "answer %s" % want) if not sc.rotate else time.time()
        events["change"] = t_change
        end = sc.deadline(t_change) + sc.run_after - 3.0
        events["deadline"] = sc.deadline(t_change)
    elif sc.fault is not None:
        mode, seconds = sc.fault
        events["fault_start"] = time.time()
        if mode == "stopped":
            scene.stop_responder()
        else:
            scene.zone_names(sc.initial, TTL, mode=mode)
        scene.sleep_until(events["fault_start"] + seconds)
        if mode == "stopped":
            scene.start_responder()
        else:
            scene.zone_names(sc.initial, TTL)
            scene.wait_dns(lambda rcode, ans: rcode == 0 and ans, "answer")
        events["fault_end"] = time.time()
        end = events["fault_end"] + sc.run_after
    else:
        events["start"] = time.time()
        end = events["start"] + sc.run_after
    scene.sleep_until(end)
    events["stop"] = time.time()
    scene.stop_clients()
    events["end"] = time.time()
    return facts, events


# --------------------------------------------------------------------------------------------
# analysis
# --------------------------------------------------------------------------------------------

def dns_counts(scene):
    counts = {}
    for q in dnsresponder.read_log(scene.dns_log):
        key = (q.get("qname"), q.get("listen"), q.get("qtype"))
        counts.setdefault(key, []).append(q.get("t"))
    return counts


def analyse(scene, client, shim, facts, events, dns):
    sc = scene.sc
    recs = scene.records(client, shim)
    meta = next((r for r in recs if r.get("type") == "meta"), {})
    reqs = [r for r in recs if r.get("type") == "req"]
    failed = [r for r in reqs if not r.get("ok")]
    removed = sc.removed()
    t_ref = events.get("change") or events.get("fault_start") or events.get("start")
    # A connection is (server address, client port). Those opened before the event are the
    # client's own (one per address it balances over, or --conns); the rest are reconnects.
    first_seen = {}
    for r in reqs:
        if r.get("ok"):
            first_seen.setdefault((r.get("backend"), r.get("client_port")), r["t"])
    conns = list(first_seen)
    t_own = t_ref
    if sc.rotate and reqs:
        # Rotation acts from the first refresh on: count from the client's start (its first
        # half second: nginx opens one connection per upstream address on its first requests).
        t_own = reqs[0]["t"] + 0.5
    opened_before = len([t for t in first_seen.values() if t < t_own])
    on_old = [r for r in reqs if r.get("backend") in removed]
    name = instance_name(client, shim)
    t0 = reqs[0]["t"] if reqs else t_ref
    t1 = reqs[-1]["t_end"] if reqs else t_ref
    served = max(0.001, t1 - t0 - (sc.fault[1] if sc.fault and sc.fault[0] == "stopped" else 0))
    shim_a = len(dns.get((name, SHIM_DNS, "A"), []))
    prog_a = len(dns.get((name, PROGRAM_DNS, "A"), []))
    res = {
        "client": client.cid, "label": client.label, "shim": shim,
        "version": program_version(client, meta), "requests": len(reqs), "failed": len(failed),
        "failures": [{"t": round(r["t"] - t_ref, 3), "error": (r.get("error") or "")[:200]}
                     for r in failed[:5]],
        "ended_failed": 1 if reqs and not reqs[-1].get("ok") else 0,
        "connections": len(conns), "connections_before": opened_before,
        "reconnects": len(conns) - opened_before,
        "by_backend": count_by(reqs, lambda r: r.get("backend") or "failed"),
        "slowest_s": round(max((r["t_end"] - r["t"] for r in reqs), default=0.0), 3),
        "dns_program_a": prog_a, "dns_shim_a": shim_a,
        "dns_shim_a_per_ttl": round(shim_a * TTL / served, 2),
        "preloaded": facts.get((client.cid, shim), {}).get("preloaded"),
    }
    res.update({k: v for k, v in facts.get((client.cid, shim), {}).items() if k != "preloaded"})
    if shim:
        res.update(read_stats(scene.stats_dir(client)))
        res["log_story"] = log_story(scene.path("shim-%s.log" % client.cid))
    if removed:
        res["last_old_s"] = round(on_old[-1]["t"] - t_ref, 3) if on_old else None
        after = [r for r in reqs if r["t"] >= events["deadline"]]
        res["after_deadline"] = len(after)
        res["after_deadline_on_old"] = len([r for r in after if r.get("backend") in removed])
        res["moved"] = bool(after) and res["after_deadline_on_old"] == 0 and any(
            r.get("backend") not in removed and r.get("ok") for r in after)
        if client.conns > 1:
            res.update(many_connections(scene, client, shim, reqs, removed, events))
    if sc.slow:
        slow = [r for r in reqs if r.get("slow") or (r.get("t_end", 0) - r["t"]) >= SLOW_SECONDS * 0.9]
        res["slow_requests"] = len(slow)
        res["slow_ok"] = bool(slow) and all(r.get("ok") for r in slow)
    if sc.ttl_after and shim:
        # After the change, the shim's refreshes are spaced by the new TTL.
        ts = sorted(dns.get((name, SHIM_DNS, "A"), []))
        later = [t for t in ts if t > events["change"] + TTL * 1.2]
        gaps = [b - a for a, b in zip(later, later[1:])]
        res["shim_query_gaps_after_change"] = [round(g, 2) for g in gaps]
    return res


def program_version(client, meta):
    if client.proto == "nginx":     # the program under test, not its front client
        r = subprocess.run(["nginx", "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        return r.stdout.strip().replace("nginx version: ", "")
    return (meta.get("version") or "").split(" (")[0] or None


STATS_KEYS = ("shutdown_dns", "shutdown_max_age", "removed", "resolutions_ok", "resolutions_error",
              "redirected", "failovers")


def read_stats(directory):
    """Every stats file the client's processes wrote, each checked strictly against the
    exposition format and the metrics contract; the counters summed over the processes."""
    out = {"stats_files": 0, "stats_error": None}
    total = dict.fromkeys(STATS_KEYS, 0)
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".prom"))
    except OSError:
        names = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path) as f:
                parsed = promtext.parse(f.read())
            promtext.check_dnsaware(parsed)
        except ValueError as e:
            out["stats_error"] = "%s: %s" % (name, e)
            continue
        out["stats_files"] += 1
        c = lambda metric, **labels: promtext.counter(parsed, metric, **labels)  # noqa: E731
        total["shutdown_dns"] += c("dnsaware_sockets_shutdown_total", reason="dns")
        total["shutdown_max_age"] += c("dnsaware_sockets_shutdown_total", reason="max_age")
        total["removed"] += c("dnsaware_addresses_removed_total")
        total["resolutions_ok"] += c("dnsaware_resolutions_total", result="ok")
        total["resolutions_error"] += c("dnsaware_resolutions_total", result="error")
        total["redirected"] += c("dnsaware_connects_redirected_total")
        total["failovers"] += c("dnsaware_connect_failovers_total")
    out["stats"] = {k: int(v) for k, v in total.items()}
    return out


def log_story(path):
    """Where in the shim's log a move's story is told: the first answer without the address,
    its removal, the drain, the shutdown (line numbers; None when missing)."""
    steps = [("re-resolved", " -> "), ("removed", ""), ("draining", "address left"),
             ("shut down", "no longer resolves")]
    found = {}
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
    except OSError:
        lines = []
    at = 0
    for word, detail in steps:
        for i in range(at, len(lines)):
            if (" info %s " % word) in lines[i] and detail in lines[i]:
                found[word] = i + 1
                at = i + 1
                break
    return found


def many_connections(scene, client, shim, reqs, removed, events):
    """For the 200-connection client: every connection moved, and how spread the moves were."""
    last_by_conn = {}
    first_new_by_conn = {}
    for r in reqs:
        if not r.get("ok"):
            continue
        c = r.get("conn", 0)
        last_by_conn[c] = r
        if r.get("backend") not in removed and r["t"] >= events["change"]:
            first_new_by_conn.setdefault(c, r["t"])
    moved = [c for c, r in last_by_conn.items() if r.get("backend") not in removed]
    out = {"conns_moved": len(moved), "conns_total": len(last_by_conn)}
    if first_new_by_conn:
        ts = sorted(first_new_by_conn.values())
        out["move_spread_s"] = round(ts[-1] - ts[0], 3)
        out["move_first_s"] = round(ts[0] - events["change"], 3)
        out["move_last_s"] = round(ts[-1] - events["change"], 3)
    # The backends' view (this scenario runs no other client under the shim): when the old
    # address saw its connections closed (the shim's shutdowns) and the new one accepted.
    closes, accepts = [], []
    for a in ADDRS:
        for e in backend_events(scene, a):
            if not events["change"] <= e["t"] < events["stop"]:
                continue
            if a in removed and e.get("event") == "close":
                closes.append(e["t"])
            elif a not in removed and e.get("event") == "connect":
                accepts.append(e["t"])
    for what, ts in (("old_closes", closes), ("new_accepts", accepts)):
        if ts:
            ts.sort()
            out[what] = len(ts)
            out[what + "_first_s"] = round(ts[0] - events["change"], 3)
            out[what + "_spread_s"] = round(ts[-1] - ts[0], 3)
    return out


def backend_events(scene, addr):
    try:
        with open(scene.path("backend-%s.jsonl" % addr)) as f:
            lines = f.readlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def count_by(items, key):
    out = {}
    for i in items:
        k = key(i)
        out[k] = out.get(k, 0) + 1
    return out


def judge(sc, client, res):
    """Returns (verdict, reason): pass or fail."""
    shim = res["shim"]
    if res["preloaded"] is not shim:
        return "fail", ("expected the program %s the shim, /proc/PID/maps says %s"
                        % ("under" if shim else "without", res["preloaded"]))
    if client.cid == "nginx" and shim:
        if res.get("master_threads") != 0 or not any(res.get("worker_threads") or []):
            return "fail", ("expected the shim's thread in an nginx worker and not in the "
                            "master; master %s, workers %s"
                            % (res.get("master_threads"), res.get("worker_threads")))
    if shim:
        why = judge_metrics(sc, client, res)
        if why:
            return "fail", why
    if sc.expect == "failover":
        return judge_failover(sc, res)
    if not shim:
        return judge_control(sc, res)
    allowed = 0
    if client.cid in FAILS_PER_RECONNECT:
        # Every connection shut down: those replaced (including any before the event), and
        # the last one when the run stopped between its failed request and the reconnect.
        shut = max(res["reconnects"], res["connections"] - client.conns) + res["ended_failed"]
        allowed = FAILS_PER_RECONNECT[client.cid][0] * shut
    if sc.failures_reported:
        allowed = None
    if allowed is not None and res["failed"] > allowed:
        return "fail", "%d failed requests (allowed %d): %s" % (
            res["failed"], allowed, res["failures"][:2])
    if sc.expect == "pinned":
        if res.get("moved") is not False:
            return "fail", "moved with DNSAWARE_REDIRECT=0: is something else steering it?"
        return "pass", "stays on the old address (steering off)"
    if sc.expect == "stay":
        return judge_stay(sc, res)
    if sc.expect == "recycle":
        if res["reconnects"] < 2:
            return "fail", "expected connections recycled by max age; %d reconnects" % (
                res["reconnects"])
        return "pass", "recycled %d times" % res["reconnects"]
    # follow
    if sc.slow and not res.get("slow_ok"):
        return "fail", "the slow request across the change did not complete"
    if client.conns > 1 and res.get("conns_moved") != client.conns:
        return "fail", "%s of %d connections moved" % (res.get("conns_moved"), client.conns)
    if sc.ttl_after:
        short = [g for g in res.get("shim_query_gaps_after_change", [])
                 if g < sc.ttl_after * 0.85]
        if short:
            return "fail", "the shim re-resolved after %s s, shorter than the new TTL %d s" % (
                short, sc.ttl_after)
    if not res.get("moved"):
        return "fail", ("did not move: %d of %d requests after the deadline on the old "
                        "address" % (res.get("after_deadline_on_old", 0),
                                     res.get("after_deadline", 0)))
    return "pass", "moved"


def judge_metrics(sc, client, res):
    """The stats file (strictly valid, per the contract) and the log must tell what the scenario
    did. Returns why not, or None."""
    if res["stats_error"]:
        return "invalid stats file: %s" % res["stats_error"]
    if res["stats_files"] == 0:
        return "no stats file was written (DNSAWARE_STATS_FILE)"
    st = res["stats"]
    shutdowns = st["shutdown_dns"] + st["shutdown_max_age"]
    if sc.expect == "follow" and res.get("moved"):
        if st["removed"] < 1 or st["shutdown_dns"] < 1:
            return "moved, but the stats file counts %d addresses removed, %d DNS shutdowns" % (
                st["removed"], st["shutdown_dns"])
        if client.steering and st["redirected"] < 1:
            return "moved by connect steering, but no redirect was counted"
        if len(res["log_story"]) < 4:
            return ("the log does not tell the move in order (re-resolved, removed, draining, "
                    "shut down): found %s" % res["log_story"])
    if sc.expect == "pinned" and st["redirected"]:
        return "%d redirects counted with DNSAWARE_REDIRECT=0" % st["redirected"]
    if sc.expect == "stay" and sc.fault:
        # Silence ends in a timeout only if it outlasts c-ares' retries; the others fail at once.
        if sc.fault[0] != "silent" and st["resolutions_error"] < 1:
            return "DNS %s, but no failed resolution was counted" % sc.fault[0]
        if shutdowns:
            return "%d shutdowns counted during a DNS fault" % shutdowns
    if sc.expect == "recycle" and st["shutdown_max_age"] < 2:
        return "recycled, but %d max-age shutdowns counted" % st["shutdown_max_age"]
    if sc.expect == "failover" and st["redirected"] < 1:
        return "no connect was steered away from the refusing address"
    return None


def judge_control(sc, res):
    if sc.removed() and res.get("moved") is not False:
        return "fail", "control: expected to stay on the old address without the shim"
    if res.get("last_old_s") is None and sc.removed():
        return "fail", "control: no request on the old address at all"
    if res["failed"]:
        return "fail", "control: %d failed requests" % res["failed"]
    if sc.expect == "recycle":
        if res["reconnects"]:
            return "fail", "control: %d reconnects without the shim" % res["reconnects"]
        return "pass", "keeps its connection"
    return "pass", "stays on the old address"


def judge_stay(sc, res):
    if sc.rotate:
        # Before the shim has seen an absent address come back, an address absent from two
        # answers in a row drains: once per connection at most, or, for under 1 % of
        # connections (tests/unit/test_recordset.c), twice. report_run bounds how many
        # clients of one run may have that second drain.
        per_conn = max(1, res["connections_before"])
        if res["reconnects"] > 2 * per_conn:
            return "fail", "%d reconnects: churn (expected at most %d)" % (
                res["reconnects"], per_conn)
        if res["reconnects"] > per_conn:
            return "pass", "no failed request; %d reconnects (one more than usual)" % (
                res["reconnects"])
    elif res["reconnects"] > 0:
        return "fail", "%d reconnects (expected none)" % res["reconnects"]
    if sc.fault and res["dns_shim_a"] == 0:
        return "fail", "the shim never queried DNS, so this run proves nothing"
    if res["reconnects"]:
        return "pass", "%d reconnect(s), no failed request" % res["reconnects"]
    return "pass", "no drain, no failed request"


# Clients whose first connect to the refusing address may fail even with the shim: they connect
# non-blocking (Java does when a connect timeout is set) and try only one address, so the
# failure goes to the program before the shim has seen it (through SO_ERROR, which the shim
# must not read); from then on the address is avoided for DNSAWARE_COOLDOWN.
FIRST_CONNECT_UNSEEN = {"java": 1}


def judge_failover(sc, res):
    """Fresh connections to a name whose first address refuses: with the shim none fails and
    none waits; without it, what the client does on its own is reported."""
    on_refusing = sum(n for b, n in res["by_backend"].items() if b in sc.refusing)
    if on_refusing:
        return "fail", "%d requests answered by an address that refuses connections" % on_refusing
    if not res["shim"]:
        return "pass", "without the shim: %d of %d failed, slowest %.2f s" % (
            res["failed"], res["requests"], res["slowest_s"])
    if res["failed"] > FIRST_CONNECT_UNSEEN.get(res["client"], 0):
        return "fail", "%d of %d requests failed: %s" % (
            res["failed"], res["requests"], res["failures"][:2])
    if res["slowest_s"] > 1.0:
        return "fail", "a request took %.2f s: it waited for something" % res["slowest_s"]
    return "pass", "%d of %d failed, slowest %.3f s" % (res["failed"], res["requests"],
                                                        res["slowest_s"])


# --------------------------------------------------------------------------------------------# Clients that cannot run with a sanitizer's runtime preloaded (meson sets DNSAWARE_TEST_SANITIZER
# to the build's b_sanitize in a sanitized build, docs/testing.md#sanitizers). They are left out of
# such a run, each with a SKIP line saying why; a scenario left with none exits 77 (skipped).
SANITIZER_UNSUPPORTED = {
    "curl": "curl (7.88, Debian 12) hangs at start with the ASan or TSan runtime preloaded, shim "
            "or no shim: its second setlocale() waits for ever on glibc's locale lock",
}


def sanitizer_skips(clients):
    """The clients to run under the build's sanitizer, and (client, reason) for the others."""
    sanitizer = os.environ.get("DNSAWARE_TEST_SANITIZER", "none")
    if sanitizer in ("", "none"):
        return clients, []
    kept = [c for c in clients if c not in SANITIZER_UNSUPPORTED]
    return kept, [(c, SANITIZER_UNSUPPORTED[c]) for c in clients if c in SANITIZER_UNSUPPORTED]


# driver
# --------------------------------------------------------------------------------------------

def inside(opts):
    sc = SCENARIOS[opts.scenario]
    clients = [ALL_CLIENTS[c] for c in (opts.clients.split(",") if opts.clients
                                         else sc.clients)]
    scene = MatrixScene(opts, opts.workdir, sc, clients)
    t_begin = time.time()

    def body():
        scene.setup_namespace()
        for a in ADDRS + list(NGINX_LISTEN.values()) + [SHIM_DNS]:
            with socket.socket() as s:
                s.bind((a, 0))
        facts, events = run_scenario(scene, opts)
        dns = dns_counts(scene)
        results = []
        for c in clients:
            for shim in scene.shim_modes():
                res = analyse(scene, c, shim, facts, events, dns)
                res["verdict"], res["reason"] = judge(sc, c, res)
                results.append(res)
        return report_run(sc, events, results, opts, time.time() - t_begin)
    return dnsmove.guarded(sc.name, scene, body, harness_status=EXIT_HARNESS)


def report_run(sc, events, results, opts, duration):
    churned = [r for r in results if "one more than usual" in r["reason"]]
    if len(churned) > 1:
        for r in churned:
            r["verdict"] = "fail"
            r["reason"] += "; %d clients of this run drained twice (at most 1 expected)" % (
                len(churned))
    log("scenario %s: %s" % (sc.name, sc.title))
    ref = events.get("change") or events.get("fault_start") or events.get("start")
    for k in sorted(events, key=events.get):
        log("  %-12s %+.3fs" % (k, events[k] - ref))
    for r in results:
        log("  %-14s %-8s %-8s %s" % (r["client"], "shim" if r["shim"] else "control",
                                      r["verdict"].upper(), r["reason"]))
        detail = {k: v for k, v in r.items()
                  if k not in ("client", "label", "shim", "verdict", "reason")}
        log("      " + json.dumps(detail, sort_keys=True))
    if opts.results:
        os.makedirs(opts.results, exist_ok=True)
        path = os.path.join(opts.results, "%s%s.json" % (
            sc.name, "" if not opts.clients else "-" + opts.clients.replace(",", "-")))
        with open(path + ".tmp", "w") as f:
            json.dump({"scenario": sc.name, "title": sc.title, "rate": sc.rate,
                       "duration": round(duration, 1),
                       "time": time.time(), "events": {k: v - ref for k, v in events.items()},
                       "results": results},
                      f, indent=1, sort_keys=True)
        os.rename(path + ".tmp", path)
    failed = [r for r in results if r["verdict"] == "fail"]
    if failed:
        log("FAIL (%s): %s" % (sc.name, "; ".join(
            "%s%s: %s" % (r["client"], "" if r["shim"] else " (control)", r["reason"])
            for r in failed)))
        return EXIT_FAIL
    log("PASS (%s): %d client runs" % (sc.name, len(results)))
    return 0


def prerequisites(opts, clients):
    missing = []
    if os.geteuid() != 0:
        missing.append("must run as root (namespaces, bind mounts over /etc, port 53)")
    for prog in ("unshare", "ip", "mount"):
        if not shutil.which(prog):
            missing.append("%s not found (util-linux / iproute2)" % prog)
    needs = {"curl": ["curl"], "java": ["java"], "node": ["node"],
             "redis": ["redis-server"], "nginx": ["nginx"], "postgres": ["runuser"]}
    for c in clients:
        for prog in needs.get(c, []):
            if not shutil.which(prog) and not os.path.exists("/usr/sbin/" + prog):
                missing.append("%s not found (needed by the %s client; tools/setup installs "
                               "it)" % (prog, c))
    if not opts.lib or not os.path.isfile(opts.lib):
        missing.append("library %s does not exist (set DNSAWARE_LIB or --lib)" % opts.lib)
    return missing


def outside(opts):
    sc = SCENARIOS[opts.scenario]
    clients = opts.clients.split(",") if opts.clients else sc.clients
    unknown = [c for c in clients if c not in ALL_CLIENTS]
    if unknown:
        log("ERROR: unknown client(s) %s; known: %s" % (unknown, ", ".join(ALL_CLIENTS)))
        return EXIT_HARNESS
    clients, skipped = sanitizer_skips(clients)
    for c, why in skipped:
        log("SKIP (%s): client %s under %s: %s" % (sc.name, c,
                                                  os.environ["DNSAWARE_TEST_SANITIZER"], why))
    if not clients:
        return EXIT_SKIP
    if skipped:
        opts.clients = ",".join(clients)
    missing = prerequisites(opts, clients)
    if missing:
        for m in missing:
            log("FAIL (%s): prerequisite missing: %s" % (sc.name, m))
        return EXIT_HARNESS
    wd = dnsmove.prepare_workdir(opts.workdir, "dnsaware-matrix-%s-" % sc.name)
    if wd is None:
        return EXIT_HARNESS
    args = ["run", sc.name, "--inside", "--workdir", wd, "--lib", opts.lib,
            "--warmup", str(opts.warmup), "--log-level", opts.log_level]
    for kv in opts.shim_env or []:
        args += ["--shim-env", kv]
    for flag in ("clients", "results", "cache"):
        v = getattr(opts, flag)
        if v:
            args += ["--" + flag, os.path.abspath(v) if flag != "clients" else v]
    rc = dnsmove.run_in_namespaces(__file__, args)
    if rc not in (0, EXIT_FAIL, EXIT_HARNESS):
        log("FAIL (%s): the namespaced driver exited with %d" % (sc.name, rc))
        rc = EXIT_HARNESS
    dnsmove.keep_or_remove(wd, rc == 0, opts.workdir or opts.keep)
    return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run one scenario")
    run.add_argument("scenario", choices=list(SCENARIOS))
    run.add_argument("--clients", help="comma-separated client ids (default: the scenario's)")
    run.add_argument("--lib", default=os.environ.get("DNSAWARE_LIB")
                     or os.path.join(REPO, "build", "src", "libdnsaware.so"))
    run.add_argument("--results", help="write <scenario>.json here")
    run.add_argument("--cache", help="keep the PostgreSQL template cluster here between runs")
    run.add_argument("--workdir", help="keep logs here (emptied first)")
    run.add_argument("--keep", action="store_true")
    run.add_argument("--warmup", type=float, default=2.0)
    run.add_argument("--shim-env", action="append", metavar="VAR=VALUE",
                     help="one more setting for every program under the shim (repeatable)")
    run.add_argument("--log-level", default="info")
    run.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    rep = sub.add_parser("report", help="write docs/compatibility.md from a results directory")
    rep.add_argument("--results", required=True)
    rep.add_argument("--out")
    sub.add_parser("list", help="list scenarios and clients")
    opts = ap.parse_args()
    if opts.cmd == "list":
        for s in SCENARIOS.values():
            log("%-11s %s (clients: %s)" % (s.name, s.title, ",".join(s.clients)))
        return 0
    if opts.cmd == "report":
        import matrix_report
        return matrix_report.main(opts)
    opts.lib = os.path.abspath(opts.lib)
    if opts.inside:
        return inside(opts)
    return outside(opts)


if __name__ == "__main__":
    sys.exit(main())

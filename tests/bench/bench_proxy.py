#!/usr/bin/python3
"""Benchmark: nginx as a reverse proxy to a backend named in DNS, with and without libdnsaware,
against the usual alternative, a HAProxy sidecar that does the DNS following.

Two measurements, every variant side by side in one run, in a private mount + network namespace
(the script re-executes itself under `unshare --mount --net`, as tests/e2e/dnsmove.py does, and
reuses its scene: `lo` up, resolv.conf / hosts / nsswitch.conf bind-mounted):

  throughput  wrk -t2 -c32 -d10s --latency against a proxy nginx whose upstream is
              `server backend.bench.test:8080; keepalive 32;`. The backend is an nginx answering
              `return 200 "ok";` on 127.0.0.10:8080. Variants:
                (a) the proxy nginx alone, no shim                     127.0.0.20:8080
                (b) the proxy nginx under LD_PRELOAD=libdnsaware.so    127.0.0.21:8080
                    (DNSAWARE_TTL_FLOOR=1s; TTL 1 s, nothing moves: it re-resolves every second)
                (c) the proxy nginx -> HAProxy sidecar on 127.0.0.30:8080 -> backend;
                    HAProxy follows the name itself (resolvers section, hold valid 1s,
                    init-addr none)                                  127.0.0.22:8080
              Three rounds, the variants interleaved (the order rotates each round: abc, bca,
              cab) after a short warm-up of each; medians reported, with the spread and the
              per-round paired ratio b/a. Also the proxy's CPU time per request (nginx master +
              workers, plus HAProxy for (c)) from /proc, which the noise of a shared machine
              disturbs less than requests/s.
  instructions  the repeatable figure behind the throughput budget: the proxy as one nginx
              process (master_process off, timer_resolution coarse) under callgrind, (a) and
              (b), 500 and 2,500 sequential keep-alive requests; the slope of the main thread's
              user-space instructions per request, where the shim's additions go (its own code,
              glibc's multi-threaded paths), and the plain proxy's user/system CPU split under
              wrk, which turns the added instructions into a share of the proxy's CPU.
  reaction    the name moves from 127.0.0.10 to 127.0.0.11 while wrk -c N runs through the proxy
              (keepalive N to the upstream, so the upstream connections are what must move),
              for TTL 1 s and 5 s and N = 1, 100, 1000, for the shim (nginx with LD_PRELOAD) and
              for the HAProxy sidecar, alternately; three trials per condition (--trials N),
              each round of trials covering every condition before the next begins. The backends log every request with $msec;
              reported: seconds from the change (the zone file renamed into place) to the last
              request answered on .10, the requests on .10 after the change, wrk's errors, and
              the connections still open to .10 at the end. A trial ends early once .11 gets
              traffic and .10 has had none for a while (1 s with no connection left to .10;
              max(3 s, 1.5 TTL) otherwise), at the latest 3 TTL + 5 s after the change (3 TTL + 3 s in
              --smoke).

DNS: tests/e2e/dnsresponder.py on 127.0.0.1 (resolv.conf: what nginx's own getaddrinfo asks),
127.0.0.3 (the shim's background resolver, DNSAWARE_NAMESERVERS) and 127.0.0.4 (HAProxy's
resolvers section), so the query log tells the three apart.

Usage:
  bench_proxy.py [--smoke] [--json FILE] [--lib PATH] [--workdir DIR] [--keep] [--strict]
                 [--part all|throughput|reaction] [--trials N] [--haproxy-backend LINE ...]

--smoke: a few seconds, small numbers (wrk 1 s, 8 connections, one round; one reaction trial per
mechanism, TTL 1 s, 8 connections); asserts only that everything starts, that every number is
sane (requests answered, no error, latency finite), that the shim moves every request to the new
address and that the sidecar sends new connections there (HAProxy keeps the backend connection
of a client session it already has: with the client's keep-alive those stay on the old
address, which the reaction table shows as "not moved").
The full mode runs about 10 minutes and asserts the same sanity; the budget (the shim costs at
most 2 % of throughput) is reported, and fails the run only with --strict.

Prints markdown tables; --json FILE writes every figure. Needs root, wrk, haproxy, nginx,
valgrind.
Exit status: 0 pass, 1 an assertion (or, with --strict, the budget) failed, 2 harness error or
a prerequisite missing.
"""

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
E2E = os.path.join(REPO, "tests", "e2e")
sys.path.insert(0, E2E)
import dnsmove  # noqa: E402  (namespace set-up, process handling)
import dnsresponder  # noqa: E402  (the programmable DNS server)
import matrix_judge  # noqa: E402  (read_stats: the shim's stats files, checked strictly)
import services  # noqa: E402  (nginx helpers)
from dnsmove import PYTHON, HarnessError, Failure, log  # noqa: E402

NAME = "backend.bench.test"
OLD, NEW = "127.0.0.10", "127.0.0.11"
PORT = 8080
PROGRAM_DNS, SHIM_DNS, HAPROXY_DNS = "127.0.0.1", "127.0.0.3", "127.0.0.4"
PROXY = {"a": "127.0.0.20", "b": "127.0.0.21", "c": "127.0.0.22"}
HAPROXY_ADDR = "127.0.0.30"
TTL_FLOOR = "1s"
BUDGET_PCT = 2.0
WRK = "/usr/bin/wrk"
HAPROXY = "/usr/sbin/haproxy"
NGINX = services.NGINX
EXIT_FAIL, EXIT_HARNESS = 1, 2

VARIANTS = {
    "a": "nginx, no shim",
    "b": "nginx + libdnsaware",
    "c": "nginx -> HAProxy sidecar",
}
MECHANISMS = {"shim": "nginx + libdnsaware", "haproxy": "nginx -> HAProxy sidecar"}

FULL = {
    "wrk_threads": 2, "wrk_conns": 32, "wrk_seconds": 10, "warmup_seconds": 2, "rounds": 3,
    "ttls": [1, 5], "conns": [1, 100, 1000], "react_warmup": 2.0, "window_extra": 5.0,
    "react_trials": 3, "instr_requests": [500, 2500],
}
SMOKE = {
    "wrk_threads": 2, "wrk_conns": 8, "wrk_seconds": 1, "warmup_seconds": 0, "rounds": 1,
    "ttls": [1], "conns": [8], "react_warmup": 1.0, "window_extra": 3.0, "react_trials": 1,
    "instr_requests": [20, 60],
}


# --------------------------------------------------------------------------------------------
# configs
# --------------------------------------------------------------------------------------------

def _temps(prefix):
    temp = os.path.join(prefix, "temp")
    os.makedirs(temp, exist_ok=True)
    built = services._nginx_modules()
    lines = ["client_body_temp_path %s/body;" % temp, "proxy_temp_path %s/proxy;" % temp]
    for mod in ("fastcgi", "uwsgi", "scgi"):
        if "--without-http_%s_module" % mod not in built:
            lines.append("%s_temp_path %s/%s;" % (mod, temp, mod))
    return "\n    ".join(lines)


NGINX_MAIN = """\
daemon off;
master_process on;
worker_processes %(workers)d;
worker_rlimit_nofile 16384;
user root;
pid %(prefix)s/nginx.pid;
error_log %(errlog)s %(loglevel)s;
lock_file %(prefix)s/nginx.lock;

events {
    worker_connections 8192;
}

http {
    %(temps)s
    keepalive_requests 1000000;
    keepalive_timeout 300s;
%(body)s
}
"""

BACKEND_BODY = """\
    %(access)s
    server {
        listen %(listen)s backlog=4096;
        default_type text/plain;
        location / {
            return 200 "ok";
        }
    }
"""

PROXY_BODY = """\
    access_log off;
    upstream backend {
        server %(upstream)s;
        keepalive %(keepalive)d;
        keepalive_requests 1000000;
        keepalive_timeout 300s;
    }
    server {
        listen %(listen)s backlog=4096;
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
"""

HAPROXY_CFG = """\
global
    maxconn 8000
    pidfile %(prefix)s/haproxy.pid

defaults
    mode http
    timeout connect 2s
    timeout client 300s
    timeout server 300s
    timeout http-keep-alive 300s

resolvers dns
    nameserver ns1 %(dns)s:53
    accepted_payload_size 1232
    resolve_retries 3
    timeout resolve 1s
    timeout retry 1s
    hold valid 1s

frontend fe
    bind %(listen)s
    maxconn 8000
    default_backend be

backend be
%(extra)s    server s1 %(name)s:%(port)d resolvers dns init-addr none resolve-prefer ipv4
"""


# --------------------------------------------------------------------------------------------
# the scene
# --------------------------------------------------------------------------------------------

class BenchScene(dnsmove.Scene):
    def __init__(self, opts, workdir):
        super().__init__(opts, workdir)
        self.zone = self.path("zone.json")
        self.dns_log = self.path("dns-queries.jsonl")
        self.responder = None
        self.backends = {}          # addr -> Popen
        self.seq = 0

    def fresh_dir(self, label):
        self.seq += 1
        d = self.path("%02d-%s" % (self.seq, label))
        os.makedirs(d, exist_ok=True)
        return d

    # ---- DNS ----
    def set_answer(self, addr, ttl):
        dnsresponder.write_zone(self.zone, {NAME: {"addrs": [addr], "ttl": ttl}})
        return time.time()

    def start_responder(self, addr, ttl):
        self.set_answer(addr, ttl)
        self.responder = self.spawn(
            "dns", [PYTHON, os.path.join(E2E, "dnsresponder.py"), "--listen", PROGRAM_DNS,
                    "--listen", SHIM_DNS, "--listen", HAPROXY_DNS, "--port", "53",
                    "--zone", self.zone, "--log", self.dns_log])
        self.wait_answer(addr, ttl)

    def wait_answer(self, addr, ttl, timeout=8.0):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if self.responder.poll() is not None:
                raise HarnessError("the DNS responder exited with status %s:\n%s"
                                   % (self.responder.returncode, dnsmove.tail(self.path("dns.out"))))
            for server in (PROGRAM_DNS, SHIM_DNS, HAPROXY_DNS):
                try:
                    rcode, ans, _ = dnsresponder.query(server, NAME, "A", timeout=0.3,
                                                       src=dnsmove.DRIVER_SRC)
                    last = (server, rcode, ans)
                except OSError as e:
                    last = (server, e)
                    break
                if rcode != 0 or ans != [(addr, ttl)]:
                    break
            else:
                return time.time()
            time.sleep(0.02)
        raise HarnessError("DNS never answered %s -> %s TTL %d within %.0fs (last: %r)"
                           % (NAME, addr, ttl, timeout, last))

    def dns_queries(self, t0, t1):
        """Queries for NAME in [t0, t1): {listen address: {qtype: count}}."""
        out = {}
        for q in dnsresponder.read_log(self.dns_log):
            if q.get("qname") != NAME or not t0 <= q.get("t", 0) < t1:
                continue
            if q.get("src") == dnsmove.DRIVER_SRC:
                continue
            d = out.setdefault(q["listen"], {})
            d[q["qtype"]] = d.get(q["qtype"], 0) + 1
        return out

    # ---- servers ----
    def start_nginx(self, label, listen, body, workers, env=None, loglevel="notice"):
        """nginx with the given http{} body, in its own prefix dir; returns (Popen, prefix)."""
        services._port_free("nginx " + label, listen, PORT)
        prefix = self.fresh_dir(label)
        conf = os.path.join(prefix, "nginx.conf")
        errlog = os.path.join(prefix, "error.log")
        with open(conf, "w") as f:
            f.write(NGINX_MAIN % {"workers": workers, "prefix": prefix, "errlog": errlog,
                                  "loglevel": loglevel, "temps": _temps(prefix), "body": body})
        proc = self.spawn(os.path.basename(prefix), [NGINX, "-p", prefix + "/", "-c", conf,
                                                      "-e", errlog], env=env)
        services._wait_ready(proc, "nginx %s on %s:%d" % (label, listen, PORT),
                             lambda: _connects(listen, PORT),
                             [errlog, self.path(os.path.basename(prefix) + ".out")])
        return proc, prefix

    def start_backend(self, addr, access_log=None):
        access = ("log_format b '$msec $remote_addr $remote_port $connection "
                  "$connection_requests $status';\n    access_log %s b buffer=256k flush=200ms;"
                  % access_log) if access_log else "access_log off;"
        body = BACKEND_BODY % {"access": access, "listen": "%s:%d" % (addr, PORT)}
        proc, _ = self.start_nginx("backend-" + addr, addr, body, workers=1)
        self.backends[addr] = proc
        return proc

    def stop_backends(self):
        for p in self.backends.values():
            self.kill(p)
        self.backends = {}

    def shim_env(self, log_file, stats_dir=None, level="warn"):
        env = dnsmove.clean_env()
        env["LD_PRELOAD"] = self.opts.lib
        env["DNSAWARE_TTL_FLOOR"] = TTL_FLOOR
        env["DNSAWARE_NAMESERVERS"] = SHIM_DNS
        env["DNSAWARE_LOG"] = level
        env["DNSAWARE_LOG_FILE"] = log_file
        if stats_dir:
            os.makedirs(stats_dir, exist_ok=True)
            env["DNSAWARE_STATS_FILE"] = os.path.join(stats_dir, "%p.prom")
            env["DNSAWARE_STATS_INTERVAL"] = "1s"
        return env

    def start_proxy(self, variant, keepalive, shim_level="warn", stats=False):
        """One proxy variant ('a', 'b' or 'c'); returns {"procs": [...], "listen", "prefix"}.
        (c) is a plain nginx to the HAProxy sidecar, which is started first."""
        listen = PROXY[variant]
        procs = []
        env = None
        upstream = "%s:%d" % (NAME, PORT)
        haproxy_prefix = None
        stats_dir = None
        if variant == "b":
            prefix_hint = self.path("shim-%02d" % (self.seq + 1))
            stats_dir = prefix_hint + "-stats" if stats else None
            env = self.shim_env(prefix_hint + ".log", stats_dir, shim_level)
        elif variant == "c":
            hp, haproxy_prefix = self.start_haproxy()
            procs.append(hp)
            upstream = "%s:%d" % (HAPROXY_ADDR, PORT)
        body = PROXY_BODY % {"upstream": upstream, "keepalive": keepalive,
                             "listen": "%s:%d" % (listen, PORT)}
        ng, prefix = self.start_nginx("proxy-" + variant, listen, body, workers=2, env=env)
        procs.insert(0, ng)
        px = {"variant": variant, "procs": procs, "listen": listen, "prefix": prefix,
              "nginx": ng, "haproxy_prefix": haproxy_prefix, "stats_dir": stats_dir,
              "haproxy_out": haproxy_prefix + ".out" if haproxy_prefix else None,
              "shim_log": env["DNSAWARE_LOG_FILE"] if env else None}
        self.check_proxy(px)
        return px

    def start_haproxy(self):
        services._port_free("haproxy", HAPROXY_ADDR, PORT)
        prefix = self.fresh_dir("haproxy")
        cfg = os.path.join(prefix, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CFG % {"prefix": prefix, "dns": HAPROXY_DNS,
                                   "listen": "%s:%d" % (HAPROXY_ADDR, PORT), "name": NAME,
                                   "port": PORT,
                                   "extra": "".join("    %s\n" % line
                                                    for line in self.opts.haproxy_backend)})
        name = os.path.basename(prefix)
        r = subprocess.run([HAPROXY, "-c", "-f", cfg], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise HarnessError("haproxy -c rejects %s:\n%s" % (cfg, r.stdout))
        proc = self.spawn(name, [HAPROXY, "-db", "-f", cfg])
        services._wait_ready(proc, "haproxy on %s:%d" % (HAPROXY_ADDR, PORT),
                             lambda: _connects(HAPROXY_ADDR, PORT), [self.path(name + ".out")])
        return proc, prefix

    def check_proxy(self, px, timeout=10.0):
        """A request through the proxy answers 200 "ok" (HAProxy answers 503 until it has
        resolved the name); the shim is mapped in every nginx process of (b) only."""
        end = time.monotonic() + timeout
        last = None
        while True:
            for p in px["procs"]:
                if p.poll() is not None:
                    raise HarnessError("proxy %s: pid %d exited with %s (see %s)"
                                       % (px["variant"], p.pid, p.returncode, px["prefix"]))
            try:
                status, body = http_get(px["listen"], PORT)
                last = (status, body)
                if status == 200 and body == b"ok":
                    break
            except OSError as e:
                last = e
            if time.monotonic() > end:
                raise HarnessError("proxy %s on %s:%d never answered 200 ok (last: %r)"
                                   % (px["variant"], px["listen"], PORT, last))
            time.sleep(0.1)
        master, workers = services.nginx_pids(px["nginx"].pid)
        if not workers:
            raise HarnessError("proxy %s: no nginx worker found under master %d"
                               % (px["variant"], master))
        px["pids"] = [master] + workers
        for pid in px["pids"]:
            mapped = has_shim(pid)
            if mapped != (px["variant"] == "b"):
                raise HarnessError("proxy %s: pid %d %s libdnsaware mapped"
                                   % (px["variant"], pid, "has" if mapped else "does not have"))
        px["cpu_pids"] = list(px["pids"]) + [p.pid for p in px["procs"][1:]]

    def stop_proxy(self, px):
        for p in px["procs"]:
            self.kill(p)


def _connects(addr, port):
    with socket.create_connection((addr, port), timeout=1.0):
        return True


def http_get(addr, port, timeout=2.0):
    import http.client
    c = http.client.HTTPConnection(addr, port, timeout=timeout)
    try:
        c.request("GET", "/")
        r = c.getresponse()
        return r.status, r.read()
    finally:
        c.close()


def has_shim(pid):
    try:
        with open("/proc/%d/maps" % pid) as f:
            return "libdnsaware" in f.read()
    except OSError:
        return False


def cpu_ticks(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])     # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def conns_to(addr, port):
    """Established TCP connections whose remote end is addr:port (this namespace only)."""
    want = "%08X:%04X" % (int.from_bytes(socket.inet_aton(addr), "little"), port)
    n = 0
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                parts = line.split()
                if parts[2] == want and parts[3] == "01":
                    n += 1
    except OSError:
        pass
    return n


# --------------------------------------------------------------------------------------------
# wrk
# --------------------------------------------------------------------------------------------

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _dur(text):
    m = re.match(r"^([0-9.]+)(us|ms|s|m|h)$", text)
    if not m:
        raise ValueError("bad duration %r" % text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out):
    r = {"raw": out}
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    r["rps"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([0-9.]+\w+),", out)
    r["requests"] = int(m.group(1)) if m else None
    r["seconds"] = _dur(m.group(2)) if m else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+([0-9.]+\w+)\s*$" % pct, out, re.M)
        r["p%s_ms" % pct] = round(_dur(m.group(1)) * 1e3, 3) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                  (int(x) for x in m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    r["errors"] = r["non2xx"] + sum(r["socket_errors"].values())
    return r


def wrk_argv(url, conns, seconds, threads=2):
    return [WRK, "-t%d" % max(1, min(threads, conns)), "-c%d" % conns, "-d%ds" % seconds,
            "--latency", url]


def run_wrk(url, conns, seconds, threads, cpu_pids=()):
    argv = wrk_argv(url, conns, seconds, threads)
    c0 = cpu_ticks(cpu_pids)
    t0 = time.time()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=seconds + 30, env=dnsmove.clean_env(),
                       preexec_fn=dnsmove._pdeathsig)
    t1 = time.time()
    c1 = cpu_ticks(cpu_pids)
    if r.returncode != 0:
        raise HarnessError("%s exited with %d:\n%s" % (" ".join(argv), r.returncode, r.stdout))
    res = parse_wrk(r.stdout)
    if res["rps"] is None or res["requests"] is None:
        raise HarnessError("cannot parse the output of %s:\n%s" % (" ".join(argv), r.stdout))
    res["argv"] = " ".join(argv)
    res["t0"], res["t1"] = t0, t1
    tck = os.sysconf("SC_CLK_TCK")
    res["proxy_cpu_s"] = (c1 - c0) / tck
    res["proxy_cpu_us_per_req"] = (round((c1 - c0) / tck / res["requests"] * 1e6, 2)
                                   if res["requests"] else None)
    return res


# --------------------------------------------------------------------------------------------
# throughput
# --------------------------------------------------------------------------------------------

def bench_throughput(scene, p):
    scene.start_backend(OLD)
    proxies = {}
    for v in "abc":
        proxies[v] = scene.start_proxy(v, keepalive=32)
    urls = {v: "http://%s:%d/" % (proxies[v]["listen"], PORT) for v in "abc"}
    t_begin = time.time()
    if p["warmup_seconds"]:
        for v in "abc":
            run_wrk(urls[v], p["wrk_conns"], p["warmup_seconds"], p["wrk_threads"])
    orders = ["abc", "bca", "cab"]
    rounds = []
    for i in range(p["rounds"]):
        order = orders[i % 3]
        rnd = {"round": i + 1, "order": order, "runs": {}}
        for v in order:
            res = run_wrk(urls[v], p["wrk_conns"], p["wrk_seconds"], p["wrk_threads"],
                          proxies[v]["cpu_pids"])
            res.pop("raw")
            rnd["runs"][v] = res
            log("  throughput round %d %s (%s): %.0f requests/s, p99 %.2f ms, %d errors, "
                "proxy CPU %.1f us/request"
                % (i + 1, v, VARIANTS[v], res["rps"], res["p99_ms"] or -1, res["errors"],
                   res["proxy_cpu_us_per_req"] or -1))
        rounds.append(rnd)
    t_end = time.time()
    dns = scene.dns_queries(t_begin, t_end)
    for v in "abc":
        for pid in proxies[v]["cpu_pids"]:
            if not os.path.exists("/proc/%d" % pid):
                raise HarnessError("proxy %s: pid %d died during the benchmark" % (v, pid))
    for v in "abc":
        scene.stop_proxy(proxies[v])
    scene.stop_backends()

    summary = {}
    for v in "abc":
        rps = [r["runs"][v]["rps"] for r in rounds]
        p99 = [r["runs"][v]["p99_ms"] for r in rounds]
        cpu = [r["runs"][v]["proxy_cpu_us_per_req"] for r in rounds]
        summary[v] = {"label": VARIANTS[v], "rps_median": statistics.median(rps),
                      "rps_min": min(rps), "rps_max": max(rps),
                      "p99_ms_median": statistics.median(p99),
                      "p99_ms_min": min(p99), "p99_ms_max": max(p99),
                      "cpu_us_per_req_median": statistics.median(cpu),
                      "errors": sum(r["runs"][v]["errors"] for r in rounds)}
    a = summary["a"]
    for v in "bc":
        s = summary[v]
        s["rps_cost_pct"] = round((1 - s["rps_median"] / a["rps_median"]) * 100, 2)
        s["rps_cost_pct_paired_median"] = round(statistics.median(
            (1 - r["runs"][v]["rps"] / r["runs"]["a"]["rps"]) * 100 for r in rounds), 2)
        s["p99_delta_ms"] = round(s["p99_ms_median"] - a["p99_ms_median"], 3)
        s["cpu_cost_pct"] = round((s["cpu_us_per_req_median"] / a["cpu_us_per_req_median"] - 1)
                                  * 100, 1)
        s["cpu_cost_pct_paired_median"] = round(statistics.median(
            (r["runs"][v]["proxy_cpu_us_per_req"] / r["runs"]["a"]["proxy_cpu_us_per_req"] - 1)
            * 100 for r in rounds), 1)
    seconds = t_end - t_begin
    dns_rate = {
        "shim (b)": _qps(dns.get(SHIM_DNS, {}), seconds),
        "HAProxy (c)": _qps(dns.get(HAPROXY_DNS, {}), seconds),
        "nginx getaddrinfo": _qps(dns.get(PROGRAM_DNS, {}), seconds),
    }
    return {"params": {k: p[k] for k in ("wrk_threads", "wrk_conns", "wrk_seconds",
                                           "warmup_seconds", "rounds")},
            "rounds": rounds, "summary": summary, "dns_queries_per_s": dns_rate,
            "dns_queries": dns, "seconds": round(seconds, 1),
            "budget_pct": BUDGET_PCT,
            "budget_ok": summary["b"]["rps_cost_pct"] <= BUDGET_PCT}


# --------------------------------------------------------------------------------------------
# instructions: the repeatable figure behind the throughput budget
# --------------------------------------------------------------------------------------------

def drive_requests(listen, count, conns=4):
    """count GETs through the proxy, round-robin over conns keep-alive connections, one at a
    time (so every request is a separate trip through nginx's event loop)."""
    import http.client
    clients = [http.client.HTTPConnection(listen, PORT, timeout=60) for _ in range(conns)]
    try:
        for i in range(count):
            c = clients[i % conns]
            c.request("GET", "/")
            r = c.getresponse()
            body = r.read()
            if r.status != 200 or body != b"ok":
                raise HarnessError("request %d through %s answered %d %r" % (i, listen, r.status,
                                                                           body[:80]))
    finally:
        for c in clients:
            c.close()


def callgrind_totals(out_prefix):
    """{thread number: Ir} from the per-thread files callgrind wrote (out_prefix-01, -02...)."""
    totals = {}
    d, base = os.path.split(out_prefix)
    for f in sorted(os.listdir(d)):
        m = re.match(re.escape(base) + r"-(\d+)$", f)
        if not m:
            continue
        with open(os.path.join(d, f)) as fh:
            for line in fh:
                if line.startswith("totals:") or line.startswith("summary:"):
                    totals[int(m.group(1))] = int(line.split()[1])
    return totals


def instructions_run(scene, variant, count):
    """A single-process nginx proxy (master_process off) under callgrind, count requests through
    it, then a graceful stop; returns the per-thread instruction totals and the main thread's
    per-function profile."""
    import bench_local
    listen = PROXY[variant]
    services._port_free("nginx proxy " + variant, listen, PORT)
    prefix = scene.fresh_dir("callgrind-%s-%d" % (variant, count))
    conf = os.path.join(prefix, "nginx.conf")
    errlog = os.path.join(prefix, "error.log")
    body = PROXY_BODY % {"upstream": "%s:%d" % (NAME, PORT), "keepalive": 32,
                         "listen": "%s:%d" % (listen, PORT)}
    with open(conf, "w") as f:
        f.write((NGINX_MAIN % {"workers": 1, "prefix": prefix, "errlog": errlog,
                               "loglevel": "notice", "temps": _temps(prefix), "body": body})
                .replace("master_process on;", "master_process off;\n"
                         # nginx re-formats its cached time strings whenever the clock moves;
                         # callgrind slows the two variants differently, so that work would
                         # land unevenly in the count. A coarse timer keeps it out.
                         "timer_resolution 3600s;"))
    env = scene.shim_env(prefix + "-shim.log") if variant == "b" else dnsmove.clean_env()
    out = os.path.join(prefix, "cg")
    proc = scene.spawn(os.path.basename(prefix),
                       ["valgrind", "--tool=callgrind", "--separate-threads=yes",
                        "--callgrind-out-file=" + out, NGINX, "-p", prefix + "/", "-c", conf,
                        "-e", errlog], env=env)
    services._wait_ready(proc, "nginx under callgrind on %s:%d" % (listen, PORT),
                         lambda: _connects(listen, PORT),
                         [errlog, scene.path(os.path.basename(prefix) + ".out")])
    t0 = time.monotonic()
    drive_requests(listen, count)
    seconds = time.monotonic() - t0
    mapped = has_shim(proc.pid)
    if mapped != (variant == "b"):
        raise HarnessError("callgrind nginx %s: libdnsaware %s mapped"
                           % (variant, "is" if mapped else "is not"))
    os.killpg(proc.pid, signal.SIGQUIT)     # graceful: callgrind writes its files at exit
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        raise HarnessError("nginx under callgrind did not stop within 60 s")
    totals = callgrind_totals(out)
    if 1 not in totals:
        raise HarnessError("callgrind wrote no totals for nginx's main thread (%s-01)" % out)
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no",
                          out + "-01"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    funcs = bench_local.parse_annotate(ann.stdout) if ann.returncode == 0 else {}
    return {"totals": totals, "funcs": funcs, "seconds": seconds}


def user_system_split(scene, p):
    """The plain proxy's user and system CPU per request under wrk: what share of nginx's CPU
    the user-space instructions counted above stand for."""
    px = scene.start_proxy("a", keepalive=32)
    url = "http://%s:%d/" % (px["listen"], PORT)
    run_wrk(url, p["wrk_conns"], 1, p["wrk_threads"])
    pids = px["cpu_pids"]

    def ticks():
        u = s = 0
        for pid in pids:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            u += int(fields[11])
            s += int(fields[12])
        return u, s
    u0, s0 = ticks()
    res = run_wrk(url, p["wrk_conns"], max(2, p["wrk_seconds"] // 2), p["wrk_threads"])
    u1, s1 = ticks()
    scene.stop_proxy(px)
    hz = os.sysconf("SC_CLK_TCK")
    reqs = res["requests"] or 1
    return {"user_us_per_req": (u1 - u0) / hz / reqs * 1e6,
            "system_us_per_req": (s1 - s0) / hz / reqs * 1e6,
            "user_share": (u1 - u0) / max(1, (u1 - u0) + (s1 - s0))}


def bench_instructions(scene, p):
    scene.start_backend(OLD)
    n1, n2 = p["instr_requests"]
    runs = {}
    for v in "ab":
        for n in (n1, n2):
            r = instructions_run(scene, v, n)
            runs[(v, n)] = r
            log("  instructions (%s) %s, %d requests: main thread %d Ir, %s"
                % (v, VARIANTS[v], n, r["totals"][1],
                   ", ".join("thread %d %d Ir" % kv for kv in sorted(r["totals"].items())
                             if kv[0] != 1) or "no other thread"))
    split = user_system_split(scene, p)
    scene.stop_backends()
    per_req = {v: (runs[(v, n2)]["totals"][1] - runs[(v, n1)]["totals"][1]) / (n2 - n1)
               for v in "ab"}
    # Where the added instructions go: the per-request slope of every function, b minus a.
    funcs = {}
    for v, sign in (("a", -1), ("b", 1)):
        hi, lo = runs[(v, n2)]["funcs"], runs[(v, n1)]["funcs"]
        for f in set(hi) | set(lo):
            funcs[f] = funcs.get(f, 0) + sign * (hi.get(f, 0) - lo.get(f, 0)) / (n2 - n1)
    shim_own = sum(v for f, v in funcs.items() if f.endswith("[shim]"))
    top = sorted(((round(v, 1), f) for f, v in funcs.items() if abs(v) >= 0.5),
                 key=lambda t: -abs(t[0]))[:12]
    thread_ir = [sum(ir for t, ir in runs[("b", n)]["totals"].items() if t != 1) for n in (n1, n2)]
    added = per_req["b"] - per_req["a"]
    added_pct = added / per_req["a"] * 100
    return {"requests": [n1, n2],
            "method": "callgrind Ir of a single-process nginx (master_process off), main "
                      "thread, (Ir(N2) - Ir(N1)) / (N2 - N1), sequential keep-alive requests",
            "ir_per_request": {v: round(x, 1) for v, x in per_req.items()},
            "added_ir_per_request": round(added, 1),
            "added_pct_of_user_ir": round(added_pct, 2),
            "shim_own_ir_per_request": round(shim_own, 1),
            "glibc_and_other_ir_per_request": round(added - shim_own, 1),
            "top_differences": top,
            # The shim's thread over each whole run (start-up and one refresh or two): not per
            # request, and not in the figures above.
            "shim_thread_ir_total": thread_ir,
            "cpu_split_plain": {k: round(v, 3) for k, v in split.items()},
            "added_pct_of_cpu_estimate": round(added_pct * split["user_share"], 2)}


def check_instructions(res):
    problems = []
    for v, x in res["ir_per_request"].items():
        if not x > 0:
            problems.append("instructions: (%s) counted %s instructions per request" % (v, x))
    if res["shim_own_ir_per_request"] <= 0:
        problems.append("instructions: no instruction of the shim's own code per request: the "
                        "profile did not see the hooks")
    return problems


def _qps(counts, seconds):
    return {k: round(v / seconds, 2) for k, v in sorted(counts.items())}


def check_throughput(res):
    problems = []
    for v, s in res["summary"].items():
        if not s["rps_min"] > 100:
            problems.append("%s: %.0f requests/s is not a sane figure" % (v, s["rps_min"]))
        if not 0 < s["p99_ms_max"] < 10000:
            problems.append("%s: p99 %.3f ms is not a sane figure" % (v, s["p99_ms_max"]))
        if s["errors"]:
            problems.append("%s: %d failed requests (non-2xx or socket errors)"
                            % (v, s["errors"]))
    if not res["dns_queries"].get(SHIM_DNS):
        problems.append("the shim made no background DNS query (is it resolving at all?)")
    if not res["dns_queries"].get(HAPROXY_DNS):
        problems.append("HAProxy made no DNS query (is its resolvers section in use?)")
    return problems


# --------------------------------------------------------------------------------------------
# reaction
# --------------------------------------------------------------------------------------------

class LogTail:
    """A backend access log read from a given offset on: (msec, remote, port, conn, status)."""

    def __init__(self, path):
        self.path = path
        try:
            self.off = os.path.getsize(path)
        except OSError:
            self.off = 0
        self.partial = b""
        self.entries = []

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except OSError:
            return
        self.off += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            parts = line.split()
            if len(parts) >= 6:
                try:
                    self.entries.append((float(parts[0]), parts[1].decode(), int(parts[2]),
                                         int(parts[3]), int(parts[5])))
                except ValueError:
                    pass


def reaction_trial(scene, p, mech, ttl, conns, logs):
    variant = "b" if mech == "shim" else "c"
    scene.set_answer(OLD, ttl)
    scene.wait_answer(OLD, ttl)
    keepalive = max(32, conns)
    px = scene.start_proxy(variant, keepalive=keepalive, shim_level="info", stats=True)
    tails = {a: LogTail(logs[a]) for a in (OLD, NEW)}
    url = "http://%s:%d/" % (px["listen"], PORT)
    window = 3 * ttl + p["window_extra"]
    quiet_max = max(3.0, 1.5 * ttl)
    duration = int(p["react_warmup"] + window + 10)
    argv = wrk_argv(url, conns, duration, 2)
    wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=dnsmove.clean_env(), preexec_fn=dnsmove._pdeathsig,
                           start_new_session=True)
    try:
        t_start = time.time()
        time.sleep(p["react_warmup"])
        if wrk.poll() is not None:
            raise HarnessError("wrk exited early:\n%s" % wrk.stdout.read())
        conns_old_before = conns_to(OLD, PORT)
        t_change = scene.set_answer(NEW, ttl)
        scene.wait_answer(NEW, ttl)
        stop_reason = "window"
        while True:
            time.sleep(0.25)
            now = time.time()
            for t in tails.values():
                t.poll()
            old_after = [e[0] for e in tails[OLD].entries if e[0] >= t_change]
            new_after = [e for e in tails[NEW].entries if e[0] >= t_change]
            last_old = max(old_after) if old_after else t_change
            # the log is flushed every 200 ms: leave it time to show the last requests
            if new_after and now - last_old >= 1.0 and conns_to(OLD, PORT) == 0:
                stop_reason = "no connection left to %s" % OLD
                break
            if new_after and now - last_old >= quiet_max:
                stop_reason = "%s quiet for %.1f s" % (OLD, quiet_max)
                break
            if now >= t_change + window:
                break
            if wrk.poll() is not None:
                raise HarnessError("wrk exited during the trial:\n%s" % wrk.stdout.read())
        conns_old_end = conns_to(OLD, PORT)
        t_stop = time.time()
        wrk.send_signal(signal.SIGINT)
        try:
            out, _ = wrk.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            wrk.kill()
            out, _ = wrk.communicate()
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    t_wrk_end = time.time()
    time.sleep(0.5)                  # the backends flush their logs every 200 ms
    for t in tails.values():
        t.poll()
    wres = parse_wrk(out)
    stats = matrix_judge.read_stats(px["stats_dir"]) if px["stats_dir"] else None
    dns = scene.dns_queries(t_change, t_stop)
    learned = first_answer(scene, SHIM_DNS if mech == "shim" else HAPROXY_DNS, NEW, t_change)
    scene.stop_proxy(px)
    haproxy_switched = None
    if px["haproxy_out"]:
        try:
            with open(px["haproxy_out"], errors="replace") as f:
                haproxy_switched = ("changed its IP from %s to %s" % (OLD, NEW)) in f.read()
        except OSError:
            haproxy_switched = False

    before = [e for e in tails[OLD].entries if t_start <= e[0] < t_change]
    old_after = [e for e in tails[OLD].entries if t_change <= e[0] <= t_wrk_end]
    new_after = [e for e in tails[NEW].entries if t_change <= e[0] <= t_wrk_end]
    new_before = [e for e in tails[NEW].entries if e[0] < t_change]
    last_old = max(e[0] for e in old_after) if old_after else None
    first_new = min(e[0] for e in new_after) if new_after else None
    moved = bool(new_after) and (last_old is None or t_stop - last_old >= 0.99)
    # where the traffic went at the end of the trial (the last 2 s before wrk was stopped)
    tail_old = len([e for e in old_after if e[0] >= t_stop - 2.0])
    tail_new = len([e for e in new_after if e[0] >= t_stop - 2.0])
    res = {
        "mechanism": mech, "label": MECHANISMS[mech], "ttl": ttl, "conns": conns,
        "upstream_keepalive": keepalive, "wrk": " ".join(argv[:-1]),
        "requests_old_before_change": len(before), "requests_new_before_change": len(new_before),
        "requests_old_after_change": len(old_after), "requests_new_after_change": len(new_after),
        "last_old_s": round(last_old - t_change, 3) if last_old else 0.0,
        "first_new_s": round(first_new - t_change, 3) if first_new else None,
        "observed_s": round(t_stop - t_change, 2), "stop_reason": stop_reason,
        "old_share_last_2s": round(tail_old / (tail_old + tail_new), 3)
        if tail_old + tail_new else None,
        "moved": moved,
        "conns_old_before_change": conns_old_before, "conns_old_at_end": conns_old_end,
        "old_conns_used_after_change": len({(e[1], e[2]) for e in old_after}),
        "wrk_rps": wres["rps"], "wrk_requests": wres["requests"], "wrk_p99_ms": wres["p99_ms"],
        "failed": wres["errors"], "wrk_socket_errors": wres["socket_errors"],
        "wrk_non2xx": wres["non2xx"],
        "proxy_error_log_errors": count_error_lines(px),
        "dns_queries_after_change": dns,
        "resolver_got_new_s": round(learned - t_change, 3) if learned else None,
        "haproxy_switched_address": haproxy_switched,
    }
    if stats:
        res["shim_stats"] = stats.get("stats")
        res["shim_stats_error"] = stats.get("stats_error")
    return res


def first_answer(scene, listen, addr, t_from):
    """When the resolver on `listen` (the shim's or HAProxy's) was first answered `addr`."""
    for q in dnsresponder.read_log(scene.dns_log):
        if (q.get("listen") == listen and q.get("qname") == NAME and q.get("t", 0) >= t_from
                and q.get("src") != dnsmove.DRIVER_SRC and addr in (q.get("answers") or [])):
            return q["t"]
    return None


def count_error_lines(px):
    paths = [os.path.join(px["prefix"], "error.log")]
    n = 0
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                n += sum(1 for line in f if "[error]" in line or "[crit]" in line
                         or "[alert]" in line or "[emerg]" in line)
        except OSError:
            pass
    return n


def bench_reaction(scene, p):
    logs = {a: scene.path("access-%s.log" % a) for a in (OLD, NEW)}
    for a in (OLD, NEW):
        scene.start_backend(a, access_log=logs[a])
    trials = []
    flip = False
    # Trial k of every condition runs before trial k+1 of any, so a noisy minute on the shared
    # machine spreads over conditions instead of landing on one.
    for trial in range(p["react_trials"]):
        for ttl in p["ttls"]:
            for n in p["conns"]:
                order = ["shim", "haproxy"] if not flip else ["haproxy", "shim"]
                flip = not flip
                for mech in order:
                    r = reaction_trial(scene, p, mech, ttl, n, logs)
                    r["trial"] = trial + 1
                    trials.append(r)
                    log("  reaction trial %d, TTL %ds, %d connections, %s: %s; last request on "
                        "%s change%+.2fs (%d after the change), first on %s %s, %d failed, "
                        "%d connections to %s left (stopped: %s, after %.1f s)"
                        % (trial + 1, ttl, n, MECHANISMS[mech],
                           "moved" if r["moved"] else "DID NOT MOVE",
                           OLD, r["last_old_s"], r["requests_old_after_change"], NEW,
                           "change%+.2fs" % r["first_new_s"] if r["first_new_s"] is not None
                           else "never", r["failed"], r["conns_old_at_end"], OLD,
                           r["stop_reason"], r["observed_s"]))
    scene.stop_backends()
    scene.set_answer(OLD, 1)
    return {"trials": trials,
            "params": {k: p[k] for k in ("ttls", "conns", "react_warmup", "window_extra",
                                         "react_trials")},
            "haproxy_resolvers": "timeout resolve 1s, hold valid 1s (HAProxy re-resolves on "
                                 "its own interval; the record's TTL does not change it)",
            "shim_env": "DNSAWARE_TTL_FLOOR=%s, defaults otherwise" % TTL_FLOOR}


def check_reaction(res):
    problems = []
    for r in res["trials"]:
        what = "TTL %ds, %d connections, %s" % (r["ttl"], r["conns"], r["label"])
        if r["requests_old_before_change"] <= 0 or r["requests_new_before_change"] > 0:
            problems.append("%s: traffic before the change did not all go to %s (%d there, %d "
                            "on %s)" % (what, OLD, r["requests_old_before_change"],
                                        r["requests_new_before_change"], NEW))
        if r["resolver_got_new_s"] is None:
            problems.append("%s: its resolver was never answered %s after the change"
                            % (what, NEW))
        if r["mechanism"] == "haproxy" and not r["haproxy_switched_address"]:
            problems.append("%s: HAProxy never logged its server's address change to %s"
                            % (what, NEW))
        if r["mechanism"] == "shim" and not r["moved"]:
            problems.append("%s: did not move within %.1f s (last request on %s at change%+.2fs,"
                            " %d on %s)" % (what, r["observed_s"], OLD, r["last_old_s"],
                                            r["requests_new_after_change"], NEW))
        if not r["wrk_rps"] or r["wrk_rps"] <= 0:
            problems.append("%s: wrk reported no throughput" % what)
    return problems


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------

def fmt(v, spec="%.0f"):
    return "–" if v is None else spec % v


def reaction_cell(runs):
    """One condition's trials: the median (and range) of the seconds to the last request on the
    old address over the trials that moved, and how many did not."""
    if not runs:
        return "–"
    moved = sorted(r["last_old_s"] for r in runs if r["moved"])
    stuck = [r for r in runs if not r["moved"]]
    parts = []
    if moved:
        text = "%.2f s" % statistics.median(moved)
        if len(moved) > 1:
            text += " (%.2f–%.2f)" % (moved[0], moved[-1])
        parts.append(text)
    if stuck:
        worst = max(100 * (r["old_share_last_2s"] or 0) for r in stuck)
        parts.append("%snot moved after %.1f s (up to %.0f %% still on .10 at the end)"
                     % ("%d of %d " % (len(stuck), len(runs)) if len(runs) > 1 else "",
                        min(r["observed_s"] for r in stuck), worst))
    return "; ".join(parts)


def report(results):
    lines = []
    tp = results.get("throughput")
    if tp:
        pr = tp["params"]
        lines += ["", "### Throughput (wrk -t%d -c%d -d%ds --latency; %d rounds, medians)"
                  % (pr["wrk_threads"], pr["wrk_conns"], pr["wrk_seconds"], pr["rounds"]), "",
                  "| variant | requests/s | range | cost vs (a) | paired cost (median) | "
                  "p99 latency | p99 range | proxy CPU per request | CPU vs (a) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for v in "abc":
            s = tp["summary"][v]
            lines.append("| (%s) %s | %.0f | %.0f–%.0f | %s | %s | %.2f ms | %.2f–%.2f ms | "
                         "%.1f µs | %s |"
                         % (v, s["label"], s["rps_median"], s["rps_min"], s["rps_max"],
                            "%+.2f %%" % -s["rps_cost_pct"] if v != "a" else "–",
                            "%+.2f %%" % -s["rps_cost_pct_paired_median"] if v != "a" else "–",
                            s["p99_ms_median"], s["p99_ms_min"], s["p99_ms_max"],
                            s["cpu_us_per_req_median"],
                            "%+.1f %%" % s["cpu_cost_pct"] if v != "a" else "–"))
        lines += ["", "Per round (order rotates):", "",
                  "| round | order | (a) req/s | (b) req/s | (c) req/s | b/a | c/a | "
                  "(a) p99 | (b) p99 | (c) p99 | (a) CPU/req | (b) CPU/req | (c) CPU/req |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in tp["rounds"]:
            ru = r["runs"]
            lines.append("| %d | %s | %.0f | %.0f | %.0f | %.3f | %.3f | %.2f ms | %.2f ms | "
                         "%.2f ms | %.1f µs | %.1f µs | %.1f µs |"
                         % (r["round"], r["order"], ru["a"]["rps"], ru["b"]["rps"],
                            ru["c"]["rps"], ru["b"]["rps"] / ru["a"]["rps"],
                            ru["c"]["rps"] / ru["a"]["rps"], ru["a"]["p99_ms"],
                            ru["b"]["p99_ms"], ru["c"]["p99_ms"],
                            ru["a"]["proxy_cpu_us_per_req"], ru["b"]["proxy_cpu_us_per_req"],
                            ru["c"]["proxy_cpu_us_per_req"]))
        b = tp["summary"]["b"]
        spread = max((s["rps_max"] - s["rps_min"]) / s["rps_median"] * 100
                     for s in tp["summary"].values())
        lines += ["", "Budget: the shim costs at most %.0f %% of throughput: median cost %.2f %% "
                  "(paired %.2f %%): **%s**. Proxy CPU per request (nginx master + workers; "
                  "+ HAProxy for (c)), paired median: (b) %+.1f %%, (c) %+.1f %%. The widest "
                  "spread of one variant's requests/s across rounds: %.0f %% of its median."
                  % (tp["budget_pct"], b["rps_cost_pct"], b["rps_cost_pct_paired_median"],
                     "not judged in --smoke" if results.get("mode") == "smoke"
                     else "met" if tp["budget_ok"] else "MISSED",
                     b["cpu_cost_pct_paired_median"],
                     tp["summary"]["c"]["cpu_cost_pct_paired_median"], spread),
                  "Background DNS queries per second during the throughput phase: %s."
                  % "; ".join("%s %s" % (k, ", ".join("%s %.2f" % kv for kv in v.items())
                                         or "none")
                              for k, v in tp["dns_queries_per_s"].items())]
    ins = results.get("instructions")
    if ins:
        sp = ins["cpu_split_plain"]
        lines += ["", "### Instructions per proxied request (callgrind, user space)", "",
                  "| variant | instructions per request |", "|---|---|",
                  "| (a) %s | %.0f |" % (VARIANTS["a"], ins["ir_per_request"]["a"]),
                  "| (b) %s | %.0f |" % (VARIANTS["b"], ins["ir_per_request"]["b"]),
                  "", "Added by the shim: **%+.0f instructions per request (%+.2f %% of nginx's "
                  "user-space instructions)**: %.0f in the shim's own code, %.0f elsewhere "
                  "(glibc's multi-threaded paths). %s, requests %d and %d." % (
                      ins["added_ir_per_request"], ins["added_pct_of_user_ir"],
                      ins["shim_own_ir_per_request"], ins["glibc_and_other_ir_per_request"],
                      ins["method"], ins["requests"][0], ins["requests"][1]),
                  "", "The plain proxy under wrk spends %.1f µs of user and %.1f µs of system "
                  "CPU per request (user share %.0f %%), so at nginx's average cost per "
                  "user-space instruction the shim's addition is about **%.2f %% of the proxy's "
                  "CPU per request**." % (sp["user_us_per_req"], sp["system_us_per_req"],
                                          100 * sp["user_share"],
                                          ins["added_pct_of_cpu_estimate"]),
                  "", "Largest per-request differences (b − a), by function: " +
                  ", ".join("%s %+.1f" % (f, v) for v, f in ins["top_differences"]) + "."]
    rc = results.get("reaction")
    if rc:
        lines += ["", "### Reaction: the name moves %s -> %s under load "
                  "(seconds from the change to the last request answered on %s)" % (OLD, NEW, OLD),
                  ""]
        cells = {}
        for r in rc["trials"]:
            cells.setdefault((r["ttl"], r["conns"], r["mechanism"]), []).append(r)
        lines += ["| TTL | client connections | %s | %s |" % (MECHANISMS["shim"],
                                                           MECHANISMS["haproxy"]),
                  "|---|---|---|---|"]
        for ttl in rc["params"]["ttls"]:
            for n in rc["params"]["conns"]:
                row = []
                for mech in ("shim", "haproxy"):
                    row.append(reaction_cell(cells.get((ttl, n, mech), [])))
                lines.append("| %d s | %d | %s | %s |" % (ttl, n, row[0], row[1]))
        lines += ["", "Details (every trial):", "",
                  "| trial | TTL | conns | mechanism | resolver got .11 | last on .10 | first on .11 | "
                  "requests on .10 after change | .10 conns used after change | failed | "
                  "proxy error.log lines | conns to .10 at end | req/s | p99 | stopped |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rc["trials"]:
            lines.append("| %d | %d s | %d | %s | %s | %.2f s | %s | %d | %d | %d | %d | %d | %.0f | %s "
                         "| %s |"
                         % (r.get("trial", 1), r["ttl"], r["conns"], r["label"],
                            fmt(r["resolver_got_new_s"], "%.2f s"), r["last_old_s"],
                            fmt(r["first_new_s"], "%.2f s"), r["requests_old_after_change"],
                            r["old_conns_used_after_change"], r["failed"],
                            r["proxy_error_log_errors"], r["conns_old_at_end"], r["wrk_rps"] or 0,
                            fmt(r["wrk_p99_ms"], "%.1f ms"), r["stop_reason"]))
        lines += ["", "Shim: %s. HAProxy: %s. \"failed\" is what wrk saw (non-2xx and socket "
                  "errors); the proxy's error.log lines are nginx's own account of upstream "
                  "errors it retried (with the shim: `writev() failed (32: Broken pipe)`, one "
                  "per connection failed at its send)." % (rc["shim_env"], rc["haproxy_resolvers"])]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------

def versions():
    def first_line(argv):
        try:
            r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=10)
            return r.stdout.strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None
    return {"nginx": first_line([NGINX, "-v"]), "haproxy": first_line([HAPROXY, "-v"]),
            "wrk": first_line([WRK, "-v"]), "kernel": platform.release(),
            "cpus": os.cpu_count()}


def inside(opts):
    scene = BenchScene(opts, opts.workdir)
    p = dict(SMOKE if opts.smoke else FULL)
    if opts.trials:
        p["react_trials"] = opts.trials

    def body():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        scene.setup_namespace()
        for a in [SHIM_DNS, HAPROXY_DNS, HAPROXY_ADDR] + list(PROXY.values()):
            with socket.socket() as s:
                s.bind((a, 0))
        t0 = time.time()
        scene.start_responder(OLD, 1)
        results = {"mode": "smoke" if opts.smoke else "full", "time": t0,
                   "versions": versions(), "lib": opts.lib}
        if opts.haproxy_backend:
            results["haproxy_backend_extra"] = opts.haproxy_backend
        problems = []
        if opts.part in ("all", "throughput"):
            log("throughput: %s" % ", ".join("(%s) %s" % kv for kv in VARIANTS.items()))
            results["throughput"] = bench_throughput(scene, p)
            problems += check_throughput(results["throughput"])
        if opts.part in ("all", "instructions"):
            log("instructions: nginx under callgrind, (a) and (b)")
            results["instructions"] = bench_instructions(scene, p)
            problems += check_instructions(results["instructions"])
        if opts.part in ("all", "reaction"):
            log("reaction: %s -> %s" % (OLD, NEW))
            results["reaction"] = bench_reaction(scene, p)
            problems += check_reaction(results["reaction"])
        results["duration_s"] = round(time.time() - t0, 1)
        results["problems"] = problems
        log(report(results))
        log("\n(%s mode, %.0f s, workdir %s)" % (results["mode"], results["duration_s"],
                                                 scene.wd))
        if opts.json:
            with open(opts.json + ".tmp", "w") as f:
                json.dump(results, f, indent=1, sort_keys=True)
            os.rename(opts.json + ".tmp", opts.json)
        if problems:
            raise Failure("; ".join(problems))
        if opts.strict and "throughput" in results and not results["throughput"]["budget_ok"]:
            raise Failure("the shim's throughput cost %.2f %% exceeds the %.0f %% budget"
                          % (results["throughput"]["summary"]["b"]["rps_cost_pct"],
                             BUDGET_PCT))
        log("PASS (bench_proxy %s)" % results["mode"])
        return 0
    def guarded_body():
        try:
            return body()
        except RuntimeError as e:          # services.* could not start a server
            raise HarnessError(str(e))
    return dnsmove.guarded("bench_proxy", scene, guarded_body)


def prerequisites(opts):
    missing = []
    if os.geteuid() != 0:
        missing.append("must run as root (namespaces, bind mounts over /etc, port 53)")
    for prog in ("unshare", "ip", "mount"):
        if not shutil.which(prog):
            missing.append("%s not found (util-linux / iproute2)" % prog)
    for path, pkg in ((WRK, "wrk"), (HAPROXY, "haproxy"), (NGINX, "nginx-light"),
                      ("/usr/bin/valgrind", "valgrind"), ("/usr/bin/callgrind_annotate", "valgrind")):
        if not os.access(path, os.X_OK):
            missing.append("%s not found (apt-get install -y --no-install-recommends %s)"
                           % (path, pkg))
    if not opts.lib or not os.path.isfile(opts.lib):
        missing.append("library %s does not exist (build it, or set DNSAWARE_LIB / --lib)"
                       % opts.lib)
    return missing


def outside(opts):
    missing = prerequisites(opts)
    if missing:
        for m in missing:
            log("FAIL (bench_proxy): prerequisite missing: %s" % m)
        return EXIT_HARNESS
    wd = dnsmove.prepare_workdir(opts.workdir, "dnsaware-bench-proxy-", marker=".bench-workdir")
    if wd is None:
        return EXIT_HARNESS
    args = ["--inside", "--workdir", wd, "--lib", opts.lib]
    if opts.smoke:
        args.append("--smoke")
    if opts.strict:
        args.append("--strict")
    args += ["--part", opts.part]
    if opts.trials:
        args += ["--trials", str(opts.trials)]
    for line in opts.haproxy_backend:
        args += ["--haproxy-backend", line]
    if opts.json:
        args += ["--json", os.path.abspath(opts.json)]
    rc = dnsmove.run_in_namespaces(__file__, args)
    if rc not in (0, EXIT_FAIL, EXIT_HARNESS):
        log("FAIL (bench_proxy): the namespaced driver exited with %d" % rc)
        rc = EXIT_HARNESS
    dnsmove.keep_or_remove(wd, rc == 0, opts.keep or opts.workdir is not None)
    return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="a few seconds, small numbers")
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--lib", default=os.environ.get("DNSAWARE_LIB")
                    or os.path.join(REPO, "build", "src", "libdnsaware.so"))
    ap.add_argument("--workdir", help="keep logs and configs here (emptied first)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workdir")
    ap.add_argument("--strict", action="store_true",
                    help="fail (exit 1) when the shim misses its throughput budget")
    ap.add_argument("--part", choices=("all", "throughput", "instructions", "reaction"), default="all",
                    help="run only one of the two measurements")
    ap.add_argument("--trials", type=int, metavar="N",
                    help="reaction trials per condition (default 3; 1 in --smoke)")
    ap.add_argument("--haproxy-backend", action="append", default=[], metavar="LINE",
                    help="one more line for HAProxy's backend section, e.g. "
                         "'option http-server-close' (repeatable)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.trials is not None and not 1 <= opts.trials <= 20:
        ap.error("--trials: %d is out of range; give 1 to 20" % opts.trials)
    opts.lib = os.path.abspath(opts.lib)
    if opts.inside:
        return inside(opts)
    return outside(opts)


if __name__ == "__main__":
    sys.exit(main())

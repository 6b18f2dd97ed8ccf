"""bench_proxy.py's scene (split out of tests/bench/bench_proxy.py): BenchScene, tests/e2e's
dnsmove.Scene plus the DNS responder on its three addresses, the backend and proxy nginx
instances and the HAProxy sidecar; and what the measurements read from the system: a connect
probe, one HTTP GET, whether a process has the shim mapped, processes' CPU ticks and the
established connections to an address (/proc).
"""

import os
import socket
import subprocess
import time

# bench_proxy_conf first: it puts tests/e2e on sys.path for the imports below.
from bench_proxy_conf import (BACKEND_BODY, E2E, HAPROXY, HAPROXY_ADDR, HAPROXY_CFG, HAPROXY_DNS,
                              NAME, NGINX, NGINX_MAIN, PORT, PROGRAM_DNS, PROXY, PROXY_BODY,
                              SHIM_DNS, TTL_FLOOR, _temps)
import dnsmove  # noqa: E402  (namespace set-up, process handling)
import dnsresponder  # noqa: E402  (the programmable DNS server)
import services  # noqa: E402  (nginx helpers)
from dnsmove import PYTHON, HarnessError  # noqa: E402


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

#!/usr/bin/python3
"""End-to-end test (issue 17): DNSAWARE_BALANCE=1 spreads a name's connections over its addresses.

Six scenarios, side by side in one private mount and network namespace (one backend, one DNS
server: tests/e2e/dnsresponder.py, TTL 1 s; DNSAWARE_TTL_FLOOR=200ms). Each client runs twice,
both under the shim: with DNSAWARE_BALANCE=1 and, as its control, with DNSAWARE_BALANCE=0; each
run has a name, a DNSAWARE_STATE_DIR, a stats file (1 s) and an info log of its own.

  grow-8    a pool of 8 keep-alive connections (each used every 100 ms, checked before reuse as
            urllib3 does) while the name has 1 address (127.0.0.10); 3 s after the pool is up
            the name grows to 4 (127.0.0.10-.13). Balance: from 2 TTL + 2 s after the change to
            the end (4 s more) every address holds 2 +- 1 of the connections (each connection
            counted at the address of its latest answer), no request fails, each connection is
            recycled at most once, and the stats file's balance recycles match the log's "for
            balance" lines. Control: every answer from 127.0.0.10.
  grow-64   the same with 64 connections (each used every 500 ms): 16 +- 2 per address.
  fresh     4 addresses from the start, python requests.get per request (Connection: close),
            100 requests at 20/s. Balance: each address answers 15-35 % of them. Control: the
            spread is reported (glibc's RFC 6724 order: one address), only 0 failed asserted.
  rotating  4 addresses, 2 per answer at random ("rotate": 2), a pool of 8, about 11 s.
            Balance: no request fails, each pool connection is reconnected at most once, and
            none is (no reconnect, no "for balance" line) in the last 5 s.
  mixed     127.0.0.10, .11, fd00::10, fd00::11; one process, 8 threads resolving with
            getaddrinfo(AF_INET) and 8 with AF_INET6, a fresh connection per request, 40
            requests each family. Both runs: families never cross, no request fails. Balance:
            each family's two addresses answer 25-75 % of its requests each.
  cooldown  4 addresses on a port where nothing listens on 127.0.0.13 (connects refused),
            requests.get per request, 60 requests at 20/s. Balance: after the first refusal at
            most 1 more connection attempt reaches 127.0.0.13 (seen on the wire: a packet socket
            on lo), and .10-.12 answer 20-45 % each. Failed requests are reported (requests
            tries the next address itself).

Controls also assert that DNSAWARE_BALANCE=0 recycles nothing for balance. Prints a table per
scenario and one PASS/FAIL line per assertion. Exit status 0 (all pass), 1 (an assertion failed),
2 (the harness could not run it). About 15 s.

Usage: balance.py [--lib PATH] [--workdir DIR] [--keep]
Internal subcommands: backend, pool, fresh, mixed (balance_ends.py).
"""

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time

from dnsmove_ns import (PYTHON, HarnessError, clean_env, driver_args, driver_parser, guarded, log, preload, read_jsonl,
                        missing_python_and_lib, run_outside, tail)
from dnsmove_scene import DRIVER_SRC, TTL_FLOOR, Scene, wait_port
import balance_ends
from balance_judge import judge
from balance_layout import (ADDRS, ADDRS6, COOLDOWN_PORT, GROW_AT, HERE, HOLD, PORT, PROBE_PORT,
                            PROGRAM_DNS, REFUSING, RUN_TIMEOUT, RUNS, SCENARIOS, SETTLE,
                            SHIM_DNS, TTL, name_of, port_of, tag)
import dnsresponder
import promtext

class LogWatch:
    """Tails the runs' shim logs every 50 ms: each line with the time it was first seen (the
    shim's lines carry no time)."""

    def __init__(self, paths):
        self.paths = paths                       # tag -> path
        self.offsets = {t: 0 for t in paths}
        self.partial = {t: b"" for t in paths}
        self.lines = {t: [] for t in paths}      # tag -> [(t_seen, line)]
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def poll(self):
        now = time.time()
        for t, p in self.paths.items():
            try:
                with open(p, "rb") as f:
                    f.seek(self.offsets[t])
                    data = f.read()
            except FileNotFoundError:
                continue
            self.offsets[t] += len(data)
            data = self.partial[t] + data
            *full, self.partial[t] = data.split(b"\n")
            self.lines[t].extend((now, line.decode("utf-8", "replace")) for line in full)

    def _loop(self):
        while not self.stopping:
            self.poll()
            time.sleep(0.05)

    def stop(self):
        self.stopping = True
        self.thread.join(2)
        self.poll()


class BalanceScene(Scene):
    def __init__(self, opts, workdir):
        super().__init__(opts, workdir)
        self.zone = self.path("zone.json")
        self.clients = {}          # tag -> Popen
        self.stop_file = self.path("clients.stop")
        self.t_ready = self.t_change = self.t_stop = None
        self.logs = None
        self.wire = None

    # ---- namespace ----
    def setup_namespace(self):
        super().setup_namespace()
        with open("/proc/sys/net/ipv6/conf/lo/disable_ipv6", "w") as f:
            f.write("0\n")
        for a in ADDRS6:
            r = subprocess.run(["ip", "-6", "addr", "add", a + "/128", "dev", "lo", "nodad"],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if r.returncode != 0:
                raise HarnessError("ip -6 addr add %s dev lo failed: %s" % (a, r.stdout.strip()))

    # ---- DNS ----
    def write_zone(self, grown):
        names = {}
        for sc, bal in RUNS:
            spec = SCENARIOS[sc]
            entry = {"addrs": list(spec["grown"] if grown and "grown" in spec else spec["addrs"]),
                     "ttl": TTL}
            if "rotate" in spec:
                entry["rotate"] = spec["rotate"]
            names[name_of(sc, bal)] = entry
        dnsresponder.write_zone(self.zone, names, default="nxdomain")

    def start_responder(self):
        self.responder = self.spawn("dns", [PYTHON, os.path.join(HERE, "dnsresponder.py"),
                                            "--listen", PROGRAM_DNS, "--listen", SHIM_DNS,
                                            "--port", "53", "--zone", self.zone,
                                            "--log", self.path("dns-queries.jsonl")])

    def wait_dns(self, name, addrs, rotate=None, timeout=8.0):
        """Until the server answers name's A records with exactly addrs (as a set), or, for a
        rotating name, with `rotate` of them."""
        want = sorted(a for a in addrs if ":" not in a)
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if self.responder.poll() is not None:
                raise HarnessError("the DNS responder exited with status %s:\n%s"
                                   % (self.responder.returncode, tail(self.path("dns.out"))))
            try:
                rcode, ans, _ = dnsresponder.query(PROGRAM_DNS, name, "A", timeout=0.3,
                                                   src=DRIVER_SRC)
                last = (rcode, ans)
                got = sorted(a for a, _ in ans)
                if rcode == 0 and (got == want if rotate is None
                                   else len(got) == rotate and set(got) <= set(want)):
                    return time.time()
            except (OSError, ValueError) as e:
                last = e
            time.sleep(0.02)
        raise HarnessError("DNS did not answer %s -> %s within %.0fs (last: %r)"
                           % (name, want, timeout, last))

    # ---- backend ----
    def start_backend(self):
        listen = ["0.0.0.0:%d" % PORT, "[::]:%d" % PORT]
        listen += ["%s:%d" % (a, p) for p in COOLDOWN_PORT.values() for a in ADDRS
                   if a != REFUSING]
        self.backend = self.spawn("backend", [PYTHON, os.path.abspath(__file__), "backend",
                                              "--log", self.path("backend-accepts.jsonl")]
                                  + sum((["--listen", x] for x in listen), []))
        for a in ADDRS + ADDRS6:
            wait_port(a, PORT)
        for p in COOLDOWN_PORT.values():
            for a in ADDRS[:3]:
                wait_port(a, p)

    # ---- clients ----
    def shim_env(self, t, bal):
        env = clean_env()
        os.makedirs(self.path(t + ".state"), mode=0o700, exist_ok=True)
        env.update(LD_PRELOAD=preload(self.opts.lib), DNSAWARE_BALANCE="1" if bal else "0",
                   DNSAWARE_TTL_FLOOR=TTL_FLOOR, DNSAWARE_NAMESERVERS=SHIM_DNS,
                   DNSAWARE_LOG="info", DNSAWARE_LOG_FILE=self.path(t + ".shim.log"),
                   DNSAWARE_STATE_DIR=self.path(t + ".state"),
                   DNSAWARE_STATS_FILE=self.path(t + ".prom"), DNSAWARE_STATS_INTERVAL="1s")
        return env

    def start_clients(self):
        for sc, bal in RUNS:
            spec = SCENARIOS[sc]
            t = tag(sc, bal)
            argv = [PYTHON, os.path.abspath(__file__), spec["client"], "--host", name_of(sc, bal),
                    "--port", str(port_of(sc, bal)), "--out", self.path(t + ".jsonl"),
                    "--stop-file", self.stop_file, "--max-duration", str(RUN_TIMEOUT)]
            if spec["client"] == "pool":
                argv += ["--conns", str(spec["conns"]), "--period", str(spec["period"])]
            elif spec["client"] == "fresh":
                argv += ["--count", str(spec["count"]), "--rate", str(spec["rate"])]
            else:
                argv += ["--workers", str(spec["workers"]), "--per-worker",
                         str(spec["per_worker"]), "--interval", str(spec["interval"])]
            self.clients[t] = self.spawn(t, argv, env=self.shim_env(t, bal))

    def records(self, t):
        return read_jsonl(self.path(t + ".jsonl"))

    def check_clients(self):
        for t, p in self.clients.items():
            if p.poll() is not None and p.returncode != 0:
                raise HarnessError("client %s exited with status %d:\n%s"
                                   % (t, p.returncode, tail(self.path(t + ".out"))))

    def sleep_until(self, when):
        while time.time() < when:
            self.check_clients()
            time.sleep(min(0.05, max(0.0, when - time.time())))

    def wait_pools_ready(self, timeout=30.0):
        pools = [tag(sc, bal) for sc, bal in RUNS if SCENARIOS[sc]["client"] == "pool"]
        end = time.time() + timeout
        while time.time() < end:
            self.check_clients()
            if all(any(r["type"] == "ready" for r in self.records(t)) for t in pools):
                return time.time()
            time.sleep(0.05)
        raise HarnessError("the pools were not all up within %.0fs" % timeout)

    def run(self):
        self.logs = LogWatch({tag(sc, bal): self.path(tag(sc, bal) + ".shim.log")
                              for sc, bal in RUNS})
        self.wire = balance_ends.SynWatch(REFUSING)
        self.probe_wire()
        self.t_start = time.time()
        self.start_clients()
        self.t_ready = self.wait_pools_ready()
        log("pools up after %.1fs; growing the grow-* names in %.0fs"
            % (self.t_ready - self.t_start, GROW_AT))
        self.sleep_until(self.t_ready + GROW_AT)
        self.write_zone(grown=True)
        for sc, bal in RUNS:
            if "grown" in SCENARIOS[sc]:
                self.t_change = self.wait_dns(name_of(sc, bal), SCENARIOS[sc]["grown"])
        self.sleep_until(self.t_change + SETTLE + HOLD)
        open(self.stop_file, "w").close()
        self.t_stop = time.time()
        end = time.time() + 15
        for t, p in self.clients.items():
            try:
                p.wait(max(0.1, end - time.time()))
            except subprocess.TimeoutExpired:
                raise HarnessError("client %s did not stop within 15 s of being told" % t)
        self.check_clients()
        self.logs.stop()
        self.wire.stop()
        log("clients done %.1fs after the start" % (time.time() - self.t_start))

    def probe_wire(self):
        """The watch must see a refused connect (its SYN and the RST) before it is trusted to
        see none."""
        import socket
        with socket.socket() as s:
            s.settimeout(2)
            try:
                s.connect((REFUSING, PROBE_PORT))
                raise HarnessError("%s:%d accepted a connection" % (REFUSING, PROBE_PORT))
            except ConnectionRefusedError:
                pass
        end = time.time() + 2
        while time.time() < end:
            kinds = {k for _, k, p in self.wire.snapshot() if p == PROBE_PORT}
            if kinds == {"syn", "rst"}:
                return
            time.sleep(0.02)
        raise HarnessError("the wire watch on lo did not see a refused connect to %s:%d "
                           "(saw %s)" % (REFUSING, PROBE_PORT, sorted(kinds)))

    # ---- what a run's shim said ----
    def shim(self, t):
        lines = self.logs.lines[t]
        balance = [(ts, l) for ts, l in lines if "for balance" in l]
        recycles = [(ts, l) for ts, l in balance if "shut down" in l or "path " in l]
        stats = None
        try:
            parsed = promtext.parse_file(self.path(t + ".prom"))
            stats = {p: promtext.counter(parsed, "dnsaware_sockets_shutdown_total",
                                         reason="balance", path=p)
                     for p in ("idle", "send", "deadline")}
        except (OSError, ValueError, KeyError):
            pass
        dns = [(ts, l) for ts, l in lines if "shut down" in l and "no longer resolves" in l]
        return {"balance_lines": balance, "recycles": recycles, "stats": stats, "dns": dns,
                "warnings": [l for _, l in lines if " warn " in l]}


# --------------------------------------------------------------------------------------------
# the judge
# --------------------------------------------------------------------------------------------

def inside(opts):
    scene = BalanceScene(opts, opts.workdir)

    def body():
        t0 = time.time()
        scene.setup_namespace()
        scene.write_zone(grown=False)
        scene.start_responder()
        for sc, bal in RUNS:
            scene.wait_dns(name_of(sc, bal), SCENARIOS[sc]["addrs"], SCENARIOS[sc].get("rotate"))
        scene.start_backend()
        scene.run()
        judge(scene)
        log("PASS (balance): every assertion held (%.0fs)" % (time.time() - t0))
        return 0
    return guarded("balance", scene, body)


def prerequisites(opts):
    missing = []
    if os.geteuid() != 0:
        missing.append("must run as root (namespaces, bind mounts over /etc, port 53, "
                       "a packet socket)")
    if not shutil.which("ip"):
        missing.append("ip not found (install iproute2)")
    return missing + missing_python_and_lib(opts.lib)


def outside(opts):
    return run_outside("balance", __file__, "dnsaware-balance-", prerequisites(opts), opts.workdir,
                       opts.keep, ["--lib", opts.lib])


def ends(argv):
    sub = argv[0]
    ap = argparse.ArgumentParser(prog="balance.py " + sub)
    if sub == "backend":
        ap.add_argument("--listen", action="append", required=True)
        ap.add_argument("--log", required=True)
        return balance_ends.run_backend(ap.parse_args(argv[1:]))
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, default=PORT)
    ap.add_argument("--out", required=True)
    ap.add_argument("--stop-file", required=True)
    ap.add_argument("--max-duration", type=float, default=RUN_TIMEOUT)
    ap.add_argument("--conns", type=int, default=8)
    ap.add_argument("--period", type=float, default=0.1)
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rate", type=float, default=20.0)
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--per-worker", type=int, default=5)
    ap.add_argument("--interval", type=float, default=0.2)
    a = ap.parse_args(argv[1:])
    return {"pool": balance_ends.run_pool, "fresh": balance_ends.run_fresh,
            "mixed": balance_ends.run_mixed}[sub](a)


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("backend", "pool", "fresh", "mixed"):
        return ends(sys.argv[1:])
    opts = driver_args(driver_parser(__doc__))
    return inside(opts) if opts.inside else outside(opts)


if __name__ == "__main__":
    sys.exit(main())

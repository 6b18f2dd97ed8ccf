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
import collections
import json
import os
import shutil
import subprocess
import sys
import threading
import time

from dnsmove_ns import (EXIT_FAIL, EXIT_HARNESS, PYTHON, Failure, HarnessError, clean_env, guarded,
                        keep_or_remove, log, prepare_workdir, preload, run_in_namespaces, tail)
from dnsmove_scene import DRIVER_SRC, TTL_FLOOR, Scene, wait_port
import balance_ends
import dnsresponder
import promtext

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROGRAM_DNS = "127.0.0.1"        # /etc/resolv.conf inside the namespace
SHIM_DNS = "127.0.0.3"           # DNSAWARE_NAMESERVERS of every run
TTL = 1
PORT = 8080
COOLDOWN_PORT = {True: 8081, False: 8082}   # a port per run: the wire watch tells them apart
ADDRS = ["127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"]
REFUSING = "127.0.0.13"          # nothing listens there on the cooldown ports
PROBE_PORT = 8089                # the wire watch's self-check: a refused connect of the driver's
ADDRS6 = ["fd00::10", "fd00::11"]
MIXED = ADDRS[:2] + ADDRS6
GROW_AT = 3.0                    # s after every pool is up: the grow names go to 4 addresses
SETTLE = 2 * TTL + 2.0           # s after the change by which a grown pool must be balanced
HOLD = 4.0                       # s the balance must then hold, to the end of the run
QUIET = 5.0                      # the rotating pool's last seconds, in which nothing may recycle
SAMPLE = 0.1                     # s between the grow judge's looks at the pools
RUN_TIMEOUT = 60

# scenario -> what its client is and what its name answers.
SCENARIOS = collections.OrderedDict([
    ("grow-8", dict(client="pool", conns=8, period=0.1, addrs=ADDRS[:1], grown=ADDRS, tol=1)),
    ("grow-64", dict(client="pool", conns=64, period=0.5, addrs=ADDRS[:1], grown=ADDRS, tol=2)),
    ("fresh", dict(client="fresh", count=100, rate=20.0, addrs=ADDRS)),
    ("rotating", dict(client="pool", conns=8, period=0.1, addrs=ADDRS, rotate=2)),
    ("mixed", dict(client="mixed", workers=8, per_worker=5, interval=0.2, addrs=MIXED)),
    ("cooldown", dict(client="fresh", count=60, rate=20.0, addrs=ADDRS)),
])
RUNS = [(sc, bal) for sc in SCENARIOS for bal in (True, False)]


def tag(sc, bal):
    return "%s.%s" % (sc, "balance" if bal else "control")


def name_of(sc, bal):
    return "%s-%s.test" % (sc, "balance" if bal else "control")


def port_of(sc, bal):
    return COOLDOWN_PORT[bal] if sc == "cooldown" else PORT


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
        recs = []
        try:
            with open(self.path(t + ".jsonl")) as f:
                for line in f:
                    try:
                        recs.append(json.loads(line))
                    except ValueError:
                        pass                 # a partial last line while the client writes
        except FileNotFoundError:
            pass
        return recs

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

class Verdicts:
    def __init__(self):
        self.items = []       # (passed, scenario, run, text)

    def check(self, passed, sc, bal, text):
        self.items.append((bool(passed), sc, "balance" if bal else "control", text))


def reqs_of(recs):
    return [r for r in recs if r["type"] == "req"]


def spread(reqs):
    return collections.Counter(r["backend"] for r in reqs if r.get("ok"))


def pct(n, total):
    return "%d (%.0f%%)" % (n, 100.0 * n / total) if total else "0"


def table(title, rows):
    log("")
    log(title)
    w = max(len(r[0]) for r in rows)
    log("  %-*s  %18s  %18s" % (w, "", "balance", "control"))
    for label, a, b in rows:
        log("  %-*s  %18s  %18s" % (w, label, a, b))


def recycle_text(sh):
    s = sh["stats"]
    stats = ("%d/%d/%d" % (s["idle"], s["send"], s["deadline"])) if s else "no series"
    return "%s, %d lines" % (stats, len(sh["recycles"]))


def requests_row(out):
    return ("requests (failed)",) + tuple("%d (%d)" % (len(out[b]["reqs"]), len(out[b]["failed"]))
                                          for b in (True, False))


RECYCLE_ROWS = "balance recycles: stats idle/send/deadline, log"
DNS_ROWS = "shutdowns for DNS (address left)"


def check_accounting(v, sc, bal, sh):
    """Balance: the stats file counts the recycles the log shows. Control: none at all."""
    total = sum(sh["stats"].values()) if sh["stats"] else None
    if bal:
        v.check(total is not None, sc, bal,
                "stats file has dnsaware_sockets_shutdown_total{reason=\"balance\"}"
                + ("" if total is not None else ": missing"))
        if total is not None:
            v.check(total == len(sh["recycles"]), sc, bal,
                    "stats balance recycles (%d) = \"for balance\" shutdown lines (%d)"
                    % (total, len(sh["recycles"])))
    else:
        v.check(not total and not sh["balance_lines"], sc, bal,
                "DNSAWARE_BALANCE=0 recycles nothing for balance (stats %s, %d lines)"
                % (total, len(sh["balance_lines"])))


def slot_history(reqs):
    """slot -> its requests in order; and slot -> times of its reconnects (after the first)."""
    by_slot = collections.defaultdict(list)
    for r in reqs:
        by_slot[r["slot"]].append(r)
    reconnects = {s: [r["t"] for r in rs if r.get("reconnect") in ("dropped", "after-error")]
                  for s, rs in by_slot.items()}
    return by_slot, reconnects


def latest_spread(reqs, when):
    """Per address, how many slots' latest answer (ended by `when`) came from it."""
    latest = {}
    for r in reqs:
        if r.get("ok") and r["t_end"] <= when:
            prev = latest.get(r["slot"])
            if prev is None or r["t_end"] >= prev[0]:
                latest[r["slot"]] = (r["t_end"], r["backend"])
    return collections.Counter(b for _, b in latest.values())


def judge_grow(scene, v, sc):
    spec = SCENARIOS[sc]
    n, tol, addrs = spec["conns"], spec["tol"], spec["grown"]
    fair = -(-n // len(addrs))
    out = {}
    for bal in (True, False):
        t = tag(sc, bal)
        reqs = reqs_of(scene.records(t))
        failed = [r for r in reqs if not r.get("ok")]
        _, reconnects = slot_history(reqs)
        end = max(r["t_end"] for r in reqs)
        final = latest_spread(reqs, end)
        sh = scene.shim(t)
        out[bal] = dict(reqs=reqs, failed=failed, final=final, sh=sh,
                        reconnects=sum(len(x) for x in reconnects.values()))
        if bal:
            first_bad = worst = None
            when = scene.t_change + SETTLE
            looks = 0
            while when <= end:
                counts = latest_spread(reqs, when)
                looks += 1
                dev = max([abs(counts.get(a, 0) - fair) for a in addrs]
                          + [n if set(counts) - set(addrs) else 0])
                if worst is None or dev > worst[0]:
                    worst = (dev, when, counts)
                if dev > tol and first_bad is None:
                    first_bad = (when, counts)
                when += SAMPLE

            def show(c):
                return ", ".join("%s %d" % (a, c.get(a, 0)) for a in sorted(set(addrs) | set(c)))
            v.check(looks > 0 and first_bad is None, sc, bal,
                    "%d +- %d connections per address from +%.0fs after the change to the end "
                    "(%d looks; worst at +%.1fs: %s)"
                    % (fair, tol, SETTLE, looks, (worst[1] - scene.t_change) if worst else 0,
                       show(worst[2]) if worst else "none")
                    + ("" if first_bad is None else "; first off at +%.1fs: %s"
                       % (first_bad[0] - scene.t_change, show(first_bad[1]))))
            v.check(not failed, sc, bal, "0 failed requests (%d of %d failed%s)"
                    % (len(failed), len(reqs),
                       "; first: %s" % failed[0].get("error") if failed else ""))
            many = {s: len(x) for s, x in reconnects.items() if len(x) > 1}
            v.check(not many, sc, bal, "each connection recycled at most once (%d reconnects; "
                    "connections reconnected more than once: %s)"
                    % (out[bal]["reconnects"], many or "none"))
            check_accounting(v, sc, bal, sh)
        else:
            where = sorted(set(r["backend"] for r in reqs if r.get("ok")))
            v.check(where == [ADDRS[0]] and not failed, sc, bal,
                    "every answer from %s, 0 failed (answered by %s; %d failed)"
                    % (ADDRS[0], where, len(failed)))
            check_accounting(v, sc, bal, sh)
    rows = [(a, str(out[True]["final"].get(a, 0)), str(out[False]["final"].get(a, 0)))
            for a in addrs]
    rows += [requests_row(out),
             ("reconnects", str(out[True]["reconnects"]), str(out[False]["reconnects"])),
             (RECYCLE_ROWS, recycle_text(out[True]["sh"]), recycle_text(out[False]["sh"])),
             (DNS_ROWS, str(len(out[True]["sh"]["dns"])), str(len(out[False]["sh"]["dns"])))]
    table("%s: %d keep-alive connections; %s -> %d addresses at +%.0fs; connections per "
          "address at the end" % (sc, n, ADDRS[0], len(addrs), GROW_AT), rows)


def judge_fresh(scene, v, sc):
    spec = SCENARIOS[sc]
    out = {}
    for bal in (True, False):
        t = tag(sc, bal)
        reqs = reqs_of(scene.records(t))
        failed = [r for r in reqs if not r.get("ok")]
        out[bal] = dict(reqs=reqs, failed=failed, spread=spread(reqs))
        v.check(len(reqs) == spec["count"] and not failed, sc, bal,
                "the run worked: %d of %d requests made, %d failed%s"
                % (len(reqs), spec["count"], len(failed),
                   "; first: %s" % failed[0].get("error") if failed else ""))
        if bal:
            ok = len(reqs) - len(failed)
            bad = [a for a in ADDRS if not 0.15 * ok <= out[bal]["spread"].get(a, 0) <= 0.35 * ok]
            v.check(ok and not bad, sc, bal, "each address answers 15-35 %% (%s)"
                    % ", ".join("%s %s" % (a, pct(out[bal]["spread"].get(a, 0), ok))
                                for a in ADDRS))
    rows = [(a, pct(out[True]["spread"].get(a, 0), len(out[True]["reqs"])),
             pct(out[False]["spread"].get(a, 0), len(out[False]["reqs"]))) for a in ADDRS]
    rows.append(requests_row(out))
    table("%s: requests.get per request, %d at %.0f/s, 4 addresses; answers per address"
          % (sc, spec["count"], spec["rate"]), rows)


def judge_rotating(scene, v, sc):
    out = {}
    for bal in (True, False):
        t = tag(sc, bal)
        reqs = reqs_of(scene.records(t))
        failed = [r for r in reqs if not r.get("ok")]
        _, reconnects = slot_history(reqs)
        end = max(r["t_end"] for r in reqs)
        start = min(r["t"] for r in reqs)
        sh = scene.shim(t)
        quiet_from = end - QUIET
        late = sorted(x - start for xs in reconnects.values() for x in xs if x >= quiet_from)
        late_lines = [l for ts, l in sh["balance_lines"] if ts >= quiet_from]
        out[bal] = dict(reqs=reqs, failed=failed, final=latest_spread(reqs, end), sh=sh,
                        reconnects=sum(len(x) for x in reconnects.values()),
                        shown=collections.Counter(r["backend"] for r in reqs if r.get("ok")),
                        late=late, run=end - start)
        v.check(not failed, sc, bal, "0 failed requests (%d of %d failed%s)"
                % (len(failed), len(reqs),
                   "; first: %s" % failed[0].get("error") if failed else ""))
        if bal:
            many = {s: len(x) for s, x in reconnects.items() if len(x) > 1}
            v.check(not many, sc, bal, "each connection recycled at most once (%d reconnects "
                    "in %.1fs; more than once: %s)" % (out[bal]["reconnects"], end - start,
                                                     many or "none"))
            v.check(not late and not late_lines, sc, bal,
                    "no churn: no reconnect and no \"for balance\" line in the last %.0fs "
                    "(reconnects at +%s s; %d lines)"
                    % (QUIET, ", +".join("%.1f" % x for x in late) or "-", len(late_lines)))
        check_accounting(v, sc, bal, sh)
    rows = [(a, str(out[True]["final"].get(a, 0)), str(out[False]["final"].get(a, 0)))
            for a in ADDRS]
    rows += [requests_row(out),
             ("reconnects (last %.0fs)" % QUIET,
              "%d (%d)" % (out[True]["reconnects"], len(out[True]["late"])),
              "%d (%d)" % (out[False]["reconnects"], len(out[False]["late"]))),
             (RECYCLE_ROWS, recycle_text(out[True]["sh"]), recycle_text(out[False]["sh"])),
             (DNS_ROWS, str(len(out[True]["sh"]["dns"])), str(len(out[False]["sh"]["dns"]))),
             ("run", "%.1fs" % out[True]["run"], "%.1fs" % out[False]["run"])]
    table("%s: 2 of 4 addresses per answer, a pool of 8; connections per address at the end"
          % sc, rows)


def judge_mixed(scene, v, sc):
    spec = SCENARIOS[sc]
    per_family = spec["workers"] * spec["per_worker"]
    out = {}
    fams = {4: ADDRS[:2], 6: ADDRS6}
    for bal in (True, False):
        t = tag(sc, bal)
        reqs = reqs_of(scene.records(t))
        failed = [r for r in reqs if not r.get("ok")]
        crossed = [r for r in reqs if r.get("ok") and (":" in r["backend"]) != (r["family"] == 6)]
        sp = {f: spread([r for r in reqs if r["family"] == f]) for f in fams}
        out[bal] = dict(reqs=reqs, failed=failed, crossed=crossed, spread=sp)
        v.check(len(reqs) == 2 * per_family and not failed, sc, bal,
                "the run worked: %d of %d requests made, %d failed%s"
                % (len(reqs), 2 * per_family, len(failed),
                   "; first: %s" % failed[0].get("error") if failed else ""))
        v.check(not crossed, sc, bal, "families never cross (%d answers from the other family%s)"
                % (len(crossed), "; first: IPv%d answered by %s" % (crossed[0]["family"],
                                                                  crossed[0]["backend"])
                   if crossed else ""))
        if bal:
            for f, addrs in fams.items():
                total = sum(1 for r in reqs if r["family"] == f and r.get("ok"))
                bad = [a for a in addrs if not 0.25 * total <= sp[f].get(a, 0) <= 0.75 * total]
                v.check(total and not bad, sc, bal, "IPv%d requests spread over both addresses, "
                        "25-75 %% each (%s)" % (f, ", ".join("%s %s" % (a, pct(sp[f].get(a, 0),
                                                                               total))
                                                            for a in addrs)))
    rows = []
    for f, addrs in fams.items():
        for a in addrs:
            rows.append(("IPv%d -> %s" % (f, a), str(out[True]["spread"][f].get(a, 0)),
                         str(out[False]["spread"][f].get(a, 0))))
    rows += [requests_row(out),
             ("answers across families", str(len(out[True]["crossed"])),
              str(len(out[False]["crossed"])))]
    table("%s: 2 IPv4 + 2 IPv6 addresses, %d fresh requests per family; answers per address"
          % (sc, per_family), rows)


def judge_cooldown(scene, v, sc):
    spec = SCENARIOS[sc]
    healthy = [a for a in ADDRS if a != REFUSING]
    events = scene.wire.snapshot()
    out = {}
    for bal in (True, False):
        t = tag(sc, bal)
        port = COOLDOWN_PORT[bal]
        reqs = reqs_of(scene.records(t))
        failed = [r for r in reqs if not r.get("ok")]
        syns = [ts for ts, kind, p in events if kind == "syn" and p == port]
        rsts = [ts for ts, kind, p in events if kind == "rst" and p == port]
        after = [ts for ts in syns if rsts and ts > rsts[0]]
        sp = spread(reqs)
        out[bal] = dict(reqs=reqs, failed=failed, spread=sp, syns=syns, rsts=rsts, after=after)
        v.check(len(reqs) == spec["count"], sc, bal, "the run worked: %d of %d requests made "
                "(%d failed, reported: requests tries the next address itself)"
                % (len(reqs), spec["count"], len(failed)))
        if bal:
            v.check(len(after) <= 1, sc, bal, "at most 1 attempt reaches %s after its first "
                    "refusal (%d attempts in all, %d refused, %d after the first refusal)"
                    % (REFUSING, len(syns), len(rsts), len(after)))
            ok = len(reqs) - len(failed)
            bad = [a for a in healthy if not 0.20 * ok <= sp.get(a, 0) <= 0.45 * ok]
            v.check(ok and not bad, sc, bal, "the three healthy addresses answer 20-45 %% each (%s)"
                    % ", ".join("%s %s" % (a, pct(sp.get(a, 0), ok)) for a in healthy))
    rows = [(a, pct(out[True]["spread"].get(a, 0), len(out[True]["reqs"])),
             pct(out[False]["spread"].get(a, 0), len(out[False]["reqs"]))) for a in healthy]
    rows += [("%s attempts (refused)" % REFUSING,
              "%d (%d)" % (len(out[True]["syns"]), len(out[True]["rsts"])),
              "%d (%d)" % (len(out[False]["syns"]), len(out[False]["rsts"]))),
             ("  after the first refusal", str(len(out[True]["after"])),
              str(len(out[False]["after"]))),
             requests_row(out)]
    table("%s: %s refuses; requests.get per request, %d at %.0f/s; answers per address"
          % (sc, REFUSING, spec["count"], spec["rate"]), rows)


JUDGES = {"grow-8": judge_grow, "grow-64": judge_grow, "fresh": judge_fresh,
          "rotating": judge_rotating, "mixed": judge_mixed, "cooldown": judge_cooldown}


def judge(scene):
    v = Verdicts()
    for sc in SCENARIOS:
        JUDGES[sc](scene, v, sc)
    warned = sorted({w for sc, bal in RUNS for w in scene.shim(tag(sc, bal))["warnings"]
                     if "BALANCE" in w})
    log("")
    for w in warned[:2]:
        log("shim warning: %s" % w.strip())
    for passed, sc, run, text in v.items:
        log("%s %s %s: %s" % ("PASS" if passed else "FAIL", sc, run, text))
    failed = [i for i in v.items if not i[0]]
    by_run = collections.Counter(i[2] for i in failed)
    log("")
    if failed:
        raise Failure("%d of %d assertions failed (balance runs: %d, controls: %d)"
                      % (len(failed), len(v.items), by_run["balance"], by_run["control"]))


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
    if subprocess.run([PYTHON, "-c", "import requests"], env=clean_env(),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        missing.append("%s cannot import requests (install python3-requests)" % PYTHON)
    if not os.path.isfile(opts.lib):
        missing.append("library %s does not exist (build it first)" % opts.lib)
    return missing


def outside(opts):
    missing = prerequisites(opts)
    if missing:
        for m in missing:
            log("FAIL (balance): prerequisite missing: %s" % m)
        return EXIT_HARNESS
    keep = opts.keep or opts.workdir is not None
    wd = prepare_workdir(opts.workdir, "dnsaware-balance-")
    if wd is None:
        return EXIT_HARNESS
    rc = run_in_namespaces(__file__, ["--inside", "--workdir", wd, "--lib", opts.lib])
    if rc not in (0, EXIT_FAIL, EXIT_HARNESS):
        log("FAIL (balance): the namespaced driver exited with status %d" % rc)
        rc = EXIT_HARNESS
    keep_or_remove(wd, rc == 0, keep)
    return rc


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
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lib", default=os.environ.get("DNSAWARE_LIB")
                    or os.path.join(REPO, "build", "src", "libdnsaware.so"))
    ap.add_argument("--workdir", help="keep logs here (emptied first; kept after the run)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workdir on success")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    opts.lib = os.path.abspath(opts.lib)
    return inside(opts) if opts.inside else outside(opts)


if __name__ == "__main__":
    sys.exit(main())

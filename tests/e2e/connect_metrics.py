#!/usr/bin/python3
"""End-to-end test (issue 18): the per-name connect metrics count what really happened.

One name, metrics.test, answers three addresses (tests/e2e/dnsresponder.py, TTL 300 s):
127.0.0.10, where a tiny server accepts and closes every connection on port 8080; 127.0.0.11,
where nothing listens on that port; and 10.77.0.2, a black hole (a veth pair in the namespace:
10.77.0.1/24 on dnsaw0, a permanent neighbour entry for 10.77.0.2 with a MAC nobody has, so its
SYNs leave by dnsaw0, reach dnsaw1 and are dropped there; no ARP, no ICMP, nothing comes back).
The driver checks each of the three before the runs (accept, ECONNREFUSED, and a connect that is
still pending after 300 ms).

The client, tests/e2e/clients/connect_mix.c, makes 50 connects in a fixed interleaved order.
Before each it resolves metrics.test with getaddrinfo(AF_INET) and connects to the address the
plan asks for, taken from that answer (the shim counts a connect under the name its destination
came from). What Linux returns for each, checked on this kernel, and what the shim must count:

  18 B  127.0.0.10, blocking: connect() returns 0.                     -> ok (in the hook)
  17 N  127.0.0.10, non-blocking: connect() -1 EINPROGRESS; poll(POLLOUT) returns 1; the program
        reads SO_ERROR (0), as programs do, and closes at once.        -> ok (seen complete by
        the close, or the thread if it looked first; the shim itself never reads SO_ERROR)
  10 R  127.0.0.11, blocking: connect() -1 ECONNREFUSED at once (a RST on loopback).
                                                                       -> refused (in the hook)
   3 S  10.77.0.2, blocking with SO_SNDTIMEO 200 ms: connect() returns -1 EINPROGRESS (not
        ETIMEDOUT: Linux reports a blocking connect whose send timeout ran out as still in
        progress) after about 200 ms; the program gives up and closes the socket while the
        handshake is pending.                                          -> timeout (at the close)
   2 U  10.77.0.2, blocking with TCP_USER_TIMEOUT 200 ms: the kernel gives up at the first SYN
        retransmission timer and connect() returns -1 ETIMEDOUT after about 1 s.
                                                                       -> timeout (in the hook)

So 35 ok, 10 refused, 5 timeout, 0 unreachable, 0 error: the black-holed connects cover both
ways a timeout is counted (the hook's ETIMEDOUT and a pending connect closed by the program).

Two runs of the same client, one after the other:
  shim     LD_PRELOAD, DNSAWARE_REDIRECT=0 (no steering or failover: the refused and black-holed
           connects go where the program sent them), DNSAWARE_COOLDOWN=0, DNSAWARE_STATS_FILE
           with DNSAWARE_STATS_INTERVAL=100ms, DNSAWARE_LOG=info to a file, a state directory of
           its own, DNSAWARE_NAMESERVERS=127.0.0.3 (the program's own lookups go to 127.0.0.1).
  control  no shim; DNSAWARE_STATS_FILE is set all the same and must not appear.

Asserts, for both runs: the client made every connect and saw exactly the returns above (the
shim changes nothing the program sees); the server accepted exactly the connections the client
saw succeed (their local ports); every black-holed connect sent its SYN into the hole (dnsaw1's
receive counter). For the shim run, from the stats file the library writes at exit (parsed with
promtext.parse_file; promtext.check_dnsaware is reported as an assertion of its own):
  - every sample's first label is pid, the client's pid;
  - dnsaware_connects_total{name="metrics.test"}: ok 35, refused 10, timeout 5, unreachable 0,
    error 0 (an absent result reads as 0);
  - dnsaware_connect_duration_seconds{name="metrics.test"}: a histogram; le exactly 0.0005 0.001
    0.0025 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10 +Inf, cumulative; +Inf == _count == 35
    == the ok counter; 0 < _sum < 35 x 0.1 s; le="0.01" == 35 (loopback: every ok connect under
    10 ms);
  - no name but metrics.test in the per-name families (a name="_other" series only if all 0).
The gauges at exit (dnsaware_tracked_sockets, dnsaware_name_sockets) are printed, not asserted:
they are the background thread's latest view, and a closed socket leaves dnsaware_name_sockets
only when the thread reaps it, 2 s after the close, so a client that exits right after its last
close can leave 1 or 2 in the file written at exit.
Prints a PASS/FAIL line per assertion (and NOTE lines). Exit status 0 (all pass), 1 (an assertion
failed), 2 (the harness could not run it). About 7 s.

Usage: connect_metrics.py [--lib PATH] [--client PATH] [--workdir DIR] [--keep]
Internal subcommand: server.
"""

import argparse
import collections
import json
import os
import shutil
import socket
import subprocess
import sys
import time

from dnsmove_ns import (PYTHON, Failure, HarnessError, clean_env, driver_args, driver_parser, guarded, log, preload,
                        read_jsonl, run_outside, tail)
from dnsmove_scene import DRIVER_SRC, Scene, wait_port
import dnsresponder
import promtext

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NAME = "metrics.test"
PORT = 8080
OK_ADDR = "127.0.0.10"         # the accept-and-close server
REFUSED_ADDR = "127.0.0.11"    # nothing listens on PORT
HOLE_ADDR = "10.77.0.2"        # routed into the veth pair, never answered
HOLE_NET = "10.77.0.1/24"
HOLE_MAC = "02:00:00:00:77:02"
VETH = ("dnsaw0", "dnsaw1")
PROGRAM_DNS = "127.0.0.1"      # /etc/resolv.conf inside the namespace
SHIM_DNS = "127.0.0.3"         # DNSAWARE_NAMESERVERS of the shim run
TTL = 300
# kind -> (how many, address, what the client must see: ret, errno, outcome)
KINDS = collections.OrderedDict([
    ("B", (18, OK_ADDR, 0, None, "ok")),
    ("N", (17, OK_ADDR, -1, "EINPROGRESS", "ok")),
    ("R", (10, REFUSED_ADDR, -1, "ECONNREFUSED", "refused")),
    ("S", (3, HOLE_ADDR, -1, "EINPROGRESS", "timeout")),
    ("U", (2, HOLE_ADDR, -1, "ETIMEDOUT", "timeout")),
])
EXPECTED = {"ok": 35, "refused": 10, "timeout": 5, "unreachable": 0, "error": 0}
BUCKETS = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
           "1", "2.5", "5", "10", "+Inf"]
RUNS = ("control", "shim")
CLIENT_TIMEOUT = 60


def plan():
    """The 50 letters, each kind spread evenly over the run (a fixed order)."""
    slots = []
    for kind, (count, *_rest) in KINDS.items():
        slots += [((k + 0.5) / count, kind) for k in range(count)]
    return "".join(kind for _, kind in sorted(slots))


# --------------------------------------------------------------------------------------------
# the server (a subcommand): accept and close, one JSON line per accepted connection
# --------------------------------------------------------------------------------------------

def run_server(a):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((a.addr, a.port))
    ls.listen(128)
    with open(a.log, "a") as f:
        while True:
            c, peer = ls.accept()
            c.close()
            f.write(json.dumps({"t": time.time(), "peer_port": peer[1]}) + "\n")
            f.flush()


# --------------------------------------------------------------------------------------------
# the scene, inside the namespaces
# --------------------------------------------------------------------------------------------

class ConnectScene(Scene):
    def __init__(self, opts, workdir):
        super().__init__(opts, workdir)
        self.zone = self.path("zone.json")
        self.server_log = self.path("server-accepts.jsonl")
        self.results = {}     # run -> dict

    def sh(self, *argv):
        r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            raise HarnessError("%s failed (status %d): %s"
                               % (" ".join(argv), r.returncode, r.stdout.strip()))

    def setup_namespace(self):
        super().setup_namespace()
        a, b = VETH
        self.sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
        for dev in VETH:     # no IPv6 chatter on the pair: dnsaw1 receives our SYNs only
            with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % dev, "w") as f:
                f.write("1\n")
        self.sh("ip", "link", "set", b, "up")
        self.sh("ip", "link", "set", a, "up")
        self.sh("ip", "addr", "add", HOLE_NET, "dev", a)
        self.sh("ip", "neigh", "replace", HOLE_ADDR, "lladdr", HOLE_MAC, "dev", a,
                "nud", "permanent")

    def hole_packets(self):
        """Packets dnsaw1 received (/proc/net/dev is this namespace's; /sys is the host's)."""
        with open("/proc/net/dev") as f:
            for line in f:
                dev, _, counters = line.partition(":")
                if dev.strip() == VETH[1]:
                    return int(counters.split()[1])
        raise HarnessError("%s is not in /proc/net/dev" % VETH[1])

    def start_responder(self):
        dnsresponder.write_zone(self.zone, {NAME: {"addrs": [OK_ADDR, REFUSED_ADDR, HOLE_ADDR],
                                                   "ttl": TTL}}, default="nxdomain")
        self.responder = self.spawn("dns", [PYTHON, os.path.join(HERE, "dnsresponder.py"),
                                            "--listen", PROGRAM_DNS, "--listen", SHIM_DNS,
                                            "--port", "53", "--zone", self.zone,
                                            "--log", self.path("dns-queries.jsonl")])
        want = sorted([OK_ADDR, REFUSED_ADDR, HOLE_ADDR])
        end = time.monotonic() + 8
        last = None
        while time.monotonic() < end:
            if self.responder.poll() is not None:
                raise HarnessError("the DNS responder exited with status %s:\n%s"
                                   % (self.responder.returncode, tail(self.path("dns.out"))))
            for server in (PROGRAM_DNS, SHIM_DNS):
                try:
                    rcode, ans, _ = dnsresponder.query(server, NAME, "A", timeout=0.3,
                                                       src=DRIVER_SRC)
                    last = (server, rcode, ans)
                    if rcode != 0 or sorted(x for x, _ in ans) != want:
                        break
                except (OSError, ValueError) as e:
                    last = (server, e)
                    break
            else:
                return
            time.sleep(0.02)
        raise HarnessError("DNS did not answer %s -> %s within 8 s (last: %r)"
                           % (NAME, want, last))

    def start_server(self):
        self.spawn("server", [PYTHON, os.path.abspath(__file__), "server", "--addr", OK_ADDR,
                              "--port", str(PORT), "--log", self.server_log])
        wait_port(OK_ADDR, PORT, "server")

    def probe(self):
        """Each address does what the scenario needs, before any client runs."""
        with socket.socket() as s:
            s.settimeout(2)
            try:
                s.connect((REFUSED_ADDR, PORT))
                raise HarnessError("%s:%d accepted a connection" % (REFUSED_ADDR, PORT))
            except ConnectionRefusedError:
                pass
        before = self.hole_packets()
        with socket.socket() as s:
            s.settimeout(0.3)
            t = time.monotonic()
            try:
                s.connect((HOLE_ADDR, PORT))
                raise HarnessError("%s:%d accepted a connection" % (HOLE_ADDR, PORT))
            except socket.timeout:
                pass
            except OSError as e:
                raise HarnessError("a connect to the black hole %s:%d failed after %.2fs "
                                   "instead of timing out: %s"
                                   % (HOLE_ADDR, PORT, time.monotonic() - t, e))
        time.sleep(0.05)
        if self.hole_packets() <= before:
            raise HarnessError("the probe's SYN to %s never reached %s" % (HOLE_ADDR, VETH[1]))
        log("probe: %s:%d accepts, %s:%d refuses, %s:%d swallows SYNs (%d packet(s) on %s)"
            % (OK_ADDR, PORT, REFUSED_ADDR, PORT, HOLE_ADDR, PORT,
               self.hole_packets() - before, VETH[1]))

    def server_ports(self):
        return [r["peer_port"] for r in read_jsonl(self.server_log)]

    def run_client(self, run):
        shim = run == "shim"
        stats = self.path(run + ".prom")
        env = clean_env()
        env.update(DNSAWARE_STATS_FILE=stats, DNSAWARE_STATS_INTERVAL="100ms")
        if shim:
            os.makedirs(self.path("shim.state"), mode=0o700, exist_ok=True)
            env.update(LD_PRELOAD=preload(self.opts.lib), DNSAWARE_REDIRECT="0",
                       DNSAWARE_COOLDOWN="0", DNSAWARE_LOG="info",
                       DNSAWARE_LOG_FILE=self.path("shim.log"),
                       DNSAWARE_STATE_DIR=self.path("shim.state"),
                       DNSAWARE_NAMESERVERS=SHIM_DNS)
        out = self.path(run + ".jsonl")
        n_accepted = len(self.server_ports())
        n_hole = self.hole_packets()
        t0 = time.monotonic()
        p = self.spawn(run, [self.opts.client, "--name", NAME, "--port", str(PORT),
                             "--plan", plan(), "--out", out, "--ok", OK_ADDR,
                             "--refused", REFUSED_ADDR, "--blackhole", HOLE_ADDR], env=env)
        try:
            p.wait(CLIENT_TIMEOUT)
        except subprocess.TimeoutExpired:
            raise HarnessError("the %s client did not finish within %d s" % (run, CLIENT_TIMEOUT))
        took = time.monotonic() - t0
        if p.returncode != 0:
            raise HarnessError("the %s client exited with status %d:\n%s"
                               % (run, p.returncode, tail(self.path(run + ".out"))))
        recs = read_jsonl(out)
        ok_ports = sorted(r["lport"] for r in recs
                          if r.get("type") == "connect" and r["outcome"] == "ok")
        end = time.monotonic() + 3      # the server logs each accept after the client moved on
        while len(self.server_ports()) - n_accepted < len(ok_ports) and time.monotonic() < end:
            time.sleep(0.02)
        time.sleep(0.1)
        self.results[run] = {"recs": recs, "took": took, "stats": stats,
                             "accepted": sorted(self.server_ports()[n_accepted:]),
                             "ok_ports": ok_ports, "hole_packets": self.hole_packets() - n_hole}
        log("%s run: client done in %.1fs" % (run, took))


# --------------------------------------------------------------------------------------------
# the judge
# --------------------------------------------------------------------------------------------

class Verdicts:
    def __init__(self):
        self.items = []       # (passed, run, text)

    def check(self, passed, run, text):
        self.items.append((bool(passed), run, text))
        return bool(passed)

    def note(self, run, text):
        self.items.append((None, run, text))


def judge_client(v, run, res):
    recs = [r for r in res["recs"] if r.get("type") == "connect"]
    done = [r for r in res["recs"] if r.get("type") == "done"]
    v.check(len(recs) == len(plan()) and done, run,
            "the client made %d of %d connects and finished" % (len(recs), len(plan())))
    counts = collections.Counter(r["outcome"] for r in recs)
    seen = {k: counts.get(k, 0) for k in EXPECTED}
    v.check(seen == EXPECTED, run, "the client saw %s (expected %s)" % (seen, EXPECTED))
    wrong = []
    for r in recs:
        _, addr, ret, err, outcome = KINDS[r["kind"]]
        bad = (r["addr"] != addr or r["ret"] != ret or r["errno"] != err
               or r["outcome"] != outcome
               or (r["kind"] == "N" and (r["poll"] != 1 or r["so_error"] is not None))
               or (r["kind"] == "S" and not 150 <= r["connect_ms"] <= 1000)
               or (r["kind"] == "U" and not 500 <= r["connect_ms"] <= 5000))
        if bad:
            wrong.append(r)
    v.check(not wrong, run, "every connect returned what Linux returns for its kind%s"
            % "".join("\n      %s" % json.dumps(r) for r in wrong[:5]))
    v.check(res["accepted"] == res["ok_ports"], run,
            "the server accepted exactly the %d connections the client saw succeed "
            "(it accepted %d)" % (len(res["ok_ports"]), len(res["accepted"])))
    holed = sum(KINDS[k][0] for k in "SU")
    v.check(res["hole_packets"] >= holed, run,
            "the black-holed connects sent their SYNs into the hole (%d packets on %s, "
            "at least %d expected)" % (res["hole_packets"], VETH[1], holed))
    by_kind = collections.defaultdict(list)
    for r in recs:
        by_kind[r["kind"]].append(r)
    for kind, rs in by_kind.items():
        ms = [r["connect_ms"] for r in rs]
        est = [r["established_ms"] for r in rs if r["established_ms"] is not None]
        log("  %s %-7s %2d x %-12s ret %s errno %-12s connect() %.3f..%.3f ms%s"
            % (run, kind, len(rs), rs[0]["addr"], rs[0]["ret"], rs[0]["errno"], min(ms), max(ms),
               "; established after %.3f..%.3f ms" % (min(est), max(est)) if est else ""))
    return recs, done[0] if done else None


def judge_control(v, res):
    v.check(not os.path.exists(res["stats"]), "control",
            "no stats file without the shim (%s)" % os.path.basename(res["stats"]))


def per_name(parsed, family):
    """The samples of a per-name family (by sample name), without the pid label."""
    out = []
    for s in parsed.get(family, {}).get("samples", []):
        out.append(dict(s, labels={k: x for k, x in s["labels"].items() if k != "pid"}))
    return out


def judge_stats(v, res, recs, done):
    path = res["stats"]
    if not v.check(os.path.exists(path), "shim", "the shim wrote %s at exit"
                   % os.path.basename(path)):
        return
    try:
        parsed = promtext.parse_file(path)
    except ValueError as e:
        v.check(False, "shim", "the stats file parses (promtext.parse_file): %s" % e)
        return
    v.check(True, "shim", "the stats file parses (promtext.parse_file)")
    try:
        promtext.check_dnsaware(parsed)
        v.check(True, "shim", "promtext.check_dnsaware accepts the file (the metrics contract)")
    except ValueError as e:
        v.check(False, "shim", "promtext.check_dnsaware accepts the file (the metrics "
                "contract): %s" % e)

    pid = str(done["pid"]) if done else None
    bad_pid = [s for f in parsed.values() for s in f["samples"]
               if list(s["labels"])[:1] != ["pid"] or s["labels"]["pid"] != pid]
    v.check(not bad_pid, "shim", "every sample's first label is pid=\"%s\", the client's%s"
            % (pid, "".join("\n      line %d: %s %s" % (s["line"], s["name"], s["labels"])
                            for s in bad_pid[:3])))

    # dnsaware_connects_total
    fam = parsed.get("dnsaware_connects_total")
    v.check(fam is not None and fam["type"] == "counter", "shim",
            "dnsaware_connects_total is a counter family (%s)"
            % ("absent" if fam is None else "type %s" % fam["type"]))
    got = {}
    for s in per_name(parsed, "dnsaware_connects_total"):
        if s["labels"].get("name") == NAME:
            got[s["labels"].get("result")] = got.get(s["labels"].get("result"), 0) + s["value"]
    counted = {k: got.get(k, 0) for k in EXPECTED}
    extra = sorted(set(got) - set(EXPECTED), key=str)
    v.check(counted == EXPECTED and not extra, "shim",
            "dnsaware_connects_total{name=\"%s\"}: %s (expected %s)%s%s"
            % (NAME, counted, EXPECTED,
               "; absent: %s" % ", ".join(k for k in EXPECTED if k not in got)
               if got and any(k not in got for k in EXPECTED) else "",
               "; unknown results %s" % extra if extra else ""))

    # dnsaware_connect_duration_seconds
    base = "dnsaware_connect_duration_seconds"
    fam = parsed.get(base)
    v.check(fam is not None and fam["type"] == "histogram", "shim",
            "%s is a histogram family (%s)" % (base, "absent" if fam is None
                                               else "type %s" % fam["type"]))
    mine = [s for s in per_name(parsed, base) if s["labels"].get("name") == NAME]
    buckets = [(s["labels"].get("le"), s["value"]) for s in mine if s["name"] == base + "_bucket"]
    count = [s["value"] for s in mine if s["name"] == base + "_count"]
    total = [s["value"] for s in mine if s["name"] == base + "_sum"]

    def lev(le):
        return float("inf") if le == "+Inf" else float(le)
    try:
        les = sorted(lev(le) for le, _ in buckets)
        le_ok = les == [lev(le) for le in BUCKETS] and len(buckets) == len(BUCKETS)
    except (TypeError, ValueError):
        le_ok = False
    v.check(le_ok, "shim", "%s{name=\"%s\"} has the buckets le=%s (has %s)"
            % (base, NAME, " ".join(BUCKETS), " ".join(le for le, _ in buckets) or "none"))
    ordered = sorted(((lev(le), val) for le, val in buckets), key=lambda x: x[0]) if le_ok else []
    cumulative = all(a[1] <= b[1] for a, b in zip(ordered, ordered[1:]))
    file_order = [lev(le) for le, _ in buckets] == [x for x, _ in ordered] if le_ok else False
    v.check(le_ok and cumulative and file_order, "shim",
            "its buckets are cumulative and written in increasing le: %s"
            % " ".join("%s:%s" % (le, val) for le, val in buckets))
    inf = dict(buckets).get("+Inf")
    c = count[0] if len(count) == 1 else None
    v.check(inf == 35 and c == 35 and counted["ok"] == c, "shim",
            "+Inf bucket %s == _count %s == 35 == the ok counter (%s)" % (inf, c, counted["ok"]))
    sm = total[0] if len(total) == 1 else None
    client_sum = sum(r["established_ms"] for r in recs if r["outcome"] == "ok") / 1e3
    v.check(sm is not None and 0 < sm < 35 * 0.1, "shim",
            "0 < _sum %s < %.1f s (the client measured %.4f s from its connect calls to "
            "established)" % (sm, 35 * 0.1, client_sum))
    v.check(dict(buckets).get("0.01") == 35, "shim",
            "every ok connect under 10 ms: le=\"0.01\" bucket %s == 35 (the client's slowest "
            "ok connect took %.3f ms)"
            % (dict(buckets).get("0.01"),
               max([r["established_ms"] for r in recs if r["outcome"] == "ok"] or [0])))

    # names: metrics.test only
    others = collections.defaultdict(list)
    for family in ("dnsaware_connects_total", base, "dnsaware_name_sockets"):
        for s in per_name(parsed, family):
            n = s["labels"].get("name")
            if n != NAME:
                others[n].append(s)
    bad = {n: ss for n, ss in others.items()
           if n != "_other" or any(s["value"] != 0 for s in ss)}
    v.check(not bad, "shim", "no name but %s in the per-name families%s%s"
            % (NAME, " (an all-zero _other)" if "_other" in others and "_other" not in bad
               else "", "".join("\n      %s: %d samples, e.g. line %d" % (n, len(ss), ss[0]["line"])
                                for n, ss in sorted(bad.items(), key=lambda x: str(x[0])))))

    # The gauges at exit: reported, not asserted. Both are the background thread's latest view:
    # dnsaware_tracked_sockets is refreshed when it wakes, and a closed socket leaves
    # dnsaware_name_sockets only when the thread reaps it, 2 s after the close
    # (RELEASE_GRACE_MS); the write at exit does neither, so a client that exits right after its
    # last close may leave 1 or 2 behind.
    tracked = [s["value"] for s in per_name(parsed, "dnsaware_tracked_sockets")]
    sockets = [(s["labels"].get("address"), s["value"])
               for s in per_name(parsed, "dnsaware_name_sockets")
               if s["labels"].get("name") == NAME]
    v.note("shim", "gauges at exit (every socket was closed): dnsaware_tracked_sockets %s, "
           "dnsaware_name_sockets{name=\"%s\"} %s"
           % (tracked, NAME, " ".join("%s:%s" % x for x in sockets) or "none written"))


def judge(scene):
    v = Verdicts()
    seen = {}
    for run in RUNS:
        seen[run] = judge_client(v, run, scene.results[run])
    judge_control(v, scene.results["control"])
    judge_stats(v, scene.results["shim"], *seen["shim"])
    story = open(scene.path("shim.log"), errors="replace").read().splitlines() \
        if os.path.exists(scene.path("shim.log")) else []
    warned = [l for l in story if " warn " in l or " error " in l]
    log("shim log: %d lines, %d warn/error%s" % (len(story), len(warned),
                                                 "".join("\n  " + l for l in warned[:3])))
    log("")
    for passed, run, text in v.items:
        log("%s %s: %s" % ({True: "PASS", False: "FAIL", None: "NOTE"}[passed], run, text))
    failed = [i for i in v.items if i[0] is False]
    log("")
    if failed:
        asserted = sum(1 for i in v.items if i[0] is not None)
        by_run = collections.Counter(i[1] for i in failed)
        raise Failure("%d of %d assertions failed (shim run: %d, control: %d)"
                      % (len(failed), asserted, by_run["shim"], by_run["control"]))


def inside(opts):
    scene = ConnectScene(opts, opts.workdir)

    def body():
        t0 = time.time()
        scene.setup_namespace()
        scene.start_responder()
        scene.start_server()
        scene.probe()
        log("plan: %s" % plan())
        for run in RUNS:
            scene.run_client(run)
        judge(scene)
        log("PASS (connect-metrics): every assertion held (%.0fs)" % (time.time() - t0))
        return 0
    return guarded("connect-metrics", scene, body)


def prerequisites(opts):
    missing = []
    if os.geteuid() != 0:
        missing.append("must run as root (namespaces, bind mounts over /etc, port 53, a veth)")
    if not shutil.which("ip"):
        missing.append("ip not found (install iproute2)")
    if not os.path.isfile(opts.lib):
        missing.append("library %s does not exist (build it first)" % opts.lib)
    if not (opts.client and os.access(opts.client, os.X_OK)):
        missing.append("client %s is not built (ninja -C build)" % opts.client)
    return missing


def outside(opts):
    return run_outside("connect-metrics", __file__, "dnsaware-connect-metrics-",
                       prerequisites(opts), opts.workdir, opts.keep,
                       ["--lib", opts.lib, "--client", opts.client])


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "server":
        ap = argparse.ArgumentParser(prog="connect_metrics.py server")
        ap.add_argument("sub")
        ap.add_argument("--addr", required=True)
        ap.add_argument("--port", type=int, default=PORT)
        ap.add_argument("--log", required=True)
        return run_server(ap.parse_args())
    ap = driver_parser(__doc__)
    ap.add_argument("--client", default=os.environ.get("DNSAWARE_TEST_CONNECT_MIX")
                    or os.path.join(REPO, "build", "tests", "e2e", "clients", "connect_mix"))
    opts = driver_args(ap, "client")
    return inside(opts) if opts.inside else outside(opts)


if __name__ == "__main__":
    sys.exit(main())

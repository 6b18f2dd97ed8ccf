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

The harness is split by concern (this file re-exports their names, which tests/e2e/matrix*.py,
adapter_trial.py, tests/bench/bench_proxy.py, tests/badinput/hostile_dns.py and tools/demo.py
import from here): dnsmove_ns.py (namespaces, processes, logging, the exit status),
dnsmove_http.py (the backend and the client behind the subcommands), dnsmove_scene.py (Scene:
dnsmasq, the backends and the client in the namespace, and a tiny DNS client); this file has the
scenarios, their analysis and the command line.
"""

import argparse
import os
import shutil
import subprocess
import sys
import time

from dnsmove_http import SLOW_ANSWER, run_backend, run_client
from dnsmove_ns import (EXIT_FAIL, EXIT_HARNESS, PYTHON, Failure, HarnessError, _pdeathsig,
                        clean_env, driver_args, driver_parser, guarded, keep_or_remove, log,
                        prepare_workdir, preload, run_in_namespaces, tail)
from dnsmove_scene import (DNS, DRIVER_SRC, NAME, NEW, OLD, PORT, RATE, TTL, TTL_FLOOR, Scene,
                           dns_query_a, dns_query_counts)

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))

# What the other drivers import from here (re-exported from the modules above).
__all__ = ["DNS", "DRIVER_SRC", "EXIT_FAIL", "EXIT_HARNESS", "Failure", "HarnessError", "NAME",
           "NEW", "OLD", "PORT", "PYTHON", "RATE", "REPO", "SLOW_ANSWER", "Scene", "TTL",
           "TTL_FLOOR", "_pdeathsig", "clean_env", "dns_query_a", "dns_query_counts", "guarded",
           "keep_or_remove", "log", "preload", "prepare_workdir", "prerequisites", "run_backend",
           "run_client", "run_in_namespaces", "tail"]


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
        ap.add_argument("--delay", type=float, default=0.0,
                        help="answer every request this many seconds late (slow answers)")
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

    ap = driver_parser(__doc__, dnsmasq=True, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--warmup", type=float, default=3.0,
                    help="seconds of traffic before the change / outage")
    ap.add_argument("--after", type=float, default=6.0,
                    help="seconds of traffic after the deadline / the restart")
    ap.add_argument("--outage", type=float, default=5.0, help="seconds without DNS")
    ap.add_argument("--log-level", default="info", help="DNSAWARE_LOG for the client")
    opts = driver_args(ap)
    if opts.inside:
        return inside(opts)
    return outside(opts)


if __name__ == "__main__":
    sys.exit(main())

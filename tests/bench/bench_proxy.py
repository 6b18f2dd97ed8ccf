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

The harness is split by concern (this file re-exports every name they define):
bench_proxy_conf.py (the scene's names and addresses, the parameters, the nginx and HAProxy
configurations), bench_proxy_scene.py (BenchScene: DNS, backends, proxies, the sidecar; /proc
probes), bench_proxy_wrk.py (running and parsing wrk), bench_proxy_throughput.py,
bench_proxy_instructions.py and bench_proxy_reaction.py (one measurement and its checks each),
bench_proxy_report.py (the markdown tables); this file has the command line and the driver.
"""

import argparse
import json
import os
import platform
import resource
import shutil
import socket
import subprocess
import sys
import time

# bench_proxy_conf first: it puts tests/e2e on sys.path for the imports below.
from bench_proxy_conf import (BACKEND_BODY, BUDGET_PCT, E2E, EXIT_FAIL, EXIT_HARNESS, FULL,
                              HAPROXY, HAPROXY_ADDR, HAPROXY_CFG, HAPROXY_DNS, HERE, MECHANISMS,
                              NAME, NEW, NGINX, NGINX_MAIN, OLD, PORT, PROGRAM_DNS, PROXY,
                              PROXY_BODY, REPO, SHIM_DNS, SMOKE, TTL_FLOOR, VARIANTS, WRK,
                              _temps)
from bench_proxy_instructions import (bench_instructions, callgrind_totals, check_instructions,
                                      drive_requests, instructions_run, user_system_split)
from bench_proxy_reaction import (LogTail, bench_reaction, check_reaction, count_error_lines,
                                  first_answer, reaction_trial)
from bench_proxy_report import fmt, reaction_cell, report
from bench_proxy_scene import BenchScene, _connects, conns_to, cpu_ticks, has_shim, http_get
from bench_proxy_throughput import _qps, bench_throughput, check_throughput
from bench_proxy_wrk import _UNITS, _dur, parse_wrk, run_wrk, wrk_argv
import dnsmove  # noqa: E402  (namespace set-up, process handling)
from dnsmove import PYTHON, HarnessError, Failure, log  # noqa: E402

# What other scripts may import from here (re-exported from the modules above).
__all__ = ["BACKEND_BODY", "BUDGET_PCT", "BenchScene", "E2E", "EXIT_FAIL", "EXIT_HARNESS",
           "FULL", "Failure", "HAPROXY", "HAPROXY_ADDR", "HAPROXY_CFG", "HAPROXY_DNS",
           "HERE", "HarnessError", "LogTail", "MECHANISMS", "NAME", "NEW", "NGINX", "NGINX_MAIN",
           "OLD", "PORT", "PROGRAM_DNS", "PROXY", "PROXY_BODY", "PYTHON", "REPO", "SHIM_DNS",
           "SMOKE", "TTL_FLOOR", "VARIANTS", "WRK", "_UNITS", "_connects", "_dur", "_qps",
           "_temps", "bench_instructions", "bench_reaction", "bench_throughput",
           "callgrind_totals", "check_instructions", "check_reaction", "check_throughput",
           "conns_to", "count_error_lines", "cpu_ticks", "drive_requests", "first_answer", "fmt",
           "has_shim", "http_get", "inside", "instructions_run", "log", "main", "outside",
           "parse_wrk", "prerequisites", "reaction_cell", "reaction_trial", "report", "run_wrk",
           "user_system_split", "versions", "wrk_argv"]


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

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
    PostgreSQL, the gRPC backend (grpc_backend.py, port 50051), and nginx reverse proxies on
    127.0.0.20 (under the shim) / 127.0.0.21 (control) whose upstream is a name. Each is started
    only when a client of the scenario talks to it.
  - Clients: tests/e2e/clients/ (contract in its README.md). Only the program under test gets
    LD_PRELOAD (for nginx that is nginx; its front client is plain).
  - move-tls: the HTTP backends serve HTTPS on 8443 with a certificate from a test CA made at
    run time (matrix_tls.py); move-ipv6: the same roles on fd00::1 (program DNS), fd00::3
    (shim DNS), fd00::10-13 and fd00::20-21, added to lo, with AAAA-only names.
  - move-own-dns: the move for clients the shim sees through the DNS they exchange themselves
    (gRPC's and node's c-ares, a C program linking c-ares) and for PHP (libcurl loaded with
    RTLD_DEEPBIND); the judge also asks the stats file how the name was learned.

The parts: matrix_layout.py (addresses, ports, timings), matrix_clients.py (the clients),
matrix_scenarios.py (the scenarios), matrix_scene.py (the scene and the run), matrix_judge.py
(what each client run did, and the verdict; matrix_baddays.py for the resolver's bad days:
clients resolving per request while DNS fails, stale answers, the cache), matrix_tls.py (the
TLS scenarios' test CA), matrix_report.py (docs/compatibility.md; matrix_report_baddays.py its
bad-days section); this file is the command line and the driver.

Each scenario writes <results>/<scenario>.json; `matrix.py report` turns a results directory
into docs/compatibility.md. Exit status: 0 pass, 1 an assertion failed, 2 harness error or a
prerequisite missing (both fail the test; nothing is skipped), 77 every client of the scenario
left out under a sanitizer (SANITIZER_UNSUPPORTED).

Several scenarios named in one `run` run at once, each in its own namespaces (as the resolver's
bad days scenarios do in the test suite: their 20 s faults overlap).

Usage:
  matrix.py run SCENARIO [SCENARIO...] [--clients a,b] [--results DIR] [--workdir DIR]
                [--shim-env VAR=VALUE]
  matrix.py report --results DIR [--out FILE]
  matrix.py list
"""

import argparse
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import dnsmove  # (namespace, process handling)
from dnsmove import PYTHON, log
from matrix_clients import ALL_CLIENTS, sanitizer_skips
from matrix_judge import analyse, dns_counts, judge
from matrix_layout import REPO
from matrix_scenarios import SCENARIOS
from matrix_scene import MatrixScene, run_scenario

EXIT_FAIL, EXIT_HARNESS = 1, 99   # 99: meson counts it as an error, even under should_fail
EXIT_SKIP = 77                    # meson: skipped


# --------------------------------------------------------------------------------------------
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
        for a in sc.net.local():
            with socket.socket(socket.AF_INET6 if ":" in a else socket.AF_INET) as s:
                s.bind((a, 0))
        facts, events = run_scenario(scene, opts)
        dns = dns_counts(scene)
        results = []
        for c in clients:
            for shim in scene.shim_modes(c):
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
        # (a per-request client's timeline, one entry per request, is in the results file)
        detail = {k: v for k, v in r.items()
                  if k not in ("client", "label", "shim", "verdict", "reason", "timeline")}
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


def prerequisites(opts, sc, clients):
    missing = []
    if os.geteuid() != 0:
        missing.append("must run as root (namespaces, bind mounts over /etc, port 53)")
    for prog in ("unshare", "ip", "mount"):
        if not shutil.which(prog):
            missing.append("%s not found (util-linux / iproute2)" % prog)
    if sc.net.family == 6 and not os.path.isdir("/proc/sys/net/ipv6"):
        missing.append("IPv6 is disabled in this kernel (%s is IPv6 only)" % sc.name)
    if sc.tls:
        for prog in ["openssl"] + (["keytool"] if any(ALL_CLIENTS[c].tls == "jvm"
                                                        for c in clients) else []):
            if not shutil.which(prog):
                missing.append("%s not found (needed to make the test CA of %s)" % (prog, sc.name))
        missing += ["client %s has no --tls in its adapter (%s is HTTPS)" % (c, sc.name)
                    for c in clients if not ALL_CLIENTS[c].tls]
    for c in clients:
        missing += ["%s (needed by the %s client)" % (why, c)
                    for why in client_missing(ALL_CLIENTS[c])]
    if not opts.lib or not os.path.isfile(opts.lib):
        missing.append("library %s does not exist (set DNSAWARE_LIB or --lib)" % opts.lib)
    return missing


@functools.lru_cache(maxsize=None)
def importable(module):
    return subprocess.run([PYTHON, "-c", "import " + module], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def client_missing(client):
    """What of client.needs is missing: programs on PATH (or in /usr/sbin), absolute paths
    (built adapters), python3:MODULE (importable by the adapters' python)."""
    out = []
    for need in client.needs:
        if need.startswith("python3:"):
            module = need.split(":", 1)[1]
            if not importable(module):
                out.append("python module %s not importable by %s; tools/setup installs it"
                           % (module, PYTHON))
        elif os.path.isabs(need):
            if not os.access(need, os.X_OK):
                out.append("%s does not exist (an adapter meson builds; "
                           "matrix_clients.py says where it is looked for)" % need)
        elif not shutil.which(need) and not os.path.exists("/usr/sbin/" + need):
            out.append("%s not found; tools/setup installs it" % need)
    return out


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
    missing = prerequisites(opts, sc, clients)
    if missing:
        for m in missing:
            log("FAIL (%s): prerequisite missing: %s" % (sc.name, m))
        return EXIT_HARNESS
    wd = dnsmove.prepare_workdir(opts.workdir, "dnsaware-matrix-%s-" % sc.name)
    if wd is None:
        return EXIT_HARNESS
    args = ["run", sc.name, "--inside", "--workdir", wd] + forwarded_options(opts)
    rc = dnsmove.run_in_namespaces(__file__, args)
    if rc not in (0, EXIT_FAIL, EXIT_HARNESS):
        log("FAIL (%s): the namespaced driver exited with %d" % (sc.name, rc))
        rc = EXIT_HARNESS
    dnsmove.keep_or_remove(wd, rc == 0, opts.workdir or opts.keep)
    return rc


def forwarded_options(opts):
    """The options a scenario's own `matrix.py run` gets from this one."""
    args = ["--lib", opts.lib, "--warmup", str(opts.warmup), "--log-level", opts.log_level]
    for kv in opts.shim_env or []:
        args += ["--shim-env", kv]
    for flag in ("clients", "results", "cache"):
        v = getattr(opts, flag)
        if v:
            args += ["--" + flag, os.path.abspath(v) if flag != "clients" else v]
    return args


def run_together(opts):
    """Several scenarios at once, each a `matrix.py run` of its own (its own namespaces, scene
    and results file; its workdir <workdir>/<scenario>). Their outputs are printed whole, one
    after the other, when all are done. The status: the first that is neither pass, fail nor
    skipped (a harness error), else fail if any failed, skipped if all were, else pass."""
    wd = None
    if opts.workdir:
        wd = dnsmove.prepare_workdir(opts.workdir, "dnsaware-matrix-")
        if wd is None:
            return EXIT_HARNESS
    runs = []
    for name in opts.scenario:
        args = [PYTHON, os.path.abspath(__file__), "run", name] + forwarded_options(opts)
        if wd:
            args += ["--workdir", os.path.join(wd, name)]
        if opts.keep:
            args.append("--keep")
        out = tempfile.TemporaryFile()
        runs.append((name, subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL), out))
    log("running %d scenarios at once: %s" % (len(runs), ", ".join(opts.scenario)))
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(EXIT_HARNESS))
    statuses = []
    try:
        for name, p, out in runs:
            rc = p.wait()
            out.seek(0)
            log("==== %s (exit status %d) ====" % (name, rc))
            sys.stdout.write(out.read().decode("utf-8", "replace"))
            sys.stdout.flush()
            statuses.append(rc)
    finally:
        for name, p, out in runs:
            if p.poll() is None:        # interrupted: each run cleans its own scene up
                p.terminate()
                p.wait()
    odd = [rc for rc in statuses if rc not in (0, EXIT_FAIL, EXIT_SKIP)]
    if odd:
        return odd[0]
    if EXIT_FAIL in statuses:
        return EXIT_FAIL
    return EXIT_SKIP if all(rc == EXIT_SKIP for rc in statuses) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run one scenario, or several at once")
    run.add_argument("scenario", nargs="+", choices=list(SCENARIOS),
                     help="with several, each runs in its own namespaces, all at once")
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
    if len(opts.scenario) > 1:
        if opts.inside:
            ap.error("--inside takes one scenario")
        return run_together(opts)
    opts.scenario = opts.scenario[0]
    if opts.inside:
        return inside(opts)
    return outside(opts)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Local benchmarks of libdnsaware (issue 7): what the shim costs where programs pay for it.

    bench_local.py [all|hotpath|startup|scale|resolver|gai|busy ...] [--smoke] [--json FILE]
                   [--lib PATH] [--gai-latency PATH] [--strict] [--keep]

Measurements (each prints a markdown section for docs/performance.md; --json stores everything):

  hotpath   User-space instructions the shim adds to one call, counted by callgrind in the main
            thread (--separate-threads=yes, so the shim's background thread is not counted), as
            the slope between N and 2N calls (start-up cancels out): write(2) on an untracked fd
            (/dev/null), send(2) and write(2) on a tracked healthy loopback TCP socket (the program
            resolves "localhost" with getaddrinfo and connects to the address it got), and
            write(2) to /dev/null in a process that made a tracked connection. Each against the
            same program without the preload, and (tracked cases) against that program running one
            idle thread of its own: glibc's cancellable syscall wrappers take a longer path once a
            process has a second thread, which the shim's thread brings. Budgets: +20 untracked,
            +60 tracked healthy. A per-function breakdown (callgrind_annotate) shows where the
            instructions go. Plus a wall-clock ratio: 1e6 writes to /dev/null with and without
            the shim, interleaved runs, median of 5 each.
  startup   /bin/true and `sh -c true` with and without LD_PRELOAD: median wall time of ~200
            interleaved fork+exec runs each (posix_spawn + waitpid, perf_counter_ns), the
            difference in ms; callgrind's instruction count of /bin/true both ways; the number of
            threads (/proc/self/task) of a process that resolves nothing, that resolves
            "localhost" but never connects, and (control) one that connects. Target: no thread,
            under 1 ms added.
  scale     In a private network and mount namespace (/etc/hosts bind-mounted): one process
            opens N idle loopback connections to healthy.test plus D to drain.test (both names
            from /etc/hosts), N up to 50,000 or what RLIMIT_NOFILE allows. VmRSS before and after
            (minus the same program without the shim) -> bytes per tracked socket. The shim
            thread's CPU (its per-thread CPU clock; utime+stime ticks as a cross-check) and
            wake-ups (voluntary context switches) over 10 s with DNSAWARE_TTL_FLOOR=1s while
            nothing changes, then over 10 s after drain.test moves (the hosts file is rewritten):
            its D connections drain, the N healthy ones must not. CPU ms per second of wall time
            and per wake-up, for each N.
  resolver  In a private network and mount namespace: dnsresponder.py serves bench.test (TTL 1)
            on 127.0.0.53; one process holds 1, 100 and 10,000 connections to it
            (DNSAWARE_NAMESERVERS=127.0.0.53, DNSAWARE_TTL_FLOOR=1s); the responder's query log
            gives the shim's queries per name per TTL over 10 s. Target: about 1, whatever the
            number of sockets.
  gai       getaddrinfo latency (issue 15), p50, p99 and mean of one name (AF_UNSPEC,
            SOCK_STREAM), in a private network and mount namespace with dnsmasq answering on
            127.0.0.53 (TTL 300 s): (1) glibc asking dnsmasq, (2) glibc through Debian's nscd,
            run in a mount namespace of its own with its socket directory over /var/run/nscd,
            never host-wide, (3) under the shim with DNSAWARE_CACHE=1: a cache hit once the
            cache answers (the shim's stats file says how many of the timed lookups were hits).
            tests/bench/gai_latency (built by meson; --gai-latency, default beside --lib's build
            directory) does 4 rounds of 5,000 timed lookups per case after a warm-up, for a
            dual-stack name and an IPv4-only one. Goal: nscd's p50 over the shim's >= 20.
  busy      Busy connections draining (issue 16), in a private network and mount namespace:
            tests/bench/busyconns (under the shim) holds 8, 32 and 128 connections to busy.test,
            tests/bench/answerer serves them on the old and the new address; busy (a 64-byte
            request 50 times a second per connection, a 200-byte answer) and stream (the server
            writes 1 KB every 10 ms, the client only reads). The shim thread's CPU and wake-ups
            over 3 s steady, then 0-2 s, 2-12 s and 12-16 s after busy.test moves (/etc/hosts
            rewritten, DNSAWARE_TTL_FLOOR=1s); the client's reconnects (fresh getaddrinfo),
            send failures (EPIPE: the send path) and EOF reads (the idle path); the shim's
            shutdowns by path from its stats file.

--smoke: tiny sizes and short windows (seconds in all), asserting only that every measurement
runs and produces sane numbers. Without --strict the exit status is 0 when every measurement ran
and passed its sanity checks, whatever the budgets say (they are reported PASS/FAIL); with
--strict a missed budget or target also fails. Exit 1: a measurement failed; 2: a prerequisite
is missing. Needs root (namespaces, bind mounts, port 53), gcc, valgrind and callgrind_annotate,
and for gai dnsmasq and nscd.
The library defaults to $DNSAWARE_LIB, then <repo>/build/src/libdnsaware.so.

Internal subcommands (run under unshare by the driver): _scale-inside, _resolver-inside,
_gai-inside, _busy-inside.

The harness is split by concern (this file re-exports every name they define, which
tests/bench/bench_fork.py imports):
bench_common.py (paths, exit statuses, the child environment, formatting, callgrind runs,
timing, the run's metadata), bench_local_hotpath.py, bench_local_startup.py,
bench_local_scale.py, bench_local_resolver.py, bench_local_gai.py and bench_local_busy.py (one
measurement and its report each), bench_local_ns.py (the namespaces and helper processes of
scale, resolver, gai and busy);
this file has the command line and the driver.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from bench_common import (ANNOTATE_LINE, E2E, EXIT_FAIL, EXIT_HARNESS, HELPERS, HERE, PYTHON,
                          REPO, BenchError, callgrind_run, clean_env, compile_helpers, fmt, log,
                          md_table, meta, parse_annotate, run, signed, spawn_measure,
                          spawn_time_ms, verdict)
from bench_local_busy import busy_inside, busy_report
from bench_local_gai import gai_inside, gai_prerequisites, gai_program, gai_report
from bench_local_hotpath import (BUDGET_TRACKED, BUDGET_UNTRACKED, UNTRACKED_MODES, hotpath,
                                 hotpath_report)
from bench_local_ns import (LineProc, inside_main, ns_setup, ports_for, read_stats,
                            rewrite_in_place, run_in_namespaces, start_sink)
from bench_local_resolver import resolver_inside, resolver_report
from bench_local_scale import (DRAIN, DRAIN_NEW, DRAIN_OLD, HEALTHY, HEALTHY_ADDR, nofile_capacity,
                               scale_hosts, scale_inside, scale_report)
from bench_local_startup import STARTUP_TARGET_MS, startup, startup_report

MEASUREMENTS = ("hotpath", "startup", "scale", "resolver", "gai", "busy")

# What other scripts may import from here (re-exported from the modules above).
__all__ = ["ANNOTATE_LINE", "BUDGET_TRACKED", "BUDGET_UNTRACKED", "DRAIN", "DRAIN_NEW",
           "DRAIN_OLD", "E2E", "EXIT_FAIL", "EXIT_HARNESS", "HEALTHY", "HEALTHY_ADDR", "HELPERS",
           "HERE", "LineProc", "MEASUREMENTS", "PYTHON", "REPO", "STARTUP_TARGET_MS",
           "UNTRACKED_MODES", "BenchError", "busy_inside", "busy_report", "callgrind_run", "clean_env", "compile_helpers", "fmt",
           "gai_inside", "gai_prerequisites", "gai_program", "gai_report", "hotpath",
           "hotpath_report", "inside_main", "log", "main", "md_table", "meta",
           "nofile_capacity", "ns_setup", "parse_annotate", "ports_for", "prerequisites",
           "read_stats", "resolver_inside", "resolver_report", "rewrite_in_place", "run",
           "run_in_namespaces", "scale_hosts", "scale_inside", "scale_report", "signed",
           "spawn_measure", "spawn_time_ms", "start_sink", "startup", "startup_report", "verdict"]


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------

def prerequisites(opts, wanted):
    missing = []
    ns = [w for w in ("scale", "resolver", "gai", "busy") if w in wanted]
    if os.geteuid() != 0 and ns:
        missing.append("%s must run as root (namespaces, bind mounts, port 53)" % ", ".join(ns))
    progs = ["gcc"]
    if "hotpath" in wanted or "startup" in wanted:
        progs += ["valgrind", "callgrind_annotate"]
    if ns:
        progs += ["unshare", "ip", "mount"]
    if "gai" in wanted:
        missing += gai_prerequisites(opts)
    for p in progs:
        if shutil.which(p) is None:
            missing.append("%s not found" % p)
    if not os.path.isfile(opts.lib):
        missing.append("library %s not found (build it: ninja -C build)" % opts.lib)
    return missing


def main():
    inside = {"_scale-inside": scale_inside, "_resolver-inside": resolver_inside,
              "_gai-inside": gai_inside, "_busy-inside": busy_inside}
    if len(sys.argv) > 1 and sys.argv[1] in inside:
        ap = argparse.ArgumentParser(prog="bench_local.py " + sys.argv[1])
        ap.add_argument("sub")
        ap.add_argument("--workdir", required=True)
        ap.add_argument("--lib", required=True)
        ap.add_argument("--result", required=True)
        ap.add_argument("--smoke", action="store_true")
        ap.add_argument("--gai-latency")
        o = ap.parse_args()
        return inside_main(o, inside[o.sub])

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="*", default=["all"],
                    help="measurements: all (default), %s" % ", ".join(MEASUREMENTS))
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds in all")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--lib", default=os.environ.get("DNSAWARE_LIB")
                    or os.path.join(REPO, "build", "src", "libdnsaware.so"))
    ap.add_argument("--gai-latency", help="the gai_latency program (default: in the build "
                    "directory --lib is in, tests/bench/gai_latency)")
    ap.add_argument("--strict", action="store_true", help="a missed budget or target fails too")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    opts = ap.parse_args()
    opts.lib = os.path.abspath(opts.lib)
    wanted = []
    for w in opts.what:
        if w == "all":
            wanted += [m for m in MEASUREMENTS if m not in wanted]
        elif w in MEASUREMENTS:
            if w not in wanted:
                wanted.append(w)
        else:
            ap.error("unknown measurement %r (choose from all, %s)" % (w, ", ".join(MEASUREMENTS)))
    missing = prerequisites(opts, wanted)
    if missing:
        for m in missing:
            log("bench_local.py: prerequisite missing: %s" % m)
        return EXIT_HARNESS

    wd = tempfile.mkdtemp(prefix="dnsaware-bench-")
    os.chmod(wd, 0o755)
    results = {"meta": meta(opts)}
    failed = []
    budgets_missed = []
    t_all = time.monotonic()
    try:
        compile_helpers(wd)
        fns = {"hotpath": (lambda: hotpath(opts, wd), hotpath_report),
               "startup": (lambda: startup(opts, wd), startup_report),
               "scale": (lambda: run_in_namespaces("scale", opts, wd), scale_report),
               "resolver": (lambda: run_in_namespaces("resolver", opts, wd), resolver_report),
               "gai": (lambda: run_in_namespaces("gai", opts, wd, [
                   "--gai-latency", gai_program(opts)], pid=True), gai_report),
               "busy": (lambda: run_in_namespaces("busy", opts, wd), busy_report)}
        reports = []
        for w in wanted:
            fn, report = fns[w]
            t0 = time.monotonic()
            log("bench_local.py: %s ..." % w)
            try:
                r = fn()
            except BenchError as e:
                log("bench_local.py: %s FAILED: %s" % (w, e))
                results[w] = {"error": str(e)}
                failed.append(w)
                continue
            r["seconds"] = round(time.monotonic() - t0, 1)
            results[w] = r
            log("bench_local.py: %s done in %.1f s" % (w, r["seconds"]))
            reports.append(report(r))
            if w == "hotpath":
                for k, c in r["cases"].items():
                    if c.get("pass") is False:
                        budgets_missed.append("hotpath %s (+%.2f > +%d)" % (
                            k, c["added"], c["budget_added"]))
            elif r.get("pass") is False:
                budgets_missed.append(w)
    except BenchError as e:
        log("bench_local.py: %s" % e)
        failed.append("setup")
        reports = []
    finally:
        results["meta"]["seconds"] = round(time.monotonic() - t_all, 1)
        results["meta"]["failed"] = failed
        results["meta"]["budgets_missed"] = budgets_missed
        if opts.json:
            with open(opts.json, "w") as f:
                json.dump(results, f, indent=1, sort_keys=False)
                f.write("\n")
        if opts.keep or failed:
            log("bench_local.py: work directory kept: %s" % wd)
        else:
            shutil.rmtree(wd, ignore_errors=True)

    title = "## Benchmarks (%s%s, %s, %d CPUs, commit %s%s)" % (
        "smoke, " if opts.smoke else "", results["meta"]["when"], results["meta"]["kernel"],
        results["meta"]["cpus"] or 0, (results["meta"]["commit"] or "?")[:10],
        "+dirty" if results["meta"]["dirty"] else "")
    print(title + "\n")
    print("\n\n".join(reports))
    print()
    if failed:
        print("FAILED: %s" % ", ".join(failed))
    if budgets_missed:
        print("Budgets or targets missed: %s" % "; ".join(budgets_missed))
    print("Total %.1f s." % results["meta"]["seconds"])
    if failed:
        return EXIT_FAIL
    if opts.strict and budgets_missed:
        return EXIT_FAIL
    return 0


if __name__ == "__main__":
    sys.exit(main())

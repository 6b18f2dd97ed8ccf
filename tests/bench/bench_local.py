#!/usr/bin/python3
"""Local benchmarks of libdnsaware (issue 7): what the shim costs where programs pay for it.

    bench_local.py [all|hotpath|startup|scale|resolver ...] [--smoke] [--json FILE] [--lib PATH]
                   [--strict] [--keep]

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

--smoke: tiny sizes and short windows (seconds in all), asserting only that every measurement
runs and produces sane numbers. Without --strict the exit status is 0 when every measurement ran
and passed its sanity checks, whatever the budgets say (they are reported PASS/FAIL); with
--strict a missed budget or target also fails. Exit 1: a measurement failed; 2: a prerequisite
is missing. Needs root (namespaces, bind mounts, port 53), gcc, valgrind and callgrind_annotate.
The library defaults to $DNSAWARE_LIB, then <repo>/build/src/libdnsaware.so.

Internal subcommands (run under unshare by the driver): _scale-inside, _resolver-inside.
"""

import argparse
import concurrent.futures
import datetime
import json
import math
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
E2E = os.path.join(REPO, "tests", "e2e")
HELPERS = ("hotpath", "thread_count", "conns", "sink")
MEASUREMENTS = ("hotpath", "startup", "scale", "resolver")

BUDGET_UNTRACKED = 20
BUDGET_TRACKED = 60
STARTUP_TARGET_MS = 1.0

EXIT_FAIL = 1
EXIT_HARNESS = 2


class BenchError(Exception):
    """A measurement could not run or produced numbers that make no sense."""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k != "LD_PRELOAD" and not k.startswith("DNSAWARE_")}
    env.update(extra)
    return env


def run(argv, **kw):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if r.returncode != 0:
        raise BenchError("%s failed (status %d): %s" % (" ".join(argv), r.returncode,
                                                          r.stdout.strip()[-2000:]))
    return r.stdout


def compile_helpers(wd):
    for name in HELPERS:
        run(["gcc", "-O2", "-Wall", "-pthread", "-o", os.path.join(wd, name),
             os.path.join(HERE, name + ".c")])


def fmt(v, nd=2):
    if v is None:
        return "—"
    if isinstance(v, float):
        return "%.*f" % (nd, v)
    return str(v)


def signed(v, nd=2):
    return ("+" if v >= 0 else "") + "%.*f" % (nd, v)


def verdict(ok):
    return "PASS" if ok else "FAIL"


def md_table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


# --------------------------------------------------------------------------------------------
# hotpath
# --------------------------------------------------------------------------------------------

ANNOTATE_LINE = re.compile(r"^\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*\S)\s*$")


def parse_annotate(text):
    """callgrind_annotate --inclusive=no output -> {"function (file)": Ir}."""
    funcs = {}
    for line in text.splitlines():
        m = ANNOTATE_LINE.match(line)
        if not m or "PROGRAM TOTALS" in m.group(2):
            continue
        what = m.group(2)
        obj = ""
        mo = re.match(r"^(.*) \[(.*)\]$", what)
        if mo:
            what, obj = mo.group(1), os.path.basename(mo.group(2))
        file, _, func = what.rpartition(":")
        label = "%s (%s)" % (func, os.path.basename(file) if file and file != "???" else obj)
        if obj.startswith("libdnsaware") or "/src/" in file and REPO in os.path.abspath(file):
            label += " [shim]"
        funcs[label] = funcs.get(label, 0) + int(m.group(1).replace(",", ""))
    return funcs


def callgrind_run(wd, tag, argv, env):
    """Runs argv under callgrind; returns (main thread's Ir, per-function Ir, program stderr)."""
    out = os.path.join(wd, "cg.%s" % tag)
    for f in os.listdir(wd):
        if f.startswith("cg.%s" % tag):
            os.unlink(os.path.join(wd, f))
    r = subprocess.run(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                        "--callgrind-out-file=" + out] + argv,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if r.returncode != 0:
        raise BenchError("callgrind %s failed (status %d): %s" % (" ".join(argv), r.returncode,
                                                                 r.stderr.strip()[-1500:]))
    main = out + "-01"
    if not os.path.exists(main):
        raise BenchError("callgrind wrote no %s" % main)
    total = None
    with open(main) as f:
        for line in f:
            if line.startswith("totals:") or line.startswith("summary:"):
                total = int(line.split()[1])
    if total is None:
        raise BenchError("no totals in %s" % main)
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", main],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    funcs = parse_annotate(ann.stdout) if ann.returncode == 0 else {}
    prog_err = "\n".join(l for l in r.stderr.splitlines() if not l.startswith("=="))
    return total, funcs, prog_err


# Modes on an untracked fd, in a process with no tracked connection (no thread to compare with).
UNTRACKED_MODES = ("devnull", "read", "recv")


def hotpath(opts, wd):
    n = 2000 if opts.smoke else 100000
    wall_loops = 100000 if opts.smoke else 1000000
    wall_reps = 3 if opts.smoke else 5
    lib = opts.lib
    prog = os.path.join(wd, "hotpath")
    plain_env = clean_env()
    # A long floor: the background thread does nothing during the loop (it is not counted anyway).
    shim_env = clean_env(LD_PRELOAD=lib, DNSAWARE_TTL_FLOOR="300s")
    cases = [
        # key, mode, label, budget (None: information only)
        ("untracked", "devnull", "write(2), untracked fd (/dev/null)", BUDGET_UNTRACKED),
        ("untracked_read", "read", "read(2), untracked fd (/dev/zero)", BUDGET_UNTRACKED),
        ("tracked_send", "send", "send(2), tracked healthy TCP socket", BUDGET_TRACKED),
        ("tracked_write", "write", "write(2), tracked healthy TCP socket", BUDGET_TRACKED),
        ("untracked_recv", "recv", "recv(2), untracked empty datagram socket (EAGAIN)", BUDGET_UNTRACKED),
        ("untracked_threaded", "devnull-tracked",
         "write(2) to /dev/null, process with a tracked connection", None),
    ]
    if opts.smoke:
        cases = cases[:3]
    jobs = []
    for key, mode, _, _ in cases:
        variants = [("plain", plain_env, []), ("shim", shim_env, [])]
        if mode not in UNTRACKED_MODES:
            variants.append(("plain_thread", plain_env, ["--thread"]))
        for vname, env, extra in variants:
            for count in (n, 2 * n):
                jobs.append((key, mode, vname, count, env, extra))
    results = {}

    def one(job):
        key, mode, vname, count, env, extra = job
        tag = "%s.%s.%d" % (key, vname, count)
        total, funcs, err = callgrind_run(wd, tag, [prog, mode, str(count)] + extra, env)
        m = re.search(r"threads=(\d+)", err)
        return job, total, funcs, int(m.group(1)) if m else None

    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as ex:
        for job, total, funcs, threads in ex.map(one, jobs):
            key, mode, vname, count, _, _ = job
            results[(key, vname, count)] = (total, funcs, threads)

    out = {"n": n, "method": "callgrind Ir of the main thread, (count(2N) - count(N)) / N",
           "cases": {}}
    for key, mode, label, budget in cases:
        case = {"label": label, "mode": mode, "budget_added": budget}
        per_call, breakdown = {}, {}
        for vname in ("plain", "plain_thread", "shim"):
            if (key, vname, n) not in results:
                continue
            t1, f1, th1 = results[(key, vname, n)]
            t2, f2, th2 = results[(key, vname, 2 * n)]
            per_call[vname] = (t2 - t1) / n
            case["threads_" + vname] = th2
            for fn in set(f1) | set(f2):
                slope = (f2.get(fn, 0) - f1.get(fn, 0)) / n
                if abs(slope) >= 0.05:
                    breakdown.setdefault(fn, {})[vname] = round(slope, 3)
        case["per_call"] = per_call
        case["breakdown"] = breakdown
        case["added"] = per_call["shim"] - per_call["plain"]
        if "plain_thread" in per_call:
            case["added_vs_threaded"] = per_call["shim"] - per_call["plain_thread"]
        # Sanity: the counts are per call, small and positive; the tracked cases are tracked.
        for vname, v in per_call.items():
            if not 1 <= v < 2000:
                raise BenchError("hotpath %s/%s: %.2f instructions per call makes no sense"
                                 % (key, vname, v))
        if per_call["shim"] < per_call["plain"]:
            raise BenchError("hotpath %s: fewer instructions with the shim (%.2f) than without "
                             "(%.2f)" % (key, per_call["shim"], per_call["plain"]))
        if mode not in UNTRACKED_MODES and case.get("threads_shim") != 2:
            raise BenchError("hotpath %s: the connection was not tracked under the shim (threads=%s, "
                             "expected 2: the background thread starts at the first tracked connect)"
                             % (key, case.get("threads_shim")))
        if budget is not None:
            case["pass"] = case["added"] <= budget
            if "added_vs_threaded" in case:
                case["pass_vs_threaded"] = case["added_vs_threaded"] <= budget
        out["cases"][key] = case

    # Wall clock: interleaved runs of the untracked write loop (the child's CPU time too).
    times = {"plain": [], "shim": []}
    cpu = {"plain": [], "shim": []}
    ratios = []
    argv = [prog, "devnull", str(wall_loops)]
    for rep in range(wall_reps):
        order = ("plain", "shim") if rep % 2 == 0 else ("shim", "plain")
        for vname in order:
            wall_ms, cpu_ms = spawn_measure(argv, plain_env if vname == "plain" else shim_env)
            times[vname].append(wall_ms)
            cpu[vname].append(cpu_ms)
        ratios.append(times["shim"][-1] / times["plain"][-1])
    med_plain = statistics.median(times["plain"])
    med_shim = statistics.median(times["shim"])
    if med_plain <= 0 or med_shim <= 0:
        raise BenchError("hotpath wall clock: non-positive times")
    out["wall"] = {"loop": "%d x write(2) of 1 byte to /dev/null" % wall_loops,
                   "runs_each": wall_reps, "ms_plain": times["plain"], "ms_shim": times["shim"],
                   "median_ms_plain": med_plain, "median_ms_shim": med_shim,
                   "ratio": med_shim / med_plain,
                   "median_paired_ratio": statistics.median(ratios),
                   "ns_per_call_added": (med_shim - med_plain) * 1e6 / wall_loops,
                   "cpu_ms_plain": cpu["plain"], "cpu_ms_shim": cpu["shim"],
                   "cpu_ratio": statistics.median(cpu["shim"]) / statistics.median(cpu["plain"])}
    return out


def hotpath_report(r):
    lines = ["### hotpath: instructions per call (callgrind, user space, main thread)", "",
             "Slope between %d and %d calls; the shim's background thread is not counted." % (
                 r["n"], 2 * r["n"]), ""]
    rows = []
    for key, c in r["cases"].items():
        pc = c["per_call"]
        b = c["budget_added"]
        rows.append([c["label"], fmt(pc["plain"]), fmt(pc["shim"]), signed(c["added"]),
                     "≤ +%d" % b if b is not None else "—",
                     verdict(c["pass"]) if b is not None else "(info)"])
    lines.append(md_table(["call", "without shim", "with shim", "added", "budget", "verdict"],
                          rows))
    threaded = [(k, c) for k, c in r["cases"].items() if "added_vs_threaded" in c]
    if threaded:
        lines += ["", "The same against the program running one idle thread of its own (glibc's "
                  "cancellable syscall wrappers take their multi-threaded path, as they do once "
                  "the shim's thread runs): what the hook itself adds.", ""]
        rows = []
        for key, c in threaded:
            pc = c["per_call"]
            b = c["budget_added"]
            rows.append([c["label"], fmt(pc["plain_thread"]), fmt(pc["shim"]),
                         signed(c["added_vs_threaded"]),
                         "≤ +%d" % b if b is not None else "—",
                         verdict(c["pass_vs_threaded"]) if b is not None else "(info)"])
        lines.append(md_table(["call", "without shim, 2 threads", "with shim", "added",
                               "budget", "verdict"], rows))
    for key in ("tracked_send", "untracked"):
        c = r["cases"].get(key)
        if not c:
            continue
        lines += ["", "Where the instructions of one call go: %s (callgrind_annotate, "
                  "exclusive, per call)" % c["label"], ""]
        cols = [v for v in ("plain", "plain_thread", "shim") if v in c["per_call"]]
        names = {"plain": "without shim", "plain_thread": "without, 2 threads", "shim": "with shim"}
        rows = []
        for fn, vals in sorted(c["breakdown"].items(), key=lambda kv: -max(kv[1].values())):
            if fn.startswith("main ("):
                continue
            rows.append([fn] + [fmt(vals.get(v, 0.0)) for v in cols])
        lines.append(md_table(["function"] + [names[v] for v in cols], rows))
    w = r["wall"]
    lines += ["", "Wall clock (%s; interleaved runs, median of %d each; the kernel's syscall "
              "dominates the loop; runs ranged %.1f–%.1f ms without, %.1f–%.1f ms with):" % (
                  w["loop"], w["runs_each"], min(w["ms_plain"]), max(w["ms_plain"]),
                  min(w["ms_shim"]), max(w["ms_shim"])), "",
              md_table(["without shim", "with shim", "ratio", "median paired ratio",
                        "added per call", "CPU time ratio (user+sys)"],
                       [["%.1f ms" % w["median_ms_plain"], "%.1f ms" % w["median_ms_shim"],
                         "%.3f" % w["ratio"], "%.3f" % w["median_paired_ratio"],
                         "%.1f ns" % w["ns_per_call_added"], "%.3f" % w["cpu_ratio"]]])]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# startup
# --------------------------------------------------------------------------------------------

def spawn_measure(argv, env):
    """Runs argv; returns (wall ms, the child's user+sys CPU ms)."""
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)])
    _, status, ru = os.wait4(pid, 0)
    t1 = time.perf_counter_ns()
    if status != 0:
        raise BenchError("%s exited with status %d" % (" ".join(argv), status))
    return (t1 - t0) / 1e6, (ru.ru_utime + ru.ru_stime) * 1e3


def spawn_time_ms(argv, env):
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env)
    _, status = os.waitpid(pid, 0)
    t1 = time.perf_counter_ns()
    if status != 0:
        raise BenchError("%s exited with status %d" % (" ".join(argv), status))
    return (t1 - t0) / 1e6


def startup(opts, wd):
    runs = 20 if opts.smoke else 200
    plain_env = clean_env()
    shim_env = clean_env(LD_PRELOAD=opts.lib)
    out = {"runs_each": runs, "commands": {}}
    for label, argv in (("/bin/true", ["/bin/true"]), ("sh -c true", ["/bin/sh", "-c", "true"])):
        for env in (plain_env, shim_env):      # warm the page cache
            spawn_time_ms(argv, env)
        t = {"plain": [], "shim": []}
        paired = []
        for i in range(runs):
            order = ("plain", "shim") if i % 2 == 0 else ("shim", "plain")
            got = {}
            for v in order:
                got[v] = spawn_time_ms(argv, plain_env if v == "plain" else shim_env)
                t[v].append(got[v])
            paired.append(got["shim"] - got["plain"])
        mp, ms = statistics.median(t["plain"]), statistics.median(t["shim"])
        if not (0 < mp < 1000 and 0 < ms < 1000):
            raise BenchError("startup %s: medians %.3f / %.3f ms make no sense" % (label, mp, ms))
        out["commands"][label] = {
            "median_ms_plain": mp, "median_ms_shim": ms, "added_ms": ms - mp,
            "median_paired_diff_ms": statistics.median(paired),
            "p25_ms_plain": statistics.quantiles(t["plain"], n=4)[0],
            "p75_ms_plain": statistics.quantiles(t["plain"], n=4)[2],
            "p25_ms_shim": statistics.quantiles(t["shim"], n=4)[0],
            "p75_ms_shim": statistics.quantiles(t["shim"], n=4)[2],
        }
    # Repeatable: instructions of /bin/true, all of them (start-up is all there is).
    ir = {}
    for v, env in (("plain", plain_env), ("shim", shim_env)):
        total, _, _ = callgrind_run(wd, "true." + v, ["/bin/true"], env)
        ir[v] = total
    out["true_instructions"] = {"plain": ir["plain"], "shim": ir["shim"],
                                "added": ir["shim"] - ir["plain"]}
    # Threads.
    prog = os.path.join(wd, "thread_count")
    threads = {}
    for mode in ("none", "resolve", "connect"):
        for v, env in (("plain", plain_env), ("shim", shim_env)):
            o = run([prog, mode], env=env)
            m = re.search(r"threads=(\d+)", o)
            if not m:
                raise BenchError("thread_count %s printed %r" % (mode, o))
            threads.setdefault(mode, {})[v] = int(m.group(1))
    out["threads"] = threads
    if threads["connect"]["shim"] != 2 or threads["connect"]["plain"] != 1:
        raise BenchError("thread count control failed: a tracked connect should start exactly one "
                         "thread (got %r)" % threads["connect"])
    out["no_thread"] = threads["none"]["shim"] == 1 and threads["resolve"]["shim"] == 1
    worst = max(c["added_ms"] for c in out["commands"].values())
    out["added_ms_max"] = worst
    out["pass"] = out["no_thread"] and worst < STARTUP_TARGET_MS
    return out


def startup_report(r):
    lines = ["### startup: a process that never makes a tracked connection", "",
             "Wall time of fork+exec+wait from python (posix_spawn, perf_counter_ns), %d "
             "interleaved runs each." % r["runs_each"], ""]
    rows = []
    for label, c in r["commands"].items():
        rows.append(["`%s`" % label, "%.3f ms" % c["median_ms_plain"],
                     "%.3f ms" % c["median_ms_shim"], "%s ms" % signed(c["added_ms"], 3),
                     "%s ms" % signed(c["median_paired_diff_ms"], 3),
                     verdict(c["added_ms"] < STARTUP_TARGET_MS)])
    lines.append(md_table(["command", "median without", "median with", "added",
                           "median paired difference", "< 1 ms"], rows))
    ti = r["true_instructions"]
    lines += ["", "Instructions (callgrind, whole process) of `/bin/true`: %d without, %d with "
              "the shim (+%d: loading and relocating the library, its constructor)."
              % (ti["plain"], ti["shim"], ti["added"]), ""]
    th = r["threads"]
    lines.append(md_table(["the process", "threads without", "threads with", "verdict"], [
        ["resolves nothing", th["none"]["plain"], th["none"]["shim"],
         verdict(th["none"]["shim"] == 1)],
        ["getaddrinfo(\"localhost\"), no connect", th["resolve"]["plain"],
         th["resolve"]["shim"], verdict(th["resolve"]["shim"] == 1)],
        ["getaddrinfo + connect (control: tracked)", th["connect"]["plain"],
         th["connect"]["shim"], "(control)"],
    ]))
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# namespaces: shared helpers of the two inside-namespace measurements
# --------------------------------------------------------------------------------------------

def ns_setup(wd, hosts_text, nameserver=None):
    """Inside `unshare --mount --net`: lo up, private resolv.conf, hosts and nsswitch.conf."""
    run(["mount", "--make-rprivate", "/"])
    run(["ip", "link", "set", "lo", "up"])
    try:
        with open("/proc/sys/net/core/somaxconn", "w") as f:
            f.write("65535\n")
    except OSError:
        pass
    resolv = os.path.join(wd, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("nameserver %s\noptions timeout:1 attempts:2\n" % (nameserver or "127.0.0.53"))
    hosts = os.path.join(wd, "hosts")
    with open(hosts, "w") as f:
        f.write(hosts_text)
    run(["mount", "--bind", resolv, "/etc/resolv.conf"])
    run(["mount", "--bind", hosts, "/etc/hosts"])
    if os.path.exists("/etc/nsswitch.conf"):
        with open("/etc/nsswitch.conf") as f:
            lines = [l for l in f if l.split(":")[0].strip() != "hosts"]
        lines.append("hosts: files dns\n")
        nss = os.path.join(wd, "nsswitch.conf")
        with open(nss, "w") as f:
            f.writelines(lines)
        run(["mount", "--bind", nss, "/etc/nsswitch.conf"])
    return hosts


def rewrite_in_place(path, text):
    """A bind-mounted file must keep its inode: truncate and write, never rename."""
    with open(path, "r+") as f:
        f.seek(0)
        f.truncate()
        f.write(text)


class LineProc:
    """A helper process spoken to in lines (stdin/stdout), with timeouts."""

    def __init__(self, argv, env, stderr_path):
        self.err = open(stderr_path, "w")
        self.p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True, bufsize=1)
        self.argv = argv
        self.stderr_path = stderr_path

    def readline(self, timeout):
        timer = threading.Timer(timeout, self.p.kill)
        timer.start()
        try:
            line = self.p.stdout.readline()
        finally:
            timer.cancel()
        if not line:
            self.p.wait()
            with open(self.stderr_path) as f:
                err = f.read().strip()[-1500:]
            raise BenchError("%s ended (status %s) without answering: %s"
                             % (os.path.basename(self.argv[0]), self.p.returncode, err))
        return line.strip()

    def ask(self, text, timeout):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()
        return self.readline(timeout)

    def close(self, timeout=30):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.err.close()
        return self.p.returncode


def start_sink(wd, endpoints, tag):
    s = LineProc([os.path.join(wd, "sink")] + endpoints, clean_env(),
                 os.path.join(wd, "sink.%s.err" % tag))
    if s.readline(10) != "ready":
        raise BenchError("sink did not start")
    return s


def read_stats(path):
    vals = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                m = re.match(r"^(\w+)(\{[^}]*\})?\s+(\S+)$", line.strip())
                if m:
                    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
                    labels.pop("pid", None)
                    key = m.group(1) + ("{%s}" % ",".join("%s=%s" % kv for kv in
                                                          sorted(labels.items()))
                                        if labels else "")
                    vals[key] = float(m.group(3))
    except FileNotFoundError:
        raise BenchError("the shim wrote no stats file %s" % path)
    return vals


def ports_for(base, count, per_port=10000):
    return [base + i for i in range(max(1, math.ceil(count / per_port)))]


def run_in_namespaces(sub, opts, wd):
    result = os.path.join(wd, "%s.result.json" % sub)
    argv = ["unshare", "--mount", "--net", "--", PYTHON, os.path.abspath(__file__), "_" + sub
            + "-inside", "--workdir", wd, "--lib", opts.lib, "--result", result]
    if opts.smoke:
        argv.append("--smoke")
    r = subprocess.run(argv, env=clean_env())
    if r.returncode != 0 or not os.path.exists(result):
        raise BenchError("%s (in namespaces) exited with status %d" % (sub, r.returncode))
    with open(result) as f:
        data = json.load(f)
    if "error" in data:
        raise BenchError(data["error"])
    return data


def inside_main(opts, fn):
    try:
        data = fn(opts)
    except BenchError as e:
        data = {"error": str(e)}
    with open(opts.result, "w") as f:
        json.dump(data, f, indent=1)
    return 0


# --------------------------------------------------------------------------------------------
# scale
# --------------------------------------------------------------------------------------------

HEALTHY, HEALTHY_ADDR = "healthy.test", "127.0.0.10"
DRAIN, DRAIN_OLD, DRAIN_NEW = "drain.test", "127.0.0.20", "127.0.0.21"


def scale_hosts(drain_addr):
    return ("127.0.0.1 localhost\n%s %s\n%s %s\n" % (HEALTHY_ADDR, HEALTHY, drain_addr, DRAIN))


def nofile_capacity(want):
    """The most fds one process can have here, and why not more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        with open("/proc/sys/fs/nr_open") as f:
            nr_open = int(f.read())
    except OSError:
        nr_open = hard
    if hard >= want:
        return want, None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, nr_open), min(want, nr_open)))
        return min(want, nr_open), None
    except (ValueError, OSError) as e:
        cap = ""
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("CapBnd:"):
                        has = bool(int(line.split()[1], 16) & (1 << 24))
                        cap = (" CAP_SYS_RESOURCE is %s the bounding set of this container"
                               % ("in" if has else "not in"))
        except OSError:
            pass
        return hard, ("the hard RLIMIT_NOFILE is %d and cannot be raised (setrlimit: %s);%s, so "
                      "even root cannot raise it (prlimit fails the same way)" % (hard, e, cap))


def scale_inside(opts):
    wd = opts.workdir
    if opts.smoke:
        sizes, drain_count, window, floor, settle = [100], 10, 2.0, "200ms", 0.5
    else:
        sizes, drain_count, window, floor, settle = [1000, 10000, 50000], 100, 10.0, "1s", 1.0
    hosts = ns_setup(wd, scale_hosts(DRAIN_OLD))
    largest_wanted = max(sizes)
    fds_wanted = largest_wanted + drain_count + 64
    capacity, why = nofile_capacity(fds_wanted)
    limited = None
    if capacity < fds_wanted:
        largest = capacity - drain_count - 64
        sizes = [s for s in sizes if s < largest] + [largest]
        limited = {"wanted": largest_wanted, "measured": largest, "reason": why}
    out = {"drain_count": drain_count, "window_s": window, "ttl_floor": floor,
           "limited": limited, "runs": []}
    port = 21000
    for idx, n in enumerate(sizes):
        row = {"n_healthy": n, "n_drain": drain_count}
        for variant in ("plain", "shim"):
            rewrite_in_place(hosts, scale_hosts(DRAIN_OLD))
            hp = ports_for(port, n)
            port += len(hp)
            dp = ports_for(port, drain_count)
            port += len(dp)
            sink = start_sink(wd, ["%s:%d" % (HEALTHY_ADDR, p) for p in hp]
                              + ["%s:%d" % (DRAIN_OLD, p) for p in dp], "%d.%s" % (n, variant))
            stats_path = os.path.join(wd, "stats.%d.%s.prom" % (n, variant))
            env = clean_env()
            if variant == "shim":
                env.update(LD_PRELOAD=opts.lib, DNSAWARE_TTL_FLOOR=floor,
                           DNSAWARE_STATS_FILE=stats_path, DNSAWARE_STATS_INTERVAL="1h")
            argv = [os.path.join(wd, "conns"), "--settle", str(settle),
                    "%s:%s:%d" % (HEALTHY, ",".join(map(str, hp)), n),
                    "%s:%s:%d" % (DRAIN, ",".join(map(str, dp)), drain_count)]
            c = LineProc(argv, env, os.path.join(wd, "conns.%d.%s.err" % (n, variant)))
            try:
                ready = json.loads(c.readline(120))
                if ready["addrs"] != [HEALTHY_ADDR, DRAIN_OLD]:
                    raise BenchError("conns resolved %r" % ready["addrs"])
                rec = {"rss_before_kb": ready["rss_before_kb"],
                       "rss_after_kb": ready["rss_after_kb"],
                       "anon_before_kb": ready["anon_before_kb"],
                       "anon_after_kb": ready["anon_after_kb"], "connect_s": ready["connect_s"],
                       "threads": ready["threads"]}
                if variant == "shim":
                    if not ready["tid"]:
                        raise BenchError("scale N=%d: no dnsaware thread under the shim" % n)
                    rec["thread_cpu_setup_ms"] = ready["thread_cpu_ns"] / 1e6
                    steady = json.loads(c.ask("measure %g" % window, window + 120))
                    rewrite_in_place(hosts, scale_hosts(DRAIN_NEW))
                    drain = json.loads(c.ask("measure %g" % window, window + 120))
                    for name, m in (("steady", steady), ("drain", drain)):
                        secs = m["wall_ns"] / 1e9
                        rec[name] = {
                            "wall_s": secs, "cpu_ms": m["cpu_ns"] / 1e6,
                            "cpu_ms_per_s": m["cpu_ns"] / 1e6 / secs,
                            "ticks_ms_per_s": m["ticks"] * 1000.0 / os.sysconf("SC_CLK_TCK") / secs,
                            "wakeups": m["wakeups"], "wakeups_per_s": m["wakeups"] / secs,
                            "cpu_us_per_wakeup": (m["cpu_ns"] / 1e3 / m["wakeups"]
                                                  if m["wakeups"] > 0 else None),
                            "eof_healthy": m["eof"][0], "eof_drain": m["eof"][1]}
                c.p.stdin.write("quit\n")
                c.p.stdin.flush()
            finally:
                rc = c.close(120)
                sink.close()
            if rc != 0:
                raise BenchError("conns exited with status %s" % rc)
            if variant == "shim":
                st = read_stats(stats_path)
                rec["stats_tracked_sockets"] = st.get("dnsaware_tracked_sockets")
                rec["stats_shutdowns"] = sum(v for k, v in st.items()
                                             if k.startswith("dnsaware_sockets_shutdown_total"))
                rec["stats_resolutions_ok"] = st.get("dnsaware_resolutions_total{result=ok}")
                if rec["stats_tracked_sockets"] != n + drain_count:
                    raise BenchError("scale N=%d: the shim tracked %s sockets, expected %d"
                                     % (n, rec["stats_tracked_sockets"], n + drain_count))
                if rec["steady"]["eof_drain"] or rec["steady"]["eof_healthy"]:
                    raise BenchError("scale N=%d: connections shut down before the move" % n)
                if rec["drain"]["eof_healthy"] != 0:
                    raise BenchError("scale N=%d: %d healthy connections were shut down"
                                     % (n, rec["drain"]["eof_healthy"]))
                if rec["drain"]["eof_drain"] != drain_count:
                    raise BenchError("scale N=%d: %d of %d connections of the moved name drained "
                                     "within %g s" % (n, rec["drain"]["eof_drain"], drain_count,
                                                      window))
                if not rec["steady"]["cpu_ms"] > 0:
                    raise BenchError("scale N=%d: the thread used no CPU at all?" % n)
            row[variant] = rec
        tracked = n + drain_count
        for field, key in (("rss", "rss_added_kb"), ("anon", "anon_added_kb")):
            d_shim = row["shim"][field + "_after_kb"] - row["shim"][field + "_before_kb"]
            d_plain = row["plain"][field + "_after_kb"] - row["plain"][field + "_before_kb"]
            row[key] = d_shim - d_plain
        # VmRSS also counts the file pages of shared libraries, which vary by +-100 kB from run
        # to run here; RssAnon (what the shim allocates is all anonymous) is stable to a page.
        row["bytes_per_socket_rss"] = row["rss_added_kb"] * 1024.0 / tracked
        row["bytes_per_socket"] = row["anon_added_kb"] * 1024.0 / tracked
        if row["anon_added_kb"] <= 0:
            raise BenchError("scale N=%d: the shim added no memory (RssAnon %+d kB)?"
                             % (n, row["anon_added_kb"]))
        out["runs"].append(row)
    runs = out["runs"]
    if len(runs) >= 2:
        a, b = runs[0], runs[-1]
        out["marginal_bytes_per_socket"] = ((b["anon_added_kb"] - a["anon_added_kb"]) * 1024.0
                                            / (b["n_healthy"] - a["n_healthy"]))
        out["fixed_kb"] = (a["anon_added_kb"] - out["marginal_bytes_per_socket"]
                           * (a["n_healthy"] + a["n_drain"]) / 1024.0)
        sa, sb = a["shim"]["steady"], b["shim"]["steady"]
        da, db = a["shim"]["drain"], b["shim"]["drain"]
        out["steady_growth"] = (sb["cpu_ms_per_s"] / sa["cpu_ms_per_s"]
                                if sa["cpu_ms_per_s"] > 0 else None)
        out["drain_growth"] = (db["cpu_ms_per_s"] / da["cpu_ms_per_s"]
                               if da["cpu_ms_per_s"] > 0 else None)
        # Work per wake-up per 1,000 healthy sockets, from the smallest to the largest N.
        for name, x, y in (("steady", sa, sb), ("drain", da, db)):
            if x["cpu_us_per_wakeup"] is not None and y["cpu_us_per_wakeup"] is not None:
                out[name + "_us_per_wakeup_per_1000_healthy"] = (
                    (y["cpu_us_per_wakeup"] - x["cpu_us_per_wakeup"]) * 1000.0
                    / (b["n_healthy"] - a["n_healthy"]))
        # "Does not grow": the largest N costs at most twice the smallest, per second of wall
        # time, in both phases.
        out["pass"] = all(g is not None and g <= 2.0 for g in (out["steady_growth"],
                                                                out["drain_growth"]))
    return out


def scale_report(r):
    lines = ["### scale: many idle tracked sockets in one process", ""]
    if r.get("limited"):
        lines += ["N is limited to %d here (wanted %d): %s." % (
            r["limited"]["measured"], r["limited"]["wanted"], r["limited"]["reason"]), ""]
    lines += ["N healthy connections to one name plus %d to a second name that moves in the "
              "drain phase; all idle. Memory: /proc/self/status after the connects minus before "
              "them, with the shim minus without; RssAnon is the figure (VmRSS also counts "
              "shared-library file pages, which vary by about 100 kB between runs). DNSAWARE_TTL_FLOOR=%s, /etc/hosts answers (re-resolved at "
              "the floor). Thread CPU from its per-thread CPU clock over %g s of wall time; "
              "wake-ups = voluntary context switches." % (r["drain_count"], r["ttl_floor"],
                                                         r["window_s"]), ""]
    rows = []
    for row in r["runs"]:
        s = row["shim"]
        rows.append(["{:,}".format(row["n_healthy"]), "{:,}".format(row["anon_added_kb"]) + " kB",
                     "%.0f" % row["bytes_per_socket"],
                     "{:,}".format(row["rss_added_kb"]) + " kB (%.0f B)" % row["bytes_per_socket_rss"],
                     "%.2f s / %.2f s" % (row["plain"]["connect_s"], s["connect_s"]),
                     "%.0f ms" % s["thread_cpu_setup_ms"]])
    lines.append(md_table(["N healthy", "RssAnon added (N+%d tracked)" % r["drain_count"],
                           "bytes per tracked socket", "VmRSS added (per socket)",
                           "connect all: without / with",
                           "thread CPU while connecting"], rows))
    if "marginal_bytes_per_socket" in r:
        lines += ["", "Marginal memory between the smallest and largest N: %.0f bytes per tracked "
                  "socket, on top of about %.0f kB once (the thread's stack and arena, c-ares)."
                  % (r["marginal_bytes_per_socket"], r["fixed_kb"])]
    lines.append("")
    rows = []
    for row in r["runs"]:
        for phase in ("steady", "drain"):
            p = row["shim"][phase]
            rows.append(["{:,}".format(row["n_healthy"]),
                         "nothing changes" if phase == "steady"
                         else "%d connections drain" % row["n_drain"],
                         "%.3f" % p["cpu_ms_per_s"], "%.1f" % p["ticks_ms_per_s"],
                         "%.1f" % p["wakeups_per_s"], fmt(p["cpu_us_per_wakeup"], 0),
                         "%d / %d" % (p["eof_drain"], p["eof_healthy"])])
    lines.append(md_table(["N healthy", "phase", "thread CPU ms/s", "(from ticks)",
                           "wake-ups/s", "µs per wake-up", "shut down: moved / healthy"], rows))
    if "steady_growth" in r:
        lines += ["", "From the smallest to the largest N the thread's CPU per second grows "
                  "x%.1f while nothing changes and x%.1f during the drain; per wake-up, %.1f µs "
                  "(steady) and %.1f µs (drain) more per 1,000 healthy sockets. Target (does not "
                  "grow with healthy sockets, at most x2): %s." % (
                      r["steady_growth"] or 0, r["drain_growth"] or 0,
                      r.get("steady_us_per_wakeup_per_1000_healthy", 0),
                      r.get("drain_us_per_wakeup_per_1000_healthy", 0), verdict(r["pass"]))]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# resolver
# --------------------------------------------------------------------------------------------

def resolver_inside(opts):
    sys.path.insert(0, E2E)
    import dnsresponder
    wd = opts.workdir
    if opts.smoke:
        sizes, window, settle = [5], 2.5, 0.3
    else:
        sizes, window, settle = [1, 100, 10000], 10.0, 1.0
    name, addr, ttl, floor = "bench.test", "127.0.0.10", 1, "1s"
    ns_setup(wd, "127.0.0.1 localhost\n::1 localhost\n", nameserver="127.0.0.53")
    zone = os.path.join(wd, "zone.json")
    qlog = os.path.join(wd, "queries.jsonl")
    dnsresponder.write_zone(zone, {name: {"addrs": [addr], "ttl": ttl}})
    resp = LineProc([PYTHON, os.path.join(E2E, "dnsresponder.py"), "--listen", "127.0.0.53",
                     "--port", "53", "--zone", zone, "--log", qlog], clean_env(),
                    os.path.join(wd, "dnsresponder.err"))
    out = {"name": name, "ttl_s": ttl, "ttl_floor": floor, "window_s": window, "runs": []}
    try:
        if resp.readline(15) != "ready":
            raise BenchError("dnsresponder did not start")
        port = 22000
        for n in sizes:
            ports = ports_for(port, n)
            port += len(ports)
            sink = start_sink(wd, ["%s:%d" % (addr, p) for p in ports], "resolver.%d" % n)
            stats_path = os.path.join(wd, "stats.resolver.%d.prom" % n)
            env = clean_env(LD_PRELOAD=opts.lib, DNSAWARE_TTL_FLOOR=floor,
                            DNSAWARE_NAMESERVERS="127.0.0.53", DNSAWARE_STATS_FILE=stats_path,
                            DNSAWARE_STATS_INTERVAL="1h")
            c = LineProc([os.path.join(wd, "conns"), "--settle", str(settle),
                          "%s:%s:%d" % (name, ",".join(map(str, ports)), n)], env,
                         os.path.join(wd, "conns.resolver.%d.err" % n))
            try:
                ready = json.loads(c.readline(120))
                if ready["addrs"] != [addr] or not ready["tid"]:
                    raise BenchError("resolver N=%d: resolved %r, thread %r"
                                     % (n, ready["addrs"], ready["tid"]))
                t0 = time.time()
                m = json.loads(c.ask("measure %g" % window, window + 120))
                t1 = time.time()
                c.p.stdin.write("quit\n")
                c.p.stdin.flush()
            finally:
                rc = c.close(120)
                sink.close()
            if rc != 0:
                raise BenchError("conns exited with status %s" % rc)
            st = read_stats(stats_path)
            qs = [q for q in dnsresponder.read_log(qlog)
                  if q.get("qname") == name and t0 <= q["t"] <= t1]
            a = sum(1 for q in qs if q.get("qtype") == "A")
            aaaa = sum(1 for q in qs if q.get("qtype") == "AAAA")
            secs = t1 - t0
            ttls = secs / max(ttl, 1)
            rec = {"n": n, "window_s": secs, "queries_a": a, "queries_aaaa": aaaa,
                   "queries_total": len(qs), "a_per_ttl": a / ttls,
                   "total_per_ttl": len(qs) / ttls,
                   "stats_tracked_sockets": st.get("dnsaware_tracked_sockets"),
                   "stats_resolutions_ok": st.get("dnsaware_resolutions_total{result=ok}"),
                   "thread_cpu_ms_per_s": m["cpu_ns"] / 1e6 / (m["wall_ns"] / 1e9),
                   "wakeups_per_s": m["wakeups"] / (m["wall_ns"] / 1e9)}
            if rec["stats_tracked_sockets"] != n:
                raise BenchError("resolver N=%d: the shim tracked %s sockets"
                                 % (n, rec["stats_tracked_sockets"]))
            if a < 1:
                raise BenchError("resolver N=%d: no background query in %.1f s" % (n, secs))
            out["runs"].append(rec)
    finally:
        resp.p.terminate()
        resp.close(10)
    rates = [r["a_per_ttl"] for r in out["runs"]]
    out["pass"] = all(0.7 <= x <= 1.3 for x in rates) and max(rates) <= 1.3 * min(rates)
    return out


def resolver_report(r):
    lines = ["### resolver: background DNS queries per name per TTL", "",
             "%s answers with TTL %d s from dnsresponder.py; DNSAWARE_TTL_FLOOR=%s; queries "
             "counted in the responder's log over %g s, after the program's own lookup. One "
             "refresh asks A and AAAA (getaddrinfo AF_UNSPEC)." % (
                 r["name"], r["ttl_s"], r["ttl_floor"], r["window_s"]), ""]
    rows = []
    for x in r["runs"]:
        rows.append(["{:,}".format(x["n"]), "%d / %d" % (x["queries_a"], x["queries_aaaa"]),
                     "%.2f" % x["a_per_ttl"], "%.2f" % x["total_per_ttl"],
                     "%.3f" % x["thread_cpu_ms_per_s"]])
    lines.append(md_table(["tracked sockets", "queries A / AAAA", "refreshes (A) per TTL",
                           "queries per TTL", "thread CPU ms/s"], rows))
    lines += ["", "Target (about 1 refresh per TTL, whatever the number of sockets): %s."
              % verdict(r["pass"])]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------

def prerequisites(opts, wanted):
    missing = []
    if os.geteuid() != 0 and ("scale" in wanted or "resolver" in wanted):
        missing.append("scale and resolver must run as root (namespaces, bind mounts, port 53)")
    progs = ["gcc"]
    if "hotpath" in wanted or "startup" in wanted:
        progs += ["valgrind", "callgrind_annotate"]
    if "scale" in wanted or "resolver" in wanted:
        progs += ["unshare", "ip", "mount"]
    for p in progs:
        if shutil.which(p) is None:
            missing.append("%s not found" % p)
    if not os.path.isfile(opts.lib):
        missing.append("library %s not found (build it: ninja -C build)" % opts.lib)
    return missing


def meta(opts):
    def git(*a):
        r = subprocess.run(["git", "-C", REPO] + list(a), stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return r.stdout.strip() if r.returncode == 0 else None
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "smoke": opts.smoke, "lib": opts.lib, "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "kernel": platform.release(), "cpus": os.cpu_count(), "loadavg_at_start": load,
            "libc": " ".join(platform.libc_ver())}


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("_scale-inside", "_resolver-inside"):
        ap = argparse.ArgumentParser(prog="bench_local.py " + sys.argv[1])
        ap.add_argument("sub")
        ap.add_argument("--workdir", required=True)
        ap.add_argument("--lib", required=True)
        ap.add_argument("--result", required=True)
        ap.add_argument("--smoke", action="store_true")
        o = ap.parse_args()
        return inside_main(o, scale_inside if o.sub == "_scale-inside" else resolver_inside)

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="*", default=["all"],
                    help="measurements: all (default), %s" % ", ".join(MEASUREMENTS))
    ap.add_argument("--smoke", action="store_true", help="tiny sizes, seconds in all")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--lib", default=os.environ.get("DNSAWARE_LIB")
                    or os.path.join(REPO, "build", "src", "libdnsaware.so"))
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
               "resolver": (lambda: run_in_namespaces("resolver", opts, wd), resolver_report)}
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

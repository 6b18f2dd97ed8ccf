"""bench_local.py startup: a process that never makes a tracked connection (wall time of
fork+exec, callgrind's count of /bin/true, threads), and its markdown report (split out of
tests/bench/bench_local.py, whose docstring describes the measurement).
"""

import os
import re
import statistics

from bench_common import (BenchError, callgrind_run, clean_env, md_table, run, signed,
                          spawn_time_ms, verdict)

STARTUP_TARGET_MS = 1.0


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

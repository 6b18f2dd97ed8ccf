"""bench_local.py hotpath: the instructions the shim adds to one call (callgrind, main thread),
with a per-function breakdown and a wall-clock ratio, and its markdown report (split out of
tests/bench/bench_local.py, whose docstring describes the measurement).
"""

import concurrent.futures
import os
import re
import statistics

from bench_common import (BenchError, callgrind_run, clean_env, fmt, md_table, signed,
                          spawn_measure, verdict)

BUDGET_UNTRACKED = 20
BUDGET_TRACKED = 60

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

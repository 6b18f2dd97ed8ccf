#!/usr/bin/python3
"""The cost of fork and vfork with the shim (issue #13): tools/bench's `fork` part.

    bench_fork.py [--smoke] [--strict] [--json FILE] [--lib PATH] [--trials N] [--seconds S]

The kernel copies a process's fd table at every fork and vfork, and the table is as large as the
highest fd the process ever had open: fds the shim keeps high up grow it for the program.
`forkrate` (forkrate.c) makes a tracked connection ("localhost", as hotpath does), then counts
fork + _exit + waitpid, or vfork + _exit + waitpid, per second for a fixed time. Each is run
without the shim and with it, interleaved (the order alternating from trial to trial), for every
RLIMIT_NOFILE soft limit of the cases: the one in force, the hard limit, and 1024 (a common
default), each once when some coincide; and once more at the limit in force with 32 MB of heap
touched first (--memory), for a program that holds data as services do: fork copies the page table
of every page a process touched, so forkrate alone (about 2 MB) shows the shim's own pages and its
thread at their largest. The figure is the median rate of the trials; the cost
ratio is the shim's cost per call over the plain one (the plain median rate over the shim's).
Budget: a cost ratio of at most 1.1 for both calls in every case.

Two controls, without the shim, run in each trial after those two and tell the parts of the
shim's cost apart (information, no budget): the program with one idle thread of its own (the
shim's thread makes the process threaded; no fix of the fds removes that), and with that thread
and an fd held where the shim's highest fd was in the same trial (the shim's fd table and thread,
without its fork handlers).

--smoke: one short trial of each call at the limit in force, asserting only that it runs and
gives sane numbers. Without --strict the exit status is 0 when every measurement ran and was
sane, whatever the budget says (reported PASS/FAIL); with --strict a missed budget fails too.
Exit 1: a measurement failed; 2: a prerequisite is missing (gcc, the library). No root needed.
The library defaults to $DNSAWARE_LIB, then <repo>/build/src/libdnsaware.so.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench_local  # noqa: E402  (the helpers every part shares: run, md_table, meta, ...)
from bench_local import BenchError, log, md_table, verdict  # noqa: E402

BUDGET_RATIO = 1.1
CALLS = ("fork", "vfork")
# The heap of the case that stands for a small service: fork copies the page table of every page a
# process touched, so forkrate alone (2 MB) shows the library's own few pages and its thread at
# their largest.
PROGRAM_MB = 32


def nofile_cases(smoke):
    """[(label, soft limit)]: the limit in force, the hard limit, 1024; each value once."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    hard_value = soft if hard == resource.RLIM_INFINITY else hard
    cases = [("in force", soft)]
    if not smoke:
        cases += [("raised to the hard limit", hard_value), ("1024", min(1024, hard_value))]
    out, seen = [], set()
    for label, value in cases:
        if value in seen:
            out = [(lbl + ", " + label if v == value else lbl, v) for lbl, v in out]
            continue
        seen.add(value)
        out.append((label, value))
    return out


# The runs of each trial: without and with the shim, and the two controls (without).
VARIANTS = ("plain", "shim", "thread", "thread_table")


def forkrate(prog, call, seconds, nofile, env, extra=()):
    """One run of forkrate with RLIMIT_NOFILE's soft limit at nofile; its JSON line as a dict."""
    def limit():
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, hard))
    r = subprocess.run([prog, call, "%g" % seconds] + list(extra), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, env=env, preexec_fn=limit, timeout=seconds + 60)
    if r.returncode != 0:
        raise BenchError("forkrate %s %g failed (status %d): %s" % (call, seconds, r.returncode,
                                                                   r.stderr.strip()[-1500:]))
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError("forkrate %s printed no JSON line: %r" % (call, r.stdout[-500:]))


def measure(opts, wd):
    prog = os.path.join(wd, "forkrate")
    bench_local.run(["gcc", "-O2", "-Wall", "-pthread", "-o", prog, os.path.join(HERE, "forkrate.c")])
    trials = 1 if opts.smoke else opts.trials
    seconds = 0.3 if opts.smoke else opts.seconds
    envs = {"plain": bench_local.clean_env(),
            # A long floor: the thread sleeps through the loop (its fds are made at its start).
            "shim": bench_local.clean_env(LD_PRELOAD=opts.lib, DNSAWARE_TTL_FLOOR="300s")}
    out = {"trials": trials, "seconds_per_run": seconds, "budget_ratio": BUDGET_RATIO,
           "method": "forkrate: calls per second of fork or vfork + _exit + waitpid in a process "
                     "with a tracked connection; median of interleaved trials",
           "cases": []}
    cases = [(label, nofile, 0) for label, nofile in nofile_cases(opts.smoke)]
    if not opts.smoke:
        cases.append((cases[0][0], cases[0][1], PROGRAM_MB))
    for label, nofile, memory in cases:
        extra = ["--memory", str(memory)] if memory else []
        for call in CALLS:
            runs = {v: [] for v in VARIANTS}
            for t in range(trials):
                for variant in (("plain", "shim") if t % 2 == 0 else ("shim", "plain")):
                    runs[variant].append(forkrate(prog, call, seconds, nofile, envs[variant], extra))
                runs["thread"].append(forkrate(prog, call, seconds, nofile, envs["plain"], ["--thread"] + extra))
                hold = ["--hold-fd", str(max(runs["shim"][-1]["highest_fd"], 8))]
                runs["thread_table"].append(forkrate(prog, call, seconds, nofile, envs["plain"],
                                                     ["--thread"] + hold + extra))
            case = {"nofile_label": label, "nofile": nofile, "memory_mb": memory, "call": call, "runs": runs}
            for variant, rs in runs.items():
                for r in rs:
                    if r["nofile"] != nofile or not 50 <= r["per_s"] <= 10 ** 7 or r["calls"] < 5:
                        raise BenchError("fork %s/%s at RLIMIT_NOFILE %d: %r makes no sense"
                                         % (call, variant, nofile, r))
                want_threads = 1 if variant == "plain" else 2
                if any(r["threads"] != want_threads for r in rs):
                    raise BenchError("fork %s/%s: %s threads, expected %d (%s)" % (
                        call, variant, [r["threads"] for r in rs], want_threads,
                        "the connection was not tracked" if variant == "shim" else "a stray thread"))
                case["per_s_" + variant] = statistics.median(r["per_s"] for r in rs)
                case["fdsize_" + variant] = max(r["fdsize"] for r in rs)
                case["highest_fd_" + variant] = max(r["highest_fd"] for r in rs)
                case["ratio_" + variant] = case["per_s_plain"] / case["per_s_" + variant]
            case["ratio"] = case["ratio_shim"]
            case["paired_ratios"] = [p["per_s"] / s["per_s"] for p, s in zip(runs["plain"], runs["shim"])]
            case["pass"] = case["ratio"] <= BUDGET_RATIO
            log("bench_fork.py: %s at RLIMIT_NOFILE %d%s: %.0f/s without, %.0f/s with the shim, "
                "cost x%.2f (controls: a thread x%.2f, a thread and the table x%.2f)"
                % (call, nofile, ", %d MB of heap" % memory if memory else "", case["per_s_plain"],
                   case["per_s_shim"], case["ratio"],
                   case["ratio_thread"], case["ratio_thread_table"]))
            out["cases"].append(case)
    out["pass"] = all(c["pass"] for c in out["cases"])
    return out


def case_label(c):
    return "%d (%s)%s" % (c["nofile"], c["nofile_label"],
                          ", %d MB heap" % c["memory_mb"] if c.get("memory_mb") else "")


def report(r):
    lines = ["### fork: fork and vfork in a process with a tracked connection", "",
             "Calls per second of fork (or vfork) + `_exit` + `waitpid`, median of %d interleaved "
             "trial(s) of %g s each; the cost ratio is the cost per call over that without the "
             "shim. FDSize is the process's fd table (/proc/self/status), which every fork "
             "copies." % (r["trials"], r["seconds_per_run"]), ""]
    rows = []
    for c in r["cases"]:
        rows.append([case_label(c), "`%s`" % c["call"],
                     "{:,.0f}".format(c["per_s_plain"]), "{:,.0f}".format(c["per_s_shim"]),
                     "x%.2f" % c["ratio"], "%d / %d" % (c["fdsize_plain"], c["fdsize_shim"]),
                     "≤ x%.1f" % r["budget_ratio"], verdict(c["pass"])])
    lines.append(md_table(["RLIMIT_NOFILE (soft)", "call", "without shim (/s)", "with shim (/s)",
                           "cost ratio", "FDSize without / with", "budget", "verdict"], rows))
    lines += ["", "Controls without the shim (cost ratios over the plain program): one idle "
              "thread of the program's own, and that thread with an fd held at the shim's "
              "highest (the shim's table and thread, none of its fork handlers).", ""]
    rows = [[case_label(c), "`%s`" % c["call"], "x%.2f" % c["ratio_thread"],
             "x%.2f (FDSize %d)" % (c["ratio_thread_table"], c["fdsize_thread_table"]),
             "x%.2f" % c["ratio"]] for c in r["cases"]]
    lines.append(md_table(["RLIMIT_NOFILE (soft)", "call", "a thread", "a thread and the table",
                           "the shim"], rows))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="one short trial, sanity only")
    ap.add_argument("--json", help="write the results here")
    ap.add_argument("--lib", default=os.environ.get("DNSAWARE_LIB")
                    or os.path.join(bench_local.REPO, "build", "src", "libdnsaware.so"))
    ap.add_argument("--strict", action="store_true", help="a missed budget fails too")
    ap.add_argument("--trials", type=int, default=5, help="trials per call and variant (default 5)")
    ap.add_argument("--seconds", type=float, default=1.0, help="seconds per run (default 1)")
    opts = ap.parse_args()
    opts.lib = os.path.abspath(opts.lib)
    missing = [m for m, ok in (("gcc not found", shutil.which("gcc")),
                               ("library %s not found (build it: ninja -C build)" % opts.lib,
                                os.path.isfile(opts.lib))) if not ok]
    if missing:
        for m in missing:
            log("bench_fork.py: prerequisite missing: %s" % m)
        return bench_local.EXIT_HARNESS
    wd = tempfile.mkdtemp(prefix="dnsaware-bench-fork-")
    results = {"meta": bench_local.meta(opts)}
    t0 = time.monotonic()
    try:
        results["fork"] = measure(opts, wd)
    except (BenchError, subprocess.TimeoutExpired) as e:
        log("bench_fork.py: fork FAILED: %s" % e)
        results["fork"] = {"error": str(e)}
    finally:
        shutil.rmtree(wd, ignore_errors=True)
    results["meta"]["seconds"] = round(time.monotonic() - t0, 1)
    if opts.json:
        with open(opts.json, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    meta = results["meta"]
    print("## Benchmarks: fork (%s%s, %s, %d CPUs, commit %s%s)\n" % (
        "smoke, " if opts.smoke else "", meta["when"], meta["kernel"], meta["cpus"] or 0,
        (meta["commit"] or "?")[:10], "+dirty" if meta["dirty"] else ""))
    if "error" in results["fork"]:
        print("FAILED: fork")
        return bench_local.EXIT_FAIL
    print(report(results["fork"]))
    print()
    if not results["fork"]["pass"]:
        print("Budgets or targets missed: fork (cost ratio above x%.1f)" % BUDGET_RATIO)
    print("Total %.1f s." % meta["seconds"])
    if opts.strict and not results["fork"]["pass"]:
        return bench_local.EXIT_FAIL
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What every local benchmark shares (split out of tests/bench/bench_local.py, which re-exports
every name here; tests/bench/bench_fork.py uses them through it): the paths and exit statuses,
BenchError and log, the child environment (clean_env) and subprocess runs, compiling the C
helpers, number and markdown-table formatting, callgrind runs and their per-function profile
(callgrind_annotate), spawn timing, and the run's metadata. Python standard library only.
"""

import datetime
import os
import platform
import re
import subprocess
import sys
import time

PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
E2E = os.path.join(REPO, "tests", "e2e")
HELPERS = ("hotpath", "thread_count", "conns", "sink", "answerer", "busyconns")

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
# callgrind
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


# --------------------------------------------------------------------------------------------
# timing
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


# --------------------------------------------------------------------------------------------
# the run's metadata
# --------------------------------------------------------------------------------------------

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

"""wrk for bench_proxy.py (split out of tests/bench/bench_proxy.py): its command line, a run
with the proxy's CPU ticks around it, and the parse of its output.
"""

import os
import re
import subprocess
import time

# bench_proxy_conf first: it puts tests/e2e on sys.path for the imports below.
from bench_proxy_conf import WRK
from bench_proxy_scene import cpu_ticks
import dnsmove  # noqa: E402  (process handling)
from dnsmove import HarnessError  # noqa: E402

_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _dur(text):
    m = re.match(r"^([0-9.]+)(us|ms|s|m|h)$", text)
    if not m:
        raise ValueError("bad duration %r" % text)
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out):
    r = {"raw": out}
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    r["rps"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([0-9.]+\w+),", out)
    r["requests"] = int(m.group(1)) if m else None
    r["seconds"] = _dur(m.group(2)) if m else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+([0-9.]+\w+)\s*$" % pct, out, re.M)
        r["p%s_ms" % pct] = round(_dur(m.group(1)) * 1e3, 3) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    r["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"),
                                  (int(x) for x in m.groups()))) if m else {}
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    r["non2xx"] = int(m.group(1)) if m else 0
    r["errors"] = r["non2xx"] + sum(r["socket_errors"].values())
    return r


def wrk_argv(url, conns, seconds, threads=2):
    return [WRK, "-t%d" % max(1, min(threads, conns)), "-c%d" % conns, "-d%ds" % seconds,
            "--latency", url]


def run_wrk(url, conns, seconds, threads, cpu_pids=()):
    argv = wrk_argv(url, conns, seconds, threads)
    c0 = cpu_ticks(cpu_pids)
    t0 = time.time()
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=seconds + 30, env=dnsmove.clean_env(),
                       preexec_fn=dnsmove._pdeathsig)
    t1 = time.time()
    c1 = cpu_ticks(cpu_pids)
    if r.returncode != 0:
        raise HarnessError("%s exited with %d:\n%s" % (" ".join(argv), r.returncode, r.stdout))
    res = parse_wrk(r.stdout)
    if res["rps"] is None or res["requests"] is None:
        raise HarnessError("cannot parse the output of %s:\n%s" % (" ".join(argv), r.stdout))
    res["argv"] = " ".join(argv)
    res["t0"], res["t1"] = t0, t1
    tck = os.sysconf("SC_CLK_TCK")
    res["proxy_cpu_s"] = (c1 - c0) / tck
    res["proxy_cpu_us_per_req"] = (round((c1 - c0) / tck / res["requests"] * 1e6, 2)
                                   if res["requests"] else None)
    return res

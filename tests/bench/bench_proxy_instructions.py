"""bench_proxy.py instructions: the repeatable figure behind the throughput budget, a
single-process nginx proxy under callgrind with and without the shim, the per-request slope and
where it goes, the plain proxy's user/system CPU split, and the sanity checks (split out of
tests/bench/bench_proxy.py, whose docstring describes the measurement).
"""

import os
import re
import signal
import subprocess
import time

from bench_common import parse_annotate
# bench_proxy_conf first: it puts tests/e2e on sys.path for the imports below.
from bench_proxy_conf import (NAME, NGINX, NGINX_MAIN, OLD, PORT, PROXY, PROXY_BODY, VARIANTS,
                              _temps)
from bench_proxy_scene import _connects, has_shim
from bench_proxy_wrk import run_wrk
import dnsmove  # noqa: E402  (process handling)
import services  # noqa: E402  (nginx helpers)
from dnsmove import HarnessError, log  # noqa: E402


def drive_requests(listen, count, conns=4):
    """count GETs through the proxy, round-robin over conns keep-alive connections, one at a
    time (so every request is a separate trip through nginx's event loop)."""
    import http.client
    clients = [http.client.HTTPConnection(listen, PORT, timeout=60) for _ in range(conns)]
    try:
        for i in range(count):
            c = clients[i % conns]
            c.request("GET", "/")
            r = c.getresponse()
            body = r.read()
            if r.status != 200 or body != b"ok":
                raise HarnessError("request %d through %s answered %d %r" % (i, listen, r.status,
                                                                           body[:80]))
    finally:
        for c in clients:
            c.close()


def callgrind_totals(out_prefix):
    """{thread number: Ir} from the per-thread files callgrind wrote (out_prefix-01, -02...)."""
    totals = {}
    d, base = os.path.split(out_prefix)
    for f in sorted(os.listdir(d)):
        m = re.match(re.escape(base) + r"-(\d+)$", f)
        if not m:
            continue
        with open(os.path.join(d, f)) as fh:
            for line in fh:
                if line.startswith("totals:") or line.startswith("summary:"):
                    totals[int(m.group(1))] = int(line.split()[1])
    return totals


def instructions_run(scene, variant, count):
    """A single-process nginx proxy (master_process off) under callgrind, count requests through
    it, then a graceful stop; returns the per-thread instruction totals and the main thread's
    per-function profile."""
    listen = PROXY[variant]
    services._port_free("nginx proxy " + variant, listen, PORT)
    prefix = scene.fresh_dir("callgrind-%s-%d" % (variant, count))
    conf = os.path.join(prefix, "nginx.conf")
    errlog = os.path.join(prefix, "error.log")
    body = PROXY_BODY % {"upstream": "%s:%d" % (NAME, PORT), "keepalive": 32,
                         "listen": "%s:%d" % (listen, PORT)}
    with open(conf, "w") as f:
        f.write((NGINX_MAIN % {"workers": 1, "prefix": prefix, "errlog": errlog,
                               "loglevel": "notice", "temps": _temps(prefix), "body": body})
                .replace("master_process on;", "master_process off;\n"
                         # nginx re-formats its cached time strings whenever the clock moves;
                         # callgrind slows the two variants differently, so that work would
                         # land unevenly in the count. A coarse timer keeps it out.
                         "timer_resolution 3600s;"))
    env = scene.shim_env(prefix + "-shim.log") if variant == "b" else dnsmove.clean_env()
    out = os.path.join(prefix, "cg")
    proc = scene.spawn(os.path.basename(prefix),
                       ["valgrind", "--tool=callgrind", "--separate-threads=yes",
                        "--callgrind-out-file=" + out, NGINX, "-p", prefix + "/", "-c", conf,
                        "-e", errlog], env=env)
    services._wait_ready(proc, "nginx under callgrind on %s:%d" % (listen, PORT),
                         lambda: _connects(listen, PORT),
                         [errlog, scene.path(os.path.basename(prefix) + ".out")])
    t0 = time.monotonic()
    drive_requests(listen, count)
    seconds = time.monotonic() - t0
    mapped = has_shim(proc.pid)
    if mapped != (variant == "b"):
        raise HarnessError("callgrind nginx %s: libdnsaware %s mapped"
                           % (variant, "is" if mapped else "is not"))
    os.killpg(proc.pid, signal.SIGQUIT)     # graceful: callgrind writes its files at exit
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        raise HarnessError("nginx under callgrind did not stop within 60 s")
    totals = callgrind_totals(out)
    if 1 not in totals:
        raise HarnessError("callgrind wrote no totals for nginx's main thread (%s-01)" % out)
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no",
                          out + "-01"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    funcs = parse_annotate(ann.stdout) if ann.returncode == 0 else {}
    return {"totals": totals, "funcs": funcs, "seconds": seconds}


def user_system_split(scene, p):
    """The plain proxy's user and system CPU per request under wrk: what share of nginx's CPU
    the user-space instructions counted above stand for."""
    px = scene.start_proxy("a", keepalive=32)
    url = "http://%s:%d/" % (px["listen"], PORT)
    run_wrk(url, p["wrk_conns"], 1, p["wrk_threads"])
    pids = px["cpu_pids"]

    def ticks():
        u = s = 0
        for pid in pids:
            with open("/proc/%d/stat" % pid) as f:
                fields = f.read().rsplit(")", 1)[1].split()
            u += int(fields[11])
            s += int(fields[12])
        return u, s
    u0, s0 = ticks()
    res = run_wrk(url, p["wrk_conns"], max(2, p["wrk_seconds"] // 2), p["wrk_threads"])
    u1, s1 = ticks()
    scene.stop_proxy(px)
    hz = os.sysconf("SC_CLK_TCK")
    reqs = res["requests"] or 1
    return {"user_us_per_req": (u1 - u0) / hz / reqs * 1e6,
            "system_us_per_req": (s1 - s0) / hz / reqs * 1e6,
            "user_share": (u1 - u0) / max(1, (u1 - u0) + (s1 - s0))}


def bench_instructions(scene, p):
    scene.start_backend(OLD)
    n1, n2 = p["instr_requests"]
    runs = {}
    for v in "ab":
        for n in (n1, n2):
            r = instructions_run(scene, v, n)
            runs[(v, n)] = r
            log("  instructions (%s) %s, %d requests: main thread %d Ir, %s"
                % (v, VARIANTS[v], n, r["totals"][1],
                   ", ".join("thread %d %d Ir" % kv for kv in sorted(r["totals"].items())
                             if kv[0] != 1) or "no other thread"))
    split = user_system_split(scene, p)
    scene.stop_backends()
    per_req = {v: (runs[(v, n2)]["totals"][1] - runs[(v, n1)]["totals"][1]) / (n2 - n1)
               for v in "ab"}
    # Where the added instructions go: the per-request slope of every function, b minus a.
    funcs = {}
    for v, sign in (("a", -1), ("b", 1)):
        hi, lo = runs[(v, n2)]["funcs"], runs[(v, n1)]["funcs"]
        for f in set(hi) | set(lo):
            funcs[f] = funcs.get(f, 0) + sign * (hi.get(f, 0) - lo.get(f, 0)) / (n2 - n1)
    shim_own = sum(v for f, v in funcs.items() if f.endswith("[shim]"))
    top = sorted(((round(v, 1), f) for f, v in funcs.items() if abs(v) >= 0.5),
                 key=lambda t: -abs(t[0]))[:12]
    thread_ir = [sum(ir for t, ir in runs[("b", n)]["totals"].items() if t != 1) for n in (n1, n2)]
    added = per_req["b"] - per_req["a"]
    added_pct = added / per_req["a"] * 100
    return {"requests": [n1, n2],
            "method": "callgrind Ir of a single-process nginx (master_process off), main "
                      "thread, (Ir(N2) - Ir(N1)) / (N2 - N1), sequential keep-alive requests",
            "ir_per_request": {v: round(x, 1) for v, x in per_req.items()},
            "added_ir_per_request": round(added, 1),
            "added_pct_of_user_ir": round(added_pct, 2),
            "shim_own_ir_per_request": round(shim_own, 1),
            "glibc_and_other_ir_per_request": round(added - shim_own, 1),
            "top_differences": top,
            # The shim's thread over each whole run (start-up and one refresh or two): not per
            # request, and not in the figures above.
            "shim_thread_ir_total": thread_ir,
            "cpu_split_plain": {k: round(v, 3) for k, v in split.items()},
            "added_pct_of_cpu_estimate": round(added_pct * split["user_share"], 2)}


def check_instructions(res):
    problems = []
    for v, x in res["ir_per_request"].items():
        if not x > 0:
            problems.append("instructions: (%s) counted %s instructions per request" % (v, x))
    if res["shim_own_ir_per_request"] <= 0:
        problems.append("instructions: no instruction of the shim's own code per request: the "
                        "profile did not see the hooks")
    return problems


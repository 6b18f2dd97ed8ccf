"""bench_local.py resolver: the shim's background DNS queries per name per TTL against
dnsresponder.py, for 1 to 10,000 connections, run inside the namespaces, and its markdown report
(split out of tests/bench/bench_local.py, whose docstring describes the measurement).
"""

import json
import os
import sys
import time

from bench_common import E2E, PYTHON, BenchError, clean_env, md_table, verdict
from bench_local_ns import LineProc, ns_setup, ports_for, read_stats, start_sink


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

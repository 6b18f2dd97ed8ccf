"""bench_proxy.py throughput: wrk through the three proxy variants, rounds interleaved, medians,
costs against (a), background DNS queries per second, and the sanity checks (split out of
tests/bench/bench_proxy.py, whose docstring describes the measurement).
"""

import os
import statistics
import time

# bench_proxy_conf first: it puts tests/e2e on sys.path for the imports below.
from bench_proxy_conf import (BUDGET_PCT, HAPROXY_DNS, OLD, PORT, PROGRAM_DNS, SHIM_DNS,
                              VARIANTS)
from bench_proxy_wrk import run_wrk
from dnsmove import HarnessError, log  # noqa: E402


def bench_throughput(scene, p):
    scene.start_backend(OLD)
    proxies = {}
    for v in "abc":
        proxies[v] = scene.start_proxy(v, keepalive=32)
    urls = {v: "http://%s:%d/" % (proxies[v]["listen"], PORT) for v in "abc"}
    t_begin = time.time()
    if p["warmup_seconds"]:
        for v in "abc":
            run_wrk(urls[v], p["wrk_conns"], p["warmup_seconds"], p["wrk_threads"])
    orders = ["abc", "bca", "cab"]
    rounds = []
    for i in range(p["rounds"]):
        order = orders[i % 3]
        rnd = {"round": i + 1, "order": order, "runs": {}}
        for v in order:
            res = run_wrk(urls[v], p["wrk_conns"], p["wrk_seconds"], p["wrk_threads"],
                          proxies[v]["cpu_pids"])
            res.pop("raw")
            rnd["runs"][v] = res
            log("  throughput round %d %s (%s): %.0f requests/s, p99 %.2f ms, %d errors, "
                "proxy CPU %.1f us/request"
                % (i + 1, v, VARIANTS[v], res["rps"], res["p99_ms"] or -1, res["errors"],
                   res["proxy_cpu_us_per_req"] or -1))
        rounds.append(rnd)
    t_end = time.time()
    dns = scene.dns_queries(t_begin, t_end)
    for v in "abc":
        for pid in proxies[v]["cpu_pids"]:
            if not os.path.exists("/proc/%d" % pid):
                raise HarnessError("proxy %s: pid %d died during the benchmark" % (v, pid))
    for v in "abc":
        scene.stop_proxy(proxies[v])
    scene.stop_backends()

    summary = {}
    for v in "abc":
        rps = [r["runs"][v]["rps"] for r in rounds]
        p99 = [r["runs"][v]["p99_ms"] for r in rounds]
        cpu = [r["runs"][v]["proxy_cpu_us_per_req"] for r in rounds]
        summary[v] = {"label": VARIANTS[v], "rps_median": statistics.median(rps),
                      "rps_min": min(rps), "rps_max": max(rps),
                      "p99_ms_median": statistics.median(p99),
                      "p99_ms_min": min(p99), "p99_ms_max": max(p99),
                      "cpu_us_per_req_median": statistics.median(cpu),
                      "errors": sum(r["runs"][v]["errors"] for r in rounds)}
    a = summary["a"]
    for v in "bc":
        s = summary[v]
        s["rps_cost_pct"] = round((1 - s["rps_median"] / a["rps_median"]) * 100, 2)
        s["rps_cost_pct_paired_median"] = round(statistics.median(
            (1 - r["runs"][v]["rps"] / r["runs"]["a"]["rps"]) * 100 for r in rounds), 2)
        s["p99_delta_ms"] = round(s["p99_ms_median"] - a["p99_ms_median"], 3)
        s["cpu_cost_pct"] = round((s["cpu_us_per_req_median"] / a["cpu_us_per_req_median"] - 1)
                                  * 100, 1)
        s["cpu_cost_pct_paired_median"] = round(statistics.median(
            (r["runs"][v]["proxy_cpu_us_per_req"] / r["runs"]["a"]["proxy_cpu_us_per_req"] - 1)
            * 100 for r in rounds), 1)
    seconds = t_end - t_begin
    dns_rate = {
        "shim (b)": _qps(dns.get(SHIM_DNS, {}), seconds),
        "HAProxy (c)": _qps(dns.get(HAPROXY_DNS, {}), seconds),
        "nginx getaddrinfo": _qps(dns.get(PROGRAM_DNS, {}), seconds),
    }
    return {"params": {k: p[k] for k in ("wrk_threads", "wrk_conns", "wrk_seconds",
                                           "warmup_seconds", "rounds")},
            "rounds": rounds, "summary": summary, "dns_queries_per_s": dns_rate,
            "dns_queries": dns, "seconds": round(seconds, 1),
            "budget_pct": BUDGET_PCT,
            "budget_ok": summary["b"]["rps_cost_pct"] <= BUDGET_PCT}



def _qps(counts, seconds):
    return {k: round(v / seconds, 2) for k, v in sorted(counts.items())}


def check_throughput(res):
    problems = []
    for v, s in res["summary"].items():
        if not s["rps_min"] > 100:
            problems.append("%s: %.0f requests/s is not a sane figure" % (v, s["rps_min"]))
        if not 0 < s["p99_ms_max"] < 10000:
            problems.append("%s: p99 %.3f ms is not a sane figure" % (v, s["p99_ms_max"]))
        if s["errors"]:
            problems.append("%s: %d failed requests (non-2xx or socket errors)"
                            % (v, s["errors"]))
    if not res["dns_queries"].get(SHIM_DNS):
        problems.append("the shim made no background DNS query (is it resolving at all?)")
    if not res["dns_queries"].get(HAPROXY_DNS):
        problems.append("HAProxy made no DNS query (is its resolvers section in use?)")
    return problems


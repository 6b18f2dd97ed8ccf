#!/usr/bin/python3
"""Self-test of the resolver's bad days judge (matrix_baddays.py), on synthetic runs.

    /usr/bin/python3 tests/e2e/test_matrix_baddays.py

Builds request records as the per-request adapters write them (a request every 0.25 s, each
with its lookup's start and duration), the DNS query log's counts and the stats figures, for
runs that behave as the scenarios expect and for runs that must not pass: a shim that waits for
the resolver at every lookup, fails requests, serves stale past DNSAWARE_STALE_MAX or for
NXDOMAIN, or does not count its stale answers; a control that does not fail (a fault the
harness did not apply), or too few requests to tell. Exit status: 0 pass, 1 fail.
"""

import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import matrix_baddays  # noqa: E402
from matrix_clients import ALL_CLIENTS, instance_name  # noqa: E402
from matrix_scenarios import SCENARIOS  # noqa: E402

FS = 1_000_000.0          # the fault's start (epoch seconds)
failures = []


def check(cond, what):
    print("%s  %s" % ("ok   " if cond else "FAIL ", what))
    if not cond:
        failures.append(what)


class FakeScene:
    def __init__(self, sc, workdir):
        self.sc = sc
        self.net = sc.net
        self.wd = workdir

    def path(self, name):
        return os.path.join(self.wd, name)


def requests_run(fault, behave, rate=4.0, start=-3.0, end=None):
    """Request records from start to end (seconds relative to the fault's start), paced as
    loop.py does: the next request one interval after the previous one ends. behave(t) gives
    (lookup_s, ok, error) for a lookup starting at t."""
    end = fault + 5.0 if end is None else end
    reqs, t = [], start
    while t < end:
        lookup_s, ok, err = behave(t)
        r = {"type": "req", "t": FS + t, "lookup_t": FS + t + 0.001, "lookup_s": lookup_s,
             "lookups": 1, "ok": ok, "t_end": FS + t + lookup_s + 0.005,
             "backend": "127.0.0.10" if ok else None, "gai_error": err}
        if not ok:
            r["error"] = "ConnectionError: [Errno %d]" % err
        reqs.append(r)
        t = max(t + 1.0 / rate, t + lookup_s + 0.006)
    return reqs


def glibc(fault, mode="silent"):
    """Without the shim: a silent server fails a lookup in 2 s (answered again after the
    fault, the retry of one started in its last 1 s works); SERVFAIL and NXDOMAIN at once."""
    def behave(t):
        if t < 0 or t >= fault:
            return 0.001, True, None
        if mode == "nxdomain":
            return 0.001, False, -2
        if mode == "servfail":
            return 0.002, False, -3
        if t >= fault - 1.0:
            return fault + 0.01 - t, True, None
        return 2.0, False, -3
    return behave


def stale_shim(fault, first=1.8, rest=0.0005, stale_max=None, expired="glibc"):
    """A shim serving stale: the first lookup of the fault waits `first`, the rest `rest`; with
    stale_max, lookups decided after it fail (after glibc's 2 s, or at once)."""
    state = {"failing": False}

    def behave(t):
        if t < 0 or t >= fault:
            return 0.001, True, None
        wait = rest if state["failing"] else first
        state["failing"] = True
        if stale_max is not None and t + wait > stale_max:
            return (2.0 if expired == "glibc" else 0.001), False, -3
        return wait, True, None
    return behave


def run(scenario, cid, shim, reqs, stats=None, stale_lines=1, stats_files=1, dns=None,
        events=None):
    sc = SCENARIOS[scenario]
    client = ALL_CLIENTS[cid]
    fault = sc.fault[1] if sc.fault else 0.0
    events = events or ({"fault_start": FS, "fault_end": FS + fault, "stop": FS + fault + 5}
                        if sc.fault else {"start": FS, "stop": FS + 8.0})
    with tempfile.TemporaryDirectory() as wd:
        with open(os.path.join(wd, "shim-%s.log" % cid), "w") as f:
            f.write("dnsaware[1]: info x.e2e.test: serving its last good answer (stale)\n"
                    * stale_lines)
        failed = [r for r in reqs if not r["ok"]]
        res = {"client": cid, "shim": shim, "requests": len(reqs), "failed": len(failed),
               "failures": [{"t": r["t"] - FS, "error": r["error"]} for r in failed[:5]],
               "stats_files": stats_files,
               "stats": dict({"stale_answers": 0, "cache_hit": 0, "cache_miss": 0},
                             **(stats or {}))}
        res.update(matrix_baddays.analyse(FakeScene(sc, wd), client, shim, reqs, events,
                                          dns or {}))
    return matrix_baddays.judge(sc, client, res), res


def expect(verdict, want, what):
    (v, reason), _ = verdict
    check(v == want, "%s: %s (%s)" % (what, want, reason))


def ok_count(reqs, t_from, t_to):
    return len([r for r in reqs if r["ok"] and t_from <= r["t"] - FS < t_to])


def test_stale():
    for scenario, mode in (("dns-blackhole", "silent"), ("dns-servfail", "servfail")):
        fault = SCENARIOS[scenario].fault[1]
        good = requests_run(fault, stale_shim(fault))
        n = ok_count(good, 0, fault)
        expect(run(scenario, "requests-each", True, good, {"stale_answers": n}), "pass",
               "%s: the shim serves stale at once after a first wait of 1.8 s" % scenario)
        expect(run(scenario, "requests-each", True, good, {"stale_answers": n - 5}), "fail",
               "%s: fewer stale answers counted than lookups answered in the fault" % scenario)
        expect(run(scenario, "requests-each", True, good, {"stale_answers": n},
                   stale_lines=0), "fail", "%s: no log line about stale answers" % scenario)
        expect(run(scenario, "requests-each", True, good, {"stale_answers": n},
                   stale_lines=n), "fail", "%s: a log line per stale answer" % scenario)
        expect(run(scenario, "curl-each", True, good, {"stale_answers": n}, stale_lines=n,
                   stats_files=n + 12), "pass",
               "%s: curl, a process per request, each logging its stale answer" % scenario)
        waits = requests_run(fault, stale_shim(fault, rest=1.8))
        expect(run(scenario, "requests-each", True, waits, {"stale_answers": 100}), "fail",
               "%s: the shim waits 1.8 s at every lookup of the fault" % scenario)
        slow_first = requests_run(fault, stale_shim(fault, first=2.5))
        expect(run(scenario, "requests-each", True, slow_first, {"stale_answers": 100}), "fail",
               "%s: the first lookup waits 2.5 s" % scenario)
        nothing = requests_run(fault, glibc(fault, mode))
        expect(run(scenario, "requests-each", True, nothing, {"stale_answers": 0}), "fail",
               "%s: a shim that serves nothing stale fails like the control" % scenario)
        expect(run(scenario, "requests-each", False, nothing), "pass",
               "%s: the control fails every lookup in the fault" % scenario)
        expect(run(scenario, "curl-each", False, [dict(r, gai_error=None, exitcode=6)
                                                   if not r["ok"] else r for r in nothing]),
               "pass", "%s: curl's control fails with exit 6" % scenario)
        no_fault = requests_run(fault, lambda t: (0.001, True, None))
        expect(run(scenario, "requests-each", False, no_fault), "fail",
               "%s: a control that never fails (the fault was not applied)" % scenario)
        short = [r for r in nothing if r["t"] - FS < 0.3 or r["t"] - FS > fault]
        expect(run(scenario, "requests-each", False, short), "fail",
               "%s: a control with too few lookups in the fault" % scenario)
        stuck = [dict(r, ok=False, gai_error=-3, error="x") if r["t"] - FS > fault + 1 else r
                 for r in good]
        expect(run(scenario, "requests-each", True, stuck, {"stale_answers": n}), "fail",
               "%s: requests still fail after DNS answers again" % scenario)
        connect = [dict(r, gai_error=None) for r in nothing]
        expect(run(scenario, "requests-each", False, connect), "fail",
               "%s: a control failing other than in its lookup" % scenario)
    fault = SCENARIOS["dns-blackhole"].fault[1]
    two = requests_run(fault, stale_shim(fault))
    two[20]["lookup_s"] = 0.3
    expect(run("dns-blackhole", "requests-each", True, two, {"stale_answers": 100}), "fail",
           "dns-blackhole: a second slow lookup within 30 s")
    missing = requests_run(fault, stale_shim(fault))
    missing[3]["lookup_s"] = None
    expect(run("dns-blackhole", "requests-each", True, missing, {"stale_answers": 100}), "fail",
           "dns-blackhole: a request without its lookup's time")


def test_negative():
    fault = SCENARIOS["dns-nxdomain"].fault[1]
    nx = requests_run(fault, glibc(fault, "nxdomain"))
    for shim in (True, False):
        expect(run("dns-nxdomain", "requests-each", shim, nx), "pass",
               "dns-nxdomain: every lookup fails with EAI_NONAME (%s)" % (
                   "shim" if shim else "control"))
    expect(run("dns-nxdomain", "requests-each", True, nx, {"stale_answers": 3}), "fail",
           "dns-nxdomain: stale answers counted for NXDOMAIN")
    served = requests_run(fault, stale_shim(fault, first=0.001))
    expect(run("dns-nxdomain", "requests-each", True, served, {"stale_answers": 30}), "fail",
           "dns-nxdomain: the shim serves stale for a name that does not exist")
    temp = [dict(r, gai_error=-3) if not r["ok"] else r for r in nx]
    expect(run("dns-nxdomain", "requests-each", True, temp), "fail",
           "dns-nxdomain: failed as a temporary failure, not NXDOMAIN")
    curl = [dict(r, gai_error=None, exitcode=6) if not r["ok"] else r for r in nx]
    expect(run("dns-nxdomain", "curl-each", False, curl), "pass",
           "dns-nxdomain: curl fails with exit 6")


def test_stale_max():
    sc = SCENARIOS["dns-stale-max"]
    fault, limit = sc.fault[1], matrix_baddays.stale_max(sc)
    check(limit == 4.0, "dns-stale-max: DNSAWARE_STALE_MAX parsed as 4 s (%s)" % limit)
    for expired in ("glibc", "at once"):
        good = requests_run(fault, stale_shim(fault, stale_max=limit, expired=expired))
        n = ok_count(good, 0, fault)
        expect(run("dns-stale-max", "requests-each", True, good, {"stale_answers": n}), "pass",
               "dns-stale-max: stale until %g s, then failures (%s)" % (limit, expired))
    forever = requests_run(fault, stale_shim(fault))
    expect(run("dns-stale-max", "requests-each", True, forever, {"stale_answers": 100}), "fail",
           "dns-stale-max: stale served past DNSAWARE_STALE_MAX")
    never = requests_run(fault, glibc(fault))
    expect(run("dns-stale-max", "requests-each", True, never), "fail",
           "dns-stale-max: nothing served stale before DNSAWARE_STALE_MAX")
    expect(run("dns-stale-max", "requests-each", False, never), "pass",
           "dns-stale-max: the control fails every lookup in the fault")
    late = requests_run(fault, stale_shim(fault, stale_max=limit + 3))
    expect(run("dns-stale-max", "requests-each", True, late, {"stale_answers": 100}), "fail",
           "dns-stale-max: stale served 3 s past DNSAWARE_STALE_MAX")


def cache_dns(cid, shim, per_request, per_ttl, reqs, window=8.0):
    """Query-log counts: the program's per_request queries (A, AAAA) at each request's lookup,
    and per_ttl queries per second at the shim's server."""
    name = instance_name(ALL_CLIENTS[cid], shim)
    net = SCENARIOS["dns-cache"].net
    dns = {}
    for r in reqs:
        for i in range(per_request):
            dns.setdefault((name, net.program_dns, ("A", "AAAA")[i % 2]), []).append(r["t"])
    for k in range(int(window * per_ttl)):
        dns.setdefault((name, net.shim_dns, ("A", "AAAA")[k % 2]), []).append(FS + k / per_ttl)
    return dns


def test_cache():
    reqs = requests_run(8.0, lambda t: (0.001, True, None), start=0.0, end=8.0)
    n = len(reqs)
    expect(run("dns-cache", "requests-each", False, reqs,
               dns=cache_dns("requests-each", False, 2, 0, reqs)), "pass",
           "dns-cache: the control asks twice per request")
    expect(run("dns-cache", "requests-each", True, reqs, {"cache_hit": n - 1, "cache_miss": 1},
               dns=cache_dns("requests-each", True, 0, 2, reqs)), "pass",
           "dns-cache: with the cache, 2 queries per TTL from the shim and hits counted")
    expect(run("dns-cache", "curl-each", True, reqs, {"cache_hit": n - 8, "cache_miss": 8},
               dns=cache_dns("curl-each", True, 0, 0, reqs[::4]) | cache_dns(
                   "curl-each", True, 2, 0, reqs[::4])), "pass",
           "dns-cache: with the cache, a program lookup per TTL")
    expect(run("dns-cache", "requests-each", True, reqs, {"cache_hit": n},
               dns=cache_dns("requests-each", True, 2, 2, reqs)), "fail",
           "dns-cache: the cache on, but the program still asks per request")
    expect(run("dns-cache", "requests-each", True, reqs, {"cache_hit": 0},
               dns=cache_dns("requests-each", True, 0, 2, reqs)), "fail",
           "dns-cache: few queries but no cache hit counted")
    expect(run("dns-cache", "requests-each", False, reqs,
               dns=cache_dns("requests-each", False, 0, 0, reqs)), "fail",
           "dns-cache: a control that does not resolve per request")
    expect(run("dns-cache", "requests-each-nocache", True, reqs,
               dns=cache_dns("requests-each-nocache", True, 2, 2, reqs)), "pass",
           "dns-cache: the shim without the cache asks per request")
    expect(run("dns-cache", "requests-each-nocache", True, reqs, {"cache_hit": 5},
               dns=cache_dns("requests-each-nocache", True, 2, 2, reqs)), "fail",
           "dns-cache: cache hits counted with DNSAWARE_CACHE=0")
    bad = [dict(r, ok=False, gai_error=-3, error="x") if i == 5 else r
           for i, r in enumerate(reqs)]
    expect(run("dns-cache", "requests-each", True, bad, {"cache_hit": n},
               dns=cache_dns("requests-each", True, 0, 2, reqs)), "fail",
           "dns-cache: a failed request")


def main():
    check(matrix_baddays.parse_duration("250ms") == 0.25
          and matrix_baddays.parse_duration("2s") == 2
          and matrix_baddays.parse_duration("5m") == 300
          and matrix_baddays.parse_duration("1d") == 86400
          and matrix_baddays.parse_duration("7") == 7, "durations")
    test_stale()
    test_negative()
    test_stale_max()
    test_cache()
    print("%d failed" % len(failures) if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

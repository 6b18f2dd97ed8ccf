"""The resolver's bad days in the matrix (tests/e2e/matrix.py; design.md "The resolver's bad
days", issue 15): clients that resolve the name for every request (matrix_clients.PER_REQUEST)
while the DNS server drops every query, answers SERVFAIL or NXDOMAIN, and with the shim's cache.
What each run did, from its request records (each with its lookup's start and duration), the
DNS query log and the shim's stats file and log (analyse), and the verdict (judge).

The scenarios (matrix_scenarios.py) and what they expect (Scenario.expect):
  stale      dns-blackhole, dns-servfail: the shim serves the last good answer. Shim: 0 failed
             requests; of the lookups during the fault at most one per 30 s (the resolver is
             retried at most that often) takes more than 50 ms, none more than 2 s. Control:
             every request whose lookup falls in the fault fails.
  negative   dns-nxdomain: never stale for a negative answer. Shim and control alike: every
             request whose lookup falls in the fault fails, every other one works; the shim
             counts no stale answer.
  stale-max  dns-stale-max: DNSAWARE_STALE_MAX shorter than the blackhole. Shim: stale answers
             at first, then, once the stored answer is older than STALE_MAX, lookups fail as in
             the control (the timings are in matrix_scenarios.py).
  cache      dns-cache (DNSAWARE_CACHE=1, no fault): the name's DNS queries (the program's and
             the shim's, A and AAAA) per TTL stay at about 2 with the cache, where without it
             (the control, and the -nocache client runs under the shim) the program alone sends
             about 2 per request; the stats file counts cache hits.
Every run must recover: a lookup made after the DNS server answers again works.
"""

import re

from matrix_layout import TTL

EXPECTS = ("stale", "negative", "stale-max", "cache")

# Timings of the scene and of the shim's contract (seconds).
GLIBC_LOOKUP_S = 2.0     # resolv.conf "timeout:1 attempts:2": a silent server fails a lookup in 2 s
EDGE_S = 0.1             # lookups this close to a fault's start or end are not judged
FAST_S = 0.05            # a stale answer served at once (the name already failing)
FIRST_MAX_S = 2.0        # the first lookup of the fault: DNSAWARE_RESOLVE_TIMEOUT (1800ms) and
#                          what it costs to serve the stale answer
RETRY_EVERY_S = 30.0     # while a name fails, one lookup per this long may wait for the resolver
# The last good answer was stored by a lookup just before the fault began (requests every
# 0.25 s, each lookup a few ms): its age at any moment of the fault is under (moment - fault
# start) + AGE_SLACK_S.
AGE_SLACK_S = 0.7
CACHE_PER_TTL_MAX = 3.0  # DNS queries for the name per TTL with the cache (about 2: A + AAAA)
NOCACHE_PER_REQUEST_MIN = 1.5   # without it the program asks for every request (2: A + AAAA)
CACHE_HIT_SHARE_MIN = 0.5       # share of the requests answered from the cache (stats file)


def parse_duration(text):
    """A DNSAWARE_* duration (250ms, 2s, 5m, 1h, or bare seconds) in seconds."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)?", text.strip())
    if not m:
        raise ValueError("not a duration: %r" % text)
    scale = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)]
    return float(m.group(1)) * scale


def stale_max(sc):
    return parse_duration(sc.env.get("DNSAWARE_STALE_MAX", "1d"))


# --------------------------------------------------------------------------------------------
# analyse: figures from one client run
# --------------------------------------------------------------------------------------------

def lookup_span(r):
    """(start, end) of a request's lookup, epoch seconds; None when the adapter saw none."""
    if r.get("lookup_s") is None:
        return None
    start = r.get("lookup_t") or r["t"]
    return start, start + r["lookup_s"]


def lookup_failed(r):
    """Whether a failed request failed in its lookup (not, e.g., at connect)."""
    return r.get("gai_error") is not None or r.get("exitcode") in (6, 28)


def count_log_lines(path, word):
    try:
        with open(path, errors="replace") as f:
            return sum(1 for line in f if word in line.lower())
    except OSError:
        return 0


def analyse(scene, client, shim, reqs, events, dns):
    """The run's figures, merged into matrix_judge.analyse's result."""
    sc = scene.sc
    out = {"no_lookup": len([r for r in reqs if lookup_span(r) is None])}
    if shim:
        out["stale_log_lines"] = count_log_lines(scene.path("shim-%s.log" % client.cid), "stale")
    # Each request, placed by its lookup relative to the fault (or the run's start): seconds,
    # ok, the lookup's duration, and how it failed. The judge reads these.
    t_ref = events.get("fault_start") or events.get("start")
    out["timeline"] = [
        [round(s - t_ref, 3), round(e - s, 4), bool(r.get("ok")),
         None if r.get("ok") else (r.get("gai_error") if r.get("gai_error") is not None
                                   else r.get("exitcode"))]
        for r in reqs for s, e in [lookup_span(r) or (r["t"], r["t"])]]
    if sc.fault:
        fs, fe = events["fault_start"], events["fault_end"]
        out["fault_s"] = round(fe - fs, 2)
        during = [r for r in reqs if lookup_span(r) and lookup_span(r)[1] > fs
                  and lookup_span(r)[0] < fe]
        out["fault_requests"] = len(during)
        out["fault_failed"] = len([r for r in during if not r.get("ok")])
        if during:
            slow = [r for r in during if r["lookup_s"] > FAST_S]
            first = slow[0] if slow else during[0]
            out["first_lookup_s"] = round(first["lookup_s"], 3)
            rest = [r["lookup_s"] for r in during if r is not first]
            out["rest_max_lookup_s"] = round(max(rest), 3) if rest else None
            out["slow_lookups"] = [[round(lookup_span(r)[0] - fs, 3), round(r["lookup_s"], 3)]
                                   for r in slow][:10]
        out["lookup_errors"] = sorted({str(t[3]) for t in out["timeline"] if t[3] is not None})
    else:
        out.update(cache_figures(scene, client, shim, reqs, events, dns))
    return out


def cache_figures(scene, client, shim, reqs, events, dns):
    """The name's DNS queries between the start (after the warm-up: the first lookups are
    before it) and the stop: the program's (its resolv.conf's server) and the shim's (its
    DNSAWARE_NAMESERVERS), A and AAAA, per request and per TTL."""
    from matrix_clients import instance_name
    net = scene.net
    t0, t1 = events["start"], events["stop"]
    name = instance_name(client, shim)

    def count(listen):
        return sum(len([t for t in dns.get((name, listen, qtype), []) if t0 <= t < t1])
                   for qtype in ("A", "AAAA"))
    prog, shim_q = count(net.program_dns), count(net.shim_dns)
    n = len([r for r in reqs if t0 <= r["t"] < t1])
    periods = max(0.001, (t1 - t0) / TTL)
    return {"window_s": round(t1 - t0, 2), "window_requests": n,
            "queries_program": prog, "queries_shim": shim_q,
            "program_per_request": round(prog / n, 2) if n else None,
            "queries_per_ttl": round((prog + shim_q) / periods, 2)}


# --------------------------------------------------------------------------------------------
# judge
# --------------------------------------------------------------------------------------------

def _in(res, t_from, t_to, by="start"):
    """The timeline entries whose lookup starts (by="start") or ends (by="end") in
    [t_from, t_to), seconds relative to the fault's start."""
    return [e for e in res["timeline"]
            if t_from <= (e[0] if by == "start" else e[0] + e[1]) < t_to]


def _show(entries, n=3):
    """A few timeline entries, for a verdict's reason (the failure: gai errno or curl exit)."""
    return ", ".join("lookup at %+.2f s (%.3f s) %s" % (e[0], e[1], "ok" if e[2] else
                                                        "failed (%s)" % e[3])
                     for e in entries[:n]) + (", ..." if len(entries) > n else "")


def judge(sc, client, res):
    """Returns (verdict, reason) for a run of a bad-days scenario."""
    if res["no_lookup"]:
        return "fail", ("the adapter recorded no lookup for %d requests (lookup_s missing): it "
                        "cannot be judged" % res["no_lookup"])
    if not res["requests"]:
        return "fail", "no request at all"
    if sc.expect == "cache":
        return judge_cache(sc, client, res)
    fault = res["fault_s"]
    # Every run: the requests before the fault work, and so do those after it (the DNS server
    # answers again: a lookup works with the shim as without it).
    before = [e for e in _in(res, -1e9, -EDGE_S, by="end") if not e[2]]
    if before:
        return "fail", "%d requests failed before the fault: %s" % (len(before), _show(before))
    after = _in(res, fault + EDGE_S, 1e9)
    if not after:
        return "fail", "no request after the fault ended: recovery not shown"
    bad = [e for e in after if not e[2]]
    if bad:
        return "fail", ("%d of %d requests failed after the DNS server answered again: %s"
                        % (len(bad), len(after), _show(bad)))
    if sc.expect == "negative":
        return judge_negative(sc, res, fault)
    if not res["shim"]:
        return judge_fault_control(res, fault)
    if sc.expect == "stale":
        return judge_stale(sc, res, fault)
    return judge_stale_max(sc, res, fault)


def must_fail(res, t_from, t_to, what, need=3):
    """Every lookup started in [t_from, t_to) failed in the lookup, and there were `need` at
    least (a run that shows nothing proves nothing). Returns why not, or None."""
    window = _in(res, t_from, t_to)
    if len(window) < need:
        return ("only %d requests looked the name up between %+.1f s and %+.1f s of the fault "
                "(%s; at least %d needed)" % (len(window), t_from, t_to, what, need))
    worked = [e for e in window if e[2]]
    if worked:
        return ("%d of %d lookups between %+.1f s and %+.1f s worked (%s: all should fail): %s"
                % (len(worked), len(window), t_from, t_to, what, _show(worked)))
    other = [e for e in window if e[3] is None or not (e[3] in (-2, -3, 6, 28))]
    if other:
        return "requests failed other than in their lookup: %s" % _show(other)
    return None


def judge_fault_control(res, fault):
    # A lookup started less than glibc's timeout before the end may be answered by its retry.
    why = must_fail(res, EDGE_S, fault - GLIBC_LOOKUP_S - 0.5, "without the shim, DNS down")
    if why:
        return "fail", "control: " + why
    return "pass", "control: every lookup in the fault failed (%d of %d requests failed)" % (
        res["failed"], res["requests"])


def judge_stale(sc, res, fault):
    if res["failed"]:
        return "fail", "%d failed requests with the shim (expected 0): %s" % (
            res["failed"], _show([e for e in res["timeline"] if not e[2]]))
    allowed = 1 + int(fault // RETRY_EVERY_S)
    slow = res.get("slow_lookups") or []
    if len(slow) > allowed:
        return "fail", ("%d lookups during the fault took over %.0f ms (allowed %d: the first, "
                        "and one per %.0f s): %s" % (len(slow), FAST_S * 1000, allowed,
                                                     RETRY_EVERY_S, slow[:4]))
    too_slow = [s for s in slow if s[1] > FIRST_MAX_S]
    if too_slow:
        return "fail", "a lookup during the fault took %.2f s (at most %.1f s)" % (
            too_slow[0][1], FIRST_MAX_S)
    if res["fault_requests"] < fault * sc.rate / 4:
        return "fail", ("only %d requests during the %.0f s fault: the client stalled"
                        % (res["fault_requests"], fault))
    why = stale_metrics(res, _in(res, EDGE_S, fault))
    if why:
        return "fail", why
    return "pass", ("0 failed; first lookup in the fault %.2f s, the others at most %.3f s; "
                    "%d stale answers" % (res["first_lookup_s"], res["rest_max_lookup_s"] or 0,
                                          res["stats"]["stale_answers"]))


def stale_metrics(res, served):
    """The stats file counts a stale answer for every lookup that worked inside the fault, and
    the log tells it in a few lines (not one per call). Returns why not, or None."""
    n = len([e for e in served if e[2] and e[0] + e[1] < res["fault_s"]])
    st = res.get("stats") or {}
    if st.get("stale_answers", 0) < max(1, n):
        return ("%d lookups were answered inside the fault, but the stats files count %d stale "
                "answers (dnsaware_stale_answers_total)" % (n, st.get("stale_answers", 0)))
    if res.get("stale_log_lines", 0) < 1:
        return "the shim's log has no line saying the name is served stale"
    cap = 2 * max(1, res.get("stats_files", 1)) + 2
    if res["stale_log_lines"] > cap:
        return ("the shim's log has %d lines about stale answers from %d processes (one when "
                "a name starts being served stale and one when it recovers, not one per call)"
                % (res["stale_log_lines"], res.get("stats_files", 1)))
    return None


def judge_stale_max(sc, res, fault):
    limit = stale_max(sc)
    # Stale while the stored answer is surely younger than STALE_MAX: lookups that ended
    # (were decided) before STALE_MAX - AGE_SLACK_S into the fault; the first lookup of the
    # fault ends after DNSAWARE_RESOLVE_TIMEOUT, well before that.
    served = _in(res, -1e9, limit - AGE_SLACK_S, by="end")
    served = [e for e in served if e[0] + e[1] >= 0]
    if not served:
        return "fail", ("no lookup was decided in the first %.1f s of the fault, while the "
                        "stored answer was fresh enough" % (limit - AGE_SLACK_S))
    bad = [e for e in served if not e[2]]
    if bad:
        return "fail", ("%d lookups failed while the stored answer was younger than "
                        "DNSAWARE_STALE_MAX (%g s): %s" % (len(bad), limit, _show(bad)))
    # Past STALE_MAX: every lookup started after it fails, as without the shim (up to the
    # retry of glibc's own lookup near the end, as in the control).
    why = must_fail(res, limit + 0.3, fault - GLIBC_LOOKUP_S - 0.5,
                    "stored answer older than DNSAWARE_STALE_MAX=%gs" % limit)
    if why:
        return "fail", why
    why = stale_metrics(res, served)
    if why:
        return "fail", why
    return "pass", ("served stale for the first %.1f s (%d lookups), then %d of %d requests "
                    "failed as without the shim" % (limit, len(served), res["failed"],
                                                    res["requests"]))


def judge_negative(sc, res, fault):
    run = "" if res["shim"] else "control: "
    window = _in(res, EDGE_S, fault - EDGE_S)
    why = must_fail(res, EDGE_S, fault - EDGE_S, "NXDOMAIN")
    if why:
        return "fail", run + why
    positive = [e for e in window if e[3] not in (-2, 6)]
    if positive:
        return "fail", run + ("lookups failed, but not as a name that does not exist "
                              "(EAI_NONAME, curl exit 6): %s" % _show(positive))
    if res["shim"] and (res.get("stats") or {}).get("stale_answers", 0):
        return "fail", ("the shim served %d stale answers for a name the DNS said does not "
                        "exist" % res["stats"]["stale_answers"])
    return "pass", run + "every lookup in the NXDOMAIN fault failed (%d of %d requests)" % (
        res["failed"], res["requests"])


def judge_cache(sc, client, res):
    run = "" if res["shim"] else "control: "
    if res["failed"]:
        return "fail", "%s%d failed requests: %s" % (
            run, res["failed"], _show([e for e in res["timeline"] if not e[2]]))
    if not res["window_requests"]:
        return "fail", run + "no request between the start and the stop"
    env = dict(sc.env, **client.shim_env)
    cached = res["shim"] and env.get("DNSAWARE_CACHE") == "1"
    st = res.get("stats") or {}
    if not cached:
        if res["program_per_request"] < NOCACHE_PER_REQUEST_MIN:
            return "fail", ("%s%.2f program DNS queries per request without the cache (expected "
                            "about 2, A + AAAA): the client does not resolve per request"
                            % (run, res["program_per_request"]))
        if res["shim"] and st.get("cache_hit", 0):
            return "fail", "%d cache hits counted with DNSAWARE_CACHE=0" % st["cache_hit"]
        return "pass", "%s%.2f program DNS queries per request" % (run,
                                                                 res["program_per_request"])
    if res["queries_per_ttl"] > CACHE_PER_TTL_MAX:
        return "fail", ("%.2f DNS queries per TTL for the name with the cache (%d program, %d "
                        "shim in %.1f s; at most %.1f)" % (
                            res["queries_per_ttl"], res["queries_program"],
                            res["queries_shim"], res["window_s"], CACHE_PER_TTL_MAX))
    hits = st.get("cache_hit", 0)
    if hits < CACHE_HIT_SHARE_MIN * res["requests"]:
        return "fail", ("the stats files count %d cache hits (%d misses) for %d requests"
                        % (hits, st.get("cache_miss", 0), res["requests"]))
    return "pass", ("%.2f DNS queries per TTL (%.2f program queries per request), %d cache "
                    "hits" % (res["queries_per_ttl"], res["program_per_request"], hits))

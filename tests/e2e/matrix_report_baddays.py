"""The section "The resolver's bad days" of docs/compatibility.md (matrix_report.py calls it):
the per-request clients under DNS faults and with the cache (matrix_baddays.py), one table per
scenario, from the results of `matrix.py run dns-blackhole dns-servfail dns-nxdomain
dns-stale-max dns-cache --results DIR`."""

import matrix_baddays
import matrix_clients
import matrix_scenarios

INTRO = """## The resolver's bad days

Clients that resolve the name for every request and open a fresh connection each time, while
the DNS server fails (design.md, "The resolver's bad days"; `tests/e2e/matrix_baddays.py`
judges): **requests-each** is python `requests.get(url)` without a Session (its adapter times
`socket.getaddrinfo`), **curl-each** the curl binary, one process per request (its
`%{{time_namelookup}}`; the processes share the shim's stored answers through
`DNSAWARE_STATE_DIR`, a fresh directory per run). {rate} requests/s each, one at a time, TTL 1 s,
the shim's defaults otherwise (`DNSAWARE_RESOLVE_TIMEOUT` 1800ms, `DNSAWARE_STALE_MAX` 1d);
each beside a control without the shim. The programs' resolv.conf has `timeout:1 attempts:2`:
without the shim a lookup against a silent server fails after 2 s (glibc's defaults would make
it 10 s). A lookup "in the fault" is one that overlaps it.

- **dns-blackhole, dns-servfail**: with the shim no request may fail; of the lookups in the
  fault, at most one per 30 s (the first) may take over 50 ms, and none over 2 s; the stats
  files must count a stale answer (`dnsaware_stale_answers_total`) for every lookup answered in
  the fault, and the log say it in a few lines, not one per call. Every control must fail each
  request whose lookup starts in the fault (up to 2.5 s before its end, when glibc's retry may
  already be answered).
- **dns-nxdomain**: the shim must fail each request whose lookup falls in the fault exactly as
  the control does (`EAI_NONAME`, curl exit 6), and count no stale answer: a name that is gone is
  gone.
- **dns-stale-max** (`DNSAWARE_STALE_MAX=4s`, 20 s of silence): lookups decided in the first
  3.3 s of the fault must be served stale, every one started after 4.3 s must fail as in the
  control (the stored answer is then surely older than 4 s).
- **dns-cache** (`DNSAWARE_CACHE=1`, no fault): the name's DNS queries (the program's and the
  shim's, A and AAAA) counted over {window} s after the warm-up. With the cache at most 3 per
  TTL and at least half the requests counted as cache hits; without it (the controls, and the
  `-nocache` runs under the shim with `DNSAWARE_CACHE=0`) the program asks for every request.
- Every run, shim or control, must have no failed request before the fault and none after it.

Run them alone (all five at once, each in its own namespaces; about {seconds} s):

```sh
/usr/bin/python3 tests/e2e/matrix.py run dns-blackhole dns-servfail dns-nxdomain dns-stale-max \\
    dns-cache --workdir /tmp/bad-days --results /tmp/results
```
"""


def is_baddays(name):
    sc = matrix_scenarios.SCENARIOS.get(name)
    return sc is not None and sc.expect in matrix_baddays.EXPECTS


def fmt_s(v, digits=2):
    return "–" if v is None else "%.*f" % (digits, v)


def verdict(r):
    return "**FAIL**" if r["verdict"] == "fail" else "pass"


def fault_row(r):
    st = r.get("stats") or {}
    return [r["client"], "shim" if r["shim"] else "control", verdict(r), str(r["requests"]),
            str(r["failed"]),
            "%s of %s" % (r.get("fault_failed", "–"), r.get("fault_requests", "–")),
            fmt_s(r.get("first_lookup_s")), fmt_s(r.get("rest_max_lookup_s"), 3),
            str(st.get("stale_answers", 0)) if r["shim"] else "–",
            str(r.get("stale_log_lines", 0)) if r["shim"] else "–"]


FAULT_COLS = ["client", "run", "verdict", "requests", "failed", "failed / requests with a lookup "
              "in the fault", "first lookup in the fault (s)", "slowest other lookup in the "
              "fault (s)", "stale answers (stats)", "log lines about stale"]


def cache_row(r):
    st = r.get("stats") or {}
    return [r["client"], "shim" if r["shim"] else "control", verdict(r), str(r["requests"]),
            str(r["failed"]), fmt_s(r.get("program_per_request")), fmt_s(r.get("queries_per_ttl")),
            "%s / %s" % (r.get("queries_program", "–"), r.get("queries_shim", "–")),
            "%d / %d" % (st.get("cache_hit", 0), st.get("cache_miss", 0)) if r["shim"] else "–"]


CACHE_COLS = ["client", "run", "verdict", "requests", "failed", "program DNS queries per "
              "request", "DNS queries per TTL (all)", "queries: program / shim",
              "cache hits / misses (stats)"]


def section(runs):
    """The section's lines, or [] when the results have none of its scenarios."""
    names = [s for s in matrix_scenarios.SCENARIOS if s in runs and is_baddays(s)]
    if not names:
        return []
    cache = next((runs[s] for s in names if matrix_scenarios.SCENARIOS[s].expect == "cache"),
                 None)
    window = next((r.get("window_s") for r in (cache or {}).get("results", [])
                   if r.get("window_s")), 8)
    out = [INTRO.format(rate="%g" % runs[names[0]]["rate"], window="%.0f" % window,
                        seconds="%.0f" % max(runs[s].get("duration", 30) for s in names))]
    versions = {}
    for s in names:
        for r in runs[s]["results"]:
            versions.setdefault(r["client"], r.get("version"))
    out.append("| client | what runs | version |")
    out.append("|---|---|---|")
    for c, v in versions.items():
        label = matrix_clients.ALL_CLIENTS[c].label if c in matrix_clients.ALL_CLIENTS else c
        out.append("| %s | %s | %s |" % (c, label, v or "–"))
    out.append("")
    for s in names:
        run = runs[s]
        sc = matrix_scenarios.SCENARIOS[s]
        out.append("### %s: %s\n" % (s, run["title"]))
        ev = ", ".join("%s %+.1f s" % (k, v) for k, v in sorted(run["events"].items(),
                                                                  key=lambda kv: kv[1]))
        out.append("Events: %s.\n" % ev)
        cols, row = (CACHE_COLS, cache_row) if sc.expect == "cache" else (FAULT_COLS, fault_row)
        out.append("| " + " | ".join(cols) + " |")
        out.append("|---" * len(cols) + "|")
        for r in run["results"]:
            out.append("| " + " | ".join(row(r)) + " |")
        out.append("")
        notes = ["- %s (%s): %s" % (r["client"], "shim" if r["shim"] else "control",
                                    r["reason"].replace("|", "/")[:400])
                 for r in run["results"]]
        out += notes + [""]
    return out

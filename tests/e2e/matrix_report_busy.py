"""The section "Busy connections" of docs/compatibility.md (matrix_report.py calls it): the busy
cells (issue 16; matrix_busy.py), from the results of

    matrix.py run busy-20 busy busy-back-to-back --results DIR
    matrix.py run busy-100 --results DIR
    matrix.py run busy-tls-20 busy-tls-50 busy-tls-100 --results DIR

Tables with a row per client and a column per cell (20, 50, 100 requests/s, plain and over
HTTPS): failed requests per move, which path of the shim shut the connections down, and the
reaction time; then the back-to-back clients. The per-client "checks a pooled connection before
reuse" comes from the table in matrix_notes.md (the section "What each client does")."""

import os
import re

import matrix_clients
import matrix_scenarios
from matrix_scenarios import BUSY_GROUPS, BUSY_RATES, busy_name

NOTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "matrix_notes.md")
CHECK_HEADER = "checks a pooled connection before reuse"
BACK_TO_BACK = "busy-back-to-back"
SHORT_RATE = 0.9    # a client under this share of the cell's rate is marked with its own

INTRO = """## Busy connections

One keep-alive connection per client, busy at 20, 50 or 100 requests/s (plain HTTP, or HTTPS
for the clients whose adapter has `--tls`), while the name moves three times: A to B to C to D,
4.5 s apart, each move after the previous one's deadline (change + TTL + 3 s); no address comes
back (the shim would take an address that returns within four answers of its removal for a
rotating name). Each client beside its control; the traffic stops 0.5 s after the last
deadline. A move's failed requests are those of the client from its change to the next one
(the shim acts only after a change). Asserted: each shim run moves at every move, each move's last
request on a removed address comes within TTL + 2 s of it, each control stays with no failed
request, and at 20 and 50 requests/s (plain and HTTPS) requests, urllib3, node, redis-py, curl,
Java and nginx lose no request (issue 16's goal). The others are reported: libpq never checks a
pooled connection and loses the request the send path fails.

Before issue 16 (only the send path could shut a busy connection), requests, node, redis-py and
libpq lost one request per move in every cell, plain and HTTPS, and every shutdown went through
the send path; the background thread now catches the gaps between exchanges (docs/how-it-works.md,
"Busy connections").

Cells: failed requests per move (failed / moves); "at N/s" when the client kept less than
{short:.0%} of the cell's rate over the moves (a loaded machine). "checks a pooled connection
before reuse" is from the table of
[What each client does](#what-each-client-does-and-what-the-operator-can-set).
The three groups run as three meson tests, each group's scenarios side by side (wall time on
this machine: {times}):

```sh
meson test -C build matrix-busy matrix-busy-100 matrix-busy-tls -v
/usr/bin/python3 tests/e2e/matrix.py run busy-20 busy busy-back-to-back --results /tmp/results
/usr/bin/python3 tests/e2e/matrix.py run busy-100 --results /tmp/results
/usr/bin/python3 tests/e2e/matrix.py run busy-tls-20 busy-tls-50 busy-tls-100 --results /tmp/results
```
"""

BACK_TO_BACK_INTRO = """### Back-to-back clients ({name})

{title}. The backend answers every request 0.1 s late (`dnsmove.py backend --delay 0.1`); the
python adapters run with `--back-to-back` (`tests/e2e/clients/loop.py`): the next request is
called the instant the previous one returned, never retried by the adapter, and each record
carries the gap it left, from the previous request's return to this one's call, as the program
sees it (the socket-level gap is that plus the library's own work before its first write).
requests does not retry a request (`max_retries=0`); urllib3 retries (default `Retry(3)`).
Such a connection has no idle boundary: while a request waits for its answer it is not idle, and
the gap after the answer is tens of microseconds, where the background thread needs 6 ms of quiet
(looking every 2 ms). 500 ms into the drain the send path fails the next request with `EPIPE`
before a byte of it is sent: urllib3 retries it on a new connection and loses nothing; requests
loses it, one request per move unless a rare longer gap (a pause of the program's own) lets the
idle path take the connection first.
"""


def is_busy(name):
    return any(s.name == name for s in matrix_scenarios.BUSY)


def in_scenario_tables(name):
    """Whether the generic part of the report (summary, one table per scenario) shows it: of
    the busy cells only busy (50 requests/s), the column it always had."""
    return not is_busy(name) or name == "busy"


def pooled_checks(path=NOTES):
    """{client: "yes" | "no" | ...} from the notes' table whose header names CHECK_HEADER;
    "as java" is resolved to java's. {} when the notes have no such table."""
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError:
        return {}
    col, raw = None, {}
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if col is None:
            if line.startswith("|") and CHECK_HEADER in cells:
                col = cells.index(CHECK_HEADER)
            continue
        if not line.startswith("|"):
            break
        if set(cells[0]) <= set("-: ") or len(cells) <= col:
            continue
        for cid in cells[0].split(","):
            raw[cid.strip()] = cells[col]
    out = {}
    for cid, text in raw.items():
        m = re.match(r"as ([\w-]+)", text)
        if m and m.group(1) in raw:
            text = raw[m.group(1)]
        m = re.match(r"(yes|no)\b", text)
        out[cid] = m.group(1) if m else text.split(" (")[0]
    return out


def cells(runs):
    """[(column title, scenario name, rate)] of the busy cells present in runs."""
    out = []
    for tls in (False, True):
        for rate in BUSY_RATES:
            name = busy_name(rate, tls)
            if name in runs:
                out.append(("%d/s%s" % (rate, " TLS" if tls else ""), name, rate))
    return out


def shim_run(run, client):
    return next((r for r in run["results"] if r["client"] == client and r["shim"]), None)


def failed_cell(r, rate):
    if r is None:
        return "–"
    if r["verdict"] == "fail":
        return "**FAIL**"
    if r.get("failed_per_move") is None:
        return "?"
    text = "%g (%d/%d)" % (r["failed_per_move"], r["failed_in_moves"], r["moves_total"])
    got = r.get("rate_achieved")
    if got is not None and got < SHORT_RATE * rate:
        text += " at %.0f/s" % got
    return text


def paths_cell(r):
    st = (r or {}).get("stats")
    if not st or "shutdown_dns_idle" not in st:
        return "–"
    return "%d / %d / %d" % (st["shutdown_dns_idle"], st["shutdown_dns_send"],
                             st["shutdown_dns_deadline"])


def reaction_cell(r):
    if r is None or r.get("moves") is None:
        return "–"
    olds = [m["last_old_s"] for m in r["moves"] if m.get("last_old_s") is not None]
    return "%.2f" % max(olds) if olds else "none"


def clients_of(runs, names):
    order = [c.cid for c in matrix_clients.CLIENTS]
    seen = {r["client"] for s in names for r in runs[s]["results"]}
    return [c for c in order if c in seen] + sorted(seen - set(order))


def table(runs, cols, title, fn, checks=None):
    head = ["client"] + (["checks a pooled connection before reuse"] if checks is not None
                         else []) + [c[0] for c in cols]
    out = [title, "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for cid in clients_of(runs, [c[1] for c in cols]):
        row = [cid] + ([checks.get(cid, "–")] if checks is not None else [])
        row += [fn(shim_run(runs[name], cid), rate) for _, name, rate in cols]
        out.append("| " + " | ".join(row) + " |")
    return out + [""]


def group_times(runs):
    out = []
    for test, names in BUSY_GROUPS.items():
        got = [runs[s].get("duration") for s in names if s in runs]
        if got and all(got):
            out.append("%s %.0f s" % (test, max(got)))
    return ", ".join(out) or "not recorded"


def back_to_back(runs):
    if BACK_TO_BACK not in runs:
        return []
    run = runs[BACK_TO_BACK]
    out = [BACK_TO_BACK_INTRO.format(name=BACK_TO_BACK, title=run["title"].capitalize())]
    cols = ["client", "run", "verdict", "requests", "failed per move (each move)",
            "gap after an answer, µs: median / p99 / max", "gaps before the failed requests, µs",
            "answer time, median ms", "shut down: idle / send / deadline"]
    out += ["| " + " | ".join(cols) + " |", "|---" * len(cols) + "|"]
    for r in run["results"]:
        g = r.get("gap_us") or {}
        each = ", ".join(str(m["failed"]) for m in r.get("moves", []))
        out.append("| " + " | ".join([
            r["client"], "shim" if r["shim"] else "control",
            "**FAIL**" if r["verdict"] == "fail" else "pass", str(r["requests"]),
            "%g (%s)" % (r.get("failed_per_move", 0), each),
            "%s / %s / %s" % (g.get("p50"), g.get("p99"), g.get("max")),
            ", ".join("%g" % v for v in r.get("gap_before_failed_us") or []) or "–",
            "%s" % r.get("answer_ms_p50"), paths_cell(r) if r["shim"] else "–"]) + " |")
    return out + [""]


def notes(runs, names):
    out = []
    errors = {}
    for s in names:
        for r in runs[s]["results"]:
            if r["verdict"] != "pass":
                out.append("- %s, %s (%s): %s" % (s, r["client"], "shim" if r["shim"]
                                                  else "control", r["reason"]))
            if r["shim"] and r.get("failures"):
                errors.setdefault(r["client"], (s, r["failures"][0]["error"]))
    for cid, (s, err) in errors.items():
        out.append("- %s's failed requests (e.g. in %s): `%s`"
                   % (cid, s, err.replace("|", "/")[:160]))
    return out + ([""] if out else [])


def section(runs):
    """The section's lines, or [] when the results have none of the busy scenarios."""
    names = [s.name for s in matrix_scenarios.BUSY if s.name in runs]
    if not names:
        return []
    out = [INTRO.format(short=SHORT_RATE, times=group_times(runs))]
    cols = cells(runs)
    if cols:
        out += table(runs, cols, "### Busy connections: failed requests per move",
                     failed_cell, checks=pooled_checks())
        out += table(runs, cols, "### Which path shut the busy connections down (idle: the "
                     "background thread at an idle boundary / send: the send path, at the next "
                     "request / deadline), over the three moves", lambda r, rate: paths_cell(r))
        out += table(runs, cols, "### Reaction: the last request answered by an address the "
                     "name had left, seconds after the move (the slowest of the three moves)",
                     lambda r, rate: reaction_cell(r))
        out.append("Controls: every control stayed on the first address with no failed "
                   "request at every move, unless listed below.\n")
    out += back_to_back(runs)
    out += notes(runs, names)
    return out

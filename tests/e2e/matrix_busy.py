"""Busy connections in the matrix (tests/e2e/matrix.py; issue 16): what a client run did at each
of the run's moves. The busy scenarios (matrix_scenarios.BUSY: busy-20, busy, busy-100,
busy-tls-20/50/100, busy-back-to-back) move the name three times, A to B to C to D, each move
after the previous one's deadline, so one run gives three moves per client; their failed
requests are reported (per move), not asserted. matrix_judge.analyse calls analyse() for every
scenario with several moves (Scenario.via); matrix_report_busy.py writes the report's section.

A move's window runs from its change to the next one's (the last: to the stop). In it:
  - failed: the client's requests that failed (the shim acts after the change, so every
    failure a move causes falls in its window);
  - last_old_s: the last request answered by an address the name no longer has (seconds after
    the change), None when there was none;
  - moved: every request sent from the move's deadline (change + TTL + 3 s) to the window's
    end was answered by a current address, and at least one was.
"""

STATS = (50, 90, 99)


def moves(sc, events):
    """Each move of the run, in order: its change time, the addresses before and after it,
    its deadline (its change + the offset the run's deadline has from the last change) and
    the end of its window."""
    steps = sc.steps()
    keys = ["change"] + ["change%d" % i for i in range(2, len(steps))]
    ts = [events[k] for k in keys if k in events]
    if len(ts) != len(steps) - 1:
        return []
    offset = events["deadline"] - ts[-1]
    out = []
    for i, t in enumerate(ts):
        out.append({"t": t, "old": set(steps[i]), "new": set(steps[i + 1]),
                    "deadline": t + offset,
                    "t_next": ts[i + 1] if i + 1 < len(ts) else events["stop"]})
    return out


def analyse(sc, reqs, events, t_ref):
    """The per-move figures of one client run, and the run's move fields (moved, last_old_s,
    after_deadline, after_deadline_on_old) over all its moves, replacing the single-move ones."""
    per = []
    for m in moves(sc, events):
        window = [r for r in reqs if m["t"] <= r["t"] < m["t_next"]]
        stray = [r for r in window
                 if r.get("backend") is not None and r.get("backend") not in m["new"]]
        after = [r for r in window if r["t"] >= m["deadline"]]
        after_stray = [r for r in stray if r["t"] >= m["deadline"]]
        failed = [r for r in window if not r.get("ok")]
        per.append({
            "t": round(m["t"] - t_ref, 3), "to": sorted(m["new"]),
            "requests": len(window), "failed": len(failed),
            "failed_at_s": [round(r["t"] - m["t"], 3) for r in failed[:3]],
            "last_old_s": round(stray[-1]["t"] - m["t"], 3) if stray else None,
            "after_deadline": len(after), "after_deadline_on_old": len(after_stray),
            "moved": bool(after) and not after_stray and any(
                r.get("ok") and r.get("backend") in m["new"] for r in after),
        })
    if not per:
        return {}
    olds = [p["last_old_s"] for p in per if p["last_old_s"] is not None]
    first = events["change"]
    out = {
        "moves": per,
        "moves_total": len(per),
        "moves_moved": len([p for p in per if p["moved"]]),
        "failed_in_moves": sum(p["failed"] for p in per),
        "failed_per_move": round(sum(p["failed"] for p in per) / len(per), 2),
        "failed_before_moves": len([r for r in reqs if r["t"] < first and not r.get("ok")]),
        "moved": all(p["moved"] for p in per),
        "last_old_s": max(olds) if olds else None,
        "after_deadline": sum(p["after_deadline"] for p in per),
        "after_deadline_on_old": sum(p["after_deadline_on_old"] for p in per),
    }
    # The rate the client kept from the first move to the stop (requests sent per second; not
    # its start, where a JVM's first TLS handshake may take seconds): on a loaded machine a
    # cell's clients may fall short of its nominal rate, and the report says so.
    span = max(0.001, events["stop"] - first)
    out["rate_achieved"] = round(sum(p["requests"] for p in per) / span, 1)
    if sc.back_to_back:
        out.update(gaps(reqs))
    return out


def percentile(values, p):
    """The p-th percentile of values (nearest rank), or None."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * len(s) + 0.5)) - 1))]


def gaps(reqs):
    """Back-to-back clients: the gap between an answer's end and the next request's start as
    the adapter measured it (loop.py --back-to-back's gap_s), in microseconds; the gaps before
    the requests that failed; and how long the answers took (ms)."""
    gap = [r["gap_s"] * 1e6 for r in reqs if r.get("gap_s") is not None]
    out = {"gap_us": {"n": len(gap), "max": round(max(gap), 1) if gap else None}}
    for p in STATS:
        v = percentile(gap, p)
        out["gap_us"]["p%d" % p] = None if v is None else round(v, 1)
    out["gap_before_failed_us"] = [round(r["gap_s"] * 1e6, 1) for r in reqs
                                   if not r.get("ok") and r.get("gap_s") is not None][:6]
    answer = [(r["t_end"] - r["t"]) * 1e3 for r in reqs if r.get("ok")]
    v = percentile(answer, 50)
    out["answer_ms_p50"] = None if v is None else round(v, 1)
    return out

"""The judge of tests/e2e/balance.py (issue 17): from the runs' records, stats files and logs, a
PASS/FAIL line per assertion and the tables of where the connections went (split out of
balance.py, whose docstring says what each scenario asserts)."""

import collections

from balance_layout import (ADDRS, ADDRS6, COOLDOWN_PORT, GROW_AT, QUIET, REFUSING, RUNS, SAMPLE,
                            SCENARIOS, SETTLE, tag)
from dnsmove_ns import Failure, log


class Verdicts:
    def __init__(self):
        self.items = []       # (passed, scenario, run, text)

    def check(self, passed, sc, bal, text):
        self.items.append((bool(passed), sc, "balance" if bal else "control", text))


def reqs_of(recs):
    return [r for r in recs if r["type"] == "req"]


def spread(reqs):
    return collections.Counter(r["backend"] for r in reqs if r.get("ok"))


def pct(n, total):
    return "%d (%.0f%%)" % (n, 100.0 * n / total) if total else "0"


def table(title, rows):
    log("")
    log(title)
    w = max(len(r[0]) for r in rows)
    log("  %-*s  %18s  %18s" % (w, "", "balance", "control"))
    for label, a, b in rows:
        log("  %-*s  %18s  %18s" % (w, label, a, b))


def recycle_text(sh):
    s = sh["stats"]
    stats = ("%d/%d/%d" % (s["idle"], s["send"], s["deadline"])) if s else "no series"
    return "%s, %d lines" % (stats, len(sh["recycles"]))


def requests_row(out):
    return ("requests (failed)",) + tuple("%d (%d)" % (len(out[b]["reqs"]), len(out[b]["failed"]))
                                          for b in (True, False))


RECYCLE_ROWS = "balance recycles: stats idle/send/deadline, log"
DNS_ROWS = "shutdowns for DNS (address left)"


def check_accounting(v, sc, bal, sh):
    """Balance: the stats file counts the recycles the log shows. Control: none at all."""
    total = sum(sh["stats"].values()) if sh["stats"] else None
    if bal:
        v.check(total is not None, sc, bal,
                "stats file has dnsaware_sockets_shutdown_total{reason=\"balance\"}"
                + ("" if total is not None else ": missing"))
        if total is not None:
            v.check(total == len(sh["recycles"]), sc, bal,
                    "stats balance recycles (%d) = \"for balance\" shutdown lines (%d)"
                    % (total, len(sh["recycles"])))
    else:
        v.check(not total and not sh["balance_lines"], sc, bal,
                "DNSAWARE_BALANCE=0 recycles nothing for balance (stats %s, %d lines)"
                % (total, len(sh["balance_lines"])))


def slot_history(reqs):
    """slot -> its requests in order; and slot -> times of its reconnects (after the first)."""
    by_slot = collections.defaultdict(list)
    for r in reqs:
        by_slot[r["slot"]].append(r)
    reconnects = {s: [r["t"] for r in rs if r.get("reconnect") in ("dropped", "after-error")]
                  for s, rs in by_slot.items()}
    return by_slot, reconnects


def latest_spread(reqs, when):
    """Per address, how many slots' latest answer (ended by `when`) came from it."""
    latest = {}
    for r in reqs:
        if r.get("ok") and r["t_end"] <= when:
            prev = latest.get(r["slot"])
            if prev is None or r["t_end"] >= prev[0]:
                latest[r["slot"]] = (r["t_end"], r["backend"])
    return collections.Counter(b for _, b in latest.values())


def judge_grow(scene, v, sc):
    spec = SCENARIOS[sc]
    n, tol, addrs = spec["conns"], spec["tol"], spec["grown"]
    fair = -(-n // len(addrs))
    out = {}
    for bal in (True, False):
        t = tag(sc, bal)
        reqs = reqs_of(scene.records(t))
        failed = [r for r in reqs if not r.get("ok")]
        _, reconnects = slot_history(reqs)
        end = max(r["t_end"] for r in reqs)
        final = latest_spread(reqs, end)
        sh = scene.shim(t)
        out[bal] = dict(reqs=reqs, failed=failed, final=final, sh=sh,
                        reconnects=sum(len(x) for x in reconnects.values()))
        if bal:
            first_bad = worst = None
            when = scene.t_change + SETTLE
            looks = 0
            while when <= end:
                counts = latest_spread(reqs, when)
                looks += 1
                dev = max([abs(counts.get(a, 0) - fair) for a in addrs]
                          + [n if set(counts) - set(addrs) else 0])
                if worst is None or dev > worst[0]:
                    worst = (dev, when, counts)
                if dev > tol and first_bad is None:
                    first_bad = (when, counts)
                when += SAMPLE

            def show(c):
                return ", ".join("%s %d" % (a, c.get(a, 0)) for a in sorted(set(addrs) | set(c)))
            v.check(looks > 0 and first_bad is None, sc, bal,
                    "%d +- %d connections per address from +%.0fs after the change to the end "
                    "(%d looks; worst at +%.1fs: %s)"
                    % (fair, tol, SETTLE, looks, (worst[1] - scene.t_change) if worst else 0,
                       show(worst[2]) if worst else "none")
                    + ("" if first_bad is None else "; first off at +%.1fs: %s"
                       % (first_bad[0] - scene.t_change, show(first_bad[1]))))
            v.check(not failed, sc, bal, "0 failed requests (%d of %d failed%s)"
                    % (len(failed), len(reqs),
                       "; first: %s" % failed[0].get("error") if failed else ""))
            many = {s: len(x) for s, x in reconnects.items() if len(x) > 1}
            v.check(not many, sc, bal, "each connection recycled at most once (%d reconnects; "
                    "connections reconnected more than once: %s)"
                    % (out[bal]["reconnects"], many or "none"))
            check_accounting(v, sc, bal, sh)
        else:
            where = sorted(set(r["backend"] for r in reqs if r.get("ok")))
            v.check(where == [ADDRS[0]] and not failed, sc, bal,
                    "every answer from %s, 0 failed (answered by %s; %d failed)"
                    % (ADDRS[0], where, len(failed)))
            check_accounting(v, sc, bal, sh)
    rows = [(a, str(out[True]["final"].get(a, 0)), str(out[False]["final"].get(a, 0)))
            for a in addrs]
    rows += [requests_row(out),
             ("reconnects", str(out[True]["reconnects"]), str(out[False]["reconnects"])),
             (RECYCLE_ROWS, recycle_text(out[True]["sh"]), recycle_text(out[False]["sh"])),
             (DNS_ROWS, str(len(out[True]["sh"]["dns"])), str(len(out[False]["sh"]["dns"])))]
    table("%s: %d keep-alive connections; %s -> %d addresses at +%.0fs; connections per "
          "address at the end" % (sc, n, ADDRS[0], len(addrs), GROW_AT), rows)


def judge_fresh(scene, v, sc):
    spec = SCENARIOS[sc]
    out = {}
    for bal in (True, False):
        t = tag(sc, bal)
        reqs = reqs_of(scene.records(t))
        failed = [r for r in reqs if not r.get("ok")]
        out[bal] = dict(reqs=reqs, failed=failed, spread=spread(reqs))
        v.check(len(reqs) == spec["count"] and not failed, sc, bal,
                "the run worked: %d of %d requests made, %d failed%s"
                % (len(reqs), spec["count"], len(failed),
                   "; first: %s" % failed[0].get("error") if failed else ""))
        if bal:
            ok = len(reqs) - len(failed)
            bad = [a for a in ADDRS if not 0.15 * ok <= out[bal]["spread"].get(a, 0) <= 0.35 * ok]
            v.check(ok and not bad, sc, bal, "each address answers 15-35 %% (%s)"
                    % ", ".join("%s %s" % (a, pct(out[bal]["spread"].get(a, 0), ok))
                                for a in ADDRS))
    rows = [(a, pct(out[True]["spread"].get(a, 0), len(out[True]["reqs"])),
             pct(out[False]["spread"].get(a, 0), len(out[False]["reqs"]))) for a in ADDRS]
    rows.append(requests_row(out))
    table("%s: requests.get per request, %d at %.0f/s, 4 addresses; answers per address"
          % (sc, spec["count"], spec["rate"]), rows)


def judge_rotating(scene, v, sc):
    out = {}
    for bal in (True, False):
        t = tag(sc, bal)
        reqs = reqs_of(scene.records(t))
        failed = [r for r in reqs if not r.get("ok")]
        _, reconnects = slot_history(reqs)
        end = max(r["t_end"] for r in reqs)
        start = min(r["t"] for r in reqs)
        sh = scene.shim(t)
        quiet_from = end - QUIET
        late = sorted(x - start for xs in reconnects.values() for x in xs if x >= quiet_from)
        late_lines = [l for ts, l in sh["balance_lines"] if ts >= quiet_from]
        out[bal] = dict(reqs=reqs, failed=failed, final=latest_spread(reqs, end), sh=sh,
                        reconnects=sum(len(x) for x in reconnects.values()),
                        shown=collections.Counter(r["backend"] for r in reqs if r.get("ok")),
                        late=late, run=end - start)
        v.check(not failed, sc, bal, "0 failed requests (%d of %d failed%s)"
                % (len(failed), len(reqs),
                   "; first: %s" % failed[0].get("error") if failed else ""))
        if bal:
            many = {s: len(x) for s, x in reconnects.items() if len(x) > 1}
            v.check(not many, sc, bal, "each connection recycled at most once (%d reconnects "
                    "in %.1fs; more than once: %s)" % (out[bal]["reconnects"], end - start,
                                                     many or "none"))
            v.check(not late and not late_lines, sc, bal,
                    "no churn: no reconnect and no \"for balance\" line in the last %.0fs "
                    "(reconnects at +%s s; %d lines)"
                    % (QUIET, ", +".join("%.1f" % x for x in late) or "-", len(late_lines)))
        check_accounting(v, sc, bal, sh)
    rows = [(a, str(out[True]["final"].get(a, 0)), str(out[False]["final"].get(a, 0)))
            for a in ADDRS]
    rows += [requests_row(out),
             ("reconnects (last %.0fs)" % QUIET,
              "%d (%d)" % (out[True]["reconnects"], len(out[True]["late"])),
              "%d (%d)" % (out[False]["reconnects"], len(out[False]["late"]))),
             (RECYCLE_ROWS, recycle_text(out[True]["sh"]), recycle_text(out[False]["sh"])),
             (DNS_ROWS, str(len(out[True]["sh"]["dns"])), str(len(out[False]["sh"]["dns"]))),
             ("run", "%.1fs" % out[True]["run"], "%.1fs" % out[False]["run"])]
    table("%s: 2 of 4 addresses per answer, a pool of 8; connections per address at the end"
          % sc, rows)


def judge_mixed(scene, v, sc):
    spec = SCENARIOS[sc]
    per_family = spec["workers"] * spec["per_worker"]
    out = {}
    fams = {4: ADDRS[:2], 6: ADDRS6}
    for bal in (True, False):
        t = tag(sc, bal)
        reqs = reqs_of(scene.records(t))
        failed = [r for r in reqs if not r.get("ok")]
        crossed = [r for r in reqs if r.get("ok") and (":" in r["backend"]) != (r["family"] == 6)]
        sp = {f: spread([r for r in reqs if r["family"] == f]) for f in fams}
        out[bal] = dict(reqs=reqs, failed=failed, crossed=crossed, spread=sp)
        v.check(len(reqs) == 2 * per_family and not failed, sc, bal,
                "the run worked: %d of %d requests made, %d failed%s"
                % (len(reqs), 2 * per_family, len(failed),
                   "; first: %s" % failed[0].get("error") if failed else ""))
        v.check(not crossed, sc, bal, "families never cross (%d answers from the other family%s)"
                % (len(crossed), "; first: IPv%d answered by %s" % (crossed[0]["family"],
                                                                  crossed[0]["backend"])
                   if crossed else ""))
        if bal:
            for f, addrs in fams.items():
                total = sum(1 for r in reqs if r["family"] == f and r.get("ok"))
                bad = [a for a in addrs if not 0.25 * total <= sp[f].get(a, 0) <= 0.75 * total]
                v.check(total and not bad, sc, bal, "IPv%d requests spread over both addresses, "
                        "25-75 %% each (%s)" % (f, ", ".join("%s %s" % (a, pct(sp[f].get(a, 0),
                                                                               total))
                                                            for a in addrs)))
    rows = []
    for f, addrs in fams.items():
        for a in addrs:
            rows.append(("IPv%d -> %s" % (f, a), str(out[True]["spread"][f].get(a, 0)),
                         str(out[False]["spread"][f].get(a, 0))))
    rows += [requests_row(out),
             ("answers across families", str(len(out[True]["crossed"])),
              str(len(out[False]["crossed"])))]
    table("%s: 2 IPv4 + 2 IPv6 addresses, %d fresh requests per family; answers per address"
          % (sc, per_family), rows)


def judge_cooldown(scene, v, sc):
    spec = SCENARIOS[sc]
    healthy = [a for a in ADDRS if a != REFUSING]
    events = scene.wire.snapshot()
    out = {}
    for bal in (True, False):
        t = tag(sc, bal)
        port = COOLDOWN_PORT[bal]
        reqs = reqs_of(scene.records(t))
        failed = [r for r in reqs if not r.get("ok")]
        syns = [ts for ts, kind, p in events if kind == "syn" and p == port]
        rsts = [ts for ts, kind, p in events if kind == "rst" and p == port]
        after = [ts for ts in syns if rsts and ts > rsts[0]]
        sp = spread(reqs)
        out[bal] = dict(reqs=reqs, failed=failed, spread=sp, syns=syns, rsts=rsts, after=after)
        v.check(len(reqs) == spec["count"], sc, bal, "the run worked: %d of %d requests made "
                "(%d failed, reported: requests tries the next address itself)"
                % (len(reqs), spec["count"], len(failed)))
        if bal:
            v.check(len(after) <= 1, sc, bal, "at most 1 attempt reaches %s after its first "
                    "refusal (%d attempts in all, %d refused, %d after the first refusal)"
                    % (REFUSING, len(syns), len(rsts), len(after)))
            ok = len(reqs) - len(failed)
            bad = [a for a in healthy if not 0.20 * ok <= sp.get(a, 0) <= 0.45 * ok]
            v.check(ok and not bad, sc, bal, "the three healthy addresses answer 20-45 %% each (%s)"
                    % ", ".join("%s %s" % (a, pct(sp.get(a, 0), ok)) for a in healthy))
    rows = [(a, pct(out[True]["spread"].get(a, 0), len(out[True]["reqs"])),
             pct(out[False]["spread"].get(a, 0), len(out[False]["reqs"]))) for a in healthy]
    rows += [("%s attempts (refused)" % REFUSING,
              "%d (%d)" % (len(out[True]["syns"]), len(out[True]["rsts"])),
              "%d (%d)" % (len(out[False]["syns"]), len(out[False]["rsts"]))),
             ("  after the first refusal", str(len(out[True]["after"])),
              str(len(out[False]["after"]))),
             requests_row(out)]
    table("%s: %s refuses; requests.get per request, %d at %.0f/s; answers per address"
          % (sc, REFUSING, spec["count"], spec["rate"]), rows)


JUDGES = {"grow-8": judge_grow, "grow-64": judge_grow, "fresh": judge_fresh,
          "rotating": judge_rotating, "mixed": judge_mixed, "cooldown": judge_cooldown}


def judge(scene):
    v = Verdicts()
    for sc in SCENARIOS:
        JUDGES[sc](scene, v, sc)
    warned = sorted({w for sc, bal in RUNS for w in scene.shim(tag(sc, bal))["warnings"]
                     if "BALANCE" in w})
    log("")
    for w in warned[:2]:
        log("shim warning: %s" % w.strip())
    for passed, sc, run, text in v.items:
        log("%s %s %s: %s" % ("PASS" if passed else "FAIL", sc, run, text))
    failed = [i for i in v.items if not i[0]]
    by_run = collections.Counter(i[2] for i in failed)
    log("")
    if failed:
        raise Failure("%d of %d assertions failed (balance runs: %d, controls: %d)"
                      % (len(failed), len(v.items), by_run["balance"], by_run["control"]))

"""The matrix's verdicts (tests/e2e/matrix.py): what each client run did, from its records, the
DNS query log, the backends' logs, the shim's log and stats files (analyse), and whether that
is what the scenario expects (judge)."""

import json
import os
import subprocess

import dnsresponder  # (the DNS query log)
import matrix_baddays  # (the resolver's bad days: per-request lookups, stale answers, cache)
import matrix_busy  # (several moves per run: the figures of each move)
import promtext  # (a strict Prometheus text-format parser)
from matrix_clients import FAILS_PER_RECONNECT, instance_name
from matrix_layout import SLOW_SECONDS, TTL
from matrix_scenarios import BUSY_REACTION_S


def dns_counts(scene):
    """The queries per (name, listening address, type): the program's and the shim's, not the
    driver's own probes (wait_dns asks for the first client's name, from net.driver_src)."""
    counts = {}
    for q in dnsresponder.read_log(scene.dns_log):
        if q.get("src") == scene.net.driver_src:
            continue
        key = (q.get("qname"), q.get("listen"), q.get("qtype"))
        counts.setdefault(key, []).append(q.get("t"))
    return counts


def analyse(scene, client, shim, facts, events, dns):
    sc = scene.sc
    recs = scene.records(client, shim)
    meta = next((r for r in recs if r.get("type") == "meta"), {})
    reqs = [r for r in recs if r.get("type") == "req"]
    failed = [r for r in reqs if not r.get("ok")]
    removed = sc.removed()
    t_ref = events.get("change") or events.get("fault_start") or events.get("start")
    # A connection is (server address, client port). Those opened before the event are the
    # client's own (one per address it balances over, or --conns); the rest are reconnects.
    first_seen = {}
    for r in reqs:
        if r.get("ok"):
            first_seen.setdefault((r.get("backend"), r.get("client_port")), r["t"])
    conns = list(first_seen)
    t_own = t_ref
    if sc.rotate and reqs:
        # Rotation acts from the first refresh on: count from the client's start (its first
        # half second: nginx opens one connection per upstream address on its first requests).
        t_own = reqs[0]["t"] + 0.5
    opened_before = len([t for t in first_seen.values() if t < t_own])
    on_old = [r for r in reqs if r.get("backend") in removed]
    name = instance_name(client, shim)
    t0 = reqs[0]["t"] if reqs else t_ref
    t1 = reqs[-1]["t_end"] if reqs else t_ref
    served = max(0.001, t1 - t0 - (sc.fault[1] if sc.fault and sc.fault[0] == "stopped" else 0))
    # The queries for the name's records (A; AAAA in an IPv6 scenario), the program's and the
    # shim's background resolver's.
    net = sc.net
    shim_a = len(dns.get((name, net.shim_dns, net.qtype), []))
    prog_a = len(dns.get((name, net.program_dns, net.qtype), []))
    res = {
        "client": client.cid, "label": client.label, "shim": shim,
        "version": program_version(client, meta), "requests": len(reqs), "failed": len(failed),
        "failures": [{"t": round(r["t"] - t_ref, 3), "error": (r.get("error") or "")[:200]}
                     for r in failed[:5]],
        "ended_failed": 1 if reqs and not reqs[-1].get("ok") else 0,
        "connections": len(conns), "connections_before": opened_before,
        "reconnects": len(conns) - opened_before,
        "by_backend": count_by(reqs, lambda r: r.get("backend") or "failed"),
        "slowest_s": round(max((r["t_end"] - r["t"] for r in reqs), default=0.0), 3),
        "dns_program_a": prog_a, "dns_shim_a": shim_a,
        "dns_shim_a_per_ttl": round(shim_a * TTL / served, 2),
        "preloaded": facts.get((client.cid, shim), {}).get("preloaded"),
    }
    res.update({k: v for k, v in facts.get((client.cid, shim), {}).items() if k != "preloaded"})
    if shim:
        res.update(read_stats(scene.stats_dir(client)))
        res["log_story"] = log_story(scene.path("shim-%s.log" % client.cid))
    if removed:
        res["last_old_s"] = round(on_old[-1]["t"] - t_ref, 3) if on_old else None
        after = [r for r in reqs if r["t"] >= events["deadline"]]
        res["after_deadline"] = len(after)
        res["after_deadline_on_old"] = len([r for r in after if r.get("backend") in removed])
        res["moved"] = bool(after) and res["after_deadline_on_old"] == 0 and any(
            r.get("backend") not in removed and r.get("ok") for r in after)
        if client.conns > 1:
            res.update(many_connections(scene, client, shim, reqs, removed, events))
        if sc.via:
            # Several moves (the busy scenarios): moved at each, and the figures per move.
            res.update(matrix_busy.analyse(sc, reqs, events, t_ref))
    if sc.slow:
        slow = [r for r in reqs if r.get("slow") or (r.get("t_end", 0) - r["t"]) >= SLOW_SECONDS * 0.9]
        res["slow_requests"] = len(slow)
        res["slow_ok"] = bool(slow) and all(r.get("ok") for r in slow)
    if sc.tls:
        res["tls"] = tls_versions(scene, reqs)
    if sc.expect in matrix_baddays.EXPECTS:
        res.update(matrix_baddays.analyse(scene, client, shim, reqs, events, dns))
    if sc.ttl_after and shim:
        # After the change, the shim's refreshes are spaced by the new TTL.
        ts = sorted(dns.get((name, net.shim_dns, net.qtype), []))
        later = [t for t in ts if t > events["change"] + TTL * 1.2]
        gaps = [b - a for a, b in zip(later, later[1:])]
        res["shim_query_gaps_after_change"] = [round(g, 2) for g in gaps]
    return res


def tls_versions(scene, reqs):
    """The TLS versions the backends negotiated on this client's connections (their logs)."""
    ports = {(r.get("backend"), r.get("client_port")) for r in reqs if r.get("ok")}
    return sorted({e.get("tls") or "none" for a in scene.net.addrs
                   for e in backend_events(scene, a)
                   if e.get("event") == "connect" and (a, e.get("client_port")) in ports})


def program_version(client, meta):
    if client.proto == "nginx":     # the program under test, not its front client
        r = subprocess.run(["nginx", "-v"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True)
        return r.stdout.strip().replace("nginx version: ", "")
    return (meta.get("version") or "").split(" (")[0] or None


STATS_KEYS = ("shutdown_dns", "shutdown_max_age", "shutdown_dns_idle", "shutdown_dns_send",
              "shutdown_dns_deadline", "removed", "resolutions_ok", "resolutions_error",
              "redirected", "failovers", "learned_getaddrinfo", "learned_gethostbyname",
              "learned_dns", "stale_answers", "cache_hit", "cache_miss")


def read_stats(directory):
    """Every stats file the client's processes wrote, each checked strictly against the
    exposition format and the metrics contract; the counters summed over the processes."""
    out = {"stats_files": 0, "stats_error": None}
    total = dict.fromkeys(STATS_KEYS, 0)
    try:
        names = sorted(n for n in os.listdir(directory) if n.endswith(".prom"))
    except OSError:
        names = []
    for name in names:
        path = os.path.join(directory, name)
        try:
            with open(path) as f:
                parsed = promtext.parse(f.read())
            promtext.check_dnsaware(parsed)
        except ValueError as e:
            out["stats_error"] = "%s: %s" % (name, e)
            continue
        out["stats_files"] += 1
        c = lambda metric, **labels: promtext.counter(parsed, metric, **labels)  # noqa: E731
        total["shutdown_dns"] += c("dnsaware_sockets_shutdown_total", reason="dns")
        total["shutdown_max_age"] += c("dnsaware_sockets_shutdown_total", reason="max_age")
        for path in ("idle", "send", "deadline"):   # which path shut them (design.md)
            total["shutdown_dns_" + path] += c("dnsaware_sockets_shutdown_total", reason="dns",
                                               path=path)
        total["removed"] += c("dnsaware_addresses_removed_total")
        total["resolutions_ok"] += c("dnsaware_resolutions_total", result="ok")
        total["resolutions_error"] += c("dnsaware_resolutions_total", result="error")
        total["redirected"] += c("dnsaware_connects_redirected_total")
        total["failovers"] += c("dnsaware_connect_failovers_total")
        for source in ("getaddrinfo", "gethostbyname", "dns"):
            total["learned_" + source] += c("dnsaware_names_learned_total", source=source)
        total["stale_answers"] += c("dnsaware_stale_answers_total")
        for result in ("hit", "miss"):
            total["cache_" + result] += c("dnsaware_cache_lookups_total", result=result)
    out["stats"] = {k: int(v) for k, v in total.items()}
    return out


def log_story(path):
    """Where in the shim's log a move's story is told: the first answer without the address,
    its removal, the drain, the shutdown (line numbers; None when missing)."""
    steps = [("re-resolved", " -> "), ("removed", ""), ("draining", "address left"),
             ("shut down", "no longer resolves")]
    found = {}
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
    except OSError:
        lines = []
    at = 0
    for word, detail in steps:
        for i in range(at, len(lines)):
            if (" info %s " % word) in lines[i] and detail in lines[i]:
                found[word] = i + 1
                at = i + 1
                break
    return found


def many_connections(scene, client, shim, reqs, removed, events):
    """For the 200-connection client: every connection moved, and how spread the moves were."""
    last_by_conn = {}
    first_new_by_conn = {}
    for r in reqs:
        if not r.get("ok"):
            continue
        c = r.get("conn", 0)
        last_by_conn[c] = r
        if r.get("backend") not in removed and r["t"] >= events["change"]:
            first_new_by_conn.setdefault(c, r["t"])
    moved = [c for c, r in last_by_conn.items() if r.get("backend") not in removed]
    out = {"conns_moved": len(moved), "conns_total": len(last_by_conn)}
    if first_new_by_conn:
        ts = sorted(first_new_by_conn.values())
        out["move_spread_s"] = round(ts[-1] - ts[0], 3)
        out["move_first_s"] = round(ts[0] - events["change"], 3)
        out["move_last_s"] = round(ts[-1] - events["change"], 3)
    # The backends' view (this scenario runs no other client under the shim): when the old
    # address saw its connections closed (the shim's shutdowns) and the new one accepted.
    closes, accepts = [], []
    for a in scene.net.addrs:
        for e in backend_events(scene, a):
            if not events["change"] <= e["t"] < events["stop"]:
                continue
            if a in removed and e.get("event") == "close":
                closes.append(e["t"])
            elif a not in removed and e.get("event") == "connect":
                accepts.append(e["t"])
    for what, ts in (("old_closes", closes), ("new_accepts", accepts)):
        if ts:
            ts.sort()
            out[what] = len(ts)
            out[what + "_first_s"] = round(ts[0] - events["change"], 3)
            out[what + "_spread_s"] = round(ts[-1] - ts[0], 3)
    return out


def backend_events(scene, addr):
    try:
        with open(scene.path("backend-%s.jsonl" % addr)) as f:
            lines = f.readlines()
    except OSError:
        return []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def count_by(items, key):
    out = {}
    for i in items:
        k = key(i)
        out[k] = out.get(k, 0) + 1
    return out


def judge(sc, client, res):
    """Returns (verdict, reason): pass or fail."""
    shim = res["shim"]
    if res["preloaded"] is not shim:
        return "fail", ("expected the program %s the shim, /proc/PID/maps says %s"
                        % ("under" if shim else "without", res["preloaded"]))
    if client.cid == "nginx" and shim:
        if res.get("master_threads") != 0 or not any(res.get("worker_threads") or []):
            return "fail", ("expected the shim's thread in an nginx worker and not in the "
                            "master; master %s, workers %s"
                            % (res.get("master_threads"), res.get("worker_threads")))
    if sc.tls or sc.net.family == 6:
        why = judge_keepalive(sc, client, res)
        if why:
            return "fail", why
    if shim:
        why = judge_metrics(sc, client, res)
        if why:
            return "fail", why
    if sc.expect in matrix_baddays.EXPECTS:
        return matrix_baddays.judge(sc, client, res)
    if sc.expect == "failover":
        return judge_failover(sc, res)
    if not shim:
        return judge_control(sc, res)
    allowed = 0
    if client.cid in FAILS_PER_RECONNECT:
        # Every connection shut down: those replaced (including any before the event), and
        # the last one when the run stopped between its failed request and the reconnect.
        shut = max(res["reconnects"], res["connections"] - client.conns) + res["ended_failed"]
        allowed = FAILS_PER_RECONNECT[client.cid][0] * shut
    if sc.failures_reported:
        allowed = 0 if client.cid in sc.lose_none else None
    if sc.via:
        why = judge_reaction(res)
        if why:
            return "fail", why
    if allowed is not None and res["failed"] > allowed:
        return "fail", "%d failed requests (allowed %d): %s" % (
            res["failed"], allowed, res["failures"][:2])
    if sc.expect == "pinned":
        if res.get("moved") is not False:
            return "fail", "moved with DNSAWARE_REDIRECT=0: is something else steering it?"
        return "pass", "stays on the old address (steering off)"
    if sc.expect == "stay":
        return judge_stay(sc, res)
    if sc.expect == "recycle":
        if res["reconnects"] < 2:
            return "fail", "expected connections recycled by max age; %d reconnects" % (
                res["reconnects"])
        return "pass", "recycled %d times" % res["reconnects"]
    # follow
    if sc.slow and not res.get("slow_ok"):
        return "fail", "the slow request across the change did not complete"
    if client.conns > 1 and res.get("conns_moved") != client.conns:
        return "fail", "%s of %d connections moved" % (res.get("conns_moved"), client.conns)
    if sc.ttl_after:
        short = [g for g in res.get("shim_query_gaps_after_change", [])
                 if g < sc.ttl_after * 0.85]
        if short:
            return "fail", "the shim re-resolved after %s s, shorter than the new TTL %d s" % (
                short, sc.ttl_after)
    if not res.get("moved"):
        return "fail", ("did not move: %d of %d requests after the deadline on the old "
                        "address" % (res.get("after_deadline_on_old", 0),
                                     res.get("after_deadline", 0)))
    return "pass", "moved"


def judge_reaction(res):
    """Busy runs (several moves): each move's last request on an address the name no longer
    has came within BUSY_REACTION_S of the move (issue 16: TTL + 2 s, under load)."""
    late = [(m["t"], m["last_old_s"]) for m in res.get("moves", [])
            if m.get("last_old_s") is not None and m["last_old_s"] > BUSY_REACTION_S]
    if late:
        return ("answered by a removed address %s s after the move at %s s (allowed %.1f s: "
                "TTL + 2 s)" % (late[0][1], late[0][0], BUSY_REACTION_S))
    return None


def judge_metrics(sc, client, res):
    """The stats file (strictly valid, per the contract) and the log must tell what the scenario
    did. Returns why not, or None."""
    if res["stats_error"]:
        return "invalid stats file: %s" % res["stats_error"]
    if res["stats_files"] == 0:
        return "no stats file was written (DNSAWARE_STATS_FILE)%s" % (
            "; it stayed on the old address" if res.get("moved") is False else "")
    st = res["stats"]
    shutdowns = st["shutdown_dns"] + st["shutdown_max_age"]
    if client.learns and st["learned_" + client.learns] < 1:
        return ("the stats file counts no name learned from %s "
                "(dnsaware_names_learned_total{source=\"%s\"}: getaddrinfo %d, dns %d)"
                % (client.learns, client.learns, st["learned_getaddrinfo"], st["learned_dns"]))
    if sc.expect == "follow" and res.get("moved"):
        if st["removed"] < 1 or st["shutdown_dns"] < 1:
            return "moved, but the stats file counts %d addresses removed, %d DNS shutdowns" % (
                st["removed"], st["shutdown_dns"])
        if client.steering and st["redirected"] < 1:
            return "moved by connect steering, but no redirect was counted"
        if len(res["log_story"]) < 4:
            return ("the log does not tell the move in order (re-resolved, removed, draining, "
                    "shut down): found %s" % res["log_story"])
    if sc.expect == "pinned" and st["redirected"]:
        return "%d redirects counted with DNSAWARE_REDIRECT=0" % st["redirected"]
    if sc.expect == "stay" and sc.fault:
        # Silence ends in a timeout only if it outlasts c-ares' retries; the others fail at once.
        if sc.fault[0] != "silent" and st["resolutions_error"] < 1:
            return "DNS %s, but no failed resolution was counted" % sc.fault[0]
        if shutdowns:
            return "%d shutdowns counted during a DNS fault" % shutdowns
    if sc.expect == "recycle" and st["shutdown_max_age"] < 2:
        return "recycled, but %d max-age shutdowns counted" % st["shutdown_max_age"]
    if sc.expect == "failover" and st["redirected"] < 1:
        return "no connect was steered away from the refusing address"
    return None


def judge_keepalive(sc, client, res):
    """A move over TLS or IPv6 shows what it should only if the client kept its connection
    open across requests, as over plain HTTP: one connection until the change (the whole run
    for the control), and, over TLS, a TLS one. Returns why not, or None."""
    if sc.tls and res.get("tls") != ["TLSv1.3"]:
        return "expected TLS 1.3 on every connection, the backends saw %s" % res.get("tls")
    conns = res["connections"] if not res["shim"] else res["connections_before"]
    if conns != client.conns:
        return "keep-alive not used: %d connections %s (expected %d)" % (
            conns, "in the run" if not res["shim"] else "before the change", client.conns)
    return None


def judge_control(sc, res):
    if sc.removed() and res.get("moved") is not False:
        return "fail", "control: expected to stay on the old address without the shim"
    if res.get("last_old_s") is None and sc.removed():
        return "fail", "control: no request on the old address at all"
    if res["failed"]:
        return "fail", "control: %d failed requests" % res["failed"]
    if sc.expect == "recycle":
        if res["reconnects"]:
            return "fail", "control: %d reconnects without the shim" % res["reconnects"]
        return "pass", "keeps its connection"
    return "pass", "stays on the old address"


def judge_stay(sc, res):
    if sc.rotate:
        # Before the shim has seen an absent address come back, an address absent from two
        # answers in a row drains: once per connection at most, or, for under 1 % of
        # connections (tests/unit/test_recordset.c), twice. report_run bounds how many
        # clients of one run may have that second drain.
        per_conn = max(1, res["connections_before"])
        if res["reconnects"] > 2 * per_conn:
            return "fail", "%d reconnects: churn (expected at most %d)" % (
                res["reconnects"], per_conn)
        if res["reconnects"] > per_conn:
            return "pass", "no failed request; %d reconnects (one more than usual)" % (
                res["reconnects"])
    elif res["reconnects"] > 0:
        return "fail", "%d reconnects (expected none)" % res["reconnects"]
    if sc.fault and res["dns_shim_a"] == 0:
        return "fail", "the shim never queried DNS, so this run proves nothing"
    if res["reconnects"]:
        return "pass", "%d reconnect(s), no failed request" % res["reconnects"]
    return "pass", "no drain, no failed request"


# Clients whose first connect to the refusing address may fail even with the shim: they connect
# non-blocking (Java does when a connect timeout is set) and try only one address, so the
# failure goes to the program before the shim has seen it (through SO_ERROR, which the shim
# must not read); from then on the address is avoided for DNSAWARE_COOLDOWN.
FIRST_CONNECT_UNSEEN = {"java": 1}


def judge_failover(sc, res):
    """Fresh connections to a name whose first address refuses: with the shim none fails and
    none waits; without it, what the client does on its own is reported."""
    on_refusing = sum(n for b, n in res["by_backend"].items() if b in sc.refusing)
    if on_refusing:
        return "fail", "%d requests answered by an address that refuses connections" % on_refusing
    if not res["shim"]:
        return "pass", "without the shim: %d of %d failed, slowest %.2f s" % (
            res["failed"], res["requests"], res["slowest_s"])
    if res["failed"] > FIRST_CONNECT_UNSEEN.get(res["client"], 0):
        return "fail", "%d of %d requests failed: %s" % (
            res["failed"], res["requests"], res["failures"][:2])
    if res["slowest_s"] > 1.0:
        return "fail", "a request took %.2f s: it waited for something" % res["slowest_s"]
    return "pass", "%d of %d failed, slowest %.3f s" % (res["failed"], res["requests"],
                                                        res["slowest_s"])


"""bench_local.py busy: the shim thread's CPU while busy connections drain (issue 16), run inside
the namespaces, and its markdown report.

One process (tests/bench/busyconns, under the shim) holds COUNT connections to busy.test, served
by tests/bench/answerer (no shim) on the old and the new address alike. Mode busy: every
connection sends a 64-byte request 50 times a second and reads its 200-byte answer; mode stream:
the server writes 1 KB to every connection every 10 ms and the client only reads. /etc/hosts
(bind-mounted) moves busy.test from the old address to the new one; a connection the shim shuts
down (EOF, or EPIPE from its send path) is replaced at once after a fresh getaddrinfo. Windows: 3 s
steady, then from the rewrite 0-2 s, 2-12 s (the drain's fast looks last DRAIN_FAST_LOOKS_MS =
10 s from its start) and 12-16 s (after them). Per window: the dnsaware thread's CPU (its
per-thread CPU clock) per second of wall time, its wake-ups (voluntary context switches), the
client's reconnects, send failures and EOF reads; per run, the shim's shutdown counts by path
from its stats file.
"""

import json
import os

from bench_common import BenchError, clean_env, md_table
from bench_local_ns import LineProc, ns_setup, read_stats, rewrite_in_place

NAME, OLD, NEW = "busy.test", "127.0.0.30", "127.0.0.31"
RATE = 50
COUNTERS = ("eof_reads", "eof_awaiting", "read_errors", "send_failures", "send_errors",
            "connect_failures", "reconnects", "requests", "answered", "late", "wakeups")


def busy_hosts(addr):
    return "127.0.0.1 localhost\n%s %s\n" % (addr, NAME)


def window(m):
    """One measure line -> its per-window record."""
    secs = m["wall_ns"] / 1e9
    rec = {k: m[k] for k in COUNTERS}
    rec.update(wall_s=secs, cpu_ms=m["cpu_ns"] / 1e6, cpu_ms_per_s=m["cpu_ns"] / 1e6 / secs,
               wakeups_per_s=m["wakeups"] / secs, answered_per_s=m["answered"] / secs,
               last_reconnect_ms=m["last_reconnect_ms"], on_old=m["addrs"].get(OLD, 0),
               on_new=m["addrs"].get(NEW, 0))
    return rec


def combined(a, b):
    """Two consecutive windows as one."""
    rec = {k: a[k] + b[k] for k in COUNTERS + ("wall_s", "cpu_ms")}
    secs = rec["wall_s"]
    rec.update(cpu_ms_per_s=rec["cpu_ms"] / secs, wakeups_per_s=rec["wakeups"] / secs,
               answered_per_s=rec["answered"] / secs, on_old=b["on_old"], on_new=b["on_new"],
               last_reconnect_ms=(b["last_reconnect_ms"] + a["wall_s"] * 1000
                                  if b["last_reconnect_ms"] >= 0 else a["last_reconnect_ms"]))
    return rec


def busy_run(opts, hosts, count, mode, port, w):
    wd = opts.workdir
    tag = "%d.%s" % (count, mode)
    rewrite_in_place(hosts, busy_hosts(OLD))
    server = LineProc([os.path.join(wd, "answerer"), "answer" if mode == "busy" else "stream",
                       "%s:%d" % (OLD, port), "%s:%d" % (NEW, port)], clean_env(),
                      os.path.join(wd, "answerer.%s.err" % tag))
    if server.readline(10) != "ready":
        raise BenchError("answerer did not start")
    stats_path = os.path.join(wd, "stats.busy.%s.prom" % tag)
    env = clean_env(LD_PRELOAD=opts.lib, DNSAWARE_TTL_FLOOR=w["floor"],
                    DNSAWARE_STATS_FILE=stats_path, DNSAWARE_STATS_INTERVAL="1h")
    argv = [os.path.join(wd, "busyconns")] + (["--busy", str(RATE)] if mode == "busy"
                                              else ["--stream"])
    argv += ["--settle", str(w["settle"]), NAME, str(port), str(count)]
    c = LineProc(argv, env, os.path.join(wd, "busyconns.%s.err" % tag))
    rec = {"count": count, "mode": mode}
    try:
        ready = json.loads(c.readline(60))
        if ready["addr"] != OLD:
            raise BenchError("busyconns resolved %s to %s" % (NAME, ready["addr"]))
        if not ready["tid"]:
            raise BenchError("busy %s: no dnsaware thread under the shim" % tag)
        ms = {}
        for phase, secs in (("steady", w["steady"]), ("early", w["early"]), ("rest", w["rest"]),
                            ("after", w["after"])):
            if phase == "early":
                rewrite_in_place(hosts, busy_hosts(NEW))
            ms[phase] = window(json.loads(c.ask("measure %g" % secs, secs + 60)))
        c.p.stdin.write("quit\n")
        c.p.stdin.flush()
    finally:
        rc = c.close(60)
        server.close()
    if rc != 0:
        raise BenchError("busyconns exited with status %s" % rc)
    ms["drain"] = combined(ms["early"], ms["rest"])
    rec.update(ms)
    st = read_stats(stats_path)
    rec["shutdowns"] = {p: int(st.get("dnsaware_sockets_shutdown_total{path=%s,reason=dns}" % p, 0))
                        for p in ("idle", "send", "deadline")}
    s = rec["steady"]
    if s["reconnects"] or s["eof_reads"] or s["eof_awaiting"] or s["send_failures"]:
        raise BenchError("busy %s: connections shut down before the move" % tag)
    if not rec["drain"]["cpu_ms"] > 0:
        raise BenchError("busy %s: the thread used no CPU during the drain?" % tag)
    if mode == "busy" and not s["answered"] > 0:
        raise BenchError("busy %s: no request was answered" % tag)
    if mode == "stream" and s["requests"]:
        raise BenchError("busy %s: the stream client sent requests" % tag)
    if mode == "busy" and rec["after"]["on_new"] != count:
        raise BenchError("busy %s: %d of %d connections on the new address %g s after the move"
                         % (tag, rec["after"]["on_new"], count,
                            w["early"] + w["rest"] + w["after"]))
    return rec


def busy_inside(opts):
    if opts.smoke:
        counts = [8]
        w = {"floor": "200ms", "settle": 0.5, "steady": 1.0, "early": 1.0, "rest": 2.0,
             "after": 1.0}
    else:
        counts = [8, 32, 128]
        w = {"floor": "1s", "settle": 1.0, "steady": 3.0, "early": 2.0, "rest": 10.0,
             "after": 4.0}
    hosts = ns_setup(opts.workdir, busy_hosts(OLD))
    out = dict(w, rate=RATE, name=NAME, old=OLD, new=NEW, runs=[])
    port = 22000
    for count in counts:
        for mode in ("busy", "stream"):
            out["runs"].append(busy_run(opts, hosts, count, mode, port, w))
            port += 1
    return out


def busy_report(r):
    e, rest, a = r["early"], r["early"] + r["rest"], r["early"] + r["rest"] + r["after"]
    names = {"steady": "steady, %g s" % r["steady"], "early": "drain 0–%g s" % e,
             "rest": "drain %g–%g s" % (e, rest), "drain": "drain 0–%g s" % rest,
             "after": "after, %g–%g s" % (rest, a)}
    lines = ["### busy: the thread's CPU while busy connections drain (issue 16)", "",
             "COUNT connections to %s, one process under the shim; the server (no shim) answers on "
             "the old and the new address. busy: each connection sends a 64-byte request %d times "
             "a second and reads a 200-byte answer; stream: the server writes 1 KB every 10 ms, "
             "the client only reads. At the move /etc/hosts sends the name to the new address "
             "(DNSAWARE_TTL_FLOOR=%s); a connection shut down is replaced at once after a fresh "
             "getaddrinfo. Windows from the move: the drain's fast looks last 10 s from its start. "
             "Thread CPU from its per-thread CPU clock; wake-ups = voluntary context switches. "
             "EOF reads: EOF while no answer was awaited (the idle path); send failures: EPIPE or "
             "ECONNRESET from send (the send path); lost: EOF while an answer was awaited, read or "
             "other send errors. On old / new: open connections at the window's end. A stream "
             "is never idle: its connections wait for DNSAWARE_DRAIN_TIMEOUT (default 5 min, "
             "beyond the run)." % (r["name"], r["rate"], r["floor"]), ""]
    rows = []
    for run in r["runs"]:
        for phase in ("steady", "early", "rest", "drain", "after"):
            p = run[phase]
            lost = p["eof_awaiting"] + p["read_errors"] + p["send_errors"]
            rows.append([str(run["count"]), run["mode"], names[phase],
                         "%.3f" % p["cpu_ms_per_s"], "%.1f" % p["wakeups_per_s"],
                         str(p["reconnects"]), str(p["send_failures"]), str(p["eof_reads"]),
                         str(lost), "%.0f" % p["answered_per_s"],
                         "%d / %d" % (p["on_old"], p["on_new"])])
    lines.append(md_table(["conns", "mode", "window", "thread CPU ms/s", "wake-ups/s",
                           "reconnects", "send failures", "EOF reads", "lost", "answered/s",
                           "on old / new"], rows))
    lines += ["", "The shim's shutdowns by path (stats file, reason dns), over the whole run, and "
              "when the last connection moved:", ""]
    rows = []
    for run in r["runs"]:
        sd = run["shutdowns"]
        d = run["drain"]
        last = d["last_reconnect_ms"] if d["last_reconnect_ms"] >= 0 else None
        if run["after"]["last_reconnect_ms"] >= 0:
            last = run["after"]["last_reconnect_ms"] + d["wall_s"] * 1000
        rows.append([str(run["count"]), run["mode"], str(sd["idle"]), str(sd["send"]),
                     str(sd["deadline"]), "%d of %d" % (run["after"]["on_new"], run["count"]),
                     "—" if last is None else "%.2f s" % (last / 1000.0)])
    lines.append(md_table(["conns", "mode", "idle", "send", "deadline", "on the new address at "
                           "the end", "last reconnect after the move"], rows))
    return "\n".join(lines)

"""bench_proxy.py reaction: the name moves under wrk load, trial by trial for the shim and the
HAProxy sidecar, read from the backends' access logs, the DNS query log and /proc, and the
sanity checks (split out of tests/bench/bench_proxy.py, whose docstring describes the
measurement).
"""

import os
import signal
import subprocess
import time

# bench_proxy_conf first: it puts tests/e2e on sys.path for the imports below.
from bench_proxy_conf import (HAPROXY_DNS, MECHANISMS, NAME, NEW, OLD, PORT, SHIM_DNS,
                              TTL_FLOOR)
from bench_proxy_scene import conns_to
from bench_proxy_wrk import parse_wrk, wrk_argv
import dnsmove  # noqa: E402  (process handling)
import dnsresponder  # noqa: E402  (the DNS query log)
import matrix_judge  # noqa: E402  (read_stats: the shim's stats files, checked strictly)
from dnsmove import HarnessError, log  # noqa: E402


class LogTail:
    """A backend access log read from a given offset on: (msec, remote, port, conn, status)."""

    def __init__(self, path):
        self.path = path
        try:
            self.off = os.path.getsize(path)
        except OSError:
            self.off = 0
        self.partial = b""
        self.entries = []

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except OSError:
            return
        self.off += len(data)
        data = self.partial + data
        lines = data.split(b"\n")
        self.partial = lines.pop()
        for line in lines:
            parts = line.split()
            if len(parts) >= 6:
                try:
                    self.entries.append((float(parts[0]), parts[1].decode(), int(parts[2]),
                                         int(parts[3]), int(parts[5])))
                except ValueError:
                    pass


def reaction_trial(scene, p, mech, ttl, conns, logs):
    variant = "b" if mech == "shim" else "c"
    scene.set_answer(OLD, ttl)
    scene.wait_answer(OLD, ttl)
    keepalive = max(32, conns)
    px = scene.start_proxy(variant, keepalive=keepalive, shim_level="info", stats=True)
    tails = {a: LogTail(logs[a]) for a in (OLD, NEW)}
    url = "http://%s:%d/" % (px["listen"], PORT)
    window = 3 * ttl + p["window_extra"]
    quiet_max = max(3.0, 1.5 * ttl)
    duration = int(p["react_warmup"] + window + 10)
    argv = wrk_argv(url, conns, duration, 2)
    wrk = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=dnsmove.clean_env(), preexec_fn=dnsmove._pdeathsig,
                           start_new_session=True)
    try:
        t_start = time.time()
        time.sleep(p["react_warmup"])
        if wrk.poll() is not None:
            raise HarnessError("wrk exited early:\n%s" % wrk.stdout.read())
        conns_old_before = conns_to(OLD, PORT)
        t_change = scene.set_answer(NEW, ttl)
        scene.wait_answer(NEW, ttl)
        stop_reason = "window"
        while True:
            time.sleep(0.25)
            now = time.time()
            for t in tails.values():
                t.poll()
            old_after = [e[0] for e in tails[OLD].entries if e[0] >= t_change]
            new_after = [e for e in tails[NEW].entries if e[0] >= t_change]
            last_old = max(old_after) if old_after else t_change
            # the log is flushed every 200 ms: leave it time to show the last requests
            if new_after and now - last_old >= 1.0 and conns_to(OLD, PORT) == 0:
                stop_reason = "no connection left to %s" % OLD
                break
            if new_after and now - last_old >= quiet_max:
                stop_reason = "%s quiet for %.1f s" % (OLD, quiet_max)
                break
            if now >= t_change + window:
                break
            if wrk.poll() is not None:
                raise HarnessError("wrk exited during the trial:\n%s" % wrk.stdout.read())
        conns_old_end = conns_to(OLD, PORT)
        t_stop = time.time()
        wrk.send_signal(signal.SIGINT)
        try:
            out, _ = wrk.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            wrk.kill()
            out, _ = wrk.communicate()
    finally:
        if wrk.poll() is None:
            wrk.kill()
            wrk.wait()
    t_wrk_end = time.time()
    time.sleep(0.5)                  # the backends flush their logs every 200 ms
    for t in tails.values():
        t.poll()
    wres = parse_wrk(out)
    stats = matrix_judge.read_stats(px["stats_dir"]) if px["stats_dir"] else None
    dns = scene.dns_queries(t_change, t_stop)
    learned = first_answer(scene, SHIM_DNS if mech == "shim" else HAPROXY_DNS, NEW, t_change)
    scene.stop_proxy(px)
    haproxy_switched = None
    if px["haproxy_out"]:
        try:
            with open(px["haproxy_out"], errors="replace") as f:
                haproxy_switched = ("changed its IP from %s to %s" % (OLD, NEW)) in f.read()
        except OSError:
            haproxy_switched = False

    before = [e for e in tails[OLD].entries if t_start <= e[0] < t_change]
    old_after = [e for e in tails[OLD].entries if t_change <= e[0] <= t_wrk_end]
    new_after = [e for e in tails[NEW].entries if t_change <= e[0] <= t_wrk_end]
    new_before = [e for e in tails[NEW].entries if e[0] < t_change]
    last_old = max(e[0] for e in old_after) if old_after else None
    first_new = min(e[0] for e in new_after) if new_after else None
    moved = bool(new_after) and (last_old is None or t_stop - last_old >= 0.99)
    # where the traffic went at the end of the trial (the last 2 s before wrk was stopped)
    tail_old = len([e for e in old_after if e[0] >= t_stop - 2.0])
    tail_new = len([e for e in new_after if e[0] >= t_stop - 2.0])
    res = {
        "mechanism": mech, "label": MECHANISMS[mech], "ttl": ttl, "conns": conns,
        "upstream_keepalive": keepalive, "wrk": " ".join(argv[:-1]),
        "requests_old_before_change": len(before), "requests_new_before_change": len(new_before),
        "requests_old_after_change": len(old_after), "requests_new_after_change": len(new_after),
        "last_old_s": round(last_old - t_change, 3) if last_old else 0.0,
        "first_new_s": round(first_new - t_change, 3) if first_new else None,
        "observed_s": round(t_stop - t_change, 2), "stop_reason": stop_reason,
        "old_share_last_2s": round(tail_old / (tail_old + tail_new), 3)
        if tail_old + tail_new else None,
        "moved": moved,
        "conns_old_before_change": conns_old_before, "conns_old_at_end": conns_old_end,
        "old_conns_used_after_change": len({(e[1], e[2]) for e in old_after}),
        "wrk_rps": wres["rps"], "wrk_requests": wres["requests"], "wrk_p99_ms": wres["p99_ms"],
        "failed": wres["errors"], "wrk_socket_errors": wres["socket_errors"],
        "wrk_non2xx": wres["non2xx"],
        "proxy_error_log_errors": count_error_lines(px),
        "dns_queries_after_change": dns,
        "resolver_got_new_s": round(learned - t_change, 3) if learned else None,
        "haproxy_switched_address": haproxy_switched,
    }
    if stats:
        res["shim_stats"] = stats.get("stats")
        res["shim_stats_error"] = stats.get("stats_error")
    return res


def first_answer(scene, listen, addr, t_from):
    """When the resolver on `listen` (the shim's or HAProxy's) was first answered `addr`."""
    for q in dnsresponder.read_log(scene.dns_log):
        if (q.get("listen") == listen and q.get("qname") == NAME and q.get("t", 0) >= t_from
                and q.get("src") != dnsmove.DRIVER_SRC and addr in (q.get("answers") or [])):
            return q["t"]
    return None


def count_error_lines(px):
    paths = [os.path.join(px["prefix"], "error.log")]
    n = 0
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                n += sum(1 for line in f if "[error]" in line or "[crit]" in line
                         or "[alert]" in line or "[emerg]" in line)
        except OSError:
            pass
    return n


def bench_reaction(scene, p):
    logs = {a: scene.path("access-%s.log" % a) for a in (OLD, NEW)}
    for a in (OLD, NEW):
        scene.start_backend(a, access_log=logs[a])
    trials = []
    flip = False
    # Trial k of every condition runs before trial k+1 of any, so a noisy minute on the shared
    # machine spreads over conditions instead of landing on one.
    for trial in range(p["react_trials"]):
        for ttl in p["ttls"]:
            for n in p["conns"]:
                order = ["shim", "haproxy"] if not flip else ["haproxy", "shim"]
                flip = not flip
                for mech in order:
                    r = reaction_trial(scene, p, mech, ttl, n, logs)
                    r["trial"] = trial + 1
                    trials.append(r)
                    log("  reaction trial %d, TTL %ds, %d connections, %s: %s; last request on "
                        "%s change%+.2fs (%d after the change), first on %s %s, %d failed, "
                        "%d connections to %s left (stopped: %s, after %.1f s)"
                        % (trial + 1, ttl, n, MECHANISMS[mech],
                           "moved" if r["moved"] else "DID NOT MOVE",
                           OLD, r["last_old_s"], r["requests_old_after_change"], NEW,
                           "change%+.2fs" % r["first_new_s"] if r["first_new_s"] is not None
                           else "never", r["failed"], r["conns_old_at_end"], OLD,
                           r["stop_reason"], r["observed_s"]))
    scene.stop_backends()
    scene.set_answer(OLD, 1)
    return {"trials": trials,
            "params": {k: p[k] for k in ("ttls", "conns", "react_warmup", "window_extra",
                                         "react_trials")},
            "haproxy_resolvers": "timeout resolve 1s, hold valid 1s (HAProxy re-resolves on "
                                 "its own interval; the record's TTL does not change it)",
            "shim_env": "DNSAWARE_TTL_FLOOR=%s, defaults otherwise" % TTL_FLOOR}


def check_reaction(res):
    problems = []
    for r in res["trials"]:
        what = "TTL %ds, %d connections, %s" % (r["ttl"], r["conns"], r["label"])
        if r["requests_old_before_change"] <= 0 or r["requests_new_before_change"] > 0:
            problems.append("%s: traffic before the change did not all go to %s (%d there, %d "
                            "on %s)" % (what, OLD, r["requests_old_before_change"],
                                        r["requests_new_before_change"], NEW))
        if r["resolver_got_new_s"] is None:
            problems.append("%s: its resolver was never answered %s after the change"
                            % (what, NEW))
        if r["mechanism"] == "haproxy" and not r["haproxy_switched_address"]:
            problems.append("%s: HAProxy never logged its server's address change to %s"
                            % (what, NEW))
        if r["mechanism"] == "shim" and not r["moved"]:
            problems.append("%s: did not move within %.1f s (last request on %s at change%+.2fs,"
                            " %d on %s)" % (what, r["observed_s"], OLD, r["last_old_s"],
                                            r["requests_new_after_change"], NEW))
        if not r["wrk_rps"] or r["wrk_rps"] <= 0:
            problems.append("%s: wrk reported no throughput" % what)
    return problems


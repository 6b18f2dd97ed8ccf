"""bench_local.py scale: many idle tracked sockets in one process (memory per socket, the shim
thread's CPU and wake-ups while nothing changes and during a drain), run inside the namespaces,
and its markdown report (split out of tests/bench/bench_local.py, whose docstring describes the
measurement).
"""

import json
import os
import resource

from bench_common import BenchError, clean_env, fmt, md_table, verdict
from bench_local_ns import LineProc, ns_setup, ports_for, read_stats, rewrite_in_place, start_sink

HEALTHY, HEALTHY_ADDR = "healthy.test", "127.0.0.10"
DRAIN, DRAIN_OLD, DRAIN_NEW = "drain.test", "127.0.0.20", "127.0.0.21"


def scale_hosts(drain_addr):
    return ("127.0.0.1 localhost\n%s %s\n%s %s\n" % (HEALTHY_ADDR, HEALTHY, drain_addr, DRAIN))


def nofile_capacity(want):
    """The most fds one process can have here, and why not more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        with open("/proc/sys/fs/nr_open") as f:
            nr_open = int(f.read())
    except OSError:
        nr_open = hard
    if hard >= want:
        return want, None
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, nr_open), min(want, nr_open)))
        return min(want, nr_open), None
    except (ValueError, OSError) as e:
        cap = ""
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("CapBnd:"):
                        has = bool(int(line.split()[1], 16) & (1 << 24))
                        cap = (" CAP_SYS_RESOURCE is %s the bounding set of this container"
                               % ("in" if has else "not in"))
        except OSError:
            pass
        return hard, ("the hard RLIMIT_NOFILE is %d and cannot be raised (setrlimit: %s);%s, so "
                      "even root cannot raise it (prlimit fails the same way)" % (hard, e, cap))


def scale_inside(opts):
    wd = opts.workdir
    if opts.smoke:
        sizes, drain_count, window, floor, settle = [100], 10, 2.0, "200ms", 0.5
    else:
        sizes, drain_count, window, floor, settle = [1000, 10000, 50000], 100, 10.0, "1s", 1.0
    hosts = ns_setup(wd, scale_hosts(DRAIN_OLD))
    largest_wanted = max(sizes)
    fds_wanted = largest_wanted + drain_count + 64
    capacity, why = nofile_capacity(fds_wanted)
    limited = None
    if capacity < fds_wanted:
        largest = capacity - drain_count - 64
        sizes = [s for s in sizes if s < largest] + [largest]
        limited = {"wanted": largest_wanted, "measured": largest, "reason": why}
    out = {"drain_count": drain_count, "window_s": window, "ttl_floor": floor,
           "limited": limited, "runs": []}
    port = 21000
    for idx, n in enumerate(sizes):
        row = {"n_healthy": n, "n_drain": drain_count}
        for variant in ("plain", "shim"):
            rewrite_in_place(hosts, scale_hosts(DRAIN_OLD))
            hp = ports_for(port, n)
            port += len(hp)
            dp = ports_for(port, drain_count)
            port += len(dp)
            sink = start_sink(wd, ["%s:%d" % (HEALTHY_ADDR, p) for p in hp]
                              + ["%s:%d" % (DRAIN_OLD, p) for p in dp], "%d.%s" % (n, variant))
            stats_path = os.path.join(wd, "stats.%d.%s.prom" % (n, variant))
            env = clean_env()
            if variant == "shim":
                env.update(LD_PRELOAD=opts.lib, DNSAWARE_TTL_FLOOR=floor,
                           DNSAWARE_STATS_FILE=stats_path, DNSAWARE_STATS_INTERVAL="1h")
            argv = [os.path.join(wd, "conns"), "--settle", str(settle),
                    "%s:%s:%d" % (HEALTHY, ",".join(map(str, hp)), n),
                    "%s:%s:%d" % (DRAIN, ",".join(map(str, dp)), drain_count)]
            c = LineProc(argv, env, os.path.join(wd, "conns.%d.%s.err" % (n, variant)))
            try:
                ready = json.loads(c.readline(120))
                if ready["addrs"] != [HEALTHY_ADDR, DRAIN_OLD]:
                    raise BenchError("conns resolved %r" % ready["addrs"])
                rec = {"rss_before_kb": ready["rss_before_kb"],
                       "rss_after_kb": ready["rss_after_kb"],
                       "anon_before_kb": ready["anon_before_kb"],
                       "anon_after_kb": ready["anon_after_kb"], "connect_s": ready["connect_s"],
                       "threads": ready["threads"]}
                if variant == "shim":
                    if not ready["tid"]:
                        raise BenchError("scale N=%d: no dnsaware thread under the shim" % n)
                    rec["thread_cpu_setup_ms"] = ready["thread_cpu_ns"] / 1e6
                    steady = json.loads(c.ask("measure %g" % window, window + 120))
                    rewrite_in_place(hosts, scale_hosts(DRAIN_NEW))
                    drain = json.loads(c.ask("measure %g" % window, window + 120))
                    for name, m in (("steady", steady), ("drain", drain)):
                        secs = m["wall_ns"] / 1e9
                        rec[name] = {
                            "wall_s": secs, "cpu_ms": m["cpu_ns"] / 1e6,
                            "cpu_ms_per_s": m["cpu_ns"] / 1e6 / secs,
                            "ticks_ms_per_s": m["ticks"] * 1000.0 / os.sysconf("SC_CLK_TCK") / secs,
                            "wakeups": m["wakeups"], "wakeups_per_s": m["wakeups"] / secs,
                            "cpu_us_per_wakeup": (m["cpu_ns"] / 1e3 / m["wakeups"]
                                                  if m["wakeups"] > 0 else None),
                            "eof_healthy": m["eof"][0], "eof_drain": m["eof"][1]}
                c.p.stdin.write("quit\n")
                c.p.stdin.flush()
            finally:
                rc = c.close(120)
                sink.close()
            if rc != 0:
                raise BenchError("conns exited with status %s" % rc)
            if variant == "shim":
                st = read_stats(stats_path)
                rec["stats_tracked_sockets"] = st.get("dnsaware_tracked_sockets")
                rec["stats_shutdowns"] = sum(v for k, v in st.items()
                                             if k.startswith("dnsaware_sockets_shutdown_total"))
                rec["stats_resolutions_ok"] = st.get("dnsaware_resolutions_total{result=ok}")
                if rec["stats_tracked_sockets"] != n + drain_count:
                    raise BenchError("scale N=%d: the shim tracked %s sockets, expected %d"
                                     % (n, rec["stats_tracked_sockets"], n + drain_count))
                if rec["steady"]["eof_drain"] or rec["steady"]["eof_healthy"]:
                    raise BenchError("scale N=%d: connections shut down before the move" % n)
                if rec["drain"]["eof_healthy"] != 0:
                    raise BenchError("scale N=%d: %d healthy connections were shut down"
                                     % (n, rec["drain"]["eof_healthy"]))
                if rec["drain"]["eof_drain"] != drain_count:
                    raise BenchError("scale N=%d: %d of %d connections of the moved name drained "
                                     "within %g s" % (n, rec["drain"]["eof_drain"], drain_count,
                                                      window))
                if not rec["steady"]["cpu_ms"] > 0:
                    raise BenchError("scale N=%d: the thread used no CPU at all?" % n)
            row[variant] = rec
        tracked = n + drain_count
        for field, key in (("rss", "rss_added_kb"), ("anon", "anon_added_kb")):
            d_shim = row["shim"][field + "_after_kb"] - row["shim"][field + "_before_kb"]
            d_plain = row["plain"][field + "_after_kb"] - row["plain"][field + "_before_kb"]
            row[key] = d_shim - d_plain
        # VmRSS also counts the file pages of shared libraries, which vary by +-100 kB from run
        # to run here; RssAnon (what the shim allocates is all anonymous) is stable to a page.
        row["bytes_per_socket_rss"] = row["rss_added_kb"] * 1024.0 / tracked
        row["bytes_per_socket"] = row["anon_added_kb"] * 1024.0 / tracked
        if row["anon_added_kb"] <= 0:
            raise BenchError("scale N=%d: the shim added no memory (RssAnon %+d kB)?"
                             % (n, row["anon_added_kb"]))
        out["runs"].append(row)
    runs = out["runs"]
    if len(runs) >= 2:
        a, b = runs[0], runs[-1]
        out["marginal_bytes_per_socket"] = ((b["anon_added_kb"] - a["anon_added_kb"]) * 1024.0
                                            / (b["n_healthy"] - a["n_healthy"]))
        out["fixed_kb"] = (a["anon_added_kb"] - out["marginal_bytes_per_socket"]
                           * (a["n_healthy"] + a["n_drain"]) / 1024.0)
        sa, sb = a["shim"]["steady"], b["shim"]["steady"]
        da, db = a["shim"]["drain"], b["shim"]["drain"]
        out["steady_growth"] = (sb["cpu_ms_per_s"] / sa["cpu_ms_per_s"]
                                if sa["cpu_ms_per_s"] > 0 else None)
        out["drain_growth"] = (db["cpu_ms_per_s"] / da["cpu_ms_per_s"]
                               if da["cpu_ms_per_s"] > 0 else None)
        # Work per wake-up per 1,000 healthy sockets, from the smallest to the largest N.
        for name, x, y in (("steady", sa, sb), ("drain", da, db)):
            if x["cpu_us_per_wakeup"] is not None and y["cpu_us_per_wakeup"] is not None:
                out[name + "_us_per_wakeup_per_1000_healthy"] = (
                    (y["cpu_us_per_wakeup"] - x["cpu_us_per_wakeup"]) * 1000.0
                    / (b["n_healthy"] - a["n_healthy"]))
        # "Does not grow": the largest N costs at most twice the smallest, per second of wall
        # time, in both phases.
        out["pass"] = all(g is not None and g <= 2.0 for g in (out["steady_growth"],
                                                                out["drain_growth"]))
    return out


def scale_report(r):
    lines = ["### scale: many idle tracked sockets in one process", ""]
    if r.get("limited"):
        lines += ["N is limited to %d here (wanted %d): %s." % (
            r["limited"]["measured"], r["limited"]["wanted"], r["limited"]["reason"]), ""]
    lines += ["N healthy connections to one name plus %d to a second name that moves in the "
              "drain phase; all idle. Memory: /proc/self/status after the connects minus before "
              "them, with the shim minus without; RssAnon is the figure (VmRSS also counts "
              "shared-library file pages, which vary by about 100 kB between runs). DNSAWARE_TTL_FLOOR=%s, /etc/hosts answers (re-resolved at "
              "the floor). Thread CPU from its per-thread CPU clock over %g s of wall time; "
              "wake-ups = voluntary context switches." % (r["drain_count"], r["ttl_floor"],
                                                         r["window_s"]), ""]
    rows = []
    for row in r["runs"]:
        s = row["shim"]
        rows.append(["{:,}".format(row["n_healthy"]), "{:,}".format(row["anon_added_kb"]) + " kB",
                     "%.0f" % row["bytes_per_socket"],
                     "{:,}".format(row["rss_added_kb"]) + " kB (%.0f B)" % row["bytes_per_socket_rss"],
                     "%.2f s / %.2f s" % (row["plain"]["connect_s"], s["connect_s"]),
                     "%.0f ms" % s["thread_cpu_setup_ms"]])
    lines.append(md_table(["N healthy", "RssAnon added (N+%d tracked)" % r["drain_count"],
                           "bytes per tracked socket", "VmRSS added (per socket)",
                           "connect all: without / with",
                           "thread CPU while connecting"], rows))
    if "marginal_bytes_per_socket" in r:
        lines += ["", "Marginal memory between the smallest and largest N: %.0f bytes per tracked "
                  "socket, on top of about %.0f kB once (the thread's stack and arena, c-ares)."
                  % (r["marginal_bytes_per_socket"], r["fixed_kb"])]
    lines.append("")
    rows = []
    for row in r["runs"]:
        for phase in ("steady", "drain"):
            p = row["shim"][phase]
            rows.append(["{:,}".format(row["n_healthy"]),
                         "nothing changes" if phase == "steady"
                         else "%d connections drain" % row["n_drain"],
                         "%.3f" % p["cpu_ms_per_s"], "%.1f" % p["ticks_ms_per_s"],
                         "%.1f" % p["wakeups_per_s"], fmt(p["cpu_us_per_wakeup"], 0),
                         "%d / %d" % (p["eof_drain"], p["eof_healthy"])])
    lines.append(md_table(["N healthy", "phase", "thread CPU ms/s", "(from ticks)",
                           "wake-ups/s", "µs per wake-up", "shut down: moved / healthy"], rows))
    if "steady_growth" in r:
        lines += ["", "From the smallest to the largest N the thread's CPU per second grows "
                  "x%.1f while nothing changes and x%.1f during the drain; per wake-up, %.1f µs "
                  "(steady) and %.1f µs (drain) more per 1,000 healthy sockets. Target (does not "
                  "grow with healthy sockets, at most x2): %s." % (
                      r["steady_growth"] or 0, r["drain_growth"] or 0,
                      r.get("steady_us_per_wakeup_per_1000_healthy", 0),
                      r.get("drain_us_per_wakeup_per_1000_healthy", 0), verdict(r["pass"]))]
    return "\n".join(lines)

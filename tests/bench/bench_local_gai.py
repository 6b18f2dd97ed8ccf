"""bench_local.py gai: getaddrinfo latency (issue 15), glibc asking a DNS server on loopback,
glibc through nscd, and a lookup the shim's cache answers, run inside the namespaces, and its
markdown report (tests/bench/bench_local.py's docstring describes the measurement).

Inside `unshare --mount --net` (lo up, private resolv.conf, hosts and nsswitch.conf with
`hosts: files dns`, bench_local_ns.ns_setup): dnsmasq answers two names with TTL 300 s on
127.0.0.53, a dual-stack one (A and AAAA) and an IPv4-only one. glibc sorts an answer of more
than one address (RFC 6724: a UDP socket, connect and getsockname per address, after a netlink
dump of the interface addresses that nscd lets it skip) after whichever source answered, nscd's
cache included; an answer of one address skips that. Debian's nscd runs in a mount namespace of its own, below the bench's,
with its socket directory (the work directory's nscd-run) bind-mounted over /var/run/nscd
(glibc's client connects to /var/run/nscd/socket) and its own nscd.conf (hosts only, not
persistent, shared as Debian ships it: its clients read the cache from a mapping nscd hands
them, without a round trip). The nscd case's program runs in a mount namespace of its own with
the same bind; the others see an empty /var/run/nscd, so no nscd at all. nscd and dnsmasq are
stopped at the end whatever happens, and die with the measurement if it is killed: it runs as
the init of a PID namespace of its own (run_in_namespaces(pid=True)).

Each case runs tests/bench/gai_latency (built by meson) ROUNDS times per name, the cases in
rotating order, each run a fresh process; the percentiles are over every timed lookup of a case
(pooled). dnsmasq's query counters (SIGUSR1, which gai_latency sends at the end of its warm-up
and of its timed lookups) give the DNS queries per timed lookup: about 2 (A and AAAA) when glibc
asks the server, 0 when nscd or the shim's cache answers. The shim's stats file gives how many of
the timed lookups its cache answered.
"""

import array
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

from bench_common import BenchError, clean_env, log, md_table, run, verdict
from bench_local_ns import ns_setup

DNS = "127.0.0.53"
TTL = 300
# key, name, its A address (what gai_latency checks every answer holds), its AAAA or None.
NAMES = (("dual", "dual.gai.test", "127.0.0.10", "fd00::10"),
         ("v4", "v4.gai.test", "127.0.0.11", None))
# The names the goal is judged on. A name with one address is reported, not judged: nscd's shared
# cache hands glibc a one-address answer with no system call and glibc has nothing to sort (about
# 110 ns), while a hit must build a list the program frees with freeaddrinfo (a calloc per entry);
# a name with several addresses, glibc sorts after nscd answers, a UDP socket per address.
GOAL_NAMES = ("dual",)
CASES = ("dns", "nscd", "shim", "timer")
LABELS = {"dns": "glibc, DNS server on loopback (dnsmasq)",
          "nscd": "glibc through nscd (Debian's, shared cache)",
          "shim": "libdnsaware, DNSAWARE_CACHE=1",
          "timer": "libdnsaware, defaults (the response timer's query, then the kept answer)"}
GOAL = 20.0                     # nscd's p50 over the shim's hit p50
NSCD_DIR = "/var/run/nscd"      # glibc's _PATH_NSCDSOCKET is /var/run/nscd/socket
NSCD_CONF = """\
# libdnsaware's getaddrinfo benchmark (tests/bench/bench_local_gai.py): hosts only, in memory.
	logfile			{log}
	debug-level		0
	paranoia		no
	enable-cache		passwd		no
	enable-cache		group		no
	enable-cache		services	no
	enable-cache		netgroup	no
	enable-cache		hosts		yes
	positive-time-to-live	hosts		3600
	negative-time-to-live	hosts		20
	suggested-size		hosts		211
	check-files		hosts		yes
	persistent		hosts		no
	shared			hosts		yes
	max-db-size		hosts		33554432
"""
# A command run with the nscd socket directory ($1) over /var/run/nscd, in a mount namespace of
# its own (unshare --mount makes its mounts private).
WITH_NSCD_DIR = ["unshare", "--mount", "--", "/bin/sh", "-c",
                 'mount --bind "$1" %s && shift && exec "$@"' % NSCD_DIR, "sh"]
DUMP_LINE = re.compile(r"queries forwarded (\d+), queries answered locally (\d+)")


def gai_program(opts):
    """gai_latency as meson builds it: <build>/tests/bench/ beside <build>/src/libdnsaware.so."""
    if getattr(opts, "gai_latency", None):
        return os.path.abspath(opts.gai_latency)
    build = os.path.dirname(os.path.dirname(os.path.abspath(opts.lib)))
    return os.path.join(build, "tests", "bench", "gai_latency")


def daemon_path(name):
    return shutil.which(name) or ("/usr/sbin/" + name if os.path.exists("/usr/sbin/" + name)
                                  else None)


def gai_prerequisites(opts):
    missing = []
    for name, package in (("dnsmasq", "dnsmasq-base"), ("nscd", "nscd")):
        if daemon_path(name) is None:
            missing.append("%s not found (tools/setup installs %s)" % (name, package))
    prog = gai_program(opts)
    if not os.access(prog, os.X_OK):
        missing.append("%s not found (build it: ninja -C build)" % prog)
    return missing


def sizes(smoke):
    """(rounds, timed lookups per round, warm-up lookups, longest warm-up s, settle s)."""
    return (1, 300, 50, 0.3, 0.15) if smoke else (4, 5000, 1000, 1.0, 0.25)


def spawn(argv, tag, wd):
    err = open(os.path.join(wd, tag + ".err"), "w")
    p = subprocess.Popen(argv, env=clean_env(), stdin=subprocess.DEVNULL, stdout=err,
                         stderr=subprocess.STDOUT)
    err.close()
    return p


def stop(p):
    if p is None or p.poll() is not None:
        return
    p.terminate()
    try:
        p.wait(5)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def hide_nscd_dir(wd):
    """The bench's programs see an empty /var/run/nscd: no nscd unless a case binds its own."""
    if not os.path.isdir(NSCD_DIR):
        run_dir = os.path.realpath(os.path.dirname(NSCD_DIR))
        if os.path.realpath(wd).startswith(run_dir + "/"):
            raise BenchError("%s does not exist and the work directory %s is under %s: no "
                             "place for nscd's socket directory" % (NSCD_DIR, wd, run_dir))
        run(["mount", "-t", "tmpfs", "-o", "mode=755", "tmpfs", run_dir])
        os.mkdir(NSCD_DIR)
    empty = os.path.join(wd, "nscd-none")
    os.mkdir(empty)
    run(["mount", "--bind", empty, NSCD_DIR])


def start_dnsmasq(wd):
    argv = [daemon_path("dnsmasq"), "--keep-in-foreground", "--conf-file=/dev/null",
            "--no-resolv", "--no-hosts", "--no-poll", "--local=/test/", "--local-ttl=%d" % TTL,
            "--listen-address=" + DNS, "--bind-interfaces", "--port=53", "--user=root",
            "--pid-file=" + os.path.join(wd, "dnsmasq.pid"),
            "--log-facility=" + os.path.join(wd, "dnsmasq.log")]
    for _, name, a, aaaa in NAMES:
        argv.append("--host-record=%s,%s%s,%d" % (name, a, "," + aaaa if aaaa else "", TTL))
    p = spawn(argv, "dnsmasq", wd)
    end = time.monotonic() + 10
    while True:
        try:
            socket.getaddrinfo(NAMES[0][1], 80, type=socket.SOCK_STREAM)
            return p
        except socket.gaierror as e:
            if p.poll() is not None or time.monotonic() > end:
                stop(p)
                raise BenchError("dnsmasq does not answer %s (%s; status %s)"
                                 % (NAMES[0][1], e, p.returncode))
            time.sleep(0.05)


def start_nscd(wd):
    sock_dir = os.path.join(wd, "nscd-run")
    os.mkdir(sock_dir)
    conf = os.path.join(wd, "nscd.conf")
    with open(conf, "w") as f:
        f.write(NSCD_CONF.format(log=os.path.join(wd, "nscd.log")))
    others = [int(x) for x in subprocess.run(["pgrep", "-x", "nscd"], stdout=subprocess.PIPE,
                                             text=True).stdout.split()]
    if others:
        log("bench_local.py: gai: WARNING: nscd already runs outside the bench (pid %s); it "
            "caches host-wide and breaks the DNS-change tests" % ", ".join(map(str, others)))
    p = spawn(WITH_NSCD_DIR + [sock_dir, daemon_path("nscd"), "-F", "-f", conf], "nscd", wd)
    end = time.monotonic() + 10
    while not os.path.exists(os.path.join(sock_dir, "socket")):
        if p.poll() is not None or time.monotonic() > end:
            stop(p)
            with open(os.path.join(wd, "nscd.err")) as f:
                err = f.read().strip()[-1000:]
            raise BenchError("nscd did not start (status %s): %s" % (p.returncode, err))
        time.sleep(0.02)
    return p, sock_dir


def dumps(wd):
    """dnsmasq's query counts (forwarded + answered locally), one per SIGUSR1 so far."""
    try:
        with open(os.path.join(wd, "dnsmasq.log")) as f:
            return [int(a) + int(b) for a, b in DUMP_LINE.findall(f.read())]
    except FileNotFoundError:
        return []


def run_case(opts, wd, prog, case, key, name, addr, rnd, dnsmasq, sock_dir):
    rounds, lookups, warmup, warmup_max, settle = sizes(opts.smoke)
    tag = "gai.%s.%s.%d" % (key, case, rnd)
    samples = os.path.join(wd, tag + ".samples")
    argv = [prog, name, addr, "--lookups", str(lookups), "--warmup", str(warmup),
            "--warmup-max", str(warmup_max), "--settle", str(settle), "--samples", samples,
            "--signal-pid", str(dnsmasq.pid)]
    env = clean_env()
    if case == "nscd":
        argv = WITH_NSCD_DIR + [sock_dir] + argv
    elif case == "shim":
        stats = os.path.join(wd, tag + ".prom")
        argv += ["--stats-file", stats]
        env = clean_env(LD_PRELOAD=opts.lib, DNSAWARE_CACHE="1",
                        DNSAWARE_STATE_DIR=tempfile.mkdtemp(prefix=tag + ".state.", dir=wd),
                        DNSAWARE_STATS_FILE=stats, DNSAWARE_STATS_INTERVAL="100ms")
    elif case == "timer":
        # No cache: a lookup of a known name asks DNS itself (c-ares, on its own thread) and,
        # the answer agreeing, gets the kept answer: what a healthy lookup costs under the shim.
        env = clean_env(LD_PRELOAD=opts.lib,
                        DNSAWARE_STATE_DIR=tempfile.mkdtemp(prefix=tag + ".state.", dir=wd))
    before = len(dumps(wd))
    with open(os.path.join(wd, tag + ".err"), "w") as err:
        r = subprocess.run(argv, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                           timeout=300)
    if r.returncode != 0:
        with open(os.path.join(wd, tag + ".err")) as f:
            raise BenchError("gai %s %s exited with status %d: %s"
                             % (case, name, r.returncode, f.read().strip()[-1000:]))
    try:
        res = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError("gai %s %s printed %r" % (case, name, r.stdout[-500:]))
    with open(samples, "rb") as f:
        res["samples"] = array.array("Q")
        res["samples"].frombytes(f.read())
    if len(res["samples"]) != lookups or res["lookups"] != lookups:
        raise BenchError("gai %s %s: %d samples for %d lookups"
                         % (case, name, len(res["samples"]), lookups))
    # The two dumps gai_latency asked for (end of the warm-up, end of the timed lookups).
    end = time.monotonic() + 3
    while len(dumps(wd)) < before + 2 and time.monotonic() < end:
        time.sleep(0.02)
    d = dumps(wd)
    res["dns_queries"] = d[before + 1] - d[before] if len(d) == before + 2 else None
    return res


def rank(sorted_samples, p):
    k = int(p * len(sorted_samples) + 0.999999)
    return sorted_samples[max(k, 1) - 1]


def pooled(runs):
    s = sorted(x for r in runs for x in r["samples"])
    n = len(s)
    out = {"lookups": n, "p50_ns": rank(s, 0.50), "p99_ns": rank(s, 0.99),
           "mean_ns": sum(s) / n, "min_ns": s[0], "max_ns": s[-1],
           "round_p50_ns": [r["p50_ns"] for r in runs],
           "warmup_lookups": [r["warmup_lookups"] for r in runs],
           "entries": runs[0]["entries"], "timer_p50_ns": runs[0]["timer_p50_ns"]}
    q = [r["dns_queries"] for r in runs]
    out["dns_queries"] = None if None in q else sum(q)
    out["dns_queries_per_lookup"] = None if None in q else sum(q) / n
    befores = [r.get("cache_before") for r in runs]
    afters = [r.get("cache_after") for r in runs]
    if any(b is not None for b in befores):
        if not all(a and a.get("file") for a in afters):
            out["cache"] = {"stats_file": False}
        elif not all(a.get("lookups") is not None for a in afters):
            out["cache"] = {"stats_file": True, "counters": False}
        else:
            hits = sum(a["hits"] - (b.get("hits") or 0) for a, b in zip(afters, befores))
            counted = sum(a["lookups"] - (b.get("lookups") or 0) for a, b in zip(afters, befores))
            out["cache"] = {"stats_file": True, "counters": True, "hits": hits,
                            "lookups_counted": counted, "hit_ratio": hits / n}
    return out


def gai_inside(opts):
    wd = opts.workdir
    prog = gai_program(opts)
    rounds, lookups, _, _, _ = sizes(opts.smoke)
    ns_setup(wd, "127.0.0.1 localhost\n::1 localhost\n", nameserver=DNS)
    # Both of the dual-stack name's addresses routable, as on a dual-stack host.
    run(["ip", "-6", "addr", "add", "fd00::1/64", "dev", "lo"])
    hide_nscd_dir(wd)
    out = {"ttl_s": TTL, "rounds": rounds, "lookups_per_round": lookups, "dns": DNS,
           "names": {k: {"name": n, "a": a, "aaaa": aaaa} for k, n, a, aaaa in NAMES},
           "cases": {}}
    dnsmasq = nscd = None
    runs = {}
    try:
        dnsmasq = start_dnsmasq(wd)
        nscd, sock_dir = start_nscd(wd)
        for rnd in range(rounds):
            for key, name, addr, _ in NAMES:
                order = CASES[rnd % len(CASES):] + CASES[:rnd % len(CASES)]
                for case in order:
                    runs.setdefault(key, {}).setdefault(case, []).append(
                        run_case(opts, wd, prog, case, key, name, addr, rnd, dnsmasq, sock_dir))
            if nscd.poll() is not None:
                raise BenchError("nscd exited (status %s) during the run" % nscd.returncode)
    finally:
        stop(nscd)
        stop(dnsmasq)
    for key, _, _, _ in NAMES:
        cases = {c: pooled(runs[key][c]) for c in CASES}
        out["cases"][key] = cases
        for c, r in cases.items():
            if not 0 < r["p50_ns"] < 1e9:
                raise BenchError("gai %s %s: p50 %d ns makes no sense" % (key, c, r["p50_ns"]))
        q = {c: cases[c]["dns_queries_per_lookup"] for c in CASES}
        if q["dns"] is not None and q["dns"] < 1.5:
            raise BenchError("gai %s: glibc asked the DNS server %.2f times per lookup "
                             "(expected 2: A and AAAA)" % (key, q["dns"]))
        if q["nscd"] is not None and q["nscd"] > 0.01:
            raise BenchError("gai %s: nscd did not answer: glibc asked the DNS server %.2f "
                             "times per lookup" % (key, q["nscd"]))
        shim = cases["shim"]["p50_ns"]
        out.setdefault("ratios", {})[key] = {
            "nscd_over_shim": cases["nscd"]["p50_ns"] / shim,
            "dns_over_shim": cases["dns"]["p50_ns"] / shim,
            "dns_over_nscd": cases["dns"]["p50_ns"] / cases["nscd"]["p50_ns"]}
    out["goal"] = GOAL
    out["goal_names"] = list(GOAL_NAMES)
    out["pass"] = all(r["nscd_over_shim"] >= GOAL for k, r in out["ratios"].items() if k in GOAL_NAMES)
    return out


def fmt_ns(ns):
    if ns < 1000:
        return "%d ns" % round(ns)
    if ns < 1e6:
        return "%.*f µs" % (2 if ns < 1e4 else 1, ns / 1e3)
    return "%.2f ms" % (ns / 1e6)


def fmt_ratio(x):
    return "x%.*f" % (0 if x >= 100 else 1 if x >= 1 else 3, x)


def cache_note(c):
    """What the shim's stats file and dnsmasq's counters say of the timed lookups."""
    cache = c.get("cache") or {}
    if cache.get("counters"):
        return ("%s of the %s timed lookups were cache hits (%.1f %%; the shim counted %s "
                "lookups)" % ("{:,.0f}".format(cache["hits"]), "{:,}".format(c["lookups"]),
                              100 * cache["hit_ratio"], "{:,.0f}".format(cache["lookups_counted"])))
    why = ("its stats file has no dnsaware_cache_lookups_total (a shim without the cache)"
           if cache.get("stats_file") else
           "the shim wrote no stats file (it writes one once it watches something)")
    q = c["dns_queries_per_lookup"]
    if q is None:
        seen = "dnsmasq's query count is missing too"
    elif q >= 1.5:
        seen = "dnsmasq saw %.2f queries per timed lookup: none was a cache hit" % q
    elif q < 0.01:
        seen = "dnsmasq saw %.2f queries per timed lookup: a cache answered them" % q
    else:
        seen = "dnsmasq saw %.2f queries per timed lookup: some were answered without it" % q
    return "no hit count, %s; %s" % (why, seen)


def gai_report(r):
    lines = ["### gai: getaddrinfo latency", "",
             "`getaddrinfo(name, \"80\", AF_UNSPEC/SOCK_STREAM)` timed alone "
             "(clock_gettime around the call; the timer's own cost is about %d ns), %d round%s "
             "of %s timed lookups per case and name after a warm-up, each round a fresh process, "
             "the cases in rotating order; percentiles over every timed lookup. dnsmasq answers "
             "on %s with TTL %d s, in a private network namespace; nscd (hosts cache, shared, "
             "not persistent) in a private mount namespace; the shim with DNSAWARE_CACHE=1 (a "
             "hit), and with its defaults (a healthy lookup: the timer's query agrees, the kept "
             "answer is returned), each with a fresh DNSAWARE_STATE_DIR. DNS queries: counted by dnsmasq over the timed "
             "lookups." % (next(iter(r["cases"].values()))["dns"]["timer_p50_ns"], r["rounds"],
                           "" if r["rounds"] == 1 else "s", "{:,}".format(r["lookups_per_round"]),
                           r["dns"], r["ttl_s"]), ""]
    for key, cases in r["cases"].items():
        n = r["names"][key]
        entries = cases["dns"]["entries"]
        lines += ["`%s` (%s; %d addrinfo entr%s):" % (
            n["name"], "A %s and AAAA %s" % (n["a"], n["aaaa"]) if n["aaaa"]
            else "A %s only" % n["a"], entries, "y" if entries == 1 else "ies"), ""]
        rows = []
        for c in CASES:
            x = cases[c]
            q = x["dns_queries_per_lookup"]
            rows.append([LABELS[c], fmt_ns(x["p50_ns"]), fmt_ns(x["p99_ns"]), fmt_ns(x["mean_ns"]),
                         "{:,}".format(x["lookups"]), "—" if q is None else "%.2f" % q])
        lines.append(md_table(["case", "p50", "p99", "mean", "lookups",
                               "DNS queries per lookup"], rows))
        ra = r["ratios"][key]
        judged = key in r.get("goal_names", [key])
        goal = ("met" if ra["nscd_over_shim"] >= r["goal"] else "**missed**") if judged else \
            "not judged: one address, nothing for glibc to sort after nscd"
        lines += ["", "Shim: %s. nscd p50 / shim p50 = **%s** (goal ≥ x%g: %s); DNS p50 / "
                  "shim p50 = %s; DNS p50 / nscd p50 = %s." % (
                      cache_note(cases["shim"]), fmt_ratio(ra["nscd_over_shim"]), r["goal"], goal,
                      fmt_ratio(ra["dns_over_shim"]), fmt_ratio(ra["dns_over_nscd"])), ""]
    lines.append("Goal (a hit ≥ x%g faster than nscd, for a name with several addresses): %s." % (
        r["goal"], verdict(r["pass"])))
    return "\n".join(lines)

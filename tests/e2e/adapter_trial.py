#!/usr/bin/python3
"""One client adapter, alone, under a name that moves in DNS (with or without the shim).

    adapter_trial.py [--shim] [--lib PATH] [--proto http|grpc] [--rate R] [--warmup S]
                     [--moves N] [--move-every S] [--after S] [--shim-env VAR=VALUE ...]
                     [--env VAR=VALUE ...] [--workdir DIR] [--keep] -- ADAPTER [ARG...]

For trying an adapter of tests/e2e/clients/ standalone (the matrix runs them all together). In a
private mount and network namespace (`unshare --mount --net`, as tests/e2e/dnsmove.py does:
lo up, resolv.conf -> 127.0.0.1, hosts with localhost only, "hosts: files dns"):
  - tests/e2e/dnsresponder.py on 127.0.0.1:53 (the program's resolv.conf) and 127.0.0.3:53 (the
    shim's DNSAWARE_NAMESERVERS), serving svc.test -> 127.0.0.10 with TTL 1 s;
  - backends on 127.0.0.10 and 127.0.0.11: the HTTP backend (tests/e2e/dnsmove.py backend) on
    8080, or tests/e2e/grpc_backend.py on 50051 (--proto grpc);
  - ADAPTER ARG... --target svc.test:PORT --rate R --out client.jsonl --stop-file client.stop;
    with --shim, LD_PRELOAD=the library (DNSAWARE_TTL_FLOOR=200ms, DNSAWARE_NAMESERVERS=
    127.0.0.3, DNSAWARE_LOG=info to shim.log, a stats file), then --shim-env. --env goes to the
    adapter either way.
After the first answered request and --warmup seconds, svc.test moves .10 -> .11, then back, --moves
times, --move-every seconds apart (keep it >= 8 s: an address that comes back within four of the
shim's answers makes the name look rotating), and the run ends --after seconds after the last move.
--stop-old S stops the old address's backend S seconds after a single move: how the client
reconnects by itself when its server goes away.

Prints, per move, where the requests went (how long until the first request on the new address,
or "stayed"), the failed requests with their errors, and the program's own DNS queries; writes it
all to summary.json in the workdir. Exit status 0 when the run went through (following or staying
is reported, not judged), 2 when the scene could not be set up.
"""

import argparse
import collections
import json
import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dnsmove  # noqa: E402
import dnsresponder  # noqa: E402
from dnsmove import PYTHON, HarnessError, log, tail  # noqa: E402
from dnsmove_ns import read_jsonl  # noqa: E402
from dnsmove_scene import wait_listening  # noqa: E402

NAME = "svc.test"
PROGRAM_DNS, SHIM_DNS = "127.0.0.1", "127.0.0.3"
ADDRS = ["127.0.0.10", "127.0.0.11"]
PORTS = {"http": 8080, "grpc": 50051}


class Trial(dnsmove.Scene):
    def __init__(self, opts, workdir):
        super().__init__(opts, workdir)
        self.zone = self.path("zone.json")
        self.dns_log = self.path("dns-queries.jsonl")
        self.out = self.path("client.jsonl")
        self.stop_file = self.path("client.stop")
        self.client = None
        self.shim_events = []     # (time first seen, line): the shim's log has no timestamps
        self._shim_log_pos = 0

    def answer(self, addr):
        dnsresponder.write_zone(self.zone, {NAME: {"addrs": [addr], "ttl": 1}})
        end = time.monotonic() + 5
        while time.monotonic() < end:
            try:
                rcode, ans, _ = dnsresponder.query(PROGRAM_DNS, NAME, timeout=0.3,
                                                   src=dnsmove.DRIVER_SRC)
                if rcode == 0 and [a for a, _ in ans] == [addr]:
                    return time.time()
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        raise HarnessError("the DNS responder does not answer %s -> %s" % (NAME, addr))

    def start_servers(self):
        dnsresponder.write_zone(self.zone, {NAME: {"addrs": [ADDRS[0]], "ttl": 1}})
        self.spawn("dns", [PYTHON, os.path.join(HERE, "dnsresponder.py"), "--listen", PROGRAM_DNS,
                           "--listen", SHIM_DNS, "--zone", self.zone, "--log", self.dns_log])
        self.answer(ADDRS[0])
        port = PORTS[self.opts.proto]
        if self.opts.proto == "http":
            for a in ADDRS:
                self.spawn("backend-" + a, [PYTHON, dnsmove.__file__, "backend", "--addr", a,
                                            "--port", str(port),
                                            "--log", self.path("backend-%s.jsonl" % a)])
        else:
            for a in ADDRS:
                self.spawn("backend-" + a, [PYTHON, os.path.join(HERE, "grpc_backend.py"),
                                            "--addr", a, "--port", str(port),
                                            "--log", self.path("backend-%s.jsonl" % a)])
        wait_listening(ADDRS, port, timeout=15.0)

    def start_client(self):
        env = dnsmove.clean_env()
        if self.opts.shim:
            env.update(LD_PRELOAD=dnsmove.preload(self.opts.lib), DNSAWARE_TTL_FLOOR="200ms",
                       DNSAWARE_NAMESERVERS=SHIM_DNS, DNSAWARE_LOG="info",
                       DNSAWARE_LOG_FILE=self.path("shim.log"),
                       DNSAWARE_STATS_FILE=self.path("shim-%p.prom"),
                       DNSAWARE_STATS_INTERVAL="1s",
                       DNSAWARE_STATE_DIR=self.path("shim-state"))  # the run's own, empty
            os.makedirs(self.path("shim-state"), mode=0o700, exist_ok=True)
            env.update(kv.split("=", 1) for kv in self.opts.shim_env)
        env.update(kv.split("=", 1) for kv in self.opts.env)
        argv = self.opts.adapter + ["--target", "%s:%d" % (NAME, PORTS[self.opts.proto]),
                                    "--rate", "%g" % self.opts.rate, "--out", self.out,
                                    "--stop-file", self.stop_file, "--max-duration", "3600"]
        self.client = self.spawn("client", argv, env=env)

    def records(self):
        return read_jsonl(self.out)

    def alive(self):
        if self.client.poll() is not None:
            raise HarnessError("the adapter exited early with status %s:\n%s"
                               % (self.client.returncode, tail(self.path("client.out"))))

    def tail_shim_log(self):
        """Reads the shim's new log lines, stamped with the time they were first seen (within
        the 50 ms of sleep_until's polling)."""
        try:
            with open(self.path("shim.log"), "rb") as f:
                f.seek(self._shim_log_pos)
                data = f.read()
        except FileNotFoundError:
            return
        end = data.rfind(b"\n") + 1
        self._shim_log_pos += end
        now = time.time()
        with open(self.path("shim-events.jsonl"), "a") as f:
            for line in data[:end].decode("utf-8", "replace").splitlines():
                self.shim_events.append((now, line.strip()))
                f.write(json.dumps({"t": now, "line": line.strip()}) + "\n")

    def sleep_until(self, t):
        while time.time() < t:
            self.alive()
            self.tail_shim_log()
            time.sleep(min(0.05, max(0.0, t - time.time())))

    def wait_first_ok(self, timeout=30.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.alive()
            if any(r.get("type") == "req" and r.get("ok") for r in self.records()):
                return
            time.sleep(0.1)
        raise HarnessError("no answered request within %.0fs:\n%s"
                           % (timeout, tail(self.path("client.out"))))

    def stop_client(self):
        open(self.stop_file, "w").close()
        try:
            self.client.wait(15)
        except Exception:
            raise HarnessError("the adapter did not stop within 15 s of the stop file")
        if self.client.returncode != 0:
            raise HarnessError("the adapter exited with status %d:\n%s"
                               % (self.client.returncode, tail(self.path("client.out"))))


def shutdown_events(trial, reqs):
    """The shim's shutdowns (from its log, timed as seen), each with the failed requests that
    started from 0.2 s before it was seen until the next shutdown (2 s at most)."""
    events = []
    for t, line in trial.shim_events:
        if " shut down " not in line:
            continue
        reason = line.rpartition("(")[2].rstrip(")")
        path = reason.rpartition("path ")[2] if "path " in reason else "?"
        why = ("max_age" if "MAX_AGE" in reason else "dns" if "resolves" in reason
               else "balance" if "balanc" in reason else reason.split(";")[0])
        events.append({"t": t, "path": path, "reason": why})
    for i, e in enumerate(events):
        until = min(e["t"] + 2.0, events[i + 1]["t"] - 0.2 if i + 1 < len(events) else 1e20)
        e["failed"] = sum(1 for r in reqs if not r.get("ok") and e["t"] - 0.2 <= r["t"] < until)
    by = collections.defaultdict(lambda: [0, 0])
    for e in events:
        by["%s/%s" % (e["reason"], e["path"])][0] += 1
        by["%s/%s" % (e["reason"], e["path"])][1] += e["failed"]
    return events, {k: {"shutdowns": v[0], "failed_requests": v[1]} for k, v in by.items()}


def summarize(trial, moves, t_end):
    """moves: [(t_dns_changed, new_addr)]. Returns the summary dict."""
    reqs = [r for r in trial.records() if r.get("type") == "req"]
    meta = next((r for r in trial.records() if r.get("type") == "meta"), {})
    out = {"client": meta.get("client"), "version": meta.get("version"), "shim": trial.opts.shim,
           "rate": trial.opts.rate, "requests": len(reqs),
           "failed": sum(1 for r in reqs if not r.get("ok")),
           "connections": len({(r.get("backend"), r.get("client_port")) for r in reqs
                               if r.get("ok")}), "moves": []}
    bounds = [t for t, _ in moves] + [t_end]
    for i, (t_move, addr) in enumerate(moves):
        window = [r for r in reqs if t_move <= r["t"] < bounds[i + 1]]
        on_new = [r for r in window if r.get("ok") and r.get("backend") == addr]
        fails = [r for r in window if not r.get("ok")]
        out["moves"].append({
            "t": t_move, "to": addr, "requests": len(window),
            "first_on_new_s": round(on_new[0]["t"] - t_move, 2) if on_new else None,
            "last_on_old_s": max([round(r["t"] - t_move, 2) for r in window
                                  if r.get("ok") and r.get("backend") != addr], default=None),
            "failed": len(fails),
            "errors": collections.Counter(r.get("error", "?")[:160] for r in fails),
        })
    out["errors"] = collections.Counter(r.get("error", "?")[:160] for r in reqs if not r.get("ok"))
    dns = collections.Counter()
    for q in dnsresponder.read_log(trial.dns_log):
        if q.get("qname", "").rstrip(".").lower() == NAME and q.get("src") != dnsmove.DRIVER_SRC:
            who = "program" if q.get("listen") == PROGRAM_DNS else "shim"
            dns["%s %s" % (who, q.get("qtype"))] += 1
    out["dns_queries"] = dict(dns)
    if trial.opts.shim:
        shutdowns = []
        try:
            with open(trial.path("shim.log"), errors="replace") as f:
                shutdowns = [ln.strip() for ln in f if " shut down " in ln or "redirect" in ln
                             or " learned " in ln]
        except FileNotFoundError:
            pass
        out["shim_log_lines"] = shutdowns[:40]
        stats = {}
        for fn in os.listdir(trial.wd):
            if fn.startswith("shim-") and fn.endswith(".prom"):
                with open(trial.path(fn)) as f:
                    for ln in f:
                        if ln.startswith(("dnsaware_sockets_shutdown_total",
                                          "dnsaware_connects_redirected_total",
                                          "dnsaware_names_learned_total",
                                          "dnsaware_tracked_sockets")):
                            key, _, val = ln.rpartition(" ")
                            key = re.sub(r',?pid="\d+",?', ",", key)
                            key = key.replace("{,", "{").replace(",}", "}").replace("{}", "")
                            if float(val):
                                stats[key] = stats.get(key, 0) + float(val)
        out["shim_stats"] = stats
        out["shutdown_events"], out["shutdowns"] = shutdown_events(trial, reqs)
    return out


def report(s):
    log("%s (%s), %s, %d requests at %g/s, %d failed, %d connections"
        % (s["client"], s["version"], "SHIM" if s["shim"] else "no shim", s["requests"],
           s["rate"], s["failed"], s["connections"]))
    for i, m in enumerate(s["moves"]):
        where = ("first on %s after %.2fs" % (m["to"], m["first_on_new_s"])
                 if m["first_on_new_s"] is not None else "stayed (none on %s)" % m["to"])
        log("  move %d -> %s: %d requests, %s, last on old %s, %d failed %s"
            % (i + 1, m["to"], m["requests"], where, m["last_on_old_s"], m["failed"],
               dict(m["errors"]) if m["errors"] else ""))
    log("  DNS queries for %s: %s" % (NAME, s["dns_queries"]))
    if s["shim"]:
        log("  shim stats: %s" % s.get("shim_stats"))
        for k, v in sorted(s["shutdowns"].items()):
            log("  shutdowns %s: %d, failed requests right after them: %d"
                % (k, v["shutdowns"], v["failed_requests"]))
        for ln in s.get("shim_log_lines", [])[:8]:
            log("  shim: %s" % ln)


def inside(opts):
    trial = Trial(opts, opts.workdir)

    def body():
        trial.setup_namespace()
        trial.start_servers()
        trial.start_client()
        trial.wait_first_ok()
        t = time.time() + opts.warmup
        moves = []
        for i in range(opts.moves):
            trial.sleep_until(t)
            addr = ADDRS[(i + 1) % 2]
            t_move = time.time()
            trial.answer(addr)
            moves.append((t_move, addr))
            t = t_move + opts.move_every
            if opts.stop_old is not None:
                trial.sleep_until(t_move + opts.stop_old)
                old = ADDRS[i % 2]
                trial.kill(next(p for name, p in trial.procs if name == "backend-" + old))
                log("stopped the backend on %s, %.1fs after the move" % (old, opts.stop_old))
        trial.sleep_until(t - opts.move_every + opts.after if moves else t)
        t_end = time.time()
        trial.stop_client()
        trial.tail_shim_log()
        s = summarize(trial, moves, t_end)
        with open(trial.path("summary.json"), "w") as f:
            json.dump(s, f, indent=1)
        report(s)
        return 0
    return dnsmove.guarded("adapter-trial", trial, body)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shim", action="store_true", help="preload the library into the adapter")
    ap.add_argument("--lib", default=os.environ.get("DNSAWARE_LIB")
                    or os.path.join(dnsmove.REPO, "build", "src", "libdnsaware.so"))
    ap.add_argument("--proto", choices=sorted(PORTS), default="http")
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=3.0)
    ap.add_argument("--moves", type=int, default=1)
    ap.add_argument("--move-every", type=float, default=10.0)
    ap.add_argument("--after", type=float, default=8.0)
    ap.add_argument("--stop-old", type=float, metavar="S",
                    help="stop the old address's backend S seconds after the move (only with "
                         "--moves 1): the client's own reconnect, without the shim")
    ap.add_argument("--shim-env", action="append", default=[], metavar="VAR=VALUE")
    ap.add_argument("--env", action="append", default=[], metavar="VAR=VALUE")
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("adapter", nargs=argparse.REMAINDER)
    opts = ap.parse_args()
    if opts.adapter[:1] == ["--"]:
        opts.adapter = opts.adapter[1:]
    if not opts.adapter:
        ap.error("no adapter command (after --)")
    # The adapter runs in the workdir: relative paths to existing files are made absolute.
    opts.adapter = [os.path.abspath(a) if not a.startswith("-") and os.path.exists(a) else a
                    for a in opts.adapter]
    if opts.inside:
        return inside(opts)
    if os.geteuid() != 0:
        log("adapter_trial.py: needs root (namespaces, bind mounts, port 53)")
        return 2
    if opts.shim and not os.path.isfile(opts.lib):
        log("adapter_trial.py: no library at %s (ninja -C build)" % opts.lib)
        return 2
    keep = opts.keep or opts.workdir is not None
    wd = dnsmove.prepare_workdir(opts.workdir, "dnsaware-trial-")
    if wd is None:
        return 2
    args = ["--inside", "--workdir", wd, "--lib", os.path.abspath(opts.lib), "--proto",
            opts.proto, "--rate", str(opts.rate), "--warmup", str(opts.warmup), "--moves",
            str(opts.moves), "--move-every", str(opts.move_every), "--after", str(opts.after)]
    if opts.stop_old is not None:
        if opts.moves != 1:
            ap.error("--stop-old needs --moves 1")
        args += ["--stop-old", str(opts.stop_old)]
    if opts.shim:
        args.append("--shim")
    for kv in opts.shim_env:
        args += ["--shim-env", kv]
    for kv in opts.env:
        args += ["--env", kv]
    rc = dnsmove.run_in_namespaces(__file__, args + ["--"] + opts.adapter)
    dnsmove.keep_or_remove(wd, rc == 0, keep)
    return rc if rc in (0, 1, 2) else 2


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""libdnsaware demo: a name moves under two keep-alive HTTP clients, one with the shim.

In one private mount + network namespace (the script re-executes itself under
`unshare --mount --net`, like tests/e2e/dnsmove.py, whose scene it reuses): dnsmasq serves
svc.test -> 127.0.0.10 with TTL 1 s, HTTP/1.1 keep-alive backends on 127.0.0.10:8080 and
127.0.0.11:8080 answer with their own address, and two identical requests.Session loops (5
requests/s each) run side by side, one with LD_PRELOAD=libdnsaware.so and one without. A few
seconds in, svc.test moves to 127.0.0.11. A live timeline shows which backend answered each
request, when DNS changed and what the shim did; a summary and a verdict close the run.

Exit status 0 only when the client under the shim moved to 127.0.0.11, the control stayed on
127.0.0.10, and no request failed; 1 otherwise (including a missing prerequisite).
Needs root (namespaces, bind mounts over /etc, port 53). People run it through tools/demo,
which installs what is missing and builds first.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import types

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e"))
import dnsmove  # noqa: E402  (the e2e harness: namespace, dnsmasq, backends, client loop)
from dnsmove import NAME, OLD, NEW, PORT, TTL, TTL_FLOOR, RATE, PYTHON  # noqa: E402

EXIT_OK = 0
EXIT_FAIL = 1

DEFAULT_SECONDS = 15.0     # traffic; the whole run takes about two seconds more
QUICK_SECONDS = 6.0
MIN_SECONDS = 6.0          # change at >= 2 s, and TTL + 3 s after it to judge
HOLD = 0.2                 # s: how long an item waits so that later-written earlier ones sort in
TICK = 0.05
COL = 26                   # width of the left column
CLIENTS = ("shim", "control")
TITLE = {"shim": "with libdnsaware", "control": "without (control)"}


def log(msg=""):
    print(msg, flush=True)


class Paint:
    """ANSI colours, or nothing."""

    CODES = {"old": "33", "new": "32", "err": "1;31", "dns": "1;36", "shim": "35",
             "client": "34", "dim": "2", "bold": "1", "ok": "1;32", "bad": "1;31"}

    def __init__(self, on):
        self.on = on

    def __call__(self, style, text):
        if not self.on or not text:
            return text
        return "\033[%sm%s\033[0m" % (self.CODES[style], text)


def short(addr):
    """127.0.0.10 -> .10"""
    return "." + addr.rsplit(".", 1)[-1] if addr else "?"


# --------------------------------------------------------------------------------------------
# live reading of the files the clients and the shim append to
# --------------------------------------------------------------------------------------------

class Tail:
    """New complete lines of a file that is being appended to."""

    def __init__(self, path):
        self.path = path
        self.off = 0
        self.partial = b""

    def lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except FileNotFoundError:
            return []
        self.off += len(data)
        data = self.partial + data
        *complete, self.partial = data.split(b"\n")
        return [l.decode("utf-8", "replace") for l in complete if l.strip()]


class DemoScene(dnsmove.Scene):
    """The harness's scene with two clients started side by side."""

    def __init__(self, opts, workdir):
        super().__init__(opts, workdir)
        self.clients = {}
        self.stop_file = self.path("clients.stop")

    def start_clients(self, max_duration):
        for who in CLIENTS:
            env = dnsmove.clean_env()
            if who == "shim":
                env["LD_PRELOAD"] = dnsmove.preload(self.opts.lib)
                env["DNSAWARE_TTL_FLOOR"] = TTL_FLOOR
                env["DNSAWARE_LOG"] = "info"
                env["DNSAWARE_LOG_FILE"] = self.path("shim.log")
            out = self.path("client-%s.jsonl" % who)
            self.clients[who] = self.spawn(
                "client-" + who,
                [PYTHON, os.path.abspath(dnsmove.__file__), "client",
                 "--url", "http://%s:%d/" % (NAME, PORT), "--rate", str(RATE), "--out", out,
                 "--stop-file", self.stop_file, "--max-duration", str(max_duration)],
                env=env)

    def check_clients_alive(self):
        for who, p in self.clients.items():
            if p.poll() is not None:
                raise dnsmove.HarnessError(
                    "the %s client exited early with status %s; output:\n%s"
                    % (who, p.returncode, dnsmove.tail(self.path("client-%s.out" % who))))

    def stop_clients(self):
        with open(self.stop_file, "w"):
            pass
        end = time.monotonic() + 10
        for who, p in self.clients.items():
            try:
                p.wait(max(0.1, end - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise dnsmove.HarnessError("the %s client did not stop within 10s of being "
                                           "told to" % who)
            if p.returncode != 0:
                raise dnsmove.HarnessError(
                    "the %s client exited with status %d; output:\n%s"
                    % (who, p.returncode, dnsmove.tail(self.path("client-%s.out" % who))))


# --------------------------------------------------------------------------------------------
# the timeline
# --------------------------------------------------------------------------------------------

class Timeline:
    """Collects requests and events as they are written, prints them in time order, live:
    one row per second of requests (split where an event falls), one line per event."""

    def __init__(self, scene, paint):
        self.scene = scene
        self.p = paint
        self.tails = {who: Tail(scene.path("client-%s.jsonl" % who)) for who in CLIENTS}
        self.shim_tail = Tail(scene.path("shim.log"))
        self.recs = {who: [] for who in CLIENTS}   # every parsed client record
        self.pending = []                          # (t, order, kind, payload)
        self.order = 0
        self.t0 = None
        self.row = None                            # {"bucket", "t", "shim": [], "control": []}
        self.seen_gai = {who: 0 for who in CLIENTS}
        self.held_gai = {who: [] for who in CLIENTS}
        self.last_poll = 0.0
        self.shim_lines = []

    def rel(self, t):
        return max(0.0, t - self.t0)

    def push(self, t, kind, payload):
        self.order += 1
        self.pending.append((t, self.order, kind, payload))

    def poll(self):
        now = time.time()
        for who in CLIENTS:
            for line in self.tails[who].lines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                self.recs[who].append(rec)
                if rec.get("type") == "req":
                    # A getaddrinfo is made inside the request written after it: show it just
                    # before that request rather than after (the request's t is its start).
                    for g in self.held_gai[who]:
                        self.push(min(g["t"], rec["t"] - 1e-6), "gai", (who, g))
                    self.held_gai[who] = []
                    self.push(rec["t"], "req", (who, rec))
                elif rec.get("type") == "gai" and rec.get("host") == NAME:
                    self.seen_gai[who] += 1
                    if self.seen_gai[who] > 1:      # the first one is in the header
                        self.held_gai[who].append(rec)
        lines = self.shim_tail.lines()
        if lines:
            # The shim's log lines carry no time: they were written after the previous look and
            # by the file's mtime (one burst, usually). A reconnect of the shim's client seen in
            # the same window came after them (it is what the shutdown caused): keep that order.
            try:
                t = min(now, os.stat(self.shim_tail.path).st_mtime)
            except OSError:
                t = now
            t = max(t, self.last_poll)
            gai = [i[0] for i in self.pending if i[2] == "gai" and i[3][0] == "shim"]
            gai += [g["t"] for g in self.held_gai["shim"]]
            recent = [g for g in gai if g >= self.last_poll - 1.0]
            if recent and min(recent) < t:
                t = min(recent) - 2e-6
            for line in lines:
                self.shim_lines.append((t, line))
                self.push(t, "shim", line)
        self.last_poll = now

    def reqs(self, who):
        return [r for r in self.recs[who] if r.get("type") == "req"]

    def first_request_times(self):
        return [self.reqs(who)[0]["t"] for who in CLIENTS if self.reqs(who)]

    # ---- output ----
    def cell(self, rec):
        if not rec.get("ok"):
            return "ERR", self.p("err", "ERR")
        b = rec.get("backend")
        s = short(b)
        return s, self.p("old" if b == OLD else "new" if b == NEW else "err", s)

    def flush_row(self):
        r = self.row
        if not r or not (r["shim"] or r["control"]):
            self.row = None
            return
        cols = []
        for who in CLIENTS:
            plain = " ".join(c[0] for c in r[who])
            coloured = " ".join(c[1] for c in r[who])
            cols.append((plain, coloured))
        pad = " " * max(1, COL - len(cols[0][0]))
        line = "%s  %s%s%s" % (self.p("dim", "%5.1f" % self.rel(r["t"])), cols[0][1],
                               pad if cols[1][0] else "", cols[1][1])
        log(line.rstrip())
        self.row = None

    def event(self, t, text, style):
        self.flush_row()
        log("%s  %s" % (self.p("dim", "%5.1f" % self.rel(t)), self.p(style, text)))

    def emit(self, item):
        t, _, kind, payload = item
        if kind == "req":
            who, rec = payload
            bucket = int(self.rel(t))
            if self.row is not None and bucket > self.row["bucket"]:
                self.flush_row()
            if self.row is None:
                self.row = {"bucket": bucket, "t": t, "shim": [], "control": []}
            self.row[who].append(self.cell(rec))
        elif kind == "gai":
            who, rec = payload
            if "addrs" in rec:
                what = "-> %s, opens a new connection" % ", ".join(rec["addrs"])
            else:
                what = "failed: %s" % rec.get("error")
            self.event(t, "%s client: getaddrinfo(%s) %s" % (
                "shim's" if who == "shim" else "control", NAME, what), "client")
        elif kind == "dns":
            self.event(t, "── DNS: %s now %s (TTL %ds) ──" % (NAME, payload, TTL), "dns")
        elif kind == "shim":
            msg = payload
            if "]: " in msg:                       # "dnsaware[PID]: info ..." -> "info ..."
                msg = msg.split("]: ", 1)[1]
            level, _, rest = msg.partition(" ")
            if level == "info":
                msg = rest
            self.event(t, "shim: " + msg, "shim")

    def advance(self, final=False):
        """Print what is old enough (everything when final)."""
        self.poll()
        if final:
            for who in CLIENTS:
                for g in self.held_gai[who]:
                    self.push(g["t"], "gai", (who, g))
                self.held_gai[who] = []
        limit = float("inf") if final else time.time() - HOLD
        self.pending.sort()
        while self.pending and self.pending[0][0] <= limit:
            self.emit(self.pending.pop(0))
        if self.row is not None and (final or limit >= self.t0 + self.row["bucket"] + 1):
            self.flush_row()


# --------------------------------------------------------------------------------------------
# the run, inside the namespace
# --------------------------------------------------------------------------------------------

def run_demo(scene, opts, paint):
    seconds = opts.seconds
    change_at = max(2.0, min(5.0, round(seconds / 3.0)))
    horizon = TTL + 2.0      # by change + horizon the shim's client must be on the new address

    log(paint("bold", "libdnsaware demo: %s moves from %s to %s at t=%.0fs (dnsmasq, TTL %ds)"
                      % (NAME, OLD, NEW, change_at, TTL)))
    log("  two identical keep-alive HTTP clients (python requests.Session, %g requests/s each),"
        % RATE)
    log("  left with LD_PRELOAD=libdnsaware.so (DNSAWARE_TTL_FLOOR=%s), right without;"
        % TTL_FLOOR)
    log("  each cell is one request and the backend that answered it (%s or %s)."
        % (short(OLD), short(NEW)))
    log()

    scene.write_answer(OLD)
    scene.start_dnsmasq()
    scene.wait_answer(OLD)
    scene.start_backends()
    scene.start_clients(max_duration=seconds + 60)

    tl = Timeline(scene, paint)
    end = time.monotonic() + 15
    while len(tl.first_request_times()) < len(CLIENTS):
        scene.check_clients_alive()
        if time.monotonic() > end:
            raise dnsmove.HarnessError("the clients made no request within 15s")
        time.sleep(TICK)
        tl.poll()
    for who in CLIENTS:
        first = tl.reqs(who)[0]
        if not first.get("ok"):
            raise dnsmove.HarnessError("the %s client's first request failed: %s"
                                       % (who, first.get("error") or first))
    tl.t0 = min(tl.first_request_times())

    log(paint("bold", " t(s)  %s%s" % (TITLE["shim"].ljust(COL), TITLE["control"])))
    log("%s  %s" % (paint("dim", "%5.1f" % 0.0),
                    paint("client", "both clients: getaddrinfo(%s) -> %s, one keep-alive "
                                    "connection each" % (NAME, OLD))))
    t_change = None
    t_stop = tl.t0 + seconds
    while time.time() < t_stop:
        scene.check_clients_alive()
        if t_change is None and time.time() >= tl.t0 + change_at:
            _, t_change = scene.move_answer(NEW)
            tl.push(t_change, "dns", NEW)
        tl.advance()
        time.sleep(TICK)
    scene.stop_clients()
    tl.advance(final=True)
    scene.stop_dnsmasq()
    log()
    return summarize(scene, tl, t_change, horizon, paint)


def summarize(scene, tl, t_change, horizon, paint):
    stats = {}
    for who in CLIENTS:
        reqs = tl.reqs(who)
        meta = next((r for r in tl.recs[who] if r.get("type") == "meta"), {})
        on_old = [r for r in reqs if r.get("ok") and r.get("backend") == OLD]
        on_new = [r for r in reqs if r.get("ok") and r.get("backend") == NEW]
        failed = [r for r in reqs if not r.get("ok")]
        ports = {r.get("client_port") for r in reqs if r.get("client_port") is not None}
        late = [r for r in reqs if r["t"] >= t_change + horizon]
        stats[who] = types.SimpleNamespace(
            reqs=reqs, on_old=on_old, on_new=on_new, failed=failed, ports=ports, late=late,
            preloaded=meta.get("preloaded", []),
            gai=len([r for r in tl.recs[who] if r.get("type") == "gai"
                     and r.get("host") == NAME]))

    def last_old(s):
        if not s.on_old:
            return "none"
        d = s.on_old[-1]["t"] - t_change
        if s.on_old[-1] is s.reqs[-1]:
            return "change%+.1fs, to the end" % d
        return "change%+.1fs" % d

    counts = dnsmove.dns_query_counts(scene.dnsmasq_logs)
    # Every A query for the name from 127.0.0.1 that no client getaddrinfo made is the shim's.
    bg = counts.get(("127.0.0.1", "A"), 0) - stats["shim"].gai - stats["control"].gai
    rows = [
        ("requests", lambda s: str(len(s.reqs))),
        ("answered by %s" % short(OLD), lambda s: str(len(s.on_old))),
        ("answered by %s" % short(NEW), lambda s: str(len(s.on_new))),
        ("failed", lambda s: str(len(s.failed))),
        ("connections", lambda s: str(len(s.ports))),
        ("last request on %s" % short(OLD), last_old),
        ("getaddrinfo calls", lambda s: str(s.gai)),
        ("background DNS", lambda s: "%d queries" % bg if s is stats["shim"] else "none"),
    ]
    log(paint("bold", "%-22s%s%s" % ("summary", TITLE["shim"].ljust(COL), TITLE["control"])))
    for label, fn in rows:
        log("%-22s%s %s" % (label, fn(stats["shim"]).ljust(COL - 1), fn(stats["control"])))
    log()

    problems = []
    s, c = stats["shim"], stats["control"]
    if not s.preloaded:
        problems.append("the shim's client does not have libdnsaware.so mapped (LD_PRELOAD=%s)"
                        % scene.opts.lib)
    if c.preloaded:
        problems.append("the control client has %s mapped; it must run without the shim"
                        % c.preloaded)
    for who in CLIENTS:
        st = stats[who]
        if st.failed:
            r = st.failed[0]
            problems.append("%s client: %d of %d requests failed, the first at t=%.1fs: %s"
                            % (who, len(st.failed), len(st.reqs), tl.rel(r["t"]),
                               r.get("error") or r.get("status") or r.get("body")))
        before = [r for r in st.reqs if r["t_end"] < t_change and r.get("ok")]
        if not before or any(r.get("backend") != OLD for r in before):
            problems.append("%s client: requests before the change did not all land on %s"
                            % (who, OLD))
        if len(st.late) < 3:
            problems.append("%s client: too few requests after change + %.0fs to judge (%d)"
                            % (who, horizon, len(st.late)))
    stale = [r for r in s.late if r.get("backend") != NEW]
    if stale:
        problems.append("with libdnsaware: %d of %d requests sent from change + %.0fs on did "
                        "not land on %s (the last at t=%.1fs on %s) - the client did not follow "
                        "the move" % (len(stale), len(s.late), horizon, NEW,
                                      tl.rel(stale[-1]["t"]), stale[-1].get("backend")))
    moved = [r for r in c.reqs if r.get("ok") and r.get("backend") != OLD]
    if moved:
        problems.append("control: %d requests landed on %s; without the shim a keep-alive "
                        "client should stay on %s" % (len(moved), moved[0].get("backend"), OLD))

    if problems:
        log(paint("bad", "FAIL: the demo did not show what it should:"))
        for m in problems:
            log("  - " + m)
        return EXIT_FAIL
    follow = s.on_old[-1]["t"] - t_change if s.on_old else 0.0
    log(paint("ok", "PASS: with libdnsaware the client followed the move %.1fs after DNS "
                    "changed (no failed request); the control stayed on %s."
              % (max(0.0, follow), OLD)))
    return EXIT_OK


def inside(opts):
    paint = Paint(opts.color == "always")
    scene = DemoScene(opts, opts.workdir)

    def on_signal(signum, frame):
        # One interruption is enough: cleanup below must not be interrupted again.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt("signal %d" % signum)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        scene.setup_namespace()
        return run_demo(scene, opts, paint)
    except dnsmove.HarnessError as e:
        log(paint("bad", "FAIL: could not run the demo: %s" % e))
    except KeyboardInterrupt as e:
        log(paint("bad", "interrupted (%s)" % e))
    except Exception:
        import traceback
        traceback.print_exc()
        log(paint("bad", "FAIL: demo bug (traceback above)"))
    finally:
        scene.cleanup()
    return EXIT_FAIL


# --------------------------------------------------------------------------------------------
# outside: prerequisites, then re-exec under unshare
# --------------------------------------------------------------------------------------------

def outside(opts):
    missing = dnsmove.prerequisites(opts, shim=True)
    if missing:
        for m in missing:
            log("tools/demo: prerequisite missing: %s" % m)
        return EXIT_FAIL
    if opts.color == "auto":
        opts.color = "always" if sys.stdout.isatty() and not os.environ.get("NO_COLOR") \
            else "never"

    keep = opts.workdir is not None
    wd = dnsmove.prepare_workdir(opts.workdir, "dnsaware-demo-", marker=".demo-workdir")
    if wd is None:
        return EXIT_FAIL
    rc = dnsmove.run_in_namespaces(__file__, [
        "--inside", "--workdir", wd, "--dnsmasq", opts.dnsmasq, "--lib", opts.lib,
        "--seconds", str(opts.seconds), "--color", opts.color])
    if rc not in (EXIT_OK, EXIT_FAIL):
        log("tools/demo: unshare/driver exited with status %d (can this host create mount and "
            "network namespaces?)" % rc)
        rc = EXIT_FAIL
    dnsmove.keep_or_remove(wd, rc == EXIT_OK, keep,
                           "logs (shim.log, client-*.jsonl, dnsmasq.*.log) in %s")
    return rc


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true",
                    help="short run (%gs of traffic) for tests" % QUICK_SECONDS)
    ap.add_argument("--seconds", type=float, default=None,
                    help="seconds of traffic (default %g; at least %g)"
                         % (DEFAULT_SECONDS, MIN_SECONDS))
    ap.add_argument("--lib", default=os.environ.get("DNSAWARE_LIB")
                    or os.path.join(REPO, "build", "src", "libdnsaware.so"),
                    help="libdnsaware.so to preload (default: $DNSAWARE_LIB, then "
                         "<repo>/build/src/libdnsaware.so)")
    ap.add_argument("--dnsmasq", default=shutil.which("dnsmasq")
                    or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None))
    ap.add_argument("--workdir", help="keep the logs here (emptied first; kept after the run)")
    ap.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                    help="colour the timeline (auto: when stdout is a terminal and NO_COLOR "
                         "is unset)")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    opts = ap.parse_args()
    if opts.seconds is None:
        opts.seconds = QUICK_SECONDS if opts.quick else DEFAULT_SECONDS
    if not MIN_SECONDS <= opts.seconds <= 300:
        ap.error("--seconds must be between %g and 300" % MIN_SECONDS)
    if opts.lib:
        opts.lib = os.path.abspath(opts.lib)
    if opts.inside:
        return inside(opts)
    return outside(opts)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Transparency: CPython's own tests, run with and without the shim, must have the same outcomes.

    transparency.py --lib LIB --workdir DIR [--all | --modules M,M,...] [--jobs N] [--reruns N]

Each selected module of CPython's test suite (Debian's libpython3.11-testsuite, run with
/usr/bin/python3) runs twice: the control without the shim, and with LD_PRELOAD=LIB,
DNSAWARE_LOG=debug, DNSAWARE_LOG_FILE (one per module) and DNSAWARE_TTL_FLOOR=200ms (the thread
re-resolves the names it watches five times a second). run_module.py records every test id's
outcome (ok, FAIL, ERROR, skipped, expected failure, unexpected success; the module's exit as
`test.MODULE (exit)`) and holds a connection to localhost all along, so the shim's thread runs in
every module's process. Every run has network and mount namespaces of its own: only lo, Debian's
default hosts file (localhost is 127.0.0.1 and ::1), a resolver that refuses every query, a
private TMPDIR and HOME (deleted afterwards). Nothing leaves the machine and two runs never race
for a port. The control and the shim run of a module run side by side (--jobs 2): same load.

The flake rule: when a test id's outcome differs, its module runs again both ways, up to
--reruns (2) more times. The difference is real only if the shim's outcomes and the control's
never meet (no outcome seen in one run of it is seen in the other: the shim consistently
differs); otherwise it is a flake, listed but not failed. Reruns stop once every differing id of
the module is known to be a flake.

The shim must be seen working: its logs give the processes that started its thread and the
sockets it tracked ("background thread started", "tracking fd N to ..."); a run in which it
tracked nothing fails. So does any line where it acted on a connection (shut down, draining,
redirected, failed over): DNS never moves here. Cooldowns after refused connects are counted.

Results in DIR: control.json and shim.json (per module: wall time and exit per round, every id's
outcome per round, the first non-ok detail of each id), report.txt (what this prints), round*/
with each run's output (MODULE.out), results (MODULE.jsonl) and the shim's log.

Environment: DNSAWARE_TEST_PRELOAD_PREFIX (the sanitizer runtime, first in the shim's
LD_PRELOAD), DNSAWARE_TRANSPARENCY_CONTROL_PRELOAD (the control's LD_PRELOAD: in a sanitized
build the runtime and an empty library built with the same sanitizer, neutral.c; by default the
prefix alone), DNSAWARE_TRANSPARENCY_MODULES (`all`, or a comma-separated list: --all /
--modules, for `meson test`).

Exit status: 0 same outcomes everywhere, 1 a reproducible difference, an action of the shim, or
the shim never active; 77 skipped (not root, no namespaces, no CPython test suite).
"""
import argparse
import json
import os
import re
import shutil
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"
EXIT_SKIP = 77
MODES = ("control", "shim")
SHIM_ENV = {"DNSAWARE_LOG": "debug", "DNSAWARE_TTL_FLOOR": "200ms"}

def M(name, seconds, ignore=(), slow=(), tsan=(), resources=""):
    """A module; the seconds one run of it takes (for the order; with --all, add the slow ones'),
    regrtest -i patterns always left out, left out unless --all (tests that mostly sleep), left
    out under TSan, and the regrtest -u resources it needs beyond none."""
    return {"name": name, "seconds": seconds, "ignore": list(ignore), "slow": list(slow),
            "tsan": list(tsan), "resources": resources}


# VSOCK ports are not per network namespace: two test_socket runs side by side bind the same
# fixed port (1234), and the client of one connects to the other's listener (one hangs in accept
# for good, the other gets EADDRINUSE). AF_VSOCK is nothing the shim looks at.
NO_VSOCK = ["ThreadedVSOCKSocketStreamTest"]

# The default selection: what the shim interposes (connect, close, dup, fork, send) and the
# programs around it (sockets, TLS, servers and clients on localhost, asyncio, fds, processes,
# signals, threads). Seconds: one run on the 2-core machine, control and shim side by side
# (docs/testing.md#transparency). Longest first: that is the order they start in.
DEFAULT = [
    M("test_ssl", 43),
    M("test_socket", 27, ignore=NO_VSOCK),
    M("test_subprocess", 25),
    # test_siginterrupt_off: 30 s waiting for a timeout. Under TSan (a signal is handled at the
    # runtime's next intercepted call) test_pidfd_send_signal's KeyboardInterrupt comes after
    # its assertRaises and ends the module, both ways.
    M("test_signal", 17, slow=["test_siginterrupt_off"], tsan=["test_pidfd_send_signal"]),
    M("test_selectors", 15),
    M("test_threading", 11),
    M("test_ftplib", 11),
    M("test_poplib", 8),
    M("test_asyncio.test_events", 7.6),
    M("test_eintr", 7),
    M("test_fork1", 5.2),
    M("test_wait3", 5.2),
    M("test_wait4", 5.2),
    M("test_docxmlrpc", 3.2),
    M("test_asyncio.test_sendfile", 2.6),
    M("test_urllib2_localnet", 2.4),
    M("test_asyncio.test_sock_lowlevel", 2),
    M("test_asyncore", 2),
    M("test_os", 1.8),
    M("test_select", 1.8),
    M("test_httpservers", 1.6),
    M("test_asyncio.test_streams", 1.4),
    M("test_asyncio.test_base_events", 1.4),
    M("test_smtplib", 1.4),
    M("test_asynchat", 1.4),
    M("test_poll", 1.2, slow=["test_poll2"]),    # 10 s reading a shell loop that sleeps
    M("test_httplib", 1),
    M("test_socketserver", 0.8, resources="network"),   # localhost only, guarded by "network"
    M("test_asyncio.test_server", 0.6),
    M("test_epoll", 0.4),
    M("test_wsgiref", 0.4),
    M("test_fcntl", 0.2),
    M("test_pty", 0.2),
    M("test_telnetlib", 0.2),
    M("test_smtpd", 0.2),
    M("test_timeout", 0.2),
    M("test_mmap", 0.2),
]
# --all adds these, and the slow tests above (40 s).
EXTRA = [
    M("test_concurrent_futures", 140),
    M("test_multiprocessing_fork", 68),
    M("test_imaplib", 31),
    M("test_xmlrpc", 28),
    M("test_logging", 23),
    M("test_asyncio.test_subprocess", 16),
    M("test_asyncio.test_ssl", 11),
]
MODULE_TIMEOUT = 600    # seconds, one run of one module

# Lines where the shim acted on a program's connection. DNS never moves here, so none may appear;
# a cooldown after a refused connect ("a connect to A:P failed; avoiding it ...") is expected
# (CPython's tests connect to closed ports, and localhost's ::1 is tried first) and only counted:
# with one address per family nothing can be steered away from it.
ACTION = re.compile(r"\b(shut down|draining|redirected|failed over)\b")
COOLDOWN = re.compile(r"^a connect to \S+ failed; avoiding it")
LOG_LINE = re.compile(r"^dnsaware\[(\d+)\]: (\w+) (.*)$")


RUNNING = []   # the Runs started and not yet reaped


def pdeathsig():
    """In each run's first process: it dies with the driver, even a SIGKILLed one."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except Exception:
        pass


def stop(signum, frame):
    """meson's timeout, or ^C: every run's session goes too (they are not in our group)."""
    for run in RUNNING:
        try:
            os.killpg(run.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(run.private, ignore_errors=True)
    sys.exit(128 + signum)


def log(out, text=""):
    print(text, flush=True)
    out.append(text)


class Run:
    """One run of one module, one way."""

    def __init__(self, spec, mode, rnd, opts):
        module = spec["name"]
        self.module, self.mode, self.round = module, mode, rnd
        base = os.path.join(opts.workdir, "round%d" % rnd, mode)
        os.makedirs(base, exist_ok=True)
        self.results = os.path.join(base, module + ".jsonl")
        self.output = os.path.join(base, module + ".out")
        self.shimlog = os.path.join(base, module + ".dnsaware.log") if mode == "shim" else None
        for path in (self.results, self.output, self.shimlog):
            if path and os.path.exists(path):
                os.unlink(path)
        # A sanitized build: the runtime first, then the shim, or in the control an empty
        # library built with the same sanitizer (neutral.c), so only the shim's code differs.
        prefix = os.environ.get("DNSAWARE_TEST_PRELOAD_PREFIX", "")
        preload = os.environ.get("DNSAWARE_TRANSPARENCY_CONTROL_PRELOAD", prefix)
        extra = {}
        if mode == "shim":
            preload = prefix + opts.lib
            extra = dict(SHIM_ENV, DNSAWARE_LOG_FILE=self.shimlog)
        if preload:
            extra["LD_PRELOAD"] = preload
        argv = [PYTHON, os.path.join(HERE, "run_module.py"), module, "--results", self.results,
                "--timeout", str(MODULE_TIMEOUT - 20), "--anchor",
                "--resources", ",".join(r for r in (opts.resources, spec["resources"]) if r)]
        tsan = "thread" in os.environ.get("DNSAWARE_TEST_SANITIZER", "")
        for pattern in spec["ignore"] + ([] if opts.all else spec["slow"]) + (spec["tsan"] if tsan else []):
            argv += ["--ignore", pattern]
        # The namespaces' files and lo are set up before python starts; only python gets the
        # preload.
        self.argv = ["unshare", "--net", "--mount", "--", "/bin/sh", "-c", opts.setup + ' && exec "$@"',
                     "sh", "/usr/bin/env"] + ["%s=%s" % kv for kv in sorted(extra.items())] + argv
        self.base_env = opts.base_env
        self.private = None
        self.proc = None
        self.seconds = 0.0
        self.exit = None

    def start(self):
        # Short: unix sockets live under TMPDIR (108 bytes at most for their path).
        self.private = tempfile.mkdtemp(prefix="dnsaware-tr-")
        env = dict(self.base_env, TMPDIR=os.path.join(self.private, "tmp"),
                   HOME=os.path.join(self.private, "home"))
        os.mkdir(env["TMPDIR"])
        os.mkdir(env["HOME"])
        self.started = time.monotonic()
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(self.argv, env=env, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True,
                                         preexec_fn=pdeathsig)
        RUNNING.append(self)

    def poll(self):
        """True once finished (killed at MODULE_TIMEOUT)."""
        rc = self.proc.poll()
        elapsed = time.monotonic() - self.started
        if rc is None and elapsed > MODULE_TIMEOUT:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.exit = "timeout (%d s)" % MODULE_TIMEOUT
        elif rc is None:
            return False
        elif rc < 0:
            self.exit = "killed by %s" % signal.Signals(-rc).name
        else:
            self.exit = "exit %d" % rc
        self.seconds = elapsed
        RUNNING.remove(self)
        try:   # what the module's children left running, in its session
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.private, ignore_errors=True)
        return True

    def outcomes(self):
        """{id: (outcome, detail)}, with the module's exit as `test.MODULE (exit)`; a test that
        started and never ended is `crashed` (a hang or a crash of the process)."""
        found, pending = {}, None
        try:
            with open(self.results, encoding="utf-8") as results:
                for line in results:
                    try:
                        event = json.loads(line)
                    except ValueError:
                        continue   # a line cut by a kill
                    if event["event"] == "start":
                        pending = event["id"]
                    elif event["event"] == "result":
                        found[event["id"]] = (event["outcome"], event["detail"])
                        if event["id"] == pending:
                            pending = None
        except FileNotFoundError:
            pass
        if pending is not None:
            found[pending] = ("crashed", "the process ended (%s) during this test" % self.exit)
        detail = ""
        if self.exit != "exit 0":
            with open(self.output, errors="replace") as out:
                detail = "".join(out.readlines()[-40:])
        found["test.%s (exit)" % self.module] = (self.exit, detail)
        return found


def shim_activity(path):
    """What the shim's log says it did in one run."""
    pids, threads, tracking, actions, warnings, dropped, cooldowns = set(), set(), {}, [], [], 0, 0
    try:
        with open(path, errors="replace") as lines:
            for line in lines:
                m = LOG_LINE.match(line.rstrip("\n"))
                if not m:
                    continue
                pid, level, message = m.groups()
                pids.add(pid)
                if message == "background thread started":
                    threads.add(pid)
                elif message.startswith("tracking fd "):
                    tracking[pid] = tracking.get(pid, 0) + 1
                elif "log lines dropped" in message:
                    dropped += int(message.split()[0])
                elif COOLDOWN.match(message):
                    cooldowns += 1
                elif ACTION.search(message):
                    actions.append(line.rstrip("\n"))
                elif level in ("warn", "error"):
                    warnings.append(line.rstrip("\n"))
    except FileNotFoundError:
        pass
    return {"processes": len(pids), "threads": len(threads), "tracking_processes": len(tracking),
            "tracked": sum(tracking.values()), "actions": actions, "warnings": warnings,
            "dropped": dropped, "cooldowns": cooldowns}


def run_all(runs, jobs):
    """Runs the Run objects, `jobs` at a time, in order."""
    waiting, running = list(runs), []
    while waiting or running:
        while waiting and len(running) < jobs:
            run = waiting.pop(0)
            run.start()
            running.append(run)
        time.sleep(0.2)
        for run in [r for r in running if r.poll()]:
            running.remove(run)
            print("  %-34s %-7s round %d  %6.1f s  %s" % (run.module, run.mode, run.round,
                                                         run.seconds, run.exit), flush=True)


def select(opts):
    """The module specs to run, longest first."""
    table = {spec["name"]: spec for spec in DEFAULT + EXTRA}
    choice = opts.modules or os.environ.get("DNSAWARE_TRANSPARENCY_MODULES", "")
    opts.all = opts.all or choice == "all"
    if opts.all:
        names = [spec["name"] for spec in DEFAULT + EXTRA]
    elif choice:
        names = [m.strip() for m in choice.split(",") if m.strip()]
    else:
        names = [spec["name"] for spec in DEFAULT]
    specs = [table.get(n, M(n, 0)) for n in names]
    return sorted(specs, key=lambda spec: -spec["seconds"])


def private_files(opts):
    """The hosts and resolv.conf every run sees (bind-mounted in its mount namespace): Debian's
    default hosts file, so the result does not depend on the machine's (localhost is 127.0.0.1
    and ::1, as on a stock Debian 12), and a resolver that refuses every query (nothing listens
    on 127.0.0.1:53 in the namespace): only names in the hosts file resolve, at once, both ways."""
    hosts = os.path.join(opts.workdir, "hosts")
    resolv = os.path.join(opts.workdir, "resolv.conf")
    with open(hosts, "w") as out:
        out.write("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n"
                  "ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n" % socket.gethostname())
    with open(resolv, "w") as out:
        out.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
    opts.setup = "mount --bind %s /etc/hosts && mount --bind %s /etc/resolv.conf && %s link set lo up" % (
        shlex.quote(hosts), shlex.quote(resolv), shlex.quote(opts.ip))


def skip_reason(opts):
    if os.geteuid() != 0:
        return "needs root (a network namespace per run)"
    if not os.path.isfile("/usr/lib/python3.11/test/test_socket.py"):
        return "CPython's test suite is not installed (tools/setup installs libpython3.11-testsuite)"
    if not os.path.isfile(opts.lib):
        return "no library at " + opts.lib
    os.makedirs(opts.workdir, exist_ok=True)
    private_files(opts)
    probe = subprocess.run(["unshare", "--net", "--mount", "--", "/bin/sh", "-c", opts.setup],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if probe.returncode != 0:
        return "cannot make a network namespace: " + probe.stdout.strip()
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lib", default=os.environ.get("DNSAWARE_LIB", ""))
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--modules", default="", help="comma-separated test modules")
    parser.add_argument("--all", action="store_true", help="the default selection and the extra one")
    parser.add_argument("--jobs", type=int, default=2, help="runs at a time (default 2)")
    parser.add_argument("--reruns", type=int, default=2, help="more rounds for a difference")
    parser.add_argument("--resources", default="", help="regrtest -u resources (default none)")
    opts = parser.parse_args()
    opts.lib = os.path.abspath(opts.lib)
    opts.workdir = os.path.abspath(opts.workdir)
    opts.ip = shutil.which("ip") or "/usr/sbin/ip"
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    reason = skip_reason(opts)
    if reason:
        print("SKIP: " + reason)
        return EXIT_SKIP
    # Both ways get the same environment, but for the shim's own variables; the sanitizer
    # settings meson passes for third-party programs apply to both.
    opts.base_env = {k: v for k, v in os.environ.items()
                     if not k.startswith(("DNSAWARE_", "PYTHON", "LD_PRELOAD", "MESON_"))}
    opts.base_env["PYTHONDONTWRITEBYTECODE"] = "1"   # leave /usr/lib/python3.11 alone
    if os.path.isdir(opts.workdir):
        for old in os.listdir(opts.workdir):
            if old.startswith("round"):
                shutil.rmtree(os.path.join(opts.workdir, old), ignore_errors=True)
    os.makedirs(opts.workdir, exist_ok=True)

    modules = select(opts)
    report = []
    log(report, "transparency: %d modules, control and shim (%s), %d runs at a time"
        % (len(modules), opts.lib, opts.jobs))
    started = time.monotonic()
    # results[module][mode] = {"seconds": [...], "rounds": [{id: outcome}], "details": {id: text}}
    results = {m: {mode: {"seconds": [], "exit": [], "rounds": [], "details": {}} for mode in MODES}
               for m in (spec["name"] for spec in modules)}
    activity = {}
    pending = list(modules)
    for rnd in range(1, opts.reruns + 2):
        if not pending:
            break
        if rnd > 1:
            log(report, "round %d: %s again both ways (a difference to confirm)"
                % (rnd, ", ".join(spec["name"] for spec in pending)))
        runs = [Run(spec, mode, rnd, opts) for spec in pending for mode in MODES]
        run_all(runs, opts.jobs)
        for run in runs:
            entry = results[run.module][run.mode]
            found = run.outcomes()
            entry["seconds"].append(round(run.seconds, 1))
            entry["exit"].append(run.exit)
            entry["rounds"].append({i: o for i, (o, _) in found.items()})
            for i, (outcome, detail) in found.items():
                if outcome not in ("ok", "exit 0") and i not in entry["details"]:
                    entry["details"][i] = detail
            if run.mode == "shim":
                act = shim_activity(run.shimlog)
                if run.module in activity:
                    prev = activity[run.module]
                    act = {k: (prev[k] + act[k]) if isinstance(act[k], (int, list)) else act[k]
                           for k in act}
                activity[run.module] = act
        pending = [spec for spec in pending if undecided(results[spec["name"]])]

    for mode in MODES:
        with open(os.path.join(opts.workdir, mode + ".json"), "w") as out:
            json.dump({m: results[m][mode] for m in results}, out, indent=1, sort_keys=True)
    status = summarize(report, modules, results, activity, time.monotonic() - started)
    with open(os.path.join(opts.workdir, "report.txt"), "w") as out:
        out.write("\n".join(report) + "\n")
    return status


def verdicts(result):
    """{id: "same" | "flake" | "difference" | "undecided"} over the rounds so far."""
    control, shim = result["control"]["rounds"], result["shim"]["rounds"]
    ids = set()
    for rnd in control + shim:
        ids.update(rnd)
    out = {}
    for i in ids:
        c = [r.get(i, "not run") for r in control]
        s = [r.get(i, "not run") for r in shim]
        if all(x == y for x, y in zip(c, s)):
            out[i] = "same"
        elif set(c) & set(s):
            out[i] = "flake"
        else:
            out[i] = "difference"
    return out


def undecided(result):
    return "difference" in verdicts(result).values()


def rounds_text(result, mode, i):
    return ",".join(r.get(i, "not run") for r in result[mode]["rounds"])


def summarize(report, modules, results, activity, wall):
    log(report)
    log(report, "%-32s %5s %8s %8s %7s %7s %8s %8s  %s" % (
        "module", "ids", "control", "shim", "threads", "tracked", "procs", "cooldown", "verdict"))
    total_ids = total_tracked = total_threads = 0
    differences, flakes, notes, actions = [], [], [], []
    for module in (spec["name"] for spec in modules):
        res, act = results[module], activity.get(module, {})
        v = verdicts(res)
        ids = len([i for i in v if not i.endswith(" (exit)")])
        total_ids += ids
        total_tracked += act.get("tracked", 0)
        total_threads += act.get("threads", 0)
        diff = sorted(i for i, x in v.items() if x == "difference")
        flaky = sorted(i for i, x in v.items() if x == "flake")
        differences += [(module, i) for i in diff]
        flakes += [(module, i) for i in flaky]
        verdict = "%d DIFFERENT" % len(diff) if diff else "same"
        if flaky:
            verdict += " (%d flaky)" % len(flaky)
        log(report, "%-32s %5d %7.1fs %7.1fs %7d %7d %8s %8d  %s" % (
            module, ids, res["control"]["seconds"][0], res["shim"]["seconds"][0], act.get("threads", 0),
            act.get("tracked", 0), "%d/%d" % (act.get("tracking_processes", 0), act.get("processes", 0)),
            act.get("cooldowns", 0), verdict))
        # Same outcome, another reason: told, not failed (a reason may hold a port or a pid).
        for i in sorted(i for i, x in v.items() if x == "same"):
            reasons = [res[mode]["details"].get(i) for mode in MODES]
            if res["control"]["rounds"][0].get(i) == "skipped" and reasons[0] != reasons[1]:
                notes.append("%s: skipped both ways, control: %r, shim: %r" % (i, reasons[0], reasons[1]))
        actions += ["%s: %s" % (module, line) for line in act.get("actions", [])[:20]]
        notes += ["%s: %s" % (module, line) for line in act.get("warnings", [])[:20]]
        if act.get("dropped"):
            notes.append("%s: %d shim log lines dropped by its rate limit (counts are lower bounds)"
                         % (module, act["dropped"]))
        for mode in MODES:
            if res[mode]["exit"][0] != "exit 0":
                notes.append("%s: the %s run ended with %s" % (module, mode, res[mode]["exit"][0]))
    log(report)
    log(report, "%d test ids compared in %d modules; the shim started its thread in %d processes and "
        "tracked %d connections (debug lines); %.0f s wall" % (total_ids, len(modules), total_threads,
                                                              total_tracked, wall))
    log(report, "(threads, tracked: processes that started the shim's thread, its \"tracking fd\" lines; "
        "procs: processes that tracked a socket / that logged; cooldown: refused connects noted)")
    for note in notes:
        log(report, "note: " + note)
    for module, i in flakes:
        log(report, "flake (outcomes overlap, not a difference): %s  control %s, shim %s" % (
            i, rounds_text(results[module], "control", i), rounds_text(results[module], "shim", i)))
    failures = []
    for module, i in differences:
        res = results[module]
        log(report, "")
        log(report, "DIFFERENCE %s: control %s, shim %s (%d rounds)" % (
            i, rounds_text(res, "control", i), rounds_text(res, "shim", i), len(res["shim"]["rounds"])))
        for mode in MODES:
            detail = res[mode]["details"].get(i)
            if detail:
                log(report, "--- %s:" % mode)
                log(report, detail.rstrip()[-6000:])
    if differences:
        failures.append("%d test ids differ reproducibly" % len(differences))
    if actions:
        log(report, "")
        log(report, "the shim acted on connections although DNS never moved:")
        for line in actions:
            log(report, "  " + line)
        failures.append("the shim acted on connections (%d lines)" % len(actions))
    if total_tracked == 0:
        failures.append("the shim tracked no connection in any run: it was never active")
    log(report, "FAIL: " + "; ".join(failures) if failures
        else "PASS: every test id has the same outcome with and without the shim")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

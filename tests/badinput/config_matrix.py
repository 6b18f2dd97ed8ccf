#!/usr/bin/python3
"""Bad configuration never harms the program (#8, "Bad input").

    config_matrix.py HELPER [--jobs N] [--keep]      (LD_PRELOAD: the library, as meson sets it)

Every DNSAWARE_* variable of src/env_names.h (parsed, so a new variable cannot be forgotten: one
without a kind in KINDS fails the test) is given, one at a time, each value of VALUES (empty,
negative, huge, non-numeric, unit-less, mixed case, blanks around it, control and high bytes,
10 kB) and the kind's valid samples. For each, two real programs run under the shim:
HELPER (tests/badinput/helper.c: resolves localhost, connects to its own listener, exchanges a
line, prints it, exits 3; its connection is tracked, so the background thread runs) and
/bin/echo. Checked against the same programs run without the shim:

  - stdout and exit status are the same;
  - a value the documentation rejects gives exactly one warning line, in the contract's form
    `dnsaware[PID]: warn [...]VAR=SHOWN ... (accepted: ...); using DEFAULT`, with PID the
    program's and SHOWN the value cut at 64 bytes (then "...") with bytes outside printable
    ASCII as "?";
  - a value it accepts gives no warning at all.

Whether a value is accepted is decided here, independently of src/config.c, from
docs/configuration.md (the `accepts` functions below): the test is the documentation's model.
A last case sets every variable to a bad value at once: one warning each, the program unharmed.
Then log and stats paths that are accepted but cannot be opened (900 bytes long, holding a
newline, an escape sequence, a high byte): the warning when they are first written is one line
too, with the path shown the same way. Every stderr line must be one of the shim's lines for the
program's pid, with nothing glued to it.

Exit status 0 pass, 1 fail. Bounded: every program run has a 10 s timeout; the whole matrix
(~700 runs) takes a few seconds with the default parallelism.
"""

import argparse
import concurrent.futures
import ipaddress
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
ENV_NAMES_H = os.path.join(REPO, "src", "env_names.h")
ECHO = "/bin/echo"
HELPER_STDOUT = b"reply: echo: hello\n"
HELPER_STATUS = 3
SHOWN_MAX = 64
RUN_TIMEOUT = 10

DURATION_MAX_MS = 720 * 3600 * 1000
UNITS = {"": 1000, "ms": 1, "s": 1000, "m": 60000, "h": 3600000, "d": 86400000}

# Each variable's kind, its default as the warning names it, and for durations the minimum.
KINDS = {
    "DNSAWARE_TTL_FLOOR": ("duration", "5s", 1),
    "DNSAWARE_TTL_CEILING": ("duration", "300s", 1),
    "DNSAWARE_MAX_AGE": ("duration", "0 (off)", 0),
    "DNSAWARE_IDLE": ("duration", "100ms", 1),
    "DNSAWARE_DRAIN_TIMEOUT": ("duration", "5m", 0),
    "DNSAWARE_COOLDOWN": ("duration", "30s", 0),
    "DNSAWARE_STATS_INTERVAL": ("duration", "10s", 100),
    "DNSAWARE_STALE_AFTER": ("count", "2", None),
    "DNSAWARE_REDIRECT": ("switch", "1", None),
    "DNSAWARE_DISABLE": ("switch", "0", None),
    "DNSAWARE_LEARN_DNS": ("switch", "1", None),
    "DNSAWARE_STALE_MAX": ("duration", "1d", 0),
    "DNSAWARE_RESOLVE_TIMEOUT": ("duration", "1800ms", 0),
    "DNSAWARE_CACHE": ("switch", "0", None),
    "DNSAWARE_BALANCE": ("switch", "0", None),
    "DNSAWARE_METRICS_NAMES": ("names", "32", None),
    "DNSAWARE_STATE_DIR": ("path", "the default place", None),
    "DNSAWARE_LOG": ("level", "warn", None),
    "DNSAWARE_HOSTS": ("globs", "all names", None),
    "DNSAWARE_EXCLUDE": ("globs", "none", None),
    "DNSAWARE_LOG_FILE": ("path", "stderr", None),
    "DNSAWARE_STATS_FILE": ("path", "no stats file", None),
    "DNSAWARE_NAMESERVERS": ("servers", "resolv.conf", None),
}

# Bytes 1..31 and 127..255 but '/' (a path with a slash into a directory that does not exist
# would be a different, runtime, warning) and NUL (impossible in the environment).
GARBAGE = bytes(b for b in list(range(1, 32)) + list(range(127, 256))) + b"%p%%%n%s{}[*?\\'\""

VALUES = [
    b"", b"-1", b"-5s", b"+5s", b"99999999999999999999", b"9999999h", b"721h", b"abc", b"5",
    b"5S", b"1H", b"5Ms", b"1h", b"2s", b"TRUE", b"True", b"Off", b"yes", b"WARN", b"Debug", b" 5s", b"5s ",
    b" 1", b"1 ", b"\t0", b"0.5", b"1e3", b"0x10", b"1h30m", b"5s\n", GARBAGE,
    b"9" * 10240, b"x" * 10240,
]

# Values the documentation accepts, per kind (each must give no warning).
GOOD = {
    "DNSAWARE_TTL_FLOOR": [b"250ms", b"2s", b"1m", b"300s"],
    "DNSAWARE_TTL_CEILING": [b"10m", b"1h", b"720h", b"5s"],
    "DNSAWARE_MAX_AGE": [b"0", b"10m", b"720h", b"2592000"],
    "DNSAWARE_IDLE": [b"1ms", b"2s", b"007s"],
    "DNSAWARE_DRAIN_TIMEOUT": [b"0", b"30s"],
    "DNSAWARE_COOLDOWN": [b"0", b"2m"],
    "DNSAWARE_STATS_INTERVAL": [b"100ms", b"30s"],
    "DNSAWARE_STALE_AFTER": [b"1", b"3", b"100"],
    "DNSAWARE_REDIRECT": [b"0", b"1"],
    "DNSAWARE_DISABLE": [b"0", b"1"],
    "DNSAWARE_LEARN_DNS": [b"0", b"1"],
    "DNSAWARE_STALE_MAX": [b"0", b"1d", b"30d", b"12h"],
    "DNSAWARE_RESOLVE_TIMEOUT": [b"0", b"1800ms", b"5s"],
    "DNSAWARE_CACHE": [b"0", b"1"],
    "DNSAWARE_BALANCE": [b"0", b"1"],
    "DNSAWARE_METRICS_NAMES": [b"0", b"32", b"256"],
    "DNSAWARE_STATE_DIR": [b"off"],
    "DNSAWARE_LOG": [b"off", b"error", b"warn", b"info"],
    "DNSAWARE_HOSTS": [b"localhost", b"*.example.com, localhost", b"x" * 1023],
    "DNSAWARE_EXCLUDE": [b"localhost", b"a.example,,b.example", b"x" * 1023],
    "DNSAWARE_LOG_FILE": [b"dnsaware.log"],
    "DNSAWARE_STATS_FILE": [b"stats-%p.prom"],
    "DNSAWARE_NAMESERVERS": [b"127.0.0.1", b"127.0.0.1:53,[::1]:53", b"::1", b"[::1]"],
}


class Failure(Exception):
    pass


# --------------------------------------------------------------------------------------------
# the documentation's model: is this value accepted?
# --------------------------------------------------------------------------------------------

def duration_ms(text):
    m = re.fullmatch(rb"([0-9]+)(ms|s|m|h|d)?", text)
    if not m:
        return None
    digits = m.group(1).lstrip(b"0") or b"0"
    if len(digits) > 30:
        return DURATION_MAX_MS + 1           # far out of range (and too long for int())
    return int(digits) * UNITS[(m.group(2) or b"").decode()]


def accepts(name, value):
    kind, _, minimum = KINDS[name]
    if kind == "duration":
        ms = duration_ms(value)
        if ms is None or not minimum <= ms <= DURATION_MAX_MS:
            return False
        # Floor <= ceiling, each against the other's default when only one is set.
        if name == "DNSAWARE_TTL_FLOOR":
            return ms <= 300000
        if name == "DNSAWARE_TTL_CEILING":
            return ms >= 5000
        return True
    if kind == "count":
        return (re.fullmatch(rb"[0-9]+", value) is not None and len(value.lstrip(b"0")) <= 3
                and 1 <= int(value) <= 100)
    if kind == "names":
        return re.fullmatch(rb"[0-9]{1,4}", value) is not None and int(value) <= 256
    if kind == "switch":
        return value in (b"0", b"1")
    if kind == "level":
        return value in (b"off", b"error", b"warn", b"info", b"debug")
    if kind in ("globs", "path"):
        return len(value) <= 1023
    if kind == "servers":
        return len(value) <= 1023 and servers_ok(value)
    raise AssertionError(kind)


def servers_ok(value):
    """docs/configuration.md, DNSAWARE_NAMESERVERS: empty, or comma-separated IPv4[:port], IPv6,
    [IPv6] or [IPv6]:port; port 1..65535; no blanks, no empty element, no host names."""
    if value == b"":
        return True
    try:
        text = value.decode("ascii")
    except UnicodeDecodeError:
        return False
    for element in text.split(","):
        m = re.fullmatch(r"\[([^\]]*)\](?::([0-9]+))?", element)
        if m:
            host, port = m.group(1), m.group(2)
            if not v6(host) or (port is not None and not 1 <= int(port) <= 65535):
                return False
            continue
        if v6(element):
            continue
        m = re.fullmatch(r"([0-9.]+)(?::([0-9]+))?", element)
        if not m or not v4(m.group(1)) or (m.group(2) is not None and not 1 <= int(m.group(2)) <= 65535):
            return False
    return True


def v4(text):
    try:
        ipaddress.IPv4Address(text)
        return True
    except ValueError:
        return False


def v6(text):
    if "%" in text or not re.fullmatch(r"[0-9A-Fa-f:.]+", text):
        return False
    try:
        ipaddress.IPv6Address(text)
        return True
    except ValueError:
        return False


def shown(value):
    """How the warning shows a value: 64 bytes, non-printable as '?', then '...'."""
    head = "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in value[:SHOWN_MAX])
    return head + ("..." if len(value) > SHOWN_MAX else "")


# --------------------------------------------------------------------------------------------
# running the programs
# --------------------------------------------------------------------------------------------

def variables_from_header():
    with open(ENV_NAMES_H) as f:
        text = f.read()
    names = re.findall(r'#define\s+ENV_\w+\s+"(DNSAWARE_\w+)"', text)
    if not names:
        raise Failure("no variable found in %s" % ENV_NAMES_H)
    return names


def base_env():
    env = {k.encode(): v.encode() for k, v in os.environ.items()
           if not k.startswith("DNSAWARE_") and k not in ("LD_PRELOAD", "BADINPUT_PRELOAD")}
    return env


def run(argv, env, cwd):
    p = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = p.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        return p.pid, None, out, err
    return p.pid, p.returncode, out, err


WARN_RE = re.compile(rb"^dnsaware\[(\d+)\]: warn (.*)$")


def check_case(label, programs, expected, preload, settings, workdir, runtime=None):
    """Runs every program with the shim and settings; returns a list of problems. runtime: a
    function of the program's name giving the patterns of the warnings expected besides the
    configuration's (a log or stats file that cannot be opened, found when first written)."""
    problems = []
    env = base_env()
    env[b"LD_PRELOAD"] = preload.encode()
    for name, value in settings:
        env[name.encode()] = value
    for prog_name, argv in programs:
        cwd = tempfile.mkdtemp(prefix="case-", dir=workdir)
        pid, status, out, err = run(argv, env, cwd)
        want_out, want_status = expected[prog_name]
        where = "%s, %s" % (label, prog_name)
        if status != want_status or out != want_out:
            problems.append("%s: exit %r stdout %r, without the shim exit %r stdout %r; stderr %r"
                            % (where, status, out[:200], want_status, want_out, err[:300]))
            continue
        warnings = []
        for line in err.split(b"\n"):
            if not line:
                continue
            # One event, one line, the program's pid and a level. (A line cut before its newline,
            # with the next glued on, fails the full match of the warnings below.)
            if not re.match(rb"^dnsaware\[%d\]: (error|warn|info|debug) " % pid, line):
                problems.append("%s: stderr line not one of the shim's lines for pid %d: %r"
                                % (where, pid, line[:300]))
                continue
            m = WARN_RE.match(line)
            if m:
                warnings.append((int(m.group(1)), m.group(2)))
        extra = [re.compile(p) for p in (runtime(prog_name) if runtime else [])]
        for pattern in extra:
            hits = [w for w in warnings if pattern.fullmatch(w[1])]
            if len(hits) != 1:
                problems.append("%s: want one warning matching %r, got %r"
                                % (where, pattern.pattern[:120], [w for _, w in warnings]))
            warnings = [w for w in warnings if not pattern.fullmatch(w[1])]
        bad = [(n, v) for n, v in settings if not accepts(n, v)]
        if len(warnings) != len(bad):
            problems.append("%s: %d warning lines, want %d: %r"
                            % (where, len(warnings), len(bad), [w for _, w in warnings]))
            continue
        for wpid, text in warnings:
            if wpid != pid:
                problems.append("%s: warning carries pid %d, the program's is %d" % (where, wpid, pid))
        for n, v in bad:
            if not any(warning_names(text.decode("ascii", "replace"), n, v) for _, text in warnings):
                problems.append("%s: no warning in the contract's form for %s=%r; got %r"
                                % (where, n, v[:80], [t for _, t in warnings]))
    return problems


def warning_names(text, name, value):
    """`[...]NAME=SHOWN ... (accepted: ...); using DEFAULT` (the floor/ceiling conflict names
    both variables and both defaults)."""
    default = KINDS[name][1]
    pattern = r"(?:.* )?%s=%s(?: .*)? \(accepted: [^()]+\); using (.+)" % (re.escape(name), re.escape(shown(value)))
    m = re.fullmatch(pattern, text)
    return m is not None and m.group(1) in (default, "5s and 300s")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("helper")
    ap.add_argument("--jobs", type=int, default=max(4, 2 * (os.cpu_count() or 1)))
    ap.add_argument("--keep", action="store_true")
    opts = ap.parse_args()
    preload = os.environ.get("BADINPUT_PRELOAD") or os.environ.get("LD_PRELOAD", "")
    if "libdnsaware" not in preload:
        print("FAIL: LD_PRELOAD does not name libdnsaware.so (%r)" % preload)
        return 1
    if "BADINPUT_PRELOAD" not in os.environ:
        # Run the driver itself without the shim; it only hands it to the programs.
        env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        env["BADINPUT_PRELOAD"] = preload
        os.execve(sys.executable, [sys.executable] + sys.argv, env)

    t0 = time.monotonic()
    names = variables_from_header()
    missing = [n for n in names if n not in KINDS or n not in GOOD]
    stale = [n for n in KINDS if n not in names]
    if missing or stale:
        print("FAIL: variables of src/env_names.h without a case here: %s; cases for variables "
              "it no longer has: %s" % (missing, stale))
        return 1

    workdir = tempfile.mkdtemp(prefix="badinput-matrix-")
    programs = [("helper", [os.path.abspath(opts.helper), "exchange"]),
                ("echo", [ECHO, "program-ran"])]
    expected = {}
    for prog_name, argv in programs:
        _, status, out, err = run(argv, base_env(), workdir)
        expected[prog_name] = (out, status)
        print("without the shim: %s exits %r, prints %r" % (prog_name, status, out))
    if expected["helper"] != (HELPER_STDOUT, HELPER_STATUS) or expected["echo"] != (b"program-ran\n", 0):
        print("FAIL: the programs do not behave as expected without the shim: %r" % expected)
        return 1

    cases = [("shim, no setting", [])]
    for name in names:
        for value in VALUES + GOOD[name]:
            cases.append(("%s=%r" % (name, value[:40] + (b"..." if len(value) > 40 else b"")),
                          [(name, value)]))
    # Everything bad at once: one warning for each variable, nothing else changes.
    cases.append(("every variable 10 kB of x", [(n, b"x" * 10240) for n in names]))
    runtime_cases = []
    # Paths accepted at load that cannot be opened: the warning when they are first written is
    # one line too, however long the path or whatever bytes it holds.
    for path in (b"/nonexistent-badinput/" + b"y" * 900, b"/nonexistent-badinput/a\ndnsaware[1]: info forged",
                 b"/nonexistent-badinput/\x1b[31m\xff"):
        shown_path = re.escape(shown(path).encode())
        runtime_cases.append((
            "DNSAWARE_LOG_FILE=%r, DNSAWARE_IDLE=abc" % path[:40],
            [("DNSAWARE_LOG_FILE", path), ("DNSAWARE_IDLE", b"abc")],
            lambda prog, p=shown_path: [b"cannot open DNSAWARE_LOG_FILE=" + p
                                        + rb" \(No such file or directory\); logging to stderr"]))
        runtime_cases.append((
            "DNSAWARE_STATS_FILE=%r" % path[:40],
            [("DNSAWARE_STATS_FILE", path), ("DNSAWARE_STATS_INTERVAL", b"100ms")],
            # Only a process that watches a connection (the helper) writes a stats file.
            lambda prog, p=shown_path: [] if prog == "echo" else
            [b"cannot write DNSAWARE_STATS_FILE=" + p + rb" \(creating .*\); trying again at the next interval"]))

    problems = []
    accepted = rejected = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=opts.jobs) as pool:
        futures = [pool.submit(check_case, label, programs, expected, preload, settings, workdir)
                   for label, settings in cases]
        futures += [pool.submit(check_case, label, programs, expected, preload, settings, workdir,
                                runtime) for label, settings, runtime in runtime_cases]
        for fut in futures[len(cases):]:
            problems += fut.result()
        for (label, settings), fut in zip(cases, futures):
            problems += fut.result()
            if len(settings) == 1:
                if accepts(*settings[0]):
                    accepted += 1
                else:
                    rejected += 1
    took = time.monotonic() - t0
    if not opts.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print("files kept in %s" % workdir)
    print("%d variables x %d values and their good ones (%d cases accepted, %d rejected), all at "
          "once, %d files that cannot be written; %d program runs, %.1fs"
          % (len(names), len(VALUES), accepted, rejected, len(runtime_cases),
             2 * (len(cases) + len(runtime_cases)), took))
    if problems:
        for p in problems[:40]:
            print("FAIL: %s" % p)
        if len(problems) > 40:
            print("... and %d more" % (len(problems) - 40))
        return 1
    print("PASS: same output and exit status in every case; one warning per rejected value, "
          "none for accepted ones")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Test of tools/dnsaware-stats (the operator's table of DNSAWARE_STATS_FILE files).

    /usr/bin/python3 tests/e2e/test_dnsaware_stats.py

Builds a directory with two valid stats files (pids 101 and 202, the second 10 minutes old), a
malformed one, another exporter's .prom file and files that are not *.prom, and checks the rows,
the TOTAL, the alignment, the STALE mark, the one error line and exit status 1; the per-name
table summed over the two files (connects by result, p50/p99 from known buckets, sockets per
address, _other last); then a single file, an explicit non-dnsaware file, a missing path, an
empty directory, no argument, --help, --watch with bad values and --watch 0.2 into a pipe,
stopped by SIGINT. Exit status: 0 pass, 1 fail.
"""

import os
import re
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, "..", "..", "tools", "dnsaware-stats")
sys.path.insert(0, HERE)
import promtext  # noqa: E402
from test_promtext import DNSAWARE as UNLABELLED, with_pid  # noqa: E402

HEADER = ["PID", "NAMES", "SOCKETS", "RESOLVE OK/ERR", "REMOVED", "DNS-SHUTDOWN I/S/D",
          "MAX_AGE-SHUTDOWN I/S/D", "BALANCE-SHUTDOWN I/S/D", "REDIRECTS", "FAILOVERS", "UPDATED"]

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def run(*args):
    r = subprocess.run([TOOL, *args], capture_output=True, text=True)
    return r.returncode, r.stdout.splitlines(), r.stderr.splitlines()


def edit(doc, changes):
    for old, new in changes:
        assert old in doc, old
        doc = doc.replace(old, new, 1)
    return doc


def write(path, text, age=0):
    with open(path, "w") as f:
        f.write(text)
    if age:
        os.utime(path, (time.time() - age,) * 2)


def per_name(names):
    """The per-name families for names = {name: (results ok..error, cumulative buckets, sum)},
    without pid labels (with_pid() adds them)."""
    results = ("ok", "refused", "timeout", "unreachable", "error")
    text = ("# HELP dnsaware_connects_total Connects to a name's addresses, by result.\n"
            "# TYPE dnsaware_connects_total counter\n")
    for name, (counts, _, _) in names.items():
        text += "".join(f'dnsaware_connects_total{{name="{name}",result="{r}"}} {c}\n'
                        for r, c in zip(results, counts))
    text += ("# HELP dnsaware_connect_duration_seconds Time from the connect call to the"
             " established connection, by name.\n"
             "# TYPE dnsaware_connect_duration_seconds histogram\n")
    for name, (_, buckets, total) in names.items():
        h = "dnsaware_connect_duration_seconds"
        text += "".join(f'{h}_bucket{{name="{name}",le="{le}"}} {c}\n'
                        for le, c in zip(promtext.CONNECT_BUCKETS, buckets))
        text += f'{h}_sum{{name="{name}"}} {total}\n{h}_count{{name="{name}"}} {buckets[-1]}\n'
    return text


def aligned(lines):
    """Every numeric column right-aligned under its header, PID left-aligned."""
    ends = [m.end() for m in re.finditer("|".join(map(re.escape, HEADER[1:-1])), lines[0])]
    for line in lines[1:]:
        tokens = list(re.finditer(r"\S+", line))
        if not line.startswith(tokens[0].group()) or [t.end() for t in tokens[1:10]] != ends:
            return False
    return True


def main():
    # The library labels every sample with its pid; the files here are named after it too.
    pid101 = with_pid(UNLABELLED, "101")
    pid202 = with_pid(edit(UNLABELLED, [("dnsaware_tracked_sockets 12", "dnsaware_tracked_sockets 5"),
                             ("dnsaware_watched_names 3", "dnsaware_watched_names 1"),
                             ('{result="ok"} 340', '{result="ok"} 60'),
                             ('{result="error"} 2', '{result="error"} 0'),
                             ('{reason="dns",path="send"} 0', '{reason="dns",path="send"} 3'),
                             ('{reason="max_age",path="deadline"} 0',
                              '{reason="max_age",path="deadline"} 2'),
                             ("dnsaware_connects_redirected_total 2",
                              "dnsaware_connects_redirected_total 10"),
                             ('{reason="balance",path="idle"} 0', '{reason="balance",path="idle"} 6'),
                             ('address="127.0.0.11"} 0', 'address="127.0.0.11"} 3')]), "202")
    # 202's per-name families: its own api.test and _other, and db.test, which 101 lacks.
    cut = pid202.index("# HELP dnsaware_connects_total")
    pid202 = pid202[:cut] + with_pid(
        'dnsaware_name_sockets{name="db.test",address="10.0.0.5"} 1\n' + per_name({
            "api.test": ((60, 0, 2, 1, 0), (0,) * 7 + (10, 50) + (60,) * 6, 15.25),
            "db.test": ((0, 2, 0, 0, 0), (0,) * 15, 0),
            "_other": ((1, 0, 0, 0, 0), (0,) * 11 + (1,) * 4, 1.5)}), "202")
    DNSAWARE = pid101
    for doc in (DNSAWARE, pid202):
        promtext.check_dnsaware(promtext.parse(doc))      # the fixtures honour the contract

    with tempfile.TemporaryDirectory() as tmp:
        d = os.path.join(tmp, "textfile")
        os.mkdir(d)
        write(os.path.join(d, "dnsaware-101.prom"), DNSAWARE)
        write(os.path.join(d, "dnsaware-202.prom"), pid202, age=600)
        bad = os.path.join(d, "dnsaware-303.prom")
        write(bad, edit(DNSAWARE, [(',result="error"} 2', ',result=error} 2')]))
        write(os.path.join(d, "node_cpu.prom"), "# TYPE node_x gauge\nnode_x 1\n")
        write(os.path.join(d, "dnsaware-404.prom.tmp"), "garbage\n")
        write(os.path.join(d, "README"), "not metrics\n")

        status, out, err = run(d)
        names = out[out.index("") + 1:] if "" in out else []
        out = out[:out.index("")] if "" in out else out
        rows = [line.split() for line in out]
        check(status == 1, f"directory with a malformed file: exit 1 (got {status})")
        check(err == [f'dnsaware-stats: {bad}: line 10: malformed labels {{pid="101",result=error}}'],
              f"one error line naming the file and line ({err})")
        check(len(out) == 4 and out[0].split() == " ".join(HEADER).split(),
              "header, two rows, TOTAL")
        check(rows[1][:10] == ["101", "3", "12", "340/2", "1", "4/0/1", "7/0/0", "0/0/0", "2", "1"]
              and re.fullmatch(r"[0-9]+s", rows[1][10]) and len(rows[1]) == 11,
              f"pid 101 row, fresh ({out[1]!r})")
        check(rows[2][:10] == ["202", "1", "5", "60/0", "1", "4/3/1", "7/0/2", "6/0/0", "10", "1"]
              and re.fullmatch(r"10m0[0-9]s", rows[2][10]) and rows[2][11:] == ["STALE"],
              f"pid 202 row, marked STALE ({out[2]!r})")
        check(rows[3] == ["TOTAL", "4", "17", "400/2", "2", "8/3/2", "14/0/2", "6/0/0", "12", "2"],
              f"TOTAL row ({out[3]!r})")
        check(aligned(out), "columns aligned")
        # api.test: 101's buckets (31 35 38 39 39 40 ... 40) plus 202's (0 x7, 10, 50, 60 ...):
        # 100 connects; p50 = rank 50, in (0.05, 0.1] whose 10 take it from 40 to 50: 0.1 s;
        # p99 = rank 99, in (0.25, 0.5] (90 to 100): 0.25 + 0.25 * 9/10 = 0.475 s.
        # _other: 101's (0 0 1 2 ... 2, +Inf 3) plus 202's (1 from le=2.5): p50 = rank 2, in
        # (0.0025, 0.005] (1 to 2): 5 ms; p99 = rank 3.96, in +Inf: above 10 s.
        # db.test: no connect established, only refused ones: no percentile.
        check([line.split() for line in names] == [
            ["NAME", "CONNECTS", "OK", "REFUSED", "TIMEOUT", "UNREACH", "ERROR", "P50", "P99",
             "SOCKETS"],
            ["api.test", "118", "100", "10", "7", "1", "0", "100ms", "475ms", "7"],
            ["127.0.0.10", "4"],
            ["127.0.0.11", "3"],
            ["db.test", "2", "0", "2", "0", "0", "0", "-", "-", "1"],
            ["10.0.0.5", "1"],
            ["_other", "6", "4", "0", "0", "1", "1", "5.0ms", ">10s", "-"]],
              f"per-name table, summed over the files ({names})")
        check([line.startswith("  ") for line in names] == [False, False, True, True, False, True,
                                                            False]
              and all(len(line) == len(names[0]) for line in names if line.split()[-1] != "-"),
              "addresses indented under their name, SOCKETS right-aligned")

        one = os.path.join(d, "dnsaware-101.prom")
        status, out, err = run(one)
        check(status == 0 and err == [] and len(out) == 8 and out[1].split()[:10] == rows[1][:10]
              and out[4].split() == ["api.test", "55", "40", "10", "5", "0", "0", "0.3ms", "19ms",
                                     "2"],
              f"single file: header and its row, no TOTAL, its names, exit 0 ({out}, {err})")
        no_names = os.path.join(tmp, "dnsaware-505.prom")
        write(no_names, "".join(line for line in DNSAWARE.splitlines(keepends=True)
                                if not line.startswith(("dnsaware_name_sockets{",
                                                        "dnsaware_connects_total{",
                                                        "dnsaware_connect_duration_seconds_"))))
        status, out, err = run(no_names)
        check(status == 0 and len(out) == 2, f"a file without per-name samples: no name table ({out})")
        odd = os.path.join(tmp, "dnsaware-606.prom")
        write(odd, DNSAWARE.replace('name="_other"', 'name="a\x1b[2Jb\\"c"'))
        status, out, err = run(odd)
        check(status == 0 and "\x1b" not in "".join(out)
              and out[4].split()[0] == 'a\\x1b[2Jb\\"c',
              f"control characters in a name shown escaped, quotes as written ({out[4:5]})")

        status, out, err = run(os.path.join(d, "node_cpu.prom"))
        check(status == 1 and out == [] and len(err) == 1 and "no dnsaware_ metrics" in err[0],
              f"explicit file without dnsaware metrics: one error, exit 1 ({err})")

        missing = os.path.join(tmp, "nope")
        status, out, err = run(missing)
        check(status == 2 and out == [] and err == [
            f"dnsaware-stats: {missing}: No such file or directory"],
              f"missing path: one line, exit 2 ({err})")

        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        status, out, err = run(empty)
        check(status == 2 and out == [] and len(err) == 1, f"empty directory: exit 2 ({err})")

        status, out, err = run()
        check(status == 2 and out == [] and len(err) == 1, "no argument: usage line, exit 2")
        status, out, err = run("--help")
        check(status == 0 and out and out[0].startswith("dnsaware-stats:")
              and any("--watch N" in line for line in out), "--help: exit 0, --watch described")
        for bad in (["--watch", "0", d], ["--watch", "-1", d], ["--watch=soon", d], ["--watch", "nan", d],
                    ["--watch", "inf", d], [d, "--watch"]):
            status, out, err = run(*bad)
            check(status == 2 and out == [] and len(err) == 1 and "--watch" in err[0]
                  and "above 0" in err[0], f"{' '.join(bad[:2])}: one line, exit 2 ({err})")
        status, out, err = run("--wtach", "1", d)
        check(status == 2 and len(err) == 1 and "--wtach" in err[0], f"unknown option: exit 2 ({err})")
        status, out, err = run("--watch", "0.2", missing)
        check(status == 2 and out == [] and err == [
            f"dnsaware-stats: {missing}: No such file or directory"],
              f"--watch of a missing path: one line, exit 2 ({err})")

        # --watch 0.2 into a pipe for 0.7 s: a view at 0, 0.2, 0.4 and 0.6 s (less if Python is
        # slow to start), each after a time line, a blank line between views; SIGINT ends it.
        proc = subprocess.Popen([TOOL, "--watch", "0.2", os.path.join(d, "dnsaware-101.prom")],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.7)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        lines = out.splitlines()
        times = [i for i, line in enumerate(lines)
                 if re.fullmatch(r"dnsaware-stats every 0\.2s: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d", line)]
        check(proc.returncode == 0 and err == "" and 2 <= len(times) <= 4 and times[0] == 0
              and all(lines[t - 1] == "" for t in times[1:]) and "\033" not in out
              and lines.count(lines[1]) == len(times),
              f"--watch 0.2 into a pipe: {len(times)} views, exit {proc.returncode} on SIGINT,"
              f" stderr {err[-200:]!r}")

    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

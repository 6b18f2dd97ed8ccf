#!/usr/bin/python3
"""Test of tools/dnsaware-stats (the operator's table of DNSAWARE_STATS_FILE files).

    /usr/bin/python3 tests/e2e/test_dnsaware_stats.py

Builds a directory with two valid stats files (pids 101 and 202, the second 10 minutes old), a
malformed one, another exporter's .prom file and files that are not *.prom, and checks the rows,
the TOTAL, the alignment, the STALE mark, the one error line and exit status 1; then a single
file, an explicit non-dnsaware file, a missing path, an empty directory, no argument, --help.
Exit status: 0 pass, 1 fail.
"""

import os
import re
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
        check([line.split() for line in names] == [["NAME", "ADDRESS", "SOCKETS"],
                                                   ["api.test", "127.0.0.10", "4"],
                                                   ["127.0.0.11", "3"]],
              f"sockets per address, summed over the files ({names})")

        one = os.path.join(d, "dnsaware-101.prom")
        status, out, err = run(one)
        check(status == 0 and err == [] and len(out) == 6 and out[1].split()[:10] == rows[1][:10],
              f"single file: header and its row, no TOTAL, exit 0 ({out}, {err})")

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
        check(status == 0 and out and out[0].startswith("dnsaware-stats:"), "--help: exit 0")

    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

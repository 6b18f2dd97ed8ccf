#!/usr/bin/python3
"""The test wrapper of sanitized builds (meson's `sanitize` test setup, tests/meson.build), run by
its front, check-reports (which takes LD_PRELOAD off this python and hands it over in
CHECK_REPORTS_PRELOAD).

    check-reports REPORTS_ROOT COMMAND [ARG...]

Runs COMMAND with every sanitizer writing its reports into a fresh directory under REPORTS_ROOT
(log_path added to ASAN_OPTIONS, UBSAN_OPTIONS and TSAN_OPTIONS), whichever process writes them:
the test program, a client the end-to-end driver started in a namespace, an nginx worker. Reports
usually go to a process's stderr, which a driver may keep in a file nobody reads; here none is
lost. After COMMAND ends, any report fails the test: each is printed to stderr (meson shows it
with --print-errorlogs) and its directory is kept. Otherwise the exit status is COMMAND's (77, a
skip, included) and the empty directory is removed.
"""
import os
import re
import signal
import subprocess
import sys
import tempfile

RUNTIMES = (("ASAN_OPTIONS", "asan"), ("UBSAN_OPTIONS", "ubsan"), ("TSAN_OPTIONS", "tsan"))

# What makes a file a report: an error (ASan, LSan, TSan's fatal ones), a UBSan runtime error, a
# TSan warning (a race, a signal-unsafe call in a handler, a lock-order inversion), a summary. A
# file with none of these holds notes only, such as LeakSanitizer's "Running thread N was not
# suspended. False leaks are possible." in the fork child of a threaded process (the parent's
# threads are still in its registry): not a finding.
REPORT = re.compile(r"ERROR: |WARNING: ThreadSanitizer|runtime error:|^SUMMARY: ", re.MULTILINE)


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: check-reports REPORTS_ROOT COMMAND [ARG...]")
    root, command = sys.argv[1], sys.argv[2:]
    os.makedirs(root, exist_ok=True)
    words = [os.path.basename(w) for w in command[:4] if not w.startswith("-")]
    label = re.sub(r"[^A-Za-z0-9_.]+", "_", "-".join(w for w in words if w != "python3"))[:60]
    reports = tempfile.mkdtemp(prefix=(label or "test") + "-", dir=root)
    # Programs the shim is preloaded into may run as another user (nginx's workers).
    os.chmod(reports, 0o1777)

    env = dict(os.environ)
    if "CHECK_REPORTS_PRELOAD" in env:
        env["LD_PRELOAD"] = env.pop("CHECK_REPORTS_PRELOAD")
    for variable, name in RUNTIMES:
        options = env.get(variable, "")
        if "log_path=" not in options:
            env[variable] = (options + ":" if options else "") + "log_path=" + \
                os.path.join(reports, name)

    # meson stops a test that times out with SIGTERM (then SIGKILL) to its process group; pass a
    # signal sent to this process alone on to the command.
    child = subprocess.Popen(command, env=env)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, frame: child.send_signal(number))
    status = child.wait()
    if status < 0:
        status = 128 - status

    found = []
    for name in sorted(os.listdir(reports)):
        path = os.path.join(reports, name)
        with open(path, errors="replace") as report:
            if REPORT.search(report.read()):
                found.append(name)
            else:
                os.unlink(path)   # notes only, e.g. LeakSanitizer's in a fork child (below)
    if not found:
        os.rmdir(reports)
        return status
    sys.stderr.write("check-reports: %d sanitizer report(s) written while the test ran (kept in %s):\n"
                     % (len(found), reports))
    for name in found:
        with open(os.path.join(reports, name), errors="replace") as report:
            text = report.read()
        sys.stderr.write("=== %s\n%s%s" % (name, text, "" if text.endswith("\n") else "\n"))
    sys.stderr.write("check-reports: FAIL: sanitizer report(s) above (test exit status %d)\n" % status)
    return status if status not in (0, 77) else 1


if __name__ == "__main__":
    sys.exit(main())

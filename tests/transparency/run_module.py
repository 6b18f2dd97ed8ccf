"""Runs one CPython test module with unittest and records every test's outcome.

    /usr/bin/python3 run_module.py MODULE --results FILE.jsonl [--resources R,...]
        [--match PAT]... [--ignore PAT]... [--anchor] [--timeout SECONDS]

MODULE is a name under the `test` package (`test_socket`, `test_asyncio.test_events`). The
module is set up as regrtest sets up a worker (test.libregrtest.setup.setup_tests: faulthandler,
the unraisable and threading hooks, stdout with backslashreplace; support.use_resources, none by
default, so no test that needs the internet runs), loaded with unittest.TestLoader as regrtest
loads it, and run with a TextTestRunner at verbosity 2 (the usual `test_x (test.m.C.test_x) ...
ok` lines go to stdout, for people). --match and --ignore are regrtest's -m and -i. --anchor
first makes a TCP connection to "localhost" (resolved, so the shim tracks it and its thread runs)
and holds it until the module is done.

The results file gets one JSON object a line, appended and flushed as the run goes, so a crash or
a timeout loses nothing that finished:
    {"event": "start", "id": ID}                      before a test runs
    {"event": "result", "id": ID, "outcome": O, "detail": TEXT, "seconds": S}
    {"event": "done", "tests_run": N, "environment_altered": BOOL, "seconds": S}
O is one of ok, FAIL, ERROR, skipped, expected failure, unexpected success. A test whose
subtests failed is FAIL (ERROR if one raised something other than an assertion); the detail
holds every failing subtest's traceback. Errors outside any test (setUpModule, setUpClass,
tearDownClass) are results of their own, with unittest's ids (`setUpClass (test.m.C)`).

Only the standard library is used: this file runs in the python under test, with and without
the shim preloaded.
"""
import argparse
import importlib
import json
import os
import socket
import sys
import tempfile
import time
import unittest

# Worst first: a test both failed and raised in its cleanup is an ERROR.
PRECEDENCE = ["ERROR", "FAIL", "unexpected success", "expected failure", "skipped", "ok"]


class Sink:
    """Appends one JSON line per event; the file is opened for every line, so no test can close
    or replace the runner's fd."""

    def __init__(self, path):
        self.path = path

    def put(self, **event):
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(event) + "\n")


def make_result_class(sink):
    class Recorder(unittest.TextTestResult):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.current = None  # id -> {"outcomes": [...], "details": [...]}

        def _entry(self, test):
            if isinstance(test, unittest.case._SubTest):
                test = test.test_case
            if self.current is not None and self.current["id"] == test.id():
                return self.current
            # Not between startTest and stopTest: a setUpClass/setUpModule error holder, or a
            # class whose setUpClass was skipped. Recorded at once.
            return None

        def _add(self, test, outcome, detail=""):
            entry = self._entry(test)
            if entry is None:
                sink.put(event="result", id=test.id(), outcome=outcome, detail=detail, seconds=0.0)
                return
            entry["outcomes"].append(outcome)
            if detail:
                entry["details"].append(detail)

        def startTest(self, test):
            super().startTest(test)
            self.current = {"id": test.id(), "outcomes": [], "details": [], "t0": time.monotonic()}
            sink.put(event="start", id=test.id())

        def stopTest(self, test):
            super().stopTest(test)
            entry, self.current = self.current, None
            if entry is None:
                return
            outcomes = entry["outcomes"] or ["ok"]  # subtests only, all passed
            outcome = min(outcomes, key=PRECEDENCE.index)
            sink.put(event="result", id=entry["id"], outcome=outcome,
                     detail="\n".join(entry["details"])[-20000:],
                     seconds=round(time.monotonic() - entry["t0"], 3))

        def addSuccess(self, test):
            super().addSuccess(test)
            self._add(test, "ok")

        def addFailure(self, test, err):
            super().addFailure(test, err)
            self._add(test, "FAIL", self.failures[-1][1])

        def addError(self, test, err):
            super().addError(test, err)
            self._add(test, "ERROR", self.errors[-1][1])

        def addSkip(self, test, reason):
            super().addSkip(test, reason)
            if isinstance(test, unittest.case._SubTest):
                return  # a skipped subtest: the test itself still passes or fails
            self._add(test, "skipped", str(reason))

        def addExpectedFailure(self, test, err):
            super().addExpectedFailure(test, err)
            self._add(test, "expected failure", self.expectedFailures[-1][1])

        def addUnexpectedSuccess(self, test):
            super().addUnexpectedSuccess(test)
            self._add(test, "unexpected success")

        def addSubTest(self, test, subtest, err):
            super().addSubTest(test, subtest, err)
            if err is None:
                return
            kind = "FAIL" if issubclass(err[0], test.failureException) else "ERROR"
            self._add(test, kind, f"[subtest {subtest._subDescription()}]\n" +
                      self._exc_info_to_string(err, test))

    return Recorder


def hold_connection():
    """A TCP connection made to a resolved name ("localhost"), held open while every test runs.
    Under the shim it is tracked, so the shim's thread runs and re-resolves the name throughout,
    even in modules that never connect anywhere (signals, fork, wait, fds). The control run holds
    the same connection: the tests see the same fds either way."""
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(("localhost", listener.getsockname()[1]), timeout=10)
    server, _ = listener.accept()
    client.settimeout(None)
    client.sendall(b"hello")
    assert server.recv(5) == b"hello"
    return listener, client, server


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("module")
    parser.add_argument("--results", required=True)
    parser.add_argument("--resources", default="", help="regrtest -u resources, comma-separated")
    parser.add_argument("--match", action="append", default=[], help="regrtest -m patterns")
    parser.add_argument("--ignore", action="append", default=[], help="regrtest -i patterns")
    parser.add_argument("--anchor", action="store_true",
                        help="hold a TCP connection to localhost (resolved) for the whole run")
    parser.add_argument("--timeout", type=float, default=0,
                        help="dump every thread's traceback after this many seconds")
    args = parser.parse_args()
    sink = Sink(os.path.abspath(args.results))
    started = time.monotonic()

    from test import support
    from test.libregrtest.cmdline import _parse_args
    from test.libregrtest.setup import setup_tests

    ns = _parse_args([])
    ns.use_resources = [r for r in args.resources.split(",") if r]
    setup_tests(ns)
    support.verbose = 0
    support.failfast = False
    support.set_match_tests(args.match or None, args.ignore or None)
    if args.timeout > 0:
        import faulthandler
        faulthandler.dump_traceback_later(args.timeout, exit=False)

    # regrtest runs each worker in a directory of its own; TMPDIR is the run's private one.
    os.chdir(tempfile.mkdtemp(prefix="cwd-"))

    anchor = hold_connection() if args.anchor else None

    name = "test." + args.module
    try:
        module = importlib.import_module(name)
    except unittest.SkipTest as skip:   # support.requires() at module level, among others
        sink.put(event="result", id=name + " (module)", outcome="skipped", detail=str(skip), seconds=0.0)
        sink.put(event="done", tests_run=0, environment_altered=False,
                 seconds=round(time.monotonic() - started, 3))
        return 0
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromModule(module)
    for error in loader.errors:
        sink.put(event="result", id=name + " (loading)", outcome="ERROR", detail=error, seconds=0.0)
    if args.match or args.ignore:
        support._filter_suite(suite, support.match_test)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2,
                                     resultclass=make_result_class(sink))
    result = runner.run(suite)
    sink.put(event="done", tests_run=result.testsRun,
             environment_altered=bool(support.environment_altered),
             seconds=round(time.monotonic() - started, 3))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())

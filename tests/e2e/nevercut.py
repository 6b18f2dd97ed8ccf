#!/usr/bin/python3
"""End-to-end test (issue 16): a response still arriving is never cut while its connection drains.

A busy connection drains when its name moves; the shim then looks for the short gaps between its
exchanges (src/exchange_watch.h). This test moves a name under real clients in the middle of
answers that pause: a slow answer (2 s before its first byte), 1 MB in pieces of 64 KB or 16 KB
with 50 ms pauses, and a chunked stream (headers at once, then 60 chunks of 64 bytes, 50 ms
apart). Each client runs six phases, each with a move of its own name to a new address
(127.0.0.10, then .11, .12, ...: a name that went back to an address it had would look like one
that rotates its answers, which the shim leaves alone):

  after-big, after-stream, after-slow
      the drain is under way (the client sees it start in the shim's log) and the connection
      busy, back to back, with small exchanges when the client asks for the special answer: the
      shim has learned the connection's rhythm (short answers, short gaps) when the pauses come.
  during-big16, during-stream, during-slow
      the client asks for the special answer at the move, so the drain starts while it arrives.

then pauses 250 ms (an idle gap) and sends one small request. A phase the shim did not exercise
(the drain came too early or too late, or the connection changed before the special answer) is
tried again, up to 3 times.

Clients: python requests (blocking reads) and node's http.Agent (an event loop), each under the
shim and, as the control, without it. Asserts:
  - every request of every client succeeds and every answer arrives whole (length and content;
    the stream's 60 ticks in order): nothing was cut, and nothing failed;
  - under the shim: every phase was exercised, and its check request after the pause reached the
    name's new address (the drain was real); every shutdown was by the idle path;
  - the control stays on the first address throughout (the harness does move the name).

Runs in a private mount and network namespace (dnsmove.py's Scene: dnsmasq with TTL 1 s on
127.0.0.1, /etc/resolv.conf and /etc/hosts bind-mounted). About 60 s.

Usage: nevercut.py [--lib PATH] [--workdir DIR] [--keep]
Internal subcommands: backend, client (nevercut_ends.py).
"""

import argparse
import os
import shutil
import signal
import sys
import time

from dnsmove_ns import (PYTHON, Failure, HarnessError, clean_env, driver_args, driver_parser, guarded, log, preload, read_jsonl,
                        missing_python_and_lib, run_outside, tail)
from dnsmove_scene import OLD, TTL_FLOOR, Scene, dns_query_a, wait_listening
import nevercut_ends

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 8080
NODE_CLIENT = os.path.join(HERE, "clients", "nevercut_node.js")
# (client, shim): the clients, each with a name of its own.
CLIENTS = [("requests", True), ("node", True), ("requests", False), ("node", False)]
RUN_TIMEOUT = 150
# The addresses a name moves through (one backend listens on all of them); a client makes at
# most 6 phases x 3 tries moves.
ADDRS = ["127.0.0.%d" % i for i in range(10, 10 + 1 + 6 * nevercut_ends.TRIES)]


def tag(client, shim):
    return "%s-%s" % (client, "shim" if shim else "control")


def name_of(client, shim):
    return "%s.test" % tag(client, shim)


class NeverCutScene(Scene):
    def __init__(self, opts, workdir):
        super().__init__(opts, workdir)
        self.answers = {name_of(c, s): OLD for c, s in CLIENTS}
        self.clients = {}

    def write_answers(self):
        tmp = self.hosts_file + ".tmp"
        with open(tmp, "w") as f:
            for name, addr in sorted(self.answers.items()):
                f.write("%s %s\n" % (addr, name))
        os.rename(tmp, self.hosts_file)

    def wait_name(self, name, addr, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                rcode, ans = dns_query_a(name, timeout=0.3)
                if rcode == 0 and [a for a, _ in ans] == [addr]:
                    return
            except OSError:
                pass
            time.sleep(0.01)
        raise HarnessError("DNS did not answer %s -> %s within %.0fs" % (name, addr, timeout))

    def start_backends(self):
        self.spawn("backend", [PYTHON, os.path.abspath(__file__), "backend", "--addr", "0.0.0.0",
                               "--port", str(PORT)])
        wait_listening((ADDRS[0], ADDRS[-1]), PORT)

    def start_client(self, client, shim):
        t = tag(client, shim)
        env = clean_env()
        shim_log = self.path(t + ".shim.log")
        if shim:
            os.makedirs(self.path(t + ".state"), mode=0o700, exist_ok=True)
            env.update(LD_PRELOAD=preload(self.opts.lib), DNSAWARE_TTL_FLOOR=TTL_FLOOR,
                       DNSAWARE_LOG="debug", DNSAWARE_LOG_FILE=shim_log,
                       DNSAWARE_STATE_DIR=self.path(t + ".state"))
        common = ["--base", "http://%s:%d" % (name_of(client, shim), PORT),
                  "--out", self.path(t + ".jsonl"), "--dir", self.wd, "--tag", t,
                  "--shim-log", shim_log]
        if client == "node":
            argv = ["node", NODE_CLIENT] + common + ["--control", "0" if shim else "1"]
        else:
            argv = [PYTHON, os.path.abspath(__file__), "client"] + common
            if not shim:
                argv.append("--control")
        self.clients[t] = self.spawn(t, argv, env=env)

    def serve_moves(self):
        """Moves a client's name whenever it asks, until every client has exited."""
        served = {t: 0 for t in self.clients}
        end = time.monotonic() + RUN_TIMEOUT
        while any(p.poll() is None for p in self.clients.values()):
            if time.monotonic() > end:
                raise HarnessError("the clients did not finish within %ds" % RUN_TIMEOUT)
            for (client, shim) in CLIENTS:
                t = tag(client, shim)
                n = served[t] + 1
                if not os.path.exists(self.path("%s.want-move.%d" % (t, n))):
                    continue
                name = name_of(client, shim)
                self.answers[name] = ADDRS[ADDRS.index(self.answers[name]) + 1]
                self.write_answers()
                os.kill(self.dnsmasq.pid, signal.SIGHUP)
                self.wait_name(name, self.answers[name])
                with open(self.path("%s.moved.%d" % (t, n)), "w") as f:
                    f.write(self.answers[name])
                served[t] = n
            time.sleep(0.005)
        for t, p in self.clients.items():
            if p.returncode != 0:
                raise HarnessError("client %s exited with status %d:\n%s"
                                   % (t, p.returncode, tail(self.path(t + ".out"))))

    def records(self, t):
        return read_jsonl(self.path(t + ".jsonl"))


def judge(scene):
    problems = []
    for (client, shim) in CLIENTS:
        t = tag(client, shim)
        recs = scene.records(t)
        reqs = [r for r in recs if r["type"] == "req"]
        phases = [r for r in recs if r["type"] == "phase"]
        if not any(r["type"] == "done" for r in recs):
            problems.append("%s: did not finish its phases" % t)
        bad = [r for r in reqs if not r.get("ok")]
        for r in bad[:5]:
            problems.append("%s: %s %s %s (%s, %s bytes)"
                            % (t, r["phase"], r["kind"],
                               "CUT" if r.get("stage") == "body" else "failed",
                               r.get("error"), r.get("bytes")))
        specials = [r for r in reqs if r["kind"] != "small" and r.get("ok")]
        log("%s: %d requests, %d failed; %d special answers whole; phases: %s"
            % (t, len(reqs), len(bad), len(specials),
               ", ".join("%s%s" % (p["phase"], "" if p.get("covered") or not shim else " (missed)")
                         for p in phases)))
        if shim:
            for mode, kind in nevercut_ends.PHASES:
                mine = [p for p in phases if p["mode"] == mode and p["kind"] == kind]
                if not any(p.get("covered") for p in mine):
                    problems.append("%s: phase %s-%s never exercised in %d tries"
                                    % (t, mode, kind, len(mine)))
                for p in mine:
                    if p.get("covered") and p.get("check_backend") != p.get("to"):
                        problems.append("%s: %s: after the pause the request went to %s, "
                                        "not the new address %s" % (t, p["phase"],
                                                                    p.get("check_backend"),
                                                                    p.get("to")))
            story = open(scene.path(t + ".shim.log"), errors="replace").read()
            paths = {p: story.count("path %s)" % p) for p in ("idle", "send", "deadline")}
            log("%s: shutdowns by path: %s" % (t, paths))
            if paths["send"] or paths["deadline"]:
                problems.append("%s: shutdowns not by the idle path: %s" % (t, paths))
        else:
            where = sorted({r.get("backend") for r in reqs if r.get("backend")})
            if where != [OLD]:
                problems.append("%s (control, no shim): answered by %s, expected only %s"
                                % (t, where, OLD))
    if problems:
        raise Failure("\n  ".join([""] + problems))


def inside(opts):
    scene = NeverCutScene(opts, opts.workdir)

    def body():
        scene.setup_namespace()
        scene.write_answers()
        scene.start_dnsmasq()
        for name, addr in scene.answers.items():
            scene.wait_name(name, addr)
        scene.start_backends()
        for client, shim in CLIENTS:
            scene.start_client(client, shim)
        scene.serve_moves()
        judge(scene)
        log("PASS (nevercut): no answer cut, every phase exercised")
        return 0
    return guarded("nevercut", scene, body)


def prerequisites(opts):
    missing = []
    if os.geteuid() != 0:
        missing.append("must run as root (namespaces, bind mounts over /etc, port 53)")
    if not opts.dnsmasq:
        missing.append("dnsmasq not found (install dnsmasq-base)")
    if not shutil.which("node"):
        missing.append("node not found (install nodejs)")
    return missing + missing_python_and_lib(opts.lib)


def outside(opts):
    return run_outside("nevercut", __file__, "dnsaware-nevercut-", prerequisites(opts), opts.workdir,
                       opts.keep, ["--dnsmasq", opts.dnsmasq, "--lib", opts.lib])


def main():
    if len(sys.argv) > 1 and sys.argv[1] in ("backend", "client"):
        ap = argparse.ArgumentParser(prog="nevercut.py " + sys.argv[1])
        ap.add_argument("sub")
        ap.add_argument("--addr")
        ap.add_argument("--port", type=int, default=PORT)
        for a in ("--base", "--out", "--dir", "--tag", "--shim-log"):
            ap.add_argument(a)
        ap.add_argument("--control", action="store_true")
        a = ap.parse_args()
        return nevercut_ends.run_backend(a) if a.sub == "backend" else nevercut_ends.run_client(a)
    opts = driver_args(driver_parser(__doc__, dnsmasq=True))
    return inside(opts) if opts.inside else outside(opts)


if __name__ == "__main__":
    sys.exit(main())

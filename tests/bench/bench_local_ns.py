"""The namespaces of bench_local.py's scale, resolver and gai measurements (split out of
tests/bench/bench_local.py): run_in_namespaces() re-executes tests/bench/bench_local.py
`_<name>-inside` under `unshare --mount --net` and reads back its JSON result; inside,
inside_main() runs the measurement and writes that result, ns_setup() brings lo up and
bind-mounts resolv.conf, hosts and nsswitch.conf, and the measurements talk to their C helpers
(conns, sink) through LineProc and read the shim's stats file (read_stats).
"""

import json
import math
import os
import re
import subprocess
import threading

from bench_common import HERE, PYTHON, BenchError, clean_env, run

# The driver script the measurements run as under unshare (their entry point, the command line).
BENCH_LOCAL = os.path.join(HERE, "bench_local.py")


def ns_setup(wd, hosts_text, nameserver=None):
    """Inside `unshare --mount --net`: lo up, private resolv.conf, hosts and nsswitch.conf."""
    run(["mount", "--make-rprivate", "/"])
    run(["ip", "link", "set", "lo", "up"])
    try:
        with open("/proc/sys/net/core/somaxconn", "w") as f:
            f.write("65535\n")
    except OSError:
        pass
    resolv = os.path.join(wd, "resolv.conf")
    with open(resolv, "w") as f:
        f.write("nameserver %s\noptions timeout:1 attempts:2\n" % (nameserver or "127.0.0.53"))
    hosts = os.path.join(wd, "hosts")
    with open(hosts, "w") as f:
        f.write(hosts_text)
    run(["mount", "--bind", resolv, "/etc/resolv.conf"])
    run(["mount", "--bind", hosts, "/etc/hosts"])
    if os.path.exists("/etc/nsswitch.conf"):
        with open("/etc/nsswitch.conf") as f:
            lines = [l for l in f if l.split(":")[0].strip() != "hosts"]
        lines.append("hosts: files dns\n")
        nss = os.path.join(wd, "nsswitch.conf")
        with open(nss, "w") as f:
            f.writelines(lines)
        run(["mount", "--bind", nss, "/etc/nsswitch.conf"])
    return hosts


def rewrite_in_place(path, text):
    """A bind-mounted file must keep its inode: truncate and write, never rename."""
    with open(path, "r+") as f:
        f.seek(0)
        f.truncate()
        f.write(text)


class LineProc:
    """A helper process spoken to in lines (stdin/stdout), with timeouts."""

    def __init__(self, argv, env, stderr_path):
        self.err = open(stderr_path, "w")
        self.p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.err, text=True, bufsize=1)
        self.argv = argv
        self.stderr_path = stderr_path

    def readline(self, timeout):
        timer = threading.Timer(timeout, self.p.kill)
        timer.start()
        try:
            line = self.p.stdout.readline()
        finally:
            timer.cancel()
        if not line:
            self.p.wait()
            with open(self.stderr_path) as f:
                err = f.read().strip()[-1500:]
            raise BenchError("%s ended (status %s) without answering: %s"
                             % (os.path.basename(self.argv[0]), self.p.returncode, err))
        return line.strip()

    def ask(self, text, timeout):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()
        return self.readline(timeout)

    def close(self, timeout=30):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.err.close()
        return self.p.returncode


def start_sink(wd, endpoints, tag):
    s = LineProc([os.path.join(wd, "sink")] + endpoints, clean_env(),
                 os.path.join(wd, "sink.%s.err" % tag))
    if s.readline(10) != "ready":
        raise BenchError("sink did not start")
    return s


def read_stats(path):
    vals = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                m = re.match(r"^(\w+)(\{[^}]*\})?\s+(\S+)$", line.strip())
                if m:
                    labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
                    labels.pop("pid", None)
                    key = m.group(1) + ("{%s}" % ",".join("%s=%s" % kv for kv in
                                                          sorted(labels.items()))
                                        if labels else "")
                    vals[key] = float(m.group(3))
    except FileNotFoundError:
        raise BenchError("the shim wrote no stats file %s" % path)
    return vals


def ports_for(base, count, per_port=10000):
    return [base + i for i in range(max(1, math.ceil(count / per_port)))]


def run_in_namespaces(sub, opts, wd, extra=(), pid=False):
    """pid: in a PID namespace too, whose processes all die with the measurement's (its init)."""
    result = os.path.join(wd, "%s.result.json" % sub)
    argv = (["unshare", "--mount", "--net"] + (["--pid", "--fork", "--kill-child"] if pid else [])
            + ["--", PYTHON, BENCH_LOCAL, "_" + sub + "-inside", "--workdir", wd, "--lib", opts.lib,
               "--result", result] + list(extra))
    if opts.smoke:
        argv.append("--smoke")
    r = subprocess.run(argv, env=clean_env())
    if r.returncode != 0 or not os.path.exists(result):
        raise BenchError("%s (in namespaces) exited with status %d" % (sub, r.returncode))
    with open(result) as f:
        data = json.load(f)
    if "error" in data:
        raise BenchError(data["error"])
    return data


def inside_main(opts, fn):
    try:
        data = fn(opts)
    except BenchError as e:
        data = {"error": str(e)}
    with open(opts.result, "w") as f:
        json.dump(data, f, indent=1)
    return 0

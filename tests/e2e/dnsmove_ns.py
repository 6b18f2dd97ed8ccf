"""The end-to-end harness's namespace and process handling (split out of tests/e2e/dnsmove.py,
which re-exports every name here; tests/e2e/matrix.py, adapter_trial.py, tools/demo.py,
tests/bench/bench_proxy.py and tests/badinput/hostile_dns.py use them through it).

Outside the namespaces: prepare_workdir() makes the run's log directory, run_in_namespaces()
re-executes a driver script under `unshare --mount --net` (signals forwarded) and
keep_or_remove() disposes of the logs. Inside: guarded() runs a scenario's body and turns its
outcome into the exit status (EXIT_FAIL for a Failure, EXIT_HARNESS for anything else), always
cleaning the scene up. Child processes: clean_env() (no DNSAWARE_*, LD_PRELOAD or proxies),
preload() (LD_PRELOAD for the shim, after a sanitizer runtime) and _pdeathsig() (a child dies
with the driver). Python standard library only.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import tempfile

PYTHON = "/usr/bin/python3"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

EXIT_FAIL = 1
EXIT_HARNESS = 2


class Failure(Exception):
    """An assertion of the scenario failed."""


class HarnessError(Exception):
    """A prerequisite is missing or the harness could not set the scene up."""


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# child processes
# --------------------------------------------------------------------------------------------

def _pdeathsig(sig=signal.SIGKILL):
    # Children die with the driver even if it is SIGKILLed.
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig))  # PR_SET_PDEATHSIG
    except Exception:
        pass


def clean_env():
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DNSAWARE_") and k != "LD_PRELOAD"
           and k.lower() not in ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def preload(lib):
    """LD_PRELOAD for a program under the shim. In a sanitized build meson sets
    DNSAWARE_TEST_PRELOAD_PREFIX to the sanitizer runtime (with its separator), which must come
    first in LD_PRELOAD of a program that is not itself built with the sanitizer."""
    return os.environ.get("DNSAWARE_TEST_PRELOAD_PREFIX", "") + lib


def tail(path, n=30):
    try:
        with open(path, errors="replace") as f:
            lines = f.readlines()
        return "".join(lines[-n:]).rstrip()
    except OSError:
        return "(no %s)" % path


# --------------------------------------------------------------------------------------------
# inside the namespaces: a scenario's outcome
# --------------------------------------------------------------------------------------------

def guarded(label, scene, body, harness_status=EXIT_HARNESS):
    """Runs body() inside the namespaces and returns its status: EXIT_FAIL when an assertion
    fails, harness_status for anything else that goes wrong; the scene is always cleaned up."""
    def on_signal(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        return body()
    except Failure as e:
        log("FAIL (%s): %s" % (label, e))
        return EXIT_FAIL
    except HarnessError as e:
        log("ERROR (%s): harness: %s" % (label, e))
        return harness_status
    except KeyboardInterrupt as e:
        log("ERROR (%s): interrupted (%s)" % (label, e))
        return harness_status
    except Exception:
        import traceback
        traceback.print_exc()
        log("ERROR (%s): harness bug (traceback above)" % label)
        return harness_status
    finally:
        scene.cleanup()


# --------------------------------------------------------------------------------------------
# outside: the log directory, then re-exec under unshare
# --------------------------------------------------------------------------------------------

def prepare_workdir(workdir, prefix, marker=".dnsmove-workdir"):
    """The run's log directory: workdir (emptied first, only if one of these scripts made it)
    or a new temporary one. Returns its path, or None when workdir is someone else's."""
    if workdir:
        wd = os.path.abspath(workdir)
        if os.path.isdir(wd) and os.listdir(wd):
            if not os.path.exists(os.path.join(wd, marker)):
                log("--workdir %s exists and was not made by this script; refusing to empty it"
                    % wd)
                return None
            shutil.rmtree(wd)
        os.makedirs(wd, exist_ok=True)
    else:
        wd = tempfile.mkdtemp(prefix=prefix)
    os.chmod(wd, 0o755)
    open(os.path.join(wd, marker), "w").close()
    return wd


def driver_parser(doc, dnsmasq=False, **kwargs):
    """The options every end-to-end driver takes: --lib (default $DNSAWARE_LIB, then the build's),
    --workdir, --keep, the hidden --inside of its re-run in the namespaces, and --dnsmasq for the
    drivers that run one. The caller adds its own, then calls driver_args()."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0], **kwargs)
    ap.add_argument("--lib", default=os.environ.get("DNSAWARE_LIB")
                    or os.path.join(REPO, "build", "src", "libdnsaware.so"),
                    help="libdnsaware.so to preload (default: $DNSAWARE_LIB, then "
                         "<repo>/build/src/libdnsaware.so)")
    if dnsmasq:
        ap.add_argument("--dnsmasq", default=shutil.which("dnsmasq")
                        or ("/usr/sbin/dnsmasq" if os.path.exists("/usr/sbin/dnsmasq") else None))
    ap.add_argument("--workdir", help="keep logs here (emptied first; kept after the run)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary workdir on success")
    ap.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    return ap


def driver_args(ap, *paths):
    """Parses the command line; --lib and the named path options made absolute (the re-run
    inside the namespaces starts elsewhere)."""
    opts = ap.parse_args()
    for name in ("lib",) + paths:
        if getattr(opts, name):
            setattr(opts, name, os.path.abspath(getattr(opts, name)))
    return opts


def read_jsonl(path):
    """The JSON lines of a file a process may still be writing: a partial last line, or no file
    yet, is no record."""
    recs = []
    try:
        with open(path) as f:
            for line in f:
                if line.strip():
                    try:
                        recs.append(json.loads(line))
                    except ValueError:
                        pass
    except FileNotFoundError:
        pass
    return recs


def missing_python_and_lib(lib):
    """What a driver whose clients are python requests needs besides root: the module and the
    library."""
    missing = []
    if subprocess.run([PYTHON, "-c", "import requests"], env=clean_env(),
                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
        missing.append("%s cannot import requests (install python3-requests)" % PYTHON)
    if not os.path.isfile(lib):
        missing.append("library %s does not exist (build it first)" % lib)
    return missing


def run_outside(label, script, prefix, missing, workdir, keep, args):
    """A test driver's outer half: reports what is missing, makes the log directory, runs
    `script --inside --workdir WD args` in the namespaces and keeps the logs of a failing run.
    Returns the exit status."""
    if missing:
        for m in missing:
            log("FAIL (%s): prerequisite missing: %s" % (label, m))
        return EXIT_HARNESS
    keep = keep or workdir is not None
    wd = prepare_workdir(workdir, prefix)
    if wd is None:
        return EXIT_HARNESS
    rc = run_in_namespaces(script, ["--inside", "--workdir", wd] + list(args))
    if rc not in (0, EXIT_FAIL, EXIT_HARNESS):
        log("FAIL (%s): the namespaced driver exited with status %d" % (label, rc))
        rc = EXIT_HARNESS
    keep_or_remove(wd, rc == 0, keep)
    return rc


def keep_or_remove(wd, passed, keep, what="logs kept in %s"):
    """A passing run's temporary logs go; a failing or kept run's stay, and their place is said."""
    if passed and not keep:
        shutil.rmtree(wd, ignore_errors=True)
    else:
        log(what % wd)


def run_in_namespaces(script, args):
    """Runs `script args` under `unshare --mount --net` and returns its exit status; signals
    reach the namespaced driver, which also gets SIGTERM if this process dies."""
    argv = ["unshare", "--mount", "--net", "--", PYTHON, os.path.abspath(script)] + args
    env = clean_env()
    if "DNSAWARE_TEST_PRELOAD_PREFIX" in os.environ:   # for preload(), in there
        env["DNSAWARE_TEST_PRELOAD_PREFIX"] = os.environ["DNSAWARE_TEST_PRELOAD_PREFIX"]
    p = subprocess.Popen(argv, env=env, preexec_fn=lambda: _pdeathsig(signal.SIGTERM))

    def forward(signum, frame):
        try:
            p.send_signal(signum)
        except ProcessLookupError:
            pass
    for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(s, forward)
    while True:
        try:
            return p.wait()
        except InterruptedError:
            continue

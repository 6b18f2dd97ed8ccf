#!/usr/bin/python3
"""Setuid programs ignore the environment's DNSAWARE_* settings (design.md, "Safety rules").

    setuid.py HELPER [--keep]        (LD_PRELOAD: the library, as meson sets it; needs root)

glibc drops LD_PRELOAD entries with a slash for a setuid program (AT_SECURE), so the test first
checks that (a setuid copy of HELPER run with LD_PRELOAD does not load the shim), then makes the
loader load the shim the way it still does for such programs: /etc/ld.so.preload, which is
trusted (a root-owned file), in a private mount namespace (`unshare --mount`; the script
re-executes itself). A file listing the library is bind-mounted over /etc/ld.so.preload, or,
when the host has none to mount over, an overlay on /etc adds it; the host's /etc is untouched.
The library is copied to a directory every user can read.

Two copies of HELPER (tests/badinput/helper.c, mode observe: exchanges lines with a listener of
its own over 1.2 s and reports whether the shim recycled the socket, whether the shim's thread
runs, whether the shim is loaded, AT_SECURE and its ids) run as nobody:nogroup through
`setpriv --reuid=nobody --regid=nogroup --clear-groups`: one plain (the control), one setuid root
(mode 4755, so AT_SECURE is set). The settings reach only HELPER's own exec (helper.c "with"),
not setpriv's, which loads the shim too.

  settings: DNSAWARE_LOG=debug, DNSAWARE_LOG_FILE, DNSAWARE_STATS_FILE, DNSAWARE_STATS_INTERVAL,
            DNSAWARE_MAX_AGE=200ms, DNSAWARE_IDLE=20ms, DNSAWARE_REDIRECT=bogus
    control: log file with debug lines and the REDIRECT warning, stats file, socket recycled.
    setuid:  shim loaded and running with its defaults, but no log file, no stats file, no
             warning, socket not recycled.
  disable:  DNSAWARE_DISABLE=1, DNSAWARE_MAX_AGE=200ms, DNSAWARE_IDLE=20ms
    control: no thread (disabled), socket not recycled.
    setuid:  the thread runs (DISABLE ignored), socket not recycled (MAX_AGE ignored).

Exit status 0 pass, 1 fail (a check failed or the harness could not run: the message says).
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

PYTHON = "/usr/bin/python3"
RUN_TIMEOUT = 20
NOBODY = 65534


class Failure(Exception):
    pass


CHECKS = [0]


def check(cond, msg, detail=None):
    if not cond:
        raise Failure(msg + ("" if detail is None else ": %s" % (detail,)))
    CHECKS[0] += 1
    print("  ok  %s" % msg, flush=True)


def sh(*argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0:
        raise Failure("harness: %s failed (%d): %s" % (" ".join(argv), r.returncode, r.stdout.strip()))


def clean_env():
    return {k: v for k, v in os.environ.items()
            if not k.startswith("DNSAWARE_") and k not in ("LD_PRELOAD", "BADINPUT_PRELOAD")}


def observe(binary, settings, as_nobody=True, extra_env=None):
    """Runs `binary with SETTINGS -- observe` (as nobody); returns (status, fields, stderr)."""
    argv = [binary, "with"] + ["%s=%s" % kv for kv in settings] + ["--", "observe"]
    if as_nobody:
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"] + argv
    env = clean_env()
    env.update(extra_env or {})
    r = subprocess.run(argv, env=env, cwd="/", stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=RUN_TIMEOUT)
    fields = {}
    for line in r.stdout.splitlines():
        key, _, value = line.partition(": ")
        fields[key] = value
    return r.returncode, fields, r.stderr


def outdir(wd, name):
    d = os.path.join(wd, name)
    os.mkdir(d)
    os.chmod(d, 0o777)        # nobody may create the files: only the setting decides
    return d


def settings_for(d):
    return [("DNSAWARE_LOG", "debug"), ("DNSAWARE_LOG_FILE", os.path.join(d, "shim.log")),
            ("DNSAWARE_STATS_FILE", os.path.join(d, "stats.prom")),
            ("DNSAWARE_STATS_INTERVAL", "100ms"), ("DNSAWARE_MAX_AGE", "200ms"),
            ("DNSAWARE_IDLE", "20ms"), ("DNSAWARE_REDIRECT", "bogus")]


def inside(wd):
    plain = os.path.join(wd, "bin", "helper-plain")
    setuid = os.path.join(wd, "bin", "helper-setuid")
    with open(os.path.join(wd, "preload-list")) as f:
        preload = f.read().split()

    print("-- LD_PRELOAD and a setuid program (before /etc/ld.so.preload)", flush=True)
    status, fields, err = observe(setuid, [], extra_env={"LD_PRELOAD": " ".join(preload)})
    check(status == 3 and fields.get("at_secure") == "1" and fields.get("preloaded") == "no",
          "setuid copy run by nobody: AT_SECURE=1 and glibc ignored LD_PRELOAD=%s" % preload[-1],
          (status, fields, err))

    print("-- /etc/ld.so.preload in a private mount namespace", flush=True)
    sh("mount", "--make-rprivate", "/")
    listing = os.path.join(wd, "etc-upper", "ld.so.preload")
    if os.path.exists("/etc/ld.so.preload"):
        sh("mount", "--bind", listing, "/etc/ld.so.preload")
        how = "bind-mounted over the host's /etc/ld.so.preload"
    else:
        sh("mount", "-t", "overlay", "overlay", "-o",
           "lowerdir=/etc,upperdir=%s,workdir=%s" % (os.path.join(wd, "etc-upper"),
                                                     os.path.join(wd, "etc-work")), "/etc")
        how = "added by an overlay on /etc (the host has no /etc/ld.so.preload)"
    with open("/etc/ld.so.preload") as f:
        check(f.read().split() == preload, "/etc/ld.so.preload lists the library (%s)" % how)

    print("-- settings: log, stats, max age, a bad value", flush=True)
    runs = {}
    for label, binary in (("control", plain), ("setuid", setuid)):
        d = outdir(wd, "settings-" + label)
        runs[label] = (d,) + observe(binary, settings_for(d))
    d, status, f, err = runs["control"]
    check(status == 3 and f.get("reply") == "echo: hello" and f.get("at_secure") == "0"
          and f.get("ids") == "ruid=%d euid=%d" % (NOBODY, NOBODY) and f.get("preloaded") == "yes",
          "control: plain copy as nobody, AT_SECURE=0, shim loaded, program ran", (status, f, err))
    check(f.get("socket recycled") == "yes" and f.get("dnsaware thread") == "yes",
          "control: DNSAWARE_MAX_AGE=200ms honoured (the socket was recycled)", f)
    log = os.path.join(d, "shim.log")
    text = open(log).read() if os.path.exists(log) else ""
    check(" debug " in text and "warn DNSAWARE_REDIRECT=bogus is not a switch" in text,
          "control: DNSAWARE_LOG_FILE and DNSAWARE_LOG=debug honoured (debug lines and the "
          "REDIRECT warning in the file)", text[-500:])
    check(os.path.exists(os.path.join(d, "stats.prom")),
          "control: DNSAWARE_STATS_FILE honoured (the file was written)", os.listdir(d))

    d, status, f, err = runs["setuid"]
    check(status == 3 and f.get("reply") == "echo: hello" and f.get("at_secure") == "1"
          and f.get("ids") == "ruid=%d euid=0" % NOBODY and f.get("preloaded") == "yes",
          "setuid: run by nobody with euid 0, AT_SECURE=1, shim loaded, program ran",
          (status, f, err))
    check(f.get("dnsaware thread") == "yes",
          "setuid: the shim runs (its thread started at the tracked connect)", f)
    check(f.get("socket recycled") == "no", "setuid: DNSAWARE_MAX_AGE=200ms ignored", f)
    check(os.listdir(d) == [], "setuid: DNSAWARE_LOG_FILE and DNSAWARE_STATS_FILE ignored "
          "(nothing created, though root could have)", os.listdir(d))
    check("dnsaware[" not in err, "setuid: not a line from the shim (DNSAWARE_LOG=debug and "
          "DNSAWARE_REDIRECT=bogus ignored)", err)

    print("-- DNSAWARE_DISABLE=1", flush=True)
    settings = [("DNSAWARE_DISABLE", "1"), ("DNSAWARE_MAX_AGE", "200ms"), ("DNSAWARE_IDLE", "20ms")]
    status, f, err = observe(plain, settings)
    check(status == 3 and f.get("preloaded") == "yes" and f.get("dnsaware thread") == "no"
          and f.get("socket recycled") == "no",
          "control: DNSAWARE_DISABLE=1 honoured (loaded, no thread, nothing recycled)", (status, f, err))
    status, f, err = observe(setuid, settings)
    check(status == 3 and f.get("at_secure") == "1" and f.get("dnsaware thread") == "yes"
          and f.get("socket recycled") == "no",
          "setuid: DNSAWARE_DISABLE=1 ignored (the thread runs) and so is DNSAWARE_MAX_AGE",
          (status, f, err))
    return 0


def prepare(wd, helper, preload):
    """The helper's two copies and the library, where nobody can read them."""
    os.chmod(wd, 0o755)
    for sub in ("bin", "lib", "etc-upper", "etc-work"):
        os.mkdir(os.path.join(wd, sub))
        os.chmod(os.path.join(wd, sub), 0o755)
    plain = os.path.join(wd, "bin", "helper-plain")
    setuid = os.path.join(wd, "bin", "helper-setuid")
    shutil.copyfile(helper, plain)
    shutil.copyfile(helper, setuid)
    os.chown(setuid, 0, 0)
    os.chmod(plain, 0o755)
    os.chmod(setuid, 0o4755)
    if not os.stat(setuid).st_mode & stat.S_ISUID:
        raise Failure("harness: could not make %s setuid" % setuid)
    entries = preload.replace(":", " ").split()
    listed = []
    for entry in entries:
        if "libdnsaware" in os.path.basename(entry):
            copy = os.path.join(wd, "lib", os.path.basename(entry))
            shutil.copyfile(entry, copy)
            os.chmod(copy, 0o755)
            listed.append(copy)
        else:
            listed.append(entry)       # a sanitizer runtime, from the system's directories
    with open(os.path.join(wd, "preload-list"), "w") as f:
        f.write("\n".join(listed) + "\n")
    with open(os.path.join(wd, "etc-upper", "ld.so.preload"), "w") as f:
        f.write("\n".join(listed) + "\n")
    os.chmod(os.path.join(wd, "etc-upper", "ld.so.preload"), 0o644)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep = "--keep" in sys.argv
    if "--inside" in sys.argv:
        wd = sys.argv[sys.argv.index("--inside") + 1]
        try:
            return inside(wd)
        except Failure as e:
            print("FAIL: %s" % e, flush=True)
            return 1
    if len(args) != 1:
        print("usage: setuid.py HELPER [--keep]")
        return 1
    preload = os.environ.get("LD_PRELOAD", "")
    missing = [p for p in ("unshare", "setpriv", "mount") if not shutil.which(p)]
    if os.geteuid() != 0:
        missing.append("root (setuid copy, mount namespace)")
    if "libdnsaware" not in preload:
        missing.append("LD_PRELOAD naming libdnsaware.so")
    if missing:
        print("FAIL: prerequisite missing: %s" % ", ".join(missing), flush=True)
        return 1
    t0 = time.monotonic()
    wd = tempfile.mkdtemp(prefix="badinput-setuid-")
    try:
        prepare(wd, os.path.abspath(args[0]), preload)
    except Failure as e:
        print("FAIL: %s" % e, flush=True)
        return 1
    r = subprocess.run(["unshare", "--mount", "--", PYTHON, os.path.abspath(__file__),
                        "--inside", wd], env=clean_env(), timeout=120)
    rc = r.returncode if r.returncode in (0, 1) else 1
    if rc == 0:
        print("PASS: setuid copy ignores every DNSAWARE_ setting; the plain copy honours them "
              "(%.1fs)" % (time.monotonic() - t0), flush=True)
    if rc == 0 and not keep:
        shutil.rmtree(wd, ignore_errors=True)
    else:
        print("files kept in %s" % wd, flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())

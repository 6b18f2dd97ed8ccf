#!/usr/bin/python3
"""The shim's set-up costs the program's first tracked connect next to nothing.

    first_connect.py HELPER        (LD_PRELOAD: the library, as meson sets it)

The first tracked connect of a process starts the shim's thread. The library's own fds live high
up (near RLIMIT_NOFILE), and the first of them grows the kernel's fd table, which in a process
with more than one thread waits out an RCU grace period: 12 to 15 ms measured here when that
happened inside the program's connect. HELPER (tests/badinput/helper.c, mode timeconnect: two
threads, resolves localhost, times its connect) runs RUNS times with and without the shim; the
median connect under the shim must stay below LIMIT_US.

Exit status 0 pass, 1 fail.
"""

import os
import statistics
import subprocess
import sys

RUNS = 9
LIMIT_US = 3000


def connect_us(helper, env):
    r = subprocess.run([helper, "timeconnect"], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=20)
    for line in r.stdout.splitlines():
        if line.startswith("connect_us: ") and r.returncode == 3:
            return int(line.split()[1])
    raise RuntimeError("helper failed (%d): %s %s" % (r.returncode, r.stdout, r.stderr))


def main():
    helper = sys.argv[1]
    preload = os.environ.get("LD_PRELOAD", "")
    if "libdnsaware" not in preload:
        print("FAIL: LD_PRELOAD does not name libdnsaware.so")
        return 1
    plain = {k: v for k, v in os.environ.items() if not k.startswith("DNSAWARE_") and k != "LD_PRELOAD"}
    shim = dict(plain, LD_PRELOAD=preload)
    without = [connect_us(helper, plain) for _ in range(RUNS)]
    under = [connect_us(helper, shim) for _ in range(RUNS)]
    print("first connect without the shim: median %d us (%s)" % (statistics.median(without), without))
    print("first connect under the shim:   median %d us (%s)" % (statistics.median(under), under))
    if statistics.median(under) >= LIMIT_US:
        print("FAIL: the first tracked connect takes %d us under the shim (limit %d us)"
              % (statistics.median(under), LIMIT_US))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())

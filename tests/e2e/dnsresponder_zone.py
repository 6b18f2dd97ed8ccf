"""The zone of tests/e2e/dnsresponder.py (split out of it; dnsresponder.py re-exports every name
here): the modes, the zone JSON's parse and checks (parse_zone), the zone file re-read when it
changes (ZoneFile), and write_zone() for test drivers. The format is in dnsresponder.py's
docstring. Python standard library only.
"""

import ipaddress
import json
import os
import sys
import tempfile
import threading

from dnsresponder_wire import encode_name

GARBAGE_MODES = ("garbage", "truncated", "wrongid", "badcounts", "ptrloop")
MODES = ("answer", "servfail", "nxdomain", "empty", "refused", "silent") + GARBAGE_MODES
MODE_RCODE = {"answer": 0, "empty": 0, "servfail": 2, "nxdomain": 3, "refused": 5, "silent": None}
DEFAULT_TTL = 1


class ZoneError(Exception):
    """The zone file is unusable (message says why)."""


def norm_name(name):
    """Lower case, no trailing dot: the form used as zone key and in the log."""
    return name.lower().rstrip(".") if name not in (".", "") else ""


class Entry:
    """One name of a loaded zone (immutable once built)."""
    __slots__ = ("addrs4", "addrs6", "ttl", "mode", "rotate", "delay", "cname")

    def __init__(self, addrs4, addrs6, ttl, mode, rotate, delay, cname):
        self.addrs4 = addrs4      # tuple of (text, packed bytes, ttl)
        self.addrs6 = addrs6
        self.ttl = ttl
        self.mode = mode
        self.rotate = rotate      # None or int >= 1
        self.delay = delay        # float seconds
        self.cname = cname        # None or normalized target name


class Zone:
    def __init__(self, names, default):
        self.names = names        # normalized name -> Entry
        self.default = default


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _ttl(v, where):
    if not _is_int(v) or not 0 <= v <= 0x7FFFFFFF:
        raise ZoneError("%s: ttl must be an integer 0..2147483647, not %r" % (where, v))
    return v


def _encodable(name, where):
    try:
        encode_name(name)
    except ValueError as e:
        raise ZoneError("%s: %s" % (where, e))


def parse_zone(text):
    """Parse and validate zone JSON text; returns a Zone or raises ZoneError."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise ZoneError("not valid JSON: %s" % e)
    if not isinstance(doc, dict):
        raise ZoneError("top level must be an object")
    extra = set(doc) - {"names", "default"}
    if extra:
        raise ZoneError("unknown top-level keys %s" % sorted(extra))
    default = doc.get("default", "nxdomain")
    if default not in MODES or default == "answer" or default in GARBAGE_MODES:
        raise ZoneError("default must be one of %s, not %r"
                        % ([m for m in MODES if m != "answer" and m not in GARBAGE_MODES],
                           default))
    names = doc.get("names")
    if not isinstance(names, dict):
        raise ZoneError('"names" must be an object')
    out = {}
    for raw_name, spec in names.items():
        where = "name %r" % raw_name
        name = norm_name(raw_name)
        _encodable(name, where)
        if name in out:
            raise ZoneError("%s: listed twice (names are case-insensitive)" % where)
        if not isinstance(spec, dict):
            raise ZoneError("%s: must be an object" % where)
        extra = set(spec) - {"addrs", "ttl", "mode", "rotate", "delay", "cname"}
        if extra:
            raise ZoneError("%s: unknown keys %s" % (where, sorted(extra)))
        ttl = _ttl(spec.get("ttl", DEFAULT_TTL), where)
        mode = spec.get("mode", "answer")
        if mode not in MODES:
            raise ZoneError("%s: mode must be one of %s, not %r" % (where, list(MODES), mode))
        rotate = spec.get("rotate")
        if rotate is not None and (not _is_int(rotate) or rotate < 1):
            raise ZoneError("%s: rotate must be an integer >= 1, not %r" % (where, rotate))
        delay = spec.get("delay", 0.0)
        if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not 0 <= delay < 3600:
            raise ZoneError("%s: delay must be a number of seconds >= 0, not %r" % (where, delay))
        cname = spec.get("cname")
        if cname is not None:
            if not isinstance(cname, str) or not norm_name(cname):
                raise ZoneError("%s: cname must be a non-empty name, not %r" % (where, cname))
            cname = norm_name(cname)
            _encodable(cname, where + " cname")
        addrs = spec.get("addrs", [])
        if not isinstance(addrs, list):
            raise ZoneError("%s: addrs must be a list" % where)
        a4, a6 = [], []
        for a in addrs:
            a_ttl = ttl
            if isinstance(a, dict):
                if set(a) - {"addr", "ttl"} or "addr" not in a:
                    raise ZoneError('%s: an address object has exactly "addr" and optionally '
                                    '"ttl", not %r' % (where, a))
                if "ttl" in a:
                    a_ttl = _ttl(a["ttl"], "%s address %r" % (where, a.get("addr")))
                a = a["addr"]
            try:
                ip = ipaddress.ip_address(a)
            except ValueError:
                raise ZoneError("%s: %r is not an IP address" % (where, a))
            (a4 if ip.version == 4 else a6).append((str(ip), ip.packed, a_ttl))
        out[name] = Entry(tuple(a4), tuple(a6), ttl, mode, rotate, float(delay), cname)
    return Zone(out, default)


class ZoneFile:
    """The zone, re-read when the file changes.

    os.stat on every query is cheap and makes a rewrite visible to the very next query, which is
    what a test driver wants (no SIGHUP, no polling interval to wait out). The driver replaces the
    file with rename, so the inode changes even when size and mtime do not."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        self.key = None
        self.zone = None
        self._load(startup=True)

    @staticmethod
    def _key(st):
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def _load(self, startup=False):
        # Key and content come from the same open file (fstat), so a rename racing with the read
        # can at worst cause one extra reload, never a stale zone under a new key.
        try:
            with open(self.path, "rb") as f:
                key = self._key(os.fstat(f.fileno()))
                text = f.read().decode("utf-8")
            zone = parse_zone(text)
        except (OSError, UnicodeDecodeError, ZoneError) as e:
            if startup:
                raise ZoneError("%s: %s" % (self.path, e))
            # Remember the bad version so the complaint is printed once, not once per query.
            try:
                self.key = self._key(os.stat(self.path))
            except OSError:
                self.key = ("unreadable",)
            print("dnsresponder: zone %s unusable, keeping the previous zone: %s"
                  % (self.path, e), file=sys.stderr, flush=True)
            return
        self.key = key
        self.zone = zone

    def get(self):
        try:
            key = self._key(os.stat(self.path))
        except OSError:
            key = ("unreadable",)
        if key != self.key:
            with self.lock:
                if key != self.key:
                    self._load()
        return self.zone


def write_zone(path, names, default="nxdomain"):
    """Write a zone file atomically: a temporary file in the same directory, then rename, so the
    server never reads a half-written file and always sees a new inode."""
    d = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".zone-", suffix=".tmp", dir=d)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"names": names, "default": default}, f, indent=1, sort_keys=True)
            f.write("\n")
        os.chmod(tmp, 0o644)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise

#!/usr/bin/python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (docs/testing.md, "Fuzzing").

The seeds are small and meaningful: every variable's valid values and its edges, and answers that
exercise odd TTLs, duplicates, mixed families and thousands of addresses, in the input formats
described at the top of each fuzz_<target>.c. Rerun after changing a format; the files are
rewritten, and files this script no longer writes are removed. tools/fuzz never grows these
directories unless asked (--merge).
"""
import pathlib
import struct
import sys

HERE = pathlib.Path(__file__).resolve().parent

# ---- fuzz_config: the variables in src/env_names.h order, selected by 'a' + index ----
VARIABLES = [
    "TTL_FLOOR", "TTL_CEILING", "MAX_AGE", "IDLE", "DRAIN_TIMEOUT", "STALE_AFTER", "REDIRECT",
    "COOLDOWN", "HOSTS", "EXCLUDE", "LOG", "LOG_FILE", "STATS_FILE", "STATS_INTERVAL",
    "NAMESERVERS", "DISABLE", "LEARN_DNS",
]
HOST_QUERY = chr(ord("a") + len(VARIABLES))

DURATIONS = ["250ms", "2s", "5m", "1h", "3", "0", "1ms", "0ms", "720h", "721h", "2592000",
             "2592001", "43200m", "99999999999999999999999", "0000000000000000000000001s", "abc",
             "", " 5s", "-1", "0.5", "1d", "5S"]
VALUES = {
    "TTL_FLOOR": DURATIONS,
    "TTL_CEILING": ["300s", "1ms", "2592000000ms", "10m"],
    "MAX_AGE": ["0", "30m", "100ms"],
    "IDLE": ["100ms", "0", "1ms"],
    "DRAIN_TIMEOUT": ["5m", "0"],
    "STALE_AFTER": ["1", "2", "100", "101", "0", "007", "", "2x", "99999999999"],
    "REDIRECT": ["0", "1", "yes", "", "01"],
    "COOLDOWN": ["30s", "0"],
    "HOSTS": ["*.example.com", " api.example.com ,\t*.svc.cluster.local", ",,, ,", "[a-", "*" * 40,
              "x" * 1100],
    "EXCLUDE": ["metadata.google.internal,169.254.*", "*"],
    "LOG": ["off", "error", "warn", "info", "debug", "WARN", "verbose", ""],
    "LOG_FILE": ["/tmp/dnsaware.log", "", "/" + "d" * 1100],
    "STATS_FILE": ["/var/lib/node_exporter/dnsaware-%p.prom", "%%p%", "%", "%p" * 400,
                   "/tmp/s" + "x" * 1030],
    "STATS_INTERVAL": ["10s", "100ms", "99ms"],
    "NAMESERVERS": ["10.0.0.1", "10.0.0.1:5353,[2001:db8::1]:53", "[::1]", "bad:host:x",
                    "1.2.3.4:99999", ",", "[0::00:00:00/2]"],
    "DISABLE": ["0", "1", "2"],
    "LEARN_DNS": ["0", "1", "on"],
}
HOSTS = ["api.example.com", "API.Example.COM.", "", ".", "metadata.google.internal",
         "a" * 300 + ".", "x.svc.cluster.local"]


def config_seeds():
    seeds = {}
    for index, name in enumerate(VARIABLES):
        selector = chr(ord("a") + index)
        for number, value in enumerate(VALUES[name]):
            data = selector + value
            if name in ("HOSTS", "EXCLUDE"):
                data += "\0" + "\0".join(HOSTS)
            seeds[f"{name.lower()}-{number:02d}"] = data.encode("latin-1")
        seeds[f"{name.lower()}-nonprintable"] = (selector + "5s\x1b[31m\x7f\xff").encode("latin-1")

    def environment(entries, hosts=()):
        pieces = ["E"]
        for name, value in entries:
            selector = chr(ord("a") + VARIABLES.index(name)) if name in VARIABLES else name
            pieces.append(selector + value)
        pieces += [HOST_QUERY + host for host in hosts]
        return "\0".join(pieces).encode("latin-1")

    seeds["env-all-valid"] = environment(
        [("TTL_FLOOR", "1s"), ("TTL_CEILING", "10m"), ("MAX_AGE", "30m"), ("IDLE", "50ms"),
         ("DRAIN_TIMEOUT", "0"), ("STALE_AFTER", "3"), ("REDIRECT", "0"), ("COOLDOWN", "5s"),
         ("HOSTS", "*.example.com"), ("EXCLUDE", "db.example.com"), ("LOG", "debug"),
         ("LOG_FILE", "/tmp/d.log"), ("STATS_FILE", "/tmp/s-%p.prom"), ("STATS_INTERVAL", "1s"),
         ("NAMESERVERS", "127.0.0.1:5353"), ("DISABLE", "0")],
        ["api.example.com", "db.example.com", "other.org"])
    seeds["env-all-invalid"] = environment(
        [(name, "\x01" + "z" * 70) for name in VARIABLES])
    seeds["env-floor-above-ceiling"] = environment([("TTL_FLOOR", "10m"), ("TTL_CEILING", "1m")])
    seeds["env-floor-above-ceiling-long"] = environment(
        [("TTL_FLOOR", "0" * 80 + "720h"), ("TTL_CEILING", "0" * 80 + "1ms")])
    seeds["env-floor-above-default-ceiling"] = environment([("TTL_FLOOR", "301s")])
    seeds["env-first-wins"] = environment([("IDLE", "5s"), ("IDLE", "bad"), ("#", "ignored")])
    return seeds


# ---- fuzz_duration: the text itself ----
def duration_seeds():
    texts = DURATIONS + ["720h", "43201m", "2592000s", "2592000001ms", "18446744073709551616",
                         "18446744073709551615ms", "5ms\0junk", "ms", "h", "1hh", "1 h", "+1s",
                         "1e3", "0x10"]
    return {f"duration-{number:02d}": text.encode("latin-1") for number, text in enumerate(texts)}


# ---- fuzz_answer: the byte format of fuzz_answer.c ----
LEARN, FAIL, ANSWER = 0, 1, 2
INT_MIN, INT_MAX = -2**31, 2**31 - 1


def ttl(value):
    """The TTL encoding of read_ttl."""
    special = {0: 0, -1: 1, INT_MIN: 2, INT_MAX: 3, 300: 5, 86400: 7}
    if value in special:
        return bytes([special[value]])
    if 0 <= value < 32:
        return bytes([4 + 8 * value])
    return bytes([6]) + struct.pack(">i", value)


def pool4(index):
    return bytes([0, index])               # kind 0: 192.0.2.<index + 1>


def pool6(index):
    return bytes([3, index])               # kind 3: 2001:db8::<index + 1>


def mapped(index):
    return bytes([5, index])               # kind 5: ::ffff:192.0.2.<index + 1>


def raw4(address):
    return bytes([2, 0]) + bytes(address)  # kind 2: any IPv4


def raw6(address):
    return bytes([4, 0]) + bytes(address)  # kind 4: any IPv6


UNIX = bytes([7, 0])
SHORT = bytes([8, 0, 192, 0, 2, 9, 7])     # AF_INET in 7 bytes
NO_SOCKADDR = bytes([9, 0])


def learn(*addresses):
    return bytes([LEARN, len(addresses)]) + b"".join(addresses)


def answer(nodes, cnames=(), operation=ANSWER):
    """nodes: (address, ttl) pairs."""
    data = bytes([operation, len(cnames)]) + b"".join(ttl(t) for t in cnames)
    data += struct.pack(">H", len(nodes))
    return data + b"".join(address + ttl(t) for address, t in nodes)


def failure():
    return answer([], operation=FAIL)


def generated(count, pattern, base, first_ttl, ttl_step=0, cnames=()):
    data = bytes([ANSWER, len(cnames)]) + b"".join(ttl(t) for t in cnames)
    shape = 0x8000 | count if count < 256 else 0xC000 | count
    data += struct.pack(">H", shape) + bytes([pattern]) + bytes(base).ljust(16, b"\0")
    return data + ttl(first_ttl) + struct.pack(">b", ttl_step)


def header(floor=2, ceiling=2, stale_after=2):
    """floor/ceiling index into floors_ms/ceilings_ms (default 5 s / 300 s)."""
    return bytes([floor | ceiling << 4, (stale_after - 1) % 4])


def answer_seeds():
    a, b, c = pool4(1), pool4(2), pool4(3)
    return {
        "answer-moves": header() + learn(a, b) + answer([(a, 300), (b, 300)])
        + answer([(a, 60), (c, 60)]) + answer([(a, 60), (c, 60)]),
        "answer-rotating": header() + learn(a, b, c) + answer([(a, 30)]) + answer([(b, 30)])
        + answer([(c, 30)]) + answer([(a, 30)]) + answer([(b, 30)]),
        "answer-odd-ttls": header(0, 4) + answer([(a, INT_MIN), (b, INT_MAX), (c, -1)], [INT_MAX, 0])
        + answer([(a, INT_MAX)], [INT_MIN]) + answer([(a, 7)], [3, 2**31 - 2]),
        "answer-ttl-max-no-cname": header(0, 4) + answer([(a, INT_MAX)]),
        "answer-ttl-floor-ceiling": header(4, 0) + answer([(a, 1)]) + answer([(a, 86400)]),
        "answer-duplicates": header(stale_after=1) + learn(a, a, mapped(1))
        + answer([(a, 5)] * 10 + [(mapped(1), 5), (pool6(1), 5), (pool6(1), 5)]),
        "answer-mixed-families": header() + answer(
            [(a, 60), (pool6(2), 60), (mapped(3), 60), (UNIX, 60), (SHORT, 60), (NO_SOCKADDR, 60),
             (raw6([0x20, 1, 0xd, 0xb8] + [0] * 11 + [9]), 60), (raw4([10, 0, 0, 1]), 60)]),
        "answer-failures-keep": header(stale_after=1) + learn(a, b) + failure() + failure()
        + answer([(UNIX, 5), (NO_SOCKADDR, 5)]) + answer([]) + answer([(a, 5), (b, 5)]),
        "answer-thousands-v4": header() + generated(4096, 0, [10, 0, 0, 0], 300),
        "answer-thousands-mixed": header() + generated(3000, 4, [10, 1, 0, 0], 60, -1, [120])
        + generated(2900, 4, [10, 1, 0, 0], 60, 1),
        "answer-thousands-twins": header(stale_after=1) + generated(3000, 7, [10, 2, 0, 0], INT_MAX, 1)
        + generated(2, 7, [10, 2, 0, 0], 5),
        "answer-full-set": header(stale_after=1) + learn(*[raw4([10, 9, 0, i]) for i in range(70)])
        + answer([(raw4([10, 9, 1, i]), 5) for i in range(70)]),
        "answer-stale-100": bytes([0x20, 250]) + learn(a) + answer([(b, 5)]) * 3,
    }


# ---- fuzz_dnsmsg: a header byte (even: datagram, odd: stream), then operations (see the file) ----
def dns_query(qid=0x1234, qtype_choice=1, name_choice=0, stream_pieces=b""):
    return bytes([0, qid >> 8, qid & 0xff, qtype_choice, name_choice]) + stream_pieces


def dns_answer(records=1, last_byte=7, extra=b"", stream_pieces=b""):
    return bytes([2, 1, records, last_byte]) + extra + bytes([1]) + stream_pieces


READ = bytes([4])
WHOLE = bytes([1, 0, 0])          # framed, one piece of everything
PIECES = bytes([1]) + bytes([2, 1]) * 40  # framed, 3-byte pieces
# Queries are always framed: no framing byte.
QUERY_WHOLE, QUERY_PIECES = WHOLE[1:], PIECES[1:]


def dnsmsg_seeds():
    cname_records = bytes([0, 3, 0, 0, 0]) + bytes([0, 0, 0, 9, 9, 9])  # a CNAME, then an A
    return {
        "datagram-a": bytes([0]) + dns_query() + dns_answer() + READ,
        "datagram-aaaa": bytes([0]) + dns_query(qtype_choice=0) + dns_answer() + READ,
        "datagram-other-type": bytes([0]) + dns_query(qtype_choice=3) + dns_answer() + READ,
        "datagram-cname": bytes([0]) + dns_query() + dns_answer(records=3, extra=cname_records) + READ,
        "datagram-unasked": bytes([0]) + bytes([2, 0, 0x55, 0x55, 1, 0, 1, 7, 1]) + READ,
        "stream-whole": bytes([1]) + dns_query(stream_pieces=QUERY_WHOLE) + dns_answer(stream_pieces=WHOLE) + READ,
        "stream-pieces": bytes([1]) + dns_query(stream_pieces=QUERY_PIECES) + dns_answer(stream_pieces=PIECES) + READ,
        "stream-discarded": bytes([1]) + dns_query(stream_pieces=QUERY_WHOLE) + bytes([3, 5])
        + dns_answer(stream_pieces=WHOLE) + READ,
        "raw-bytes": bytes([0, 1, 0, 40]) + bytes(range(0x80, 0xa8)) + READ,
    }


def write(target, seeds):
    directory = HERE / "corpus" / target
    directory.mkdir(parents=True, exist_ok=True)
    for stale in set(p.name for p in directory.iterdir()) - set(seeds):
        (directory / stale).unlink()
    for name, data in seeds.items():
        (directory / name).write_bytes(data)
    return len(seeds), sum(len(d) for d in seeds.values())


def main():
    total_files = total_bytes = 0
    for target, seeds in (("config", config_seeds()), ("duration", duration_seeds()),
                          ("answer", answer_seeds()), ("dnsmsg", dnsmsg_seeds())):
        files, size = write(target, seeds)
        print(f"{target}: {files} seeds, {size} bytes")
        total_files += files
        total_bytes += size
    print(f"total: {total_files} files, {total_bytes} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

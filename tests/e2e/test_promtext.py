#!/usr/bin/python3
"""Self-test of promtext.py (the strict exposition-format parser and the dnsaware contract).

    /usr/bin/python3 tests/e2e/test_promtext.py

Feeds valid documents, one invalid document per rule (each must be rejected naming the right
line), a hand-written dnsaware stats file and breakages of it, and runs the command line.
Exit status: 0 pass, 1 fail.
"""

import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import promtext  # noqa: E402

# Written by hand from the contract (design.md, "Metrics contract").
DNSAWARE = """\
# HELP dnsaware_tracked_sockets TCP connections to resolved addresses currently tracked.
# TYPE dnsaware_tracked_sockets gauge
dnsaware_tracked_sockets 12
# HELP dnsaware_watched_names Names being re-resolved in the background.
# TYPE dnsaware_watched_names gauge
dnsaware_watched_names 3
# HELP dnsaware_resolutions_total Background resolutions, by result.
# TYPE dnsaware_resolutions_total counter
dnsaware_resolutions_total{result="ok"} 340
dnsaware_resolutions_total{result="error"} 2
# HELP dnsaware_addresses_removed_total Addresses removed from a name's record set.
# TYPE dnsaware_addresses_removed_total counter
dnsaware_addresses_removed_total 1
# HELP dnsaware_sockets_shutdown_total Tracked connections shut down, by reason and path.
# TYPE dnsaware_sockets_shutdown_total counter
dnsaware_sockets_shutdown_total{reason="dns",path="idle"} 4
dnsaware_sockets_shutdown_total{reason="dns",path="send"} 0
dnsaware_sockets_shutdown_total{reason="dns",path="deadline"} 1
dnsaware_sockets_shutdown_total{reason="max_age",path="idle"} 7
dnsaware_sockets_shutdown_total{reason="max_age",path="send"} 0
dnsaware_sockets_shutdown_total{reason="max_age",path="deadline"} 0
dnsaware_sockets_shutdown_total{reason="balance",path="idle"} 0
dnsaware_sockets_shutdown_total{reason="balance",path="send"} 0
dnsaware_sockets_shutdown_total{reason="balance",path="deadline"} 0
# HELP dnsaware_connects_redirected_total Connects to a stale address steered to a current one.
# TYPE dnsaware_connects_redirected_total counter
dnsaware_connects_redirected_total 2
# HELP dnsaware_connect_failovers_total Failed connects retried on another address of the name.
# TYPE dnsaware_connect_failovers_total counter
dnsaware_connect_failovers_total 1
# HELP dnsaware_names_learned_total Answers that fed a name's record, by source.
# TYPE dnsaware_names_learned_total counter
dnsaware_names_learned_total{source="getaddrinfo"} 12
dnsaware_names_learned_total{source="gethostbyname"} 0
dnsaware_names_learned_total{source="dns"} 3
# HELP dnsaware_thread_wakeups_total Times the background thread woke up.
# TYPE dnsaware_thread_wakeups_total counter
dnsaware_thread_wakeups_total 120
# HELP dnsaware_thread_socket_visits_total Tracked connections the background thread looked at.
# TYPE dnsaware_thread_socket_visits_total counter
dnsaware_thread_socket_visits_total 30
# HELP dnsaware_stale_answers_total Lookups answered with the last good answer while the resolver failed.
# TYPE dnsaware_stale_answers_total counter
dnsaware_stale_answers_total 5
# HELP dnsaware_cache_lookups_total Lookups of known names under DNSAWARE_CACHE, by result.
# TYPE dnsaware_cache_lookups_total counter
dnsaware_cache_lookups_total{result="hit"} 40
dnsaware_cache_lookups_total{result="miss"} 2
# HELP dnsaware_name_sockets Tracked connections per current address of a name.
# TYPE dnsaware_name_sockets gauge
dnsaware_name_sockets{name="api.test",address="127.0.0.10"} 2
dnsaware_name_sockets{name="api.test",address="127.0.0.11"} 0
# HELP dnsaware_connects_total Connects to a name's addresses, by result.
# TYPE dnsaware_connects_total counter
dnsaware_connects_total{name="api.test",result="ok"} 40
dnsaware_connects_total{name="api.test",result="refused"} 10
dnsaware_connects_total{name="api.test",result="timeout"} 5
dnsaware_connects_total{name="api.test",result="unreachable"} 0
dnsaware_connects_total{name="api.test",result="error"} 0
dnsaware_connects_total{name="_other",result="ok"} 3
dnsaware_connects_total{name="_other",result="refused"} 0
dnsaware_connects_total{name="_other",result="timeout"} 0
dnsaware_connects_total{name="_other",result="unreachable"} 1
dnsaware_connects_total{name="_other",result="error"} 1
# HELP dnsaware_connect_duration_seconds Time from the connect call to the established connection, by name.
# TYPE dnsaware_connect_duration_seconds histogram
dnsaware_connect_duration_seconds_bucket{name="api.test",le="0.0005"} 31
dnsaware_connect_duration_seconds_bucket{name="api.test",le="0.001"} 35
dnsaware_connect_duration_seconds_bucket{name="api.test",le="0.0025"} 38
dnsaware_connect_duration_seconds_bucket{name="api.test",le="0.005"} 39
dnsaware_connect_duration_seconds_bucket{name="api.test",le="0.01"} 39
dnsaware_connect_duration_seconds_bucket{name="api.test",le="0.025"} 40
dnsaware_connect_duration_seconds_bucket{name="api.test",le="0.05"} 40
dnsaware_connect_duration_seconds_bucket{name="api.test",le="0.1"} 40
dnsaware_connect_duration_seconds_bucket{name="api.test",le="0.25"} 40
dnsaware_connect_duration_seconds_bucket{name="api.test",le="0.5"} 40
dnsaware_connect_duration_seconds_bucket{name="api.test",le="1"} 40
dnsaware_connect_duration_seconds_bucket{name="api.test",le="2.5"} 40
dnsaware_connect_duration_seconds_bucket{name="api.test",le="5"} 40
dnsaware_connect_duration_seconds_bucket{name="api.test",le="10"} 40
dnsaware_connect_duration_seconds_bucket{name="api.test",le="+Inf"} 40
dnsaware_connect_duration_seconds_sum{name="api.test"} 0.0213
dnsaware_connect_duration_seconds_count{name="api.test"} 40
dnsaware_connect_duration_seconds_bucket{name="_other",le="0.0005"} 0
dnsaware_connect_duration_seconds_bucket{name="_other",le="0.001"} 0
dnsaware_connect_duration_seconds_bucket{name="_other",le="0.0025"} 1
dnsaware_connect_duration_seconds_bucket{name="_other",le="0.005"} 2
dnsaware_connect_duration_seconds_bucket{name="_other",le="0.01"} 2
dnsaware_connect_duration_seconds_bucket{name="_other",le="0.025"} 2
dnsaware_connect_duration_seconds_bucket{name="_other",le="0.05"} 2
dnsaware_connect_duration_seconds_bucket{name="_other",le="0.1"} 2
dnsaware_connect_duration_seconds_bucket{name="_other",le="0.25"} 2
dnsaware_connect_duration_seconds_bucket{name="_other",le="0.5"} 2
dnsaware_connect_duration_seconds_bucket{name="_other",le="1"} 2
dnsaware_connect_duration_seconds_bucket{name="_other",le="2.5"} 2
dnsaware_connect_duration_seconds_bucket{name="_other",le="5"} 2
dnsaware_connect_duration_seconds_bucket{name="_other",le="10"} 2
dnsaware_connect_duration_seconds_bucket{name="_other",le="+Inf"} 3
dnsaware_connect_duration_seconds_sum{name="_other"} 12.0041
dnsaware_connect_duration_seconds_count{name="_other"} 3
"""

GOOD = {
    "empty document": "",
    "escapes, comments, special values, timestamps": (
        "# a plain comment\n"
        "# HELP x_total Help with a backslash \\\\ and a newline \\n.\n"
        "# TYPE x_total counter\n"
        'x_total{a="q\\"uote",b="back\\\\slash",c="new\\nline",d="{},= #"} 1 1700000000000\n'
        'x_total{a="2"} 2.5e3\n'
        "# TYPE g gauge\n"
        "g NaN\n"
        'g{s="1"} +Inf\n'
        'g{s="2"} -Inf\n'
        'g{s="3"} -0.5\n'
        'g{s="4",} .5\n'
        "untyped_metric:with_colon 7 -3\n"),
    "histogram and summary": (
        "# TYPE h histogram\n"
        'h_bucket{le="1"} 1\n'
        'h_bucket{le="+Inf"} 2\n'
        "h_sum 3\n"
        "h_count 2\n"
        "# TYPE s summary\n"
        's{quantile="0.5"} 1\n'
        "s_sum 3\n"
        "s_count 2\n"),
    "HELP without text, TYPE before HELP": "# TYPE a gauge\n# HELP a\na 1\n",
    "histogram: two label sets, sums and counts after the buckets, empty buckets": (
        "# HELP t Seconds.\n"
        "# TYPE t histogram\n"
        't_bucket{x="a",le="-1"} 0\n'
        't_bucket{x="a",le="0.5"} 0\n'
        't_bucket{x="a",le="1e1"} 2\n'
        't_bucket{x="a",le="+Inf"} 3\n'
        't_bucket{le="+Inf",x="b"} 0\n'
        't_sum{x="a"} 27.25\n'
        't_sum{x="b"} 0\n'
        't_count{x="a"} 3\n'
        't_count{x="b"} 0\n'
        "# TYPE u gauge\n"
        "u 1\n"),
}

# A histogram's series h{x="1"}, then a gauge; the BAD cases below break it.
HISTOGRAM = """\
# TYPE h histogram
h_bucket{x="1",le="0.5"} 1
h_bucket{x="1",le="1"} 3
h_bucket{x="1",le="+Inf"} 4
h_sum{x="1"} 2.5
h_count{x="1"} 4
# TYPE g gauge
g 1
"""


def hist(*changes):
    doc = HISTOGRAM
    for old, new in changes:
        assert old in doc, old
        doc = doc.replace(old, new, 1)
    return doc


# (rule, document, line the error must name)
BAD = [
    ("no newline at end of file", "# TYPE a gauge\na 1", 2),
    ("CRLF line ending", "# TYPE a gauge\r\na 1\r\n", 1),
    ("blank line", "# TYPE a gauge\n\na 1\n", 2),
    ("leading whitespace", "# TYPE a gauge\n a 1\n", 2),
    ("trailing whitespace", "a 1 \n", 1),
    ("two spaces before the value", "a  1\n", 1),
    ("HELP twice", "# HELP a one\n# HELP a two\na 1\n", 2),
    ("TYPE twice", "# TYPE a gauge\n# TYPE a gauge\na 1\n", 2),
    ("TYPE after samples", "a 1\n# TYPE a gauge\n", 2),
    ("HELP after samples", "# TYPE a gauge\na 1\n# HELP a late\n", 3),
    ("unknown type", "# TYPE a meter\na 1\n", 1),
    ("type in capitals", "# TYPE a Gauge\na 1\n", 1),
    ("TYPE without a type", "# TYPE a\na 1\n", 1),
    ("TYPE with extra words", "# TYPE a gauge x\na 1\n", 1),
    ("HELP without a name", "# HELP\n", 1),
    ("HELP with an invalid name", "# HELP 1a text\n", 1),
    ("HELP with a bad escape", '# HELP a say \\"hi\\"\na 1\n', 1),
    ("HELP ending in a backslash", "# HELP a text\\\na 1\n", 1),
    ("invalid metric name", "1a 1\n", 1),
    ("invalid character in metric name", "a-b 1\n", 1),
    ("invalid label name", 'a{1b="x"} 1\n', 1),
    ("reserved label name", 'a{__name__="x"} 1\n', 1),
    ("unquoted label value", "a{b=x} 1\n", 1),
    ("single-quoted label value", "a{b='x'} 1\n", 1),
    ("bad escape in label value", 'a{b="x\\t"} 1\n', 1),
    ("unterminated label value", 'a{b="x} 1\n', 1),
    ("unclosed label set", 'a{b="x" 1\n', 1),
    ("space inside the label set", 'a{b="x", c="y"} 1\n', 1),
    ("duplicate label name", 'a{b="x",b="y"} 1\n', 1),
    ("duplicate sample", "# TYPE a gauge\na 1\na 2\n", 3),
    ("duplicate sample, labels reordered", 'a{x="1",y="2"} 1\na{y="2",x="1"} 1\n', 2),
    ("interleaved families", "a 1\nb 1\na{x=\"1\"} 2\n", 3),
    ("TYPE of a family seen before", "a 1\nb 1\n# TYPE a gauge\n", 3),
    ("counter family foo with sample foo_total",
     "# TYPE foo counter\nfoo_total 1\n", 2),
    ("missing value", "a\n", 1),
    ("non-numeric value", "a one\n", 1),
    ("Inf without a sign", "a Inf\n", 1),
    ("lower-case nan", "a nan\n", 1),
    ("hex value", "a 0x10\n", 1),
    ("fractional timestamp", "a 1 1.5\n", 1),
    ("extra field", "a 1 2 3\n", 1),
    ("histogram sample named as the family", "# TYPE h histogram\nh 1\n", 2),
    ("histogram bucket without le", "# TYPE h histogram\nh_bucket 1\n", 2),
    ("summary sample without quantile", "# TYPE s summary\ns 1\n", 2),
    ("histogram buckets not cumulative", hist(('le="1"} 3', 'le="1"} 0')), 3),
    ("histogram le not increasing", hist(('le="1"} 3', 'le="0.25"} 3')), 3),
    ("histogram le repeated", hist(('le="1"} 3', 'le="0.5e0"} 3')), 3),
    ("histogram le not a number", hist(('le="1"} 3', 'le="one"} 3')), 3),
    ("histogram le NaN", hist(('le="1"} 3', 'le="NaN"} 3')), 3),
    ("histogram bucket count NaN", hist(('le="1"} 3', 'le="1"} NaN')), 3),
    ("histogram bucket count negative", hist(('le="0.5"} 1', 'le="0.5"} -1')), 2),
    ("histogram +Inf bucket missing", hist(('h_bucket{x="1",le="+Inf"} 4\n', "")), 3),
    ("histogram +Inf bucket missing, at the end of the file",
     hist(('h_bucket{x="1",le="+Inf"} 4\n', ""), ("# TYPE g gauge\ng 1\n", "")), 3),
    ("histogram with no bucket", hist(('h_bucket{x="1",le="0.5"} 1\nh_bucket{x="1",le="1"} 3\n'
                                       'h_bucket{x="1",le="+Inf"} 4\n', "")), 3),
    ("histogram +Inf bucket not equal to _count", hist(('h_count{x="1"} 4', 'h_count{x="1"} 5')), 6),
    ("histogram without _sum", hist(('h_sum{x="1"} 2.5\n', "")), 5),
    ("histogram without _count", hist(('h_count{x="1"} 4\n', "")), 5),
    ("histogram _sum with an le label", hist(('h_sum{x="1"}', 'h_sum{x="1",le="+Inf"}')), 5),
    ("histogram's second series without +Inf", hist(('h_count{x="1"} 4\n', 'h_count{x="1"} 4\n'
                                                     'h_bucket{x="2",le="0.5"} 0\nh_sum{x="2"} 0\n'
                                                     'h_count{x="2"} 0\n')), 7),
]


def with_pid(doc, pid="4242"):
    """The library labels every sample with its process: add pid to each dnsaware sample."""
    out = []
    for line in doc.splitlines(keepends=True):
        if line.startswith("dnsaware_"):
            name, _, rest = line.partition("{") if "{" in line.split(" ")[0] else (
                line.split(" ")[0], "", line[len(line.split(" ")[0]):])
            if _:
                line = '%s{pid="%s",%s' % (name, pid, rest)
            else:
                line = '%s{pid="%s"}%s' % (name, pid, rest)
        out.append(line)
    return "".join(out)


def replace(doc, old, new):
    assert old in doc, old
    return doc.replace(old, new, 1)


# Breakages of the dnsaware document: (what, document, line the error must name or None).
BAD_DNSAWARE = [
    ("unknown family", DNSAWARE + "# HELP dnsaware_x X.\n# TYPE dnsaware_x gauge\ndnsaware_x 1\n",
     101),
    ("missing family", replace(DNSAWARE, "# HELP dnsaware_connect_failovers_total Failed"
                               " connects retried on another address of the name.\n"
                               "# TYPE dnsaware_connect_failovers_total counter\n"
                               "dnsaware_connect_failovers_total 1\n", ""), None),
    ("no HELP", replace(DNSAWARE, "# HELP dnsaware_watched_names Names being re-resolved in"
                        " the background.\n", ""), 4),
    ("no TYPE", replace(DNSAWARE, "# TYPE dnsaware_watched_names gauge\n", ""), 4),
    ("wrong type", replace(DNSAWARE, "TYPE dnsaware_tracked_sockets gauge",
                           "TYPE dnsaware_tracked_sockets counter"), 1),
    ("missing label combination", replace(DNSAWARE, 'dnsaware_sockets_shutdown_total{reason='
                                          '"max_age",path="send"} 0\n', ""), 14),
    ("missing result=error", replace(DNSAWARE, 'dnsaware_resolutions_total{result="error"} 2\n',
                                     ""), 7),
    ("unknown label value", replace(DNSAWARE, 'path="deadline"} 1', 'path="close"} 1'), 18),
    ("extra label", replace(DNSAWARE, "dnsaware_tracked_sockets 12",
                            'dnsaware_tracked_sockets{fd="3"} 12'), 3),
    ("missing label", replace(DNSAWARE, 'dnsaware_resolutions_total{result="ok"} 340',
                              "dnsaware_resolutions_total 340"), 9),
    ("negative value", replace(DNSAWARE, "dnsaware_watched_names 3", "dnsaware_watched_names -3"),
     6),
    ("fractional value", replace(DNSAWARE, "dnsaware_watched_names 3",
                                 "dnsaware_watched_names 3.0"), 6),
    ("NaN value", replace(DNSAWARE, "dnsaware_addresses_removed_total 1",
                          "dnsaware_addresses_removed_total NaN"), 13),
    ("timestamp", replace(DNSAWARE, "dnsaware_watched_names 3", "dnsaware_watched_names 3 1000"),
     6),
    ("empty family", replace(DNSAWARE, "dnsaware_connects_redirected_total 2\n", ""), 25),
    ("empty file", "", None),
    ("a name without one result", replace(DNSAWARE, 'dnsaware_connects_total{name="_other",'
                                          'result="error"} 1\n', ""), 60),
    ("unknown result", replace(DNSAWARE, 'result="unreachable"} 0', 'result="reset"} 0'), 58),
    ("connects without a name", replace(DNSAWARE, '{name="api.test",result="ok"}',
                                        '{result="ok"}'), 55),
    ("a name without one bucket", replace(DNSAWARE, 'dnsaware_connect_duration_seconds_bucket'
                                          '{name="api.test",le="0.05"} 40\n', ""), 67),
    ("a bucket not the contract's", replace(DNSAWARE, 'le="0.0005"} 31', 'le="5e-4"} 31'), 67),
    ("an extra bucket", replace(DNSAWARE, 'le="0.001"} 35', 'le="0.00075"} 33\n'
                                'dnsaware_connect_duration_seconds_bucket{name="api.test",'
                                'le="0.001"} 35'), 68),
    ("buckets not cumulative", replace(DNSAWARE, 'le="0.01"} 39', 'le="0.01"} 38'), 71),
    ("+Inf bucket not equal to _count", replace(DNSAWARE, 'seconds_count{name="api.test"} 40',
                                                'seconds_count{name="api.test"} 41'), 83),
    ("histogram without _sum", replace(DNSAWARE, 'dnsaware_connect_duration_seconds_sum{name='
                                       '"_other"} 12.0041\n', ""), 99),
    ("negative _sum", replace(DNSAWARE, "} 0.0213", "} -0.0213"), 82),
    ("NaN _sum", replace(DNSAWARE, "} 0.0213", "} NaN"), 82),
    ("+Inf _sum", replace(DNSAWARE, "} 0.0213", "} +Inf"), 82),
    ("fractional bucket count", replace(DNSAWARE, 'le="+Inf"} 3', 'le="+Inf"} 3.0'), 98),
    ("_count with an extra label (another series, which leaves this one without _count)",
     replace(DNSAWARE, 'seconds_count{name="api.test"}',
             'seconds_count{name="api.test",result="ok"}'), 82),
    ("a name with connects and no connect times",
     replace(DNSAWARE, 'dnsaware_connects_total{name="_other",result="ok"}',
             'dnsaware_connects_total{name="db.test",result="ok"}').replace(
                 '{name="_other",result=', '{name="db.test",result='), 60),
    ("a name with connect times and no connects",
     replace(DNSAWARE, "\n".join(line for line in DNSAWARE.splitlines()
                                 if 'connects_total{name="_other"' in line) + "\n", ""), 79),
]

failures = []


def check(ok, what):
    print(("ok    " if ok else "FAIL  ") + what)
    if not ok:
        failures.append(what)


def rejected(fn, doc, line):
    try:
        fn(doc)
    except ValueError as e:
        msg = str(e)
        want = f"line {line}: " if line else ""
        return (msg.startswith(want) if line else not msg.startswith("line ")), msg
    return False, "accepted"


def main():
    for what, doc in GOOD.items():
        try:
            promtext.parse(doc)
            check(True, f"valid: {what}")
        except ValueError as e:
            check(False, f"valid: {what}: {e}")

    parsed = promtext.parse(GOOD["escapes, comments, special values, timestamps"])
    s = parsed["x_total"]["samples"][0]
    check(parsed["x_total"]["help"] == "Help with a backslash \\ and a newline \n.", "HELP unescaped")
    check(s["labels"] == {"a": 'q"uote', "b": "back\\slash", "c": "new\nline", "d": "{},= #"},
          "label values unescaped")
    check(s["value"] == 1 and isinstance(s["value"], int) and s["timestamp"] == 1700000000000,
          "integer value and timestamp")
    g = {tuple(x["labels"].values()): x["value"] for x in parsed["g"]["samples"]}
    check(g[()] != g[()] and g[("1",)] == float("inf") and g[("2",)] == float("-inf")
          and g[("3",)] == -0.5 and g[("4",)] == 0.5, "NaN, +Inf, -Inf, floats")
    check(parsed["untyped_metric:with_colon"]["type"] is None
          and parsed["untyped_metric:with_colon"]["samples"][0]["timestamp"] == -3,
          "untyped family, negative timestamp")
    check(list(promtext.parse(GOOD["histogram and summary"])) == ["h", "s"],
          "histogram and summary series grouped into their families")

    for what, doc, line in BAD:
        ok, msg = rejected(promtext.parse, doc, line)
        check(ok, f"rejected at line {line}: {what} ({msg})")

    parsed = promtext.parse(with_pid(DNSAWARE))
    try:
        promtext.check_dnsaware(parsed)
        check(True, "dnsaware document meets the contract")
    except ValueError as e:
        check(False, f"dnsaware document meets the contract: {e}")
    vals = promtext.values(parsed)
    check(len(vals) == 70 and vals[("dnsaware_tracked_sockets", frozenset({"pid": "4242"}.items()))] == 12
          and vals[("dnsaware_sockets_shutdown_total",
                    frozenset({"pid": "4242", "reason": "dns", "path": "deadline"}.items()))] == 1,
          "values()")
    h = "dnsaware_connect_duration_seconds"
    check(parsed[h]["type"] == "histogram" and len(parsed[h]["samples"]) == 34
          and vals[(h + "_sum", frozenset({"pid": "4242", "name": "_other"}.items()))] == 12.0041
          and vals[(h + "_bucket", frozenset({"pid": "4242", "name": "api.test",
                                              "le": "+Inf"}.items()))] == 40,
          "histogram samples in their family, _sum a float")
    check(promtext.counter(parsed, "dnsaware_sockets_shutdown_total") == 12
          and promtext.counter(parsed, "dnsaware_sockets_shutdown_total", reason="dns") == 5
          and promtext.counter(parsed, "dnsaware_sockets_shutdown_total", path="idle") == 11
          and promtext.counter(parsed, "dnsaware_resolutions_total", result="ok") == 340
          and promtext.counter(parsed, "dnsaware_name_sockets", name="api.test") == 2,
          "counter() sums matching samples (name= is a label)")
    try:
        promtext.counter(parsed, "dnsaware_resolutions_total", result="okay")
        check(False, "counter() with no matching sample raises KeyError")
    except KeyError:
        check(True, "counter() with no matching sample raises KeyError")

    no_names = "".join(line for line in DNSAWARE.splitlines(keepends=True)
                       if not line.startswith(("dnsaware_name_sockets{", "dnsaware_connects_total{",
                                               "dnsaware_connect_duration_seconds_")))
    try:
        promtext.check_dnsaware(promtext.parse(with_pid(no_names)))
        check(True, "dnsaware document without per-name samples meets the contract")
    except ValueError as e:
        check(False, f"dnsaware document without per-name samples meets the contract: {e}")
    escaped = DNSAWARE.replace('name="_other"', 'name="we\\"ird\\\\na\\nme"')
    try:
        parsed = promtext.parse(with_pid(escaped))
        promtext.check_dnsaware(parsed)
        check(promtext.counter(parsed, "dnsaware_connects_total", name='we"ird\\na\nme',
                               result="error") == 1, "an escaped name meets the contract")
    except (ValueError, KeyError) as e:
        check(False, f"an escaped name meets the contract: {e!r}")

    for what, doc, line in BAD_DNSAWARE:
        ok, msg = rejected(lambda d: promtext.check_dnsaware(promtext.parse(d)), with_pid(doc), line)
        check(ok, f"dnsaware contract rejects at line {line}: {what} ({msg})")
    for what, doc in [("no pid label", DNSAWARE),
                      ("two pids in one file", with_pid(DNSAWARE).replace(
                          'dnsaware_watched_names{pid="4242"}', 'dnsaware_watched_names{pid="7"}'))]:
        ok, msg = rejected(lambda d: promtext.check_dnsaware(promtext.parse(d)), doc, None)
        check(ok or "pid" in msg, f"dnsaware contract rejects {what} ({msg})")

    with tempfile.TemporaryDirectory() as tmp:
        good, bad, latin1 = (os.path.join(tmp, n) for n in ("good.prom", "bad.prom", "l1.prom"))
        with open(good, "w") as f:
            f.write(with_pid(DNSAWARE))
        with open(bad, "w") as f:
            f.write(with_pid(DNSAWARE).replace('dnsaware_watched_names{pid="4242"} 3',
                                               'dnsaware_watched_names{pid="4242"} three'))
        with open(latin1, "wb") as f:
            f.write(b'a 1\nb{c="\xe9"} 1\n')
        cli = [sys.executable, os.path.join(HERE, "promtext.py")]
        r = subprocess.run(cli + ["--dnsaware", good], capture_output=True, text=True)
        check(r.returncode == 0 and r.stdout == f"{good}: OK\n", "cli: valid file -> OK, exit 0")
        r = subprocess.run(cli + [good, bad, latin1], capture_output=True, text=True)
        check(r.returncode == 1 and r.stdout.splitlines() == [
            f"{good}: OK", f"{bad}: line 6: invalid value 'three'",
            f"{latin1}: line 2: invalid UTF-8"], f"cli: bad files -> errors, exit 1 ({r.stdout!r})")
        r = subprocess.run(cli, capture_output=True, text=True)
        check(r.returncode == 2, "cli: no file -> exit 2")

    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Strict parser of the Prometheus text exposition format 0.0.4, and the dnsaware metrics contract.

    /usr/bin/python3 tests/e2e/promtext.py [--dnsaware] FILE...

prints `FILE: OK` or `FILE: line N: what is wrong` for each file; exit status 0 if all are valid,
1 if not, 2 on a usage error. --dnsaware also checks each file against the contract of
DNSAWARE_STATS_FILE (docs: /work/shared/design.md, "Metrics contract").

As a module (stdlib only):

    parse(text) -> {family: {"type", "help", "line", "samples": [sample, ...]}}
        sample = {"name", "labels": {name: value}, "value", "timestamp", "line"}
        raises ValueError("line N: what is wrong")
    check_dnsaware(parsed)            raises ValueError if the contract is not met
    values(parsed) -> {(name, frozenset(labels.items())): value}
    counter(parsed, metric, **labels) sum of the samples called metric with those labels

"type" and "help" are None when the family has no TYPE / HELP line. A value written as an
integer is an int, any other a float (NaN, +Inf and -Inf included); timestamps are ints or None.

Strictness, beyond the format's grammar: every line ends with \\n (the last one too); no blank
lines, no leading or trailing blanks, exactly one space between a sample's fields and inside
HELP/TYPE lines; HELP and TYPE at most once per family and before its samples; a family's lines
contiguous; no duplicate label names in a sample nor duplicate samples (name + label set); a
counter's samples named as the family (`# TYPE foo counter` followed by `foo_total` is an error:
declare `foo_total`). Values are decimal floats, NaN, +Inf or -Inf (no hex floats, no `Inf`
without a sign); timestamps are integers. Plain `#` comments are allowed.

Histograms (TYPE histogram; their samples are `_bucket`, `_sum` and `_count`), for each label set
but `le`: the buckets' `le` values are numbers or +Inf, strictly increasing in the order written;
a `le="+Inf"` bucket; bucket counts not NaN, not negative and non-decreasing (cumulative); the
+Inf bucket equal to `_count`; one `_sum` and one `_count`, neither with an `le` label. An error
found once the family's lines are over names the line of the sample concerned (the +Inf bucket's
absence: the series' last bucket).
"""

import itertools
import math
import re
import sys

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
LABEL_VALUE = re.compile(r'"((?:[^"\\]|\\.)*)"')
FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|NaN|[+-]Inf")
INTEGER = re.compile(r"[+-]?[0-9]+")
TIMESTAMP = re.compile(r"-?[0-9]+")
TYPES = ("counter", "gauge", "histogram", "summary", "untyped")
HELP_ESCAPES = {"\\": "\\", "n": "\n"}
LABEL_ESCAPES = {"\\": "\\", "n": "\n", '"': '"'}


def _fail(n, what):
    raise ValueError(f"line {n}: {what}")


def _unescape(n, text, allowed, where):
    def one(m):
        if m.group(1) not in allowed:
            _fail(n, f"invalid escape sequence \\{m.group(1)} in {where}")
        return allowed[m.group(1)]
    return re.sub(r"\\(.?)", one, text)


def _show(name, labels):
    inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
    return f"{name}{{{inner}}}" if labels else name


def _family_of(families, name):
    """The family a sample called `name` belongs to: a declared histogram or summary it is a
    _bucket/_sum/_count series of, else the family called `name`."""
    for suffix, types in (("_bucket", ("histogram",)), ("_sum", ("histogram", "summary")),
                          ("_count", ("histogram", "summary"))):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and base in families and families[base]["type"] in types:
            return base
    return name


def _le(n, text):
    """The float of a bucket's le label: a number or +Inf."""
    if not FLOAT.fullmatch(text) or text == "NaN":
        _fail(n, f'bucket le="{text}" is not a number (a float or +Inf)')
    return float(text)


class _Parser:
    def __init__(self):
        self.families = {}
        self.current = None      # the family whose lines we are in
        self.seen = {}           # (name, frozenset(labels)) -> line of that sample
        self.series = {}         # the current histogram's label sets (le aside) -> their samples

    def enter(self, n, name):
        """Make `name` the current family, creating it; its lines must be contiguous."""
        if name == self.current:
            return self.families[name]
        if name in self.families:
            _fail(n, f"family {name} already appeared at line {self.families[name]['line']}"
                     f" (a family's lines must be contiguous)")
        self.finish()
        self.current = name
        self.families[name] = {"type": None, "help": None, "line": n, "samples": []}
        return self.families[name]

    def comment(self, n, line):
        words = line[1:].split()
        if not words or words[0] not in ("HELP", "TYPE"):
            return                                  # a plain comment
        keyword = words[0]
        if not line.startswith(f"# {keyword} "):
            _fail(n, f"malformed {keyword} line (expected '# {keyword} name ...')")
        name, _, text = line[len(keyword) + 3:].partition(" ")
        if keyword == "TYPE" and (" " in text or not text):
            _fail(n, "malformed TYPE line (expected '# TYPE name type')")
        if not METRIC_NAME.fullmatch(name):
            _fail(n, f"invalid metric name {name!r} in {keyword} line")
        family = self.enter(n, name)
        key = keyword.lower()
        if family[key] is not None:
            _fail(n, f"second {keyword} line for {name}")
        if family["samples"]:
            _fail(n, f"{keyword} line for {name} after its samples")
        if keyword == "HELP":
            family["help"] = _unescape(n, text, HELP_ESCAPES, "HELP text")
        elif text not in TYPES:
            _fail(n, f"unknown type {text!r} for {name} (expected one of {', '.join(TYPES)})")
        else:
            family["type"] = text

    def sample(self, n, line):
        m = METRIC_NAME.match(line)
        if not m:
            _fail(n, "expected a metric name, a HELP or TYPE line or a comment")
        name, i = m.group(), m.end()
        labels = {}
        if line.startswith("{", i):
            i += 1
            while not line.startswith("}", i):
                m = LABEL_NAME.match(line, i)
                if not m:
                    _fail(n, f"expected a label name at column {i + 1}")
                label, i = m.group(), m.end()
                if label.startswith("__"):
                    _fail(n, f"label name {label} is reserved (starts with __)")
                if label in labels:
                    _fail(n, f"duplicate label name {label}")
                if not line.startswith("=", i):
                    _fail(n, f"expected = after label name {label}")
                m = LABEL_VALUE.match(line, i + 1)
                if not m:
                    _fail(n, f"label {label}: expected a double-quoted value")
                labels[label] = _unescape(n, m.group(1), LABEL_ESCAPES, "label value")
                i = m.end()
                if line.startswith(",", i):
                    i += 1
                elif not line.startswith("}", i):
                    _fail(n, f"expected , or }} at column {i + 1}")
            i += 1
        if not line.startswith(" ", i):
            _fail(n, f"expected a space and a value at column {i + 1}")
        fields = line[i + 1:].split(" ")
        if len(fields) > 2 or "" in fields:
            _fail(n, "expected exactly 'value' or 'value timestamp' after the name and labels")
        if not FLOAT.fullmatch(fields[0]):
            _fail(n, f"invalid value {fields[0]!r}")
        value = int(fields[0]) if INTEGER.fullmatch(fields[0]) else float(fields[0])
        timestamp = None
        if len(fields) == 2:
            if not TIMESTAMP.fullmatch(fields[1]):
                _fail(n, f"invalid timestamp {fields[1]!r} (expected integer milliseconds)")
            timestamp = int(fields[1])

        current = self.families.get(self.current)
        if (current and current["type"] == "counter" and not current["samples"]
                and name == self.current + "_total"):
            _fail(n, f"sample {name} in counter family {self.current}: a counter's samples are"
                     f" named as the family (declare # TYPE {name} counter)")
        family_name = _family_of(self.families, name)
        family = self.enter(n, family_name)
        kind = family["type"]
        if kind == "histogram" and name == family_name:
            _fail(n, f"histogram {name} has no sample called {name} (only _bucket, _sum, _count)")
        if kind == "histogram" and name.endswith("_bucket") and "le" not in labels:
            _fail(n, f"histogram bucket {name} without an le label")
        if kind == "summary" and name == family_name and "quantile" not in labels:
            _fail(n, f"summary sample {name} without a quantile label")
        key = (name, frozenset(labels.items()))
        if key in self.seen:
            _fail(n, f"duplicate sample {_show(name, labels)} (first at line {self.seen[key]})")
        self.seen[key] = n
        if kind == "histogram":
            self.histogram_sample(n, family_name, name[len(family_name):], labels, value)
        family["samples"].append({"name": name, "labels": labels, "value": value,
                                  "timestamp": timestamp, "line": n})

    def histogram_sample(self, n, family, suffix, labels, value):
        """Check a _bucket against the one before it in its series; keep _sum and _count."""
        rest = {k: v for k, v in labels.items() if k != "le"}
        series = self.series.setdefault(frozenset(rest.items()), {
            "labels": rest, "buckets": [], "_sum": None, "_count": None, "last": n})
        series["last"] = n
        if suffix != "_bucket":
            if "le" in labels:
                _fail(n, f"{family}{suffix} has an le label (only _bucket samples have one)")
            series[suffix] = (value, n)
            return
        le = _le(n, labels["le"])
        if value != value or value < 0:
            _fail(n, f"bucket count {value} of {_show(family + suffix, labels)} is not a count")
        if series["buckets"]:
            last_le, last_text, last_value, last_n = series["buckets"][-1]
            if le <= last_le:
                _fail(n, f'bucket le="{labels["le"]}" after le="{last_text}" (line {last_n}):'
                         f" a histogram's le values must increase")
            if value < last_value:
                _fail(n, f'bucket le="{labels["le"]}" counts {value}, fewer than le="{last_text}"'
                         f" (line {last_n}) counts {last_value}: buckets are cumulative")
        series["buckets"].append((le, labels["le"], value, n))

    def finish(self):
        """At the end of a histogram's lines: each label set's +Inf bucket, _count and _sum."""
        family, self.series, all_series = self.current, {}, self.series
        for series in all_series.values():
            shown = _show(family, series["labels"])
            buckets = series["buckets"]
            if not buckets or buckets[-1][0] != math.inf:
                _fail(buckets[-1][3] if buckets else series["last"],
                      f'histogram {shown} has no le="+Inf" bucket')
            if series["_count"] is None:
                _fail(series["last"], f"histogram {shown} has no {family}_count")
            count, count_n = series["_count"]
            if count != buckets[-1][2]:
                _fail(count_n, f'{family}_count is {count}, but its le="+Inf" bucket'
                               f" (line {buckets[-1][3]}) is {buckets[-1][2]}")
            if series["_sum"] is None:
                _fail(series["last"], f"histogram {shown} has no {family}_sum")


def parse(text):
    """Parse an exposition-format document; ValueError("line N: ...") on the first error."""
    lines = text.split("\n")
    if lines[-1] != "":
        _fail(len(lines), "no newline at the end of the file")
    parser = _Parser()
    for n, line in enumerate(lines[:-1], 1):
        if line.endswith("\r"):
            _fail(n, "line ends with \\r\\n (lines end with \\n only)")
        if line == "":
            _fail(n, "blank line")
        if line != line.strip(" \t"):
            _fail(n, "leading or trailing whitespace")
        if line.startswith("#"):
            parser.comment(n, line)
        else:
            parser.sample(n, line)
    parser.finish()
    return parser.families


def parse_file(path):
    """parse() the file at path, which must be UTF-8."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        _fail(data.count(b"\n", 0, e.start) + 1, "invalid UTF-8")
    return parse(text)


def values(parsed):
    """{(sample name, frozenset(labels.items())): value} of every sample."""
    return {(s["name"], frozenset(s["labels"].items())): s["value"]
            for family in parsed.values() for s in family["samples"]}


def counter(parsed, metric, /, **labels):
    """Sum of the samples called `metric` whose labels include `labels` (name= included: the
    per-name families' label); KeyError if none."""
    found = [s["value"] for family in parsed.values() for s in family["samples"]
             if s["name"] == metric and all(s["labels"].get(k) == v for k, v in labels.items())]
    if not found:
        raise KeyError(_show(metric, labels))
    return sum(found)


# The contract of DNSAWARE_STATS_FILE: family -> (type, {label: allowed values}). A label whose
# values are None takes any value (name, address: the per-name families). For each value of the
# free labels that appears (each name), every combination of the fixed labels must be present; a
# family without free labels must have every combination. A histogram's `le` is a fixed label of
# its _bucket samples, its values the buckets, written exactly so (queries match le as a string).
CONNECT_BUCKETS = ("0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25",
                   "0.5", "1", "2.5", "5", "10", "+Inf")
DNSAWARE = {
    "dnsaware_tracked_sockets": ("gauge", {}),
    "dnsaware_watched_names": ("gauge", {}),
    "dnsaware_resolutions_total": ("counter", {"result": ("ok", "error")}),
    "dnsaware_addresses_removed_total": ("counter", {}),
    "dnsaware_sockets_shutdown_total": ("counter", {"reason": ("dns", "max_age", "balance"),
                                                    "path": ("idle", "send", "deadline")}),
    "dnsaware_connects_redirected_total": ("counter", {}),
    "dnsaware_connect_failovers_total": ("counter", {}),
    "dnsaware_names_learned_total": ("counter", {"source": ("getaddrinfo", "gethostbyname", "dns")}),
    "dnsaware_thread_wakeups_total": ("counter", {}),
    "dnsaware_thread_socket_visits_total": ("counter", {}),
    "dnsaware_stale_answers_total": ("counter", {}),
    "dnsaware_cache_lookups_total": ("counter", {"result": ("hit", "miss")}),
    "dnsaware_name_sockets": ("gauge", {"name": None, "address": None}),
    "dnsaware_connects_total": ("counter", {"name": None, "result": ("ok", "refused", "timeout",
                                                                     "unreachable", "error")}),
    "dnsaware_connect_duration_seconds": ("histogram", {"name": None, "le": CONNECT_BUCKETS}),
}
# Families that list the same names: a name has its connects and its connect times, or neither.
SAME_NAMES = ("dnsaware_connects_total", "dnsaware_connect_duration_seconds")


def _check_value(name, kind, s):
    """dnsaware values are non-negative integers; a histogram's _sum a non-negative number."""
    value = s["value"]
    if kind == "histogram" and s["name"] == name + "_sum":
        if isinstance(value, float) and not math.isfinite(value) or value < 0:
            _fail(s["line"], f"value of {s['name']} must be a non-negative number")
    elif not isinstance(value, int) or value < 0:
        _fail(s["line"], f"value of {s['name']} must be a non-negative integer")


def _check_family(name, family, pids):
    """Check one family's samples; {free label values: line of their first sample}."""
    kind, label_values = DNSAWARE[name]
    if not family["help"]:
        _fail(family["line"], f"family {name} has no HELP text")
    if family["type"] != kind:
        _fail(family["line"], f"family {name} is of type"
                              f" {family['type'] or 'untyped (no TYPE line)'}, expected {kind}")
    free = [k for k, vs in label_values.items() if vs is None]
    groups, present = {}, set()
    for s in family["samples"]:
        # Every sample names its process: node_exporter merges a directory of these files.
        pid = s["labels"].get("pid", "")
        if not pid.isdigit() or pid.startswith("0"):
            _fail(s["line"], f"{name} needs a pid label with the process ID, got {pid!r}")
        if pids.setdefault("pid", pid) != pid:
            _fail(s["line"], f"{name} has pid={pid!r}, but the file's samples say {pids['pid']!r}")
        labels = {k: v for k, v in s["labels"].items() if k != "pid"}
        if s["timestamp"] is not None:
            _fail(s["line"], "sample has a timestamp (node_exporter's textfile collector"
                             " skips files with timestamps)")
        _check_value(name, kind, s)
        # A histogram's _sum and _count have the labels of its buckets but le.
        expected = [k for k in label_values if k != "le" or s["name"] == name + "_bucket"]
        if set(labels) != set(expected):
            _fail(s["line"], f"{s['name']} has labels {sorted(labels)}, expected {sorted(expected)}")
        for label, value in labels.items():
            if label_values[label] is not None and value not in label_values[label]:
                _fail(s["line"], f"{s['name']}: label {label}={value!r} not one of"
                                 f" {', '.join(label_values[label])}")
        groups.setdefault(tuple(labels[k] for k in free), s["line"])
        if set(expected) == set(label_values):
            present.add(frozenset(labels.items()))
    if not free:
        groups = {(): family["line"]}
    fixed = [[(k, v) for v in vs] for k, vs in label_values.items() if vs is not None]
    sample = name + "_bucket" if kind == "histogram" else name
    for group, line in groups.items():
        for combo in itertools.product(*fixed):
            labels = dict(zip(free, group), **dict(combo))
            if frozenset(labels.items()) not in present:
                _fail(line, f"family {name} lacks the sample {_show(sample, labels)}")
    return groups


def check_dnsaware(parsed):
    """Raise ValueError unless `parsed` (from parse()) is exactly a dnsaware stats file: the
    contract's families, each sample with a pid label (the same in the whole file) beside the
    contract's labels."""
    pids, names = {}, {}
    for name, family in parsed.items():
        if name not in DNSAWARE:
            _fail(family["line"], f"family {name} is not in the dnsaware contract")
        groups = _check_family(name, family, pids)
        if name in SAME_NAMES:
            names[name] = groups
    missing = [name for name in DNSAWARE if name not in parsed]
    if missing:
        raise ValueError(f"missing families: {', '.join(missing)}")
    for this, other in itertools.permutations(SAME_NAMES):
        for (value,), line in names[this].items():
            if (value,) not in names[other]:
                _fail(line, f'{this} lists name="{value}", {other} does not')


def main(argv):
    dnsaware = "--dnsaware" in argv
    paths = [a for a in argv if a != "--dnsaware"]
    if not paths or any(p.startswith("-") for p in paths):
        print("usage: promtext.py [--dnsaware] FILE...", file=sys.stderr)
        return 2
    status = 0
    for path in paths:
        try:
            parsed = parse_file(path)
            if dnsaware:
                check_dnsaware(parsed)
            print(f"{path}: OK")
        except (OSError, ValueError) as e:
            print(f"{path}: {e.strerror if isinstance(e, OSError) else e}")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

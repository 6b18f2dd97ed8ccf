"""bench_proxy.py's markdown report of the throughput, instructions and reaction results (split
out of tests/bench/bench_proxy.py).
"""

import statistics

from bench_proxy_conf import MECHANISMS, NEW, OLD, VARIANTS


def fmt(v, spec="%.0f"):
    return "–" if v is None else spec % v


def reaction_cell(runs):
    """One condition's trials: the median (and range) of the seconds to the last request on the
    old address over the trials that moved, and how many did not."""
    if not runs:
        return "–"
    moved = sorted(r["last_old_s"] for r in runs if r["moved"])
    stuck = [r for r in runs if not r["moved"]]
    parts = []
    if moved:
        text = "%.2f s" % statistics.median(moved)
        if len(moved) > 1:
            text += " (%.2f–%.2f)" % (moved[0], moved[-1])
        parts.append(text)
    if stuck:
        worst = max(100 * (r["old_share_last_2s"] or 0) for r in stuck)
        parts.append("%snot moved after %.1f s (up to %.0f %% still on .10 at the end)"
                     % ("%d of %d " % (len(stuck), len(runs)) if len(runs) > 1 else "",
                        min(r["observed_s"] for r in stuck), worst))
    return "; ".join(parts)


def report(results):
    lines = []
    tp = results.get("throughput")
    if tp:
        pr = tp["params"]
        lines += ["", "### Throughput (wrk -t%d -c%d -d%ds --latency; %d rounds, medians)"
                  % (pr["wrk_threads"], pr["wrk_conns"], pr["wrk_seconds"], pr["rounds"]), "",
                  "| variant | requests/s | range | cost vs (a) | paired cost (median) | "
                  "p99 latency | p99 range | proxy CPU per request | CPU vs (a) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for v in "abc":
            s = tp["summary"][v]
            lines.append("| (%s) %s | %.0f | %.0f–%.0f | %s | %s | %.2f ms | %.2f–%.2f ms | "
                         "%.1f µs | %s |"
                         % (v, s["label"], s["rps_median"], s["rps_min"], s["rps_max"],
                            "%+.2f %%" % -s["rps_cost_pct"] if v != "a" else "–",
                            "%+.2f %%" % -s["rps_cost_pct_paired_median"] if v != "a" else "–",
                            s["p99_ms_median"], s["p99_ms_min"], s["p99_ms_max"],
                            s["cpu_us_per_req_median"],
                            "%+.1f %%" % s["cpu_cost_pct"] if v != "a" else "–"))
        lines += ["", "Per round (order rotates):", "",
                  "| round | order | (a) req/s | (b) req/s | (c) req/s | b/a | c/a | "
                  "(a) p99 | (b) p99 | (c) p99 | (a) CPU/req | (b) CPU/req | (c) CPU/req |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in tp["rounds"]:
            ru = r["runs"]
            lines.append("| %d | %s | %.0f | %.0f | %.0f | %.3f | %.3f | %.2f ms | %.2f ms | "
                         "%.2f ms | %.1f µs | %.1f µs | %.1f µs |"
                         % (r["round"], r["order"], ru["a"]["rps"], ru["b"]["rps"],
                            ru["c"]["rps"], ru["b"]["rps"] / ru["a"]["rps"],
                            ru["c"]["rps"] / ru["a"]["rps"], ru["a"]["p99_ms"],
                            ru["b"]["p99_ms"], ru["c"]["p99_ms"],
                            ru["a"]["proxy_cpu_us_per_req"], ru["b"]["proxy_cpu_us_per_req"],
                            ru["c"]["proxy_cpu_us_per_req"]))
        b = tp["summary"]["b"]
        spread = max((s["rps_max"] - s["rps_min"]) / s["rps_median"] * 100
                     for s in tp["summary"].values())
        lines += ["", "Budget: the shim costs at most %.0f %% of throughput: median cost %.2f %% "
                  "(paired %.2f %%): **%s**. Proxy CPU per request (nginx master + workers; "
                  "+ HAProxy for (c)), paired median: (b) %+.1f %%, (c) %+.1f %%. The widest "
                  "spread of one variant's requests/s across rounds: %.0f %% of its median."
                  % (tp["budget_pct"], b["rps_cost_pct"], b["rps_cost_pct_paired_median"],
                     "not judged in --smoke" if results.get("mode") == "smoke"
                     else "met" if tp["budget_ok"] else "MISSED",
                     b["cpu_cost_pct_paired_median"],
                     tp["summary"]["c"]["cpu_cost_pct_paired_median"], spread),
                  "Background DNS queries per second during the throughput phase: %s."
                  % "; ".join("%s %s" % (k, ", ".join("%s %.2f" % kv for kv in v.items())
                                         or "none")
                              for k, v in tp["dns_queries_per_s"].items())]
    ins = results.get("instructions")
    if ins:
        sp = ins["cpu_split_plain"]
        lines += ["", "### Instructions per proxied request (callgrind, user space)", "",
                  "| variant | instructions per request |", "|---|---|",
                  "| (a) %s | %.0f |" % (VARIANTS["a"], ins["ir_per_request"]["a"]),
                  "| (b) %s | %.0f |" % (VARIANTS["b"], ins["ir_per_request"]["b"]),
                  "", "Added by the shim: **%+.0f instructions per request (%+.2f %% of nginx's "
                  "user-space instructions)**: %.0f in the shim's own code, %.0f elsewhere "
                  "(glibc's multi-threaded paths). %s, requests %d and %d." % (
                      ins["added_ir_per_request"], ins["added_pct_of_user_ir"],
                      ins["shim_own_ir_per_request"], ins["glibc_and_other_ir_per_request"],
                      ins["method"], ins["requests"][0], ins["requests"][1]),
                  "", "The plain proxy under wrk spends %.1f µs of user and %.1f µs of system "
                  "CPU per request (user share %.0f %%), so at nginx's average cost per "
                  "user-space instruction the shim's addition is about **%.2f %% of the proxy's "
                  "CPU per request**." % (sp["user_us_per_req"], sp["system_us_per_req"],
                                          100 * sp["user_share"],
                                          ins["added_pct_of_cpu_estimate"]),
                  "", "Largest per-request differences (b − a), by function: " +
                  ", ".join("%s %+.1f" % (f, v) for v, f in ins["top_differences"]) + "."]
    rc = results.get("reaction")
    if rc:
        lines += ["", "### Reaction: the name moves %s -> %s under load "
                  "(seconds from the change to the last request answered on %s)" % (OLD, NEW, OLD),
                  ""]
        cells = {}
        for r in rc["trials"]:
            cells.setdefault((r["ttl"], r["conns"], r["mechanism"]), []).append(r)
        lines += ["| TTL | client connections | %s | %s |" % (MECHANISMS["shim"],
                                                           MECHANISMS["haproxy"]),
                  "|---|---|---|---|"]
        for ttl in rc["params"]["ttls"]:
            for n in rc["params"]["conns"]:
                row = []
                for mech in ("shim", "haproxy"):
                    row.append(reaction_cell(cells.get((ttl, n, mech), [])))
                lines.append("| %d s | %d | %s | %s |" % (ttl, n, row[0], row[1]))
        lines += ["", "Details (every trial):", "",
                  "| trial | TTL | conns | mechanism | resolver got .11 | last on .10 | first on .11 | "
                  "requests on .10 after change | .10 conns used after change | failed | "
                  "proxy error.log lines | conns to .10 at end | req/s | p99 | stopped |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rc["trials"]:
            lines.append("| %d | %d s | %d | %s | %s | %.2f s | %s | %d | %d | %d | %d | %d | %.0f | %s "
                         "| %s |"
                         % (r.get("trial", 1), r["ttl"], r["conns"], r["label"],
                            fmt(r["resolver_got_new_s"], "%.2f s"), r["last_old_s"],
                            fmt(r["first_new_s"], "%.2f s"), r["requests_old_after_change"],
                            r["old_conns_used_after_change"], r["failed"],
                            r["proxy_error_log_errors"], r["conns_old_at_end"], r["wrk_rps"] or 0,
                            fmt(r["wrk_p99_ms"], "%.1f ms"), r["stop_reason"]))
        lines += ["", "Shim: %s. HAProxy: %s. \"failed\" is what wrk saw (non-2xx and socket "
                  "errors); the proxy's error.log lines are nginx's own account of upstream "
                  "errors it retried (with the shim: `writev() failed (32: Broken pipe)`, one "
                  "per connection failed at its send)." % (rc["shim_env"], rc["haproxy_resolvers"])]
    return "\n".join(lines)

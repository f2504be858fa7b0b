#!/usr/bin/env python3
"""The phases flow into the monitoring people already run: observe-slicer
export --format openmetrics, read by a real node_exporter's textfile
collector, scraped by a real Prometheus on loopback, and a quantile of T4
asked back through Prometheus's HTTP API agrees with summary.  A hostile
tag value stays a label value."""
import json
import os
import re
import subprocess
import time
import urllib.parse
import urllib.request

import obstest as T
from obstest import test

NETCLIENT = os.path.join(T.PROGS, "netclient")
NASTY = 'a"b\\c\nd} x{y="z"'


def start(case, name, argv):
    out = open(os.path.join(case.dir, name + ".log"), "w")
    p = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    case.procs.append(p)
    return p


def query(port, expr):
    url = "http://127.0.0.1:%d/api/v1/query?%s" % (port, urllib.parse.urlencode({"query": expr}))
    with urllib.request.urlopen(url, timeout=5) as r:
        body = json.load(r)
    T.eq(body["status"], "success", "query %s" % expr)
    return body["data"]["result"]


@test
def a_quantile_of_t4_comes_back_through_prometheus(case):
    T.need("prometheus")
    T.need("prometheus-node-exporter")
    port = T.httpd(case, size=100, delay_ms=2)
    logs = case.logdir()
    # the nasty value goes in by load -t: OBSERVE_TAGS and the wrapper refuse a newline
    T.run([NETCLIENT, "--port", str(port), "--conns", "20", "--requests", "3"], logdir=logs,
          env={"OBSERVE_TAGS": "server=web1"})
    db = os.path.join(case.dir, "o.db")
    T.tool(T.SLICER, "load", "-q", "-o", db, "-t", "note=" + NASTY, logs)
    textdir = os.path.join(case.dir, "textfile")
    os.mkdir(textdir)
    prom = T.tool(T.SLICER, "export", db, "--format", "openmetrics").stdout
    T.true(prom.endswith("# EOF\n"), "OpenMetrics ends with # EOF")
    buckets = sorted({float(b) for b in re.findall(r'^observe_t4_seconds_bucket\{.*le="([0-9.e+-]+)"\}', prom, re.M)})
    T.true(len(buckets) > 5, "T4's buckets are in the file: %r" % buckets)
    with open(os.path.join(textdir, "observe.prom"), "w") as f:
        f.write(prom)
    summary = json.loads(T.tool(T.SLICER, "summary", db, "--format", "json").stdout)
    (t4,) = [r for r in summary if r["phase"] == "T4"]

    ne_port, prom_port = T.free_port(), T.free_port()
    start(case, "node-exporter", ["prometheus-node-exporter", "--web.listen-address=127.0.0.1:%d" % ne_port,
                                  "--collector.disable-defaults", "--collector.textfile",
                                  "--collector.textfile.directory=" + textdir])
    config = os.path.join(case.dir, "prometheus.yml")
    with open(config, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: observe\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % ne_port)
    start(case, "prometheus", ["prometheus", "--config.file=" + config, "--web.listen-address=127.0.0.1:%d" % prom_port,
                               "--storage.tsdb.path=" + os.path.join(case.dir, "tsdb")])
    count = []
    deadline = time.time() + 60
    while time.time() < deadline and not count:
        time.sleep(1)
        try:
            count = query(prom_port, 'sum(observe_t4_seconds_count{server="web1"})')
        except OSError:
            pass
    T.true(count, "Prometheus scraped the file through node_exporter within 60 s (logs in %s)" % case.dir)
    T.eq(int(float(count[0]["value"][1])), t4["count"], "T4's count, as summary says")

    (q,) = query(prom_port, 'histogram_quantile(0.5, sum by (le) (observe_t4_seconds_bucket{server="web1"}))')
    median = float(q["value"][1])
    want = t4["median_ms"] / 1e3
    lo = max([0] + [b for b in buckets if b < want])
    hi = min([b for b in buckets if b >= want] + [float("inf")])
    print("# T4 median: summary %.6f s, Prometheus %.6f s (bucket %g..%g)" % (want, median, lo, hi))
    T.true(lo <= median <= hi, "Prometheus's median %.6f s in summary's bucket (%g, %g]" % (median, lo, hi))

    series = query(prom_port, 'observe_t7_seconds_count')
    T.true(series and all(s["metric"].get("tag_note") == NASTY for s in series),
           "the hostile tag came back as one label value: %r" % [s["metric"] for s in series])
    names = {s["metric"]["__name__"] for s in query(prom_port, '{__name__=~"observe.*"}')}
    want_names = {"observe_t%d_seconds_%s" % (n, k) for n in range(1, 8) for k in ("bucket", "count", "sum")}
    T.eq(names, want_names, "no series but the histograms")


if __name__ == "__main__":
    T.main()

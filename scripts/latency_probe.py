#!/usr/bin/env python3
# SPDX-License-Identifier: BSD-2-Clause
"""A latency probe for make bench's open-loop rows: RATE requests a second
for SECONDS on one keep-alive connection, each sent at its scheduled time;
a request's latency runs from that time to its answer's last byte, so a
stall delays the requests behind it too (no coordinated omission).
Prints "P50_MS P99_MS N".
Usage: latency_probe.py HOST PORT PATH RATE SECONDS [tls]
(tls: over HTTPS, the certificate not checked)
"""
import http.client
import ssl
import sys
import time


def main():
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rate, secs = float(sys.argv[4]), float(sys.argv[5])
    if len(sys.argv) > 6 and sys.argv[6] == "tls":
        c = http.client.HTTPSConnection(
            host, port, timeout=10,
            context=ssl._create_unverified_context())
    else:
        c = http.client.HTTPConnection(host, port, timeout=10)
    lat = []
    start = time.perf_counter()
    n = int(rate * secs)
    for i in range(n):
        due = start + i / rate
        now = time.perf_counter()
        if due > now:
            time.sleep(due - now)
        c.request("GET", path)
        c.getresponse().read()
        lat.append((time.perf_counter() - due) * 1000.0)
    lat.sort()
    if not lat:
        print("nan nan 0")
        return
    print("%.3f %.3f %d" % (lat[len(lat) // 2],
                            lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                            len(lat)))


main()

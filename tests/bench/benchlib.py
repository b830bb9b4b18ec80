"""What bench.py and fleet.py share: the counting loopback mirror, GNU time
around a command, and ratios."""

import functools
import http.server
import subprocess
import sys
import tempfile
import threading
import time


def serve(directory):
    """The fixture repo on 127.0.0.1 (a free port): (server, url, counter)."""
    counter = Counter()
    handler = functools.partial(QuietHandler, counter, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}", counter


class Counter:
    """Requests, RPM requests and bytes the mirror served since the last take()."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        self.requests = 0
        self.rpms = 0
        self.bytes = 0

    def add(self, n, path):
        with self.lock:
            self.requests += 1
            self.rpms += path.split("?")[0].endswith(".rpm")
            self.bytes += n

    def take(self):
        with self.lock:
            got = {"mirror_requests": self.requests, "mirror_rpm_requests": self.rpms,
                   "mirror_bytes": self.bytes}
            self.reset()
            return got


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, counter, *args, **kw):
        self.counter = counter
        super().__init__(*args, **kw)

    def log_message(self, *args):
        pass

    def copyfile(self, source, outputfile):
        data = source.read()
        self.counter.add(len(data), self.path)
        outputfile.write(data)


def timed(argv, **kw):
    """Run argv under GNU time; return ({wall_s, cpu_s, peak_rss_kib}, stdout).
    A failed step ends the benchmark with its stderr."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        cmd = ["/usr/bin/time", "-f", "%e %U %S %M", "-o", tf.name] + argv
        start = time.monotonic()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            sys.exit(f"benchmark step failed: {' '.join(map(str, argv))}\n{proc.stderr[-3000:]}")
        fields = tf.read().split()
        _, user, sys_, rss = (float(x) for x in fields[-4:])
        return {"wall_s": round(wall, 3), "cpu_s": round(user + sys_, 3), "peak_rss_kib": int(rss)}, proc.stdout


def ratio(a, b):
    return round(a / b, 3) if b else None

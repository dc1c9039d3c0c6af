"""
Every command line that appears on this machine while a block runs, sampled
from /proc every 20 ms in a thread. The lab's containers are child PID
namespaces of this one, so their processes are listed too.
"""

import os
import threading
import time


class CommandLines:
    def __init__(self, interval=0.02):
        self.interval = interval
        self.seen = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="cmdlines", daemon=True)

    def _sample(self):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        raw = f.read()
                except OSError:
                    continue
                if raw:
                    self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace").strip())

    def _loop(self):
        while not self._stop.is_set():
            self._sample()
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=10)

    def containing(self, needles):
        return sorted(line for line in self.seen if any(needle in line for needle in needles))

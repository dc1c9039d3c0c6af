"""
Every command line that appears on this machine while a block runs, sampled
from /proc every 20 ms in a thread. The lab's containers are child PID
namespaces of this one, so their processes are listed too.
"""

import os

from helpers.sampler import Sampler


class CommandLines(Sampler):
    interval = 0.02

    def __init__(self):
        super().__init__()
        self.seen = set()

    def sample(self):
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        raw = f.read()
                except OSError:
                    continue
                if raw:
                    self.seen.add(raw.replace(b"\0", b" ").decode(errors="replace").strip())

    def containing(self, needles):
        return sorted(line for line in self.seen if any(needle in line for needle in needles))

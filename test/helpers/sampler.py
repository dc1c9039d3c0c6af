"""A thread that calls ``sample()`` every ``interval`` seconds while a block runs."""

import threading
import time


class Sampler:
    interval = 0.25

    def __init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=type(self).__name__, daemon=True)
        self.failure = None  # what stopped the sampling early: the block's checks would be blind after it

    def sample(self):
        raise NotImplementedError

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.sample()
            except Exception as exc:  # kept, and raised by __exit__
                self.failure = exc
                return
            time.sleep(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=30)
        if self.failure is not None and exc[0] is None:
            stopped = f"{type(self).__name__} stopped sampling: {self.failure!r}"
            raise AssertionError(stopped) from self.failure

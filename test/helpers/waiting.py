"""Polling with a bound: one helper instead of a loop in every test."""

import time


def wait_until(condition, timeout, what, interval=0.5, retry_on=(OSError, ValueError, KeyError)):
    """
    Calls ``condition()`` every ``interval`` seconds until it returns something
    truthy, and returns that; an exception of ``retry_on`` counts as "not yet".
    After ``timeout`` seconds, AssertionError naming ``what`` and the last answer.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            last = condition()
            if last:
                return last
        except retry_on as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")
        time.sleep(interval)

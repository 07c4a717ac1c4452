"""Runs a stress test's writer and reader threads for a bounded time, then stops and joins them."""

from __future__ import annotations

import threading
import time
from typing import Callable


def run_threads(writer: Callable[[int], None], writers: int, reader: Callable[[int], None], readers: int,
                stop: threading.Event, seconds: float, join_timeout: float) -> None:
    """`writer(i)` for i in range(writers) and `reader(100 + i)` for i in range(readers), for `seconds`."""
    threads = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    threads += [threading.Thread(target=reader, args=(100 + i,)) for i in range(readers)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join(timeout=join_timeout)

"""Named failure injection for fault tests, off unless LETHE_FAILPOINTS lists a point.

Fault behaviour (fail closed, isolate a row) has to be shown on the real server, and the real
detector does not fail on demand; a failpoint makes it fail at exactly one place.
"""

from __future__ import annotations

import os


class InjectedFault(RuntimeError):
    pass


def armed(name: str) -> bool:
    return name in os.environ.get("LETHE_FAILPOINTS", "").split(",")


def failpoint(name: str) -> None:
    if armed(name):
        raise InjectedFault(f"failpoint {name!r} is armed")

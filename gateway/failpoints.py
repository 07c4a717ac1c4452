"""Named failure injection for fault tests, off unless LETHE_FAILPOINTS lists a point.

Fault behaviour (fail closed, isolate a row) has to be shown on the real server, and the real
detector does not fail on demand; a failpoint makes it fail at exactly one place.
"""

from __future__ import annotations

import os
from typing import Callable


class InjectedFault(RuntimeError):
    pass


def armed(name: str, subject: Callable[[], str] | None = None) -> bool:
    """Whether `name` is armed: `name` always, `name=marker` only when the text `subject` gives
    contains the marker (so one server can fail one request and serve the others)."""
    for entry in os.environ.get("LETHE_FAILPOINTS", "").split(","):
        point, _, marker = entry.partition("=")
        if point == name and (not marker or (subject is not None and marker in subject())):
            return True
    return False


def failpoint(name: str, subject: Callable[[], str] | None = None) -> None:
    if armed(name, subject):
        raise InjectedFault(f"failpoint {name!r} is armed")

"""The process's open-file limit: every held connection is an open file."""

from __future__ import annotations

import contextlib
import logging
import resource

log = logging.getLogger("mercato.notify")


def allow_open_files(needed: int) -> int:
    """Raise the soft open-file limit towards ``needed`` (within the hard limit); returns it.

    Every held connection is an open file. Past the limit the server cannot accept at all,
    where the capacity check would have answered 503, so warn when it stays too low.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "open-file limit %d is below MERCATO_REALTIME_MAX_WAITING + 1024 (%d): raise it "
            "(ulimit -n) or lower the cap",
            soft,
            needed,
        )
    return int(soft)

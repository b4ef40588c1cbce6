"""Every held connection is an open file: the notifier makes room for its cap."""

from __future__ import annotations

import resource

from mercato.platform.open_files import allow_open_files


def test_the_open_file_limit_is_raised_towards_what_the_cap_needs() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        assert allow_open_files(512) == min(512, hard)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == min(512, hard)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

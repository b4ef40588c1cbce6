"""The most common passwords, which sign-up refuses (NIST SP 800-63B, section 5.1.1.2).

``common-passwords.txt.gz`` holds 19,640 passwords, lowercased and de-duplicated, one a line:
Royce Williams' list of the 20,000 most common passwords in public breach corpora
(https://gist.github.com/roycewilliams/226886fd01572964e1431ac8afc999ce), as the Django
project ships it (``django/contrib/auth/common-passwords.txt.gz`` in Django 5.2.19, BSD 3-Clause
licence: ``common-passwords.LICENSE`` beside it). Passwords shorter than the length policy are
refused before the list is consulted.

The list is read once, on the first check, in a worker thread (it takes a few milliseconds);
every check after that is one lookup in a frozenset.
"""

from __future__ import annotations

import gzip
from importlib import resources

import anyio.to_thread

_LIST = "common-passwords.txt.gz"
_loaded: list[frozenset[str]] = []


def _read() -> frozenset[str]:
    data = resources.files(__package__).joinpath(_LIST).read_bytes()
    return frozenset(gzip.decompress(data).decode("utf-8").split())


async def is_common(password: str) -> bool:
    """Whether the password (compared case-insensitively, surrounding blanks aside) is common."""
    if not _loaded:
        words = await anyio.to_thread.run_sync(_read)
        if not _loaded:
            _loaded.append(words)
    return password.strip().lower() in _loaded[0]

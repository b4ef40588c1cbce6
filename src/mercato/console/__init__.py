"""The staff console: server-rendered pages under ``/console`` for the people who run the shop.

It calls the other modules only through their facades, like any other client of them.
"""

from mercato.console.web import create

__all__ = ["create"]

"""Statistics: the figures a site shares with its municipality (docs/statistics.md)."""

from server.stats.figures import *  # noqa: F403  (the pure computation, as ``stats.summarize``; split next)

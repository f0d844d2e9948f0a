"""Statistics: the figures a site shares with its municipality (docs/statistics.md).

- ``figures``: the definitions, computed from rows (pure), and their CSV;
- ``reading``: the rows, read on a read-only connection of their own (``store.reader()``).

The figures' functions are also reachable from here (``stats.summarize``, ``stats.read_tickets``), as
gpiozero's package names its devices.
"""

from server.stats.figures import (
    DEFAULT_TARGET_MIN,
    DIMENSIONS,
    FEEDBACK_DIMENSIONS,
    PRINTER_DOWN,
    SUMMARY_CSV_FIGURES,
    TICKET_CSV_COLUMNS,
    TICKET_FIELDS,
    DeviceChange,
    Feedback,
    LocalTime,
    Summary,
    TicketFacts,
    csv_text,
    day_hours,
    downtime,
    nearest_rank,
    period_utc,
    summarize,
    summarize_many,
    summary_csv_rows,
    ticket_csv_rows,
    ticket_facts,
)
from server.stats.reading import (
    read_bookings,
    read_device_changes,
    read_events,
    read_feedback,
    read_first_calls,
    read_tickets,
    table_exists,
)

__all__ = [
    "DEFAULT_TARGET_MIN", "DIMENSIONS", "FEEDBACK_DIMENSIONS", "PRINTER_DOWN", "SUMMARY_CSV_FIGURES",
    "TICKET_CSV_COLUMNS", "TICKET_FIELDS", "DeviceChange", "Feedback", "LocalTime", "Summary", "TicketFacts",
    "csv_text", "day_hours", "downtime", "nearest_rank", "period_utc", "summarize", "summarize_many",
    "summary_csv_rows", "ticket_csv_rows", "ticket_facts", "read_bookings", "read_device_changes", "read_events",
    "read_feedback", "read_first_calls", "read_tickets", "table_exists",
]

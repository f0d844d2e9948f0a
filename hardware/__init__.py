"""Receipt printers (and, later, button boxes): layouts, connections, health, a virtual printer.

Kept import-free so a button box importing ``hardware.button_cli`` does not
load python-escpos. The kiosk uses::

    from hardware.printer import open_printer, PrintResult
    from hardware.receipts import QueueTicket, BookingCheckIn, EventSignup
    from hardware.status import StatusPublisher
"""

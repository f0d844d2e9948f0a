"""Booked times: slots, capacity, check-in at the kiosk, no-shows, imports, retention (docs/bookings.md).

One module per concept:

- ``settings``: the ``[bookings]`` section and each service's ``[services.<id>.booking]``;
- ``records``: the rows (``Booking`` and the records a change travels in), their tables, how they are written;
- ``imports``: a booking system's CSV or iCalendar export, read into rows;
- ``book``: ``BookingBook``, the rules, run on the hub's writer thread;
- ``routes``: the HTTP API (staff bookings, imports, check-in, slots, booking at the kiosk).
"""

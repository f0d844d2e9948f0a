"""What's on: events from iCalendar feeds, the DPL CMS events API and staff; sign-ups with a waiting list.

One module per concept (docs/bookings.md, "What's on"):

- ``settings``: the ``[events]`` section (feeds, refresh, horizon, waiting lists);
- ``records``: ``Event`` and the sign-up rows, their tables, how they are written;
- ``feeds``: iCalendar and DPL CMS parsing, and the thread that fetches the feeds;
- ``programme``: ``Programme``, the events and sign-ups on the hub's writer thread;
- ``routes``: the HTTP API (the programme, staff events, sign-ups at the kiosk, feed health).
"""

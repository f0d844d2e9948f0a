"""Refusal codes: the ``error.code`` of every answer in which the hub says no, in one place.

Part of the contract, like ``vuoro/protocol.py``: the hub raises these (``server/engine.py``, ``server/api.py``,
``server/auth.py``, and the bookings, events and feedback plugins) and clients branch on them
(``kiosk/model.py`` says each one in the visitor's words). Standard library only, so a kiosk or a
screen can import it without the hub's dependencies. ``docs/protocol.md`` and ``docs/bookings.md``
say when each is answered; every error body is ``{"error": {"code", "message", "field", …}}``.

A code names what happened, never how to say it: the message is for people, the code for programs.
"""

from __future__ import annotations

# -- any request -------------------------------------------------------------------------------------------------
INVALID = "invalid"  # 422: a field is missing or malformed; ``field`` names it
UNREADABLE = "unreadable"  # 422: an uploaded file could not be read (a booking import)
UNAUTHORIZED = "unauthorized"  # 401: no token or login, or one the hub does not know
FORBIDDEN = "forbidden"  # 403: this kind of device or person may not do this
CSRF = "csrf"  # 403: a change from the staff page without the page's security token
IDEMPOTENCY_KEY = "idempotency_key"  # 400: a change without a well-formed Idempotency-Key header
IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"  # 409: the key was used before for another request
TOO_LARGE = "too_large"  # 413: the body is larger than the hub takes at this address
STORE_UNAVAILABLE = "store_unavailable"  # 503: the hub could not save; nothing changed, try again
HTTP_PREFIX = "http_"  # http_404, http_405…: the HTTP status itself, where nothing more specific applies
HTTP_NOT_FOUND = "http_404"
TOO_MANY_STREAMS = "too_many_streams"  # 429: this address has as many event streams open as it may
STREAMS_FULL = "streams_full"  # 503: the hub serves as many event streams as it can

# -- tickets and counters (server/engine.py, server/api.py) -----------------------------------------------------
UNKNOWN_SERVICE = "unknown_service"  # 404
UNKNOWN_COUNTER = "unknown_counter"  # 404
UNKNOWN_TICKET = "unknown_ticket"  # 404: not in today's queue
CLOSED = "closed"  # 409: the service is closed now; ``opens_at`` says when it opens
BOOKING_ONLY = "booking_only"  # 409: the service takes booked visitors only
NO_CURRENT_VISITOR = "no_current_visitor"  # 409: the counter is serving no one
SAME_SERVICE = "same_service"  # 409: a transfer to the line the visitor is already in

# -- check-in with a booking or sign-up code (server/bookings/, server/events/) ----------------------------------
# A sign-up's refusals carry ``event`` (and ``signup``: its seat or waiting-list place), a booking's ``booking``.
NOT_FOUND = "not_found"  # 404: no booking or sign-up has this code (or it cannot be a code: the message says why)
SLOW_DOWN = "slow_down"  # 429: too many wrong codes here; ``retry_after`` seconds
OTHER_SITE = "other_site"  # 409: the booking is at another branch
OTHER_DAY = "other_day"  # 409: the booking (or the event signed up for) is on another day
TOO_EARLY = "too_early"  # 409: ``come_back_at`` says when check-in opens
TOO_LATE = "too_late"  # 409: the booking's time has passed; take a ticket instead (an event: it is over)
ALREADY_CHECKED_IN = "already_checked_in"  # 409: with the ticket made at the first check-in
CANCELLED = "cancelled"  # 409: the booking (or the event) was cancelled
WAITING_LIST = "waiting_list"  # 409: the sign-up is on the event's waiting list (``waiting_place``): no seat yet

# -- booking a time (server/bookings/) ---------------------------------------------------------------------------
UNKNOWN_BOOKING = "unknown_booking"  # 404
NO_SELF_BOOKING = "no_self_booking"  # 409: this service is booked at the desk or by phone
NOT_A_SLOT = "not_a_slot"  # 422: not one of the offered times
SLOTS = "slots"  # 422: more slots than the service takes in one booking
NO_SLOT = "no_slot"  # 409: no one takes bookings then, or it can no longer be booked
FULL = "full"  # 409: the time (or the event and its waiting list) is fully booked
NOT_FREE = "not_free"  # 409: no one is free right now for a here-and-now booking
PAST = "past"  # 409: the time has passed
CHECKED_IN = "checked_in"  # 409: a checked-in booking cannot be cancelled
# -- the public booking page (/book/, server/bookings/public.py) ------------------------------------------------
NOT_ONLINE = "not_online"  # 409: this service is not booked online (the page says how else)
NOT_OPEN_YET = "not_open_yet"  # 409: the day's times are not open for booking yet; ``opens_at`` says when
TOO_SOON = "too_soon"  # 409: too close to the time to book or move online; ``until_min``
PER_DAY = "per_day"  # 409: this phone or e-mail already has the service's bookings for that day; ``per_day``

# -- events and sign-ups (server/events/) ------------------------------------------------------------------------
UNKNOWN_EVENT = "unknown_event"  # 404
NOT_LOCAL = "not_local"  # 409: a feed's event is cancelled in its feed, not here
NO_SIGNUP = "no_signup"  # 409: the event needs no sign-up here (``url`` may say where)
STARTED = "started"  # 409: the event has begun
UNKNOWN_SIGNUP = "unknown_signup"  # 404: the event has no sign-up with this code (cancelled already?)

# -- feedback (server/feedback/) ---------------------------------------------------------------------------------
TOO_MANY = "too_many"  # 429: too many ratings from this screen; ``retry_after_s``

# -- not the hub's: what a client says when no answer came -------------------------------------------------------
UNREACHABLE = "unreachable"  # the kiosk's own code for a request that got no answer (kiosk/client.py)

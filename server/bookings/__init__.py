"""Booked times: slots, capacity, check-in at the kiosk, no-shows, imports, retention."""

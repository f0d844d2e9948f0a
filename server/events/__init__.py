"""What's on: events from feeds and staff, sign-ups with a waiting list."""

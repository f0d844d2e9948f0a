"""Tools that need the hub, a broker or a printer: above everything they use, used by nothing below.

``vuoro/`` is the base every device installs; ``server/``, ``kiosk/``,
``display/`` and ``hardware/`` build on it. The tools here stand on all of
them, so none of those packages imports this one:

- ``demo``: ``vuoro demo``, the whole system on one machine;
- ``doctor``: ``vuoro doctor``, checks a site's config, hub, broker and printer;
- ``broker``: a private Mosquitto (or amqtt) on a free port;
- ``hub_process``: the real ``vuoro hub`` as a child process, with a settable clock;
- ``hub_in_process``: a whole hub in this process (store, writer, MQTT link, HTTP);
- ``fake_hub``: a stand-in hub for screens (MQTT publisher, SSE replay);
- ``hostile``: raw-socket clients that misbehave on purpose;
- ``mqtt_watch``: an MQTT subscriber that records what arrives, for tests to wait on;
- ``polling``: ``wait_until``, a bounded wait for a condition;
- ``fixtures``: all of the above as pytest fixtures (the test kit; ``tests/conftest.py`` loads it);
- ``signage_screenshots``, ``kiosk_screenshots``: regenerate docs/screenshots/signage/ and docs/screenshots/kiosk/.
"""

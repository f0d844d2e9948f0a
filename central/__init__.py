"""The centre: a municipality's branches on one PostgreSQL (``vuoro central``; docs/central.md).

A branch hub with ``[central]`` ships every row the centre needs through its outbox and uplink
(``server/uplink/``); the centre stores each batch in one transaction (``ingest``), with a schema and
migrations of its own (``schema``), and tells about its branches (``figures``, ``app``, ``page``). The
centre stands on the hub's definitions (the site config loader, the statistics' figures); the hub never
imports the centre.
"""

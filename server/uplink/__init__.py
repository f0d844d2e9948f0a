"""The uplink: a branch hub ships what it commits to the municipality's centre (``central/``).

- ``outbox``: the rows the centre needs, written by the writer in the same transaction as the change;
- ``shipper``: the thread (never the writer) that ships them in order and has the writer mark them shipped.

A site without ``[central]`` writes no outbox and starts no uplink: it runs alone, as always.
docs/central.md tells the protocol and why a crash anywhere re-sends and a re-send changes nothing.
"""

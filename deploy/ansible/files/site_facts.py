#!/usr/bin/env python3
"""Print what the playbook needs from a site config, as JSON (run on the controller).

Standard library only (Python 3.11+ for tomllib), so the controller needs no
Vuoro install. The full validation happens on the hub (``vuoro hub --check``).
"""

import json
import sys
import tomllib

with open(sys.argv[1], "rb") as handle:
    data = tomllib.load(handle)
hub = data.get("hub", {})
listen = str(hub.get("listen", "127.0.0.1:8080"))
print(json.dumps({
    "site": data["site"]["id"],
    "root": hub.get("topic_root", "vuoro"),
    "port": int(listen.rpartition(":")[2]),
    "devices": {
        device_id: {"kind": item.get("kind"), "token": item.get("token"), "counters": item.get("counters", [])}
        for device_id, item in data.get("devices", {}).items()
    },
}))

"""The local operator's client for our own HTTP API (the CLI and the demo use it): the service token
comes from the state directory's secrets file, which only the operator can read."""
from __future__ import annotations

import json
import urllib.request

from core.config import HotlineConfig
from store.secrets import load_or_create


def operator_api(cfg: HotlineConfig, path: str, method: str = "GET", body: dict | None = None,
                 timeout: float = 5):
    c = cfg.system.controller
    req = urllib.request.Request(f"http://{c.http_host}:{c.http_port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {load_or_create(cfg).service_token}"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())

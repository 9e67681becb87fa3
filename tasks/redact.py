"""Secrets out of messages: every URL shown to a person goes through ``mask_url``.

A Redis, broker or database URL may hold a password; a webhook URL's path is
itself the secret. Errors, logs and CLI output print the masked form.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

MASK = "***"
# scheme:// then anything up to whitespace, a quote or punctuation around it
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>(),;]+")
# Webhook URLs carry their token in the path.
_SECRET_PATH_SCHEMES = ("http", "https")


def mask_url(url: str) -> str:
    """``url`` with its password (and, for http(s), its path and query) replaced by ***."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        scheme = url.split("://", 1)[0]
        return f"{scheme}://{MASK}"
    netloc = host if ":" not in host else f"[{host}]"
    if port is not None:
        netloc = f"{netloc}:{port}"
    if parts.username is not None or parts.password is not None:
        user = parts.username or ""
        netloc = f"{user}:{MASK}@{netloc}" if parts.password is not None else f"{user}@{netloc}"
    path, query = parts.path, parts.query
    if parts.scheme.lower() in _SECRET_PATH_SCHEMES and (path.strip("/") or query):
        path, query = f"/{MASK}", ""
    return f"{parts.scheme}://{netloc}{path}" + (f"?{query}" if query else "")


def mask_urls(text: str) -> str:
    """``text`` with every URL in it masked."""
    return _URL.sub(lambda m: mask_url(m.group(0)), text)

# -*- coding: utf-8 -*-
# Copyright: ollama-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one JSON client of a node's own Ollama API, for the modules that change a node's models.

Stdlib only (urllib), Python 3.6+, no Ansible import. A 404 answers ``None`` (a model that is
not there); any other error status, a refused connection or a time-out raises OllamaApiError
with the method, the path and Ollama's own message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import json
from urllib.error import HTTPError, URLError
from urllib.request import Request, urlopen


class OllamaApiError(Exception):
    pass


def call(url, path, body=None, timeout=60, method="POST"):
    """The decoded JSON answer of ``method url+path`` with ``body`` as JSON ({} for an empty
    answer), or None for 404."""
    data = None if body is None else json.dumps(body).encode("utf-8")
    headers = {"Content-Type": "application/json"} if data is not None else {}
    req = Request(url.rstrip("/") + path, data=data, method=method, headers=headers)
    try:
        resp = urlopen(req, timeout=timeout)  # nosec - the node's own Ollama API
        text = resp.read().decode("utf-8")
    except HTTPError as exc:
        if exc.code == 404:
            return None
        detail = exc.read().decode("utf-8", "replace").strip()
        try:
            detail = json.loads(detail).get("error", detail)
        except (ValueError, AttributeError):
            pass
        raise OllamaApiError("%s %s: HTTP %d %s" % (method, path, exc.code, detail))
    except (URLError, OSError) as exc:
        raise OllamaApiError("%s %s: %s" % (method, path, exc))
    return json.loads(text) if text.strip() else {}

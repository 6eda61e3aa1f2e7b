# -*- coding: utf-8 -*-
# Copyright: ollama-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry protocol as Ollama's downloader speaks it (``server/images.go``,
``server/download.go``): the one definition, for the bundle command and the site mirror.

- A manifest: ``GET <scheme>://<host>/v2/<namespace>/<model>/manifests/<tag>`` with
  ``Accept: application/vnd.docker.distribution.manifest.v2+json``, redirects followed. Its bytes
  are kept as they came: their sha256 is the pin (the digest /api/tags lists).
- A blob: ``GET .../blobs/sha256:<hex>``, redirects followed only while the host name stays the
  same (any port). The URL the bytes are read from (the "direct URL") is either the target of a
  307 to another host name (registry.ollama.ai sends its CDN), or the ``Location`` header of the
  answer that ended the same-host chain (a 200, as the site mirror's nginx answers). Any other
  answer fails as Ollama fails: another redirect status is ``unexpected status code N``, an
  answer without ``Location`` is ``http: no Location header in response``.
- The bytes: ``GET <direct URL>`` with ``Range: bytes=<from>-<to>``, 206 answers; a part that
  arrived stays in the partial file, and the next request starts where it stopped.

Stdlib only (urllib: the controller's HTTP(S)_PROXY and NO_PROXY apply), no Ansible import.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import hashlib
import os
import re
import socket
import time

from http.client import HTTPException
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit
from urllib.request import HTTPRedirectHandler, Request, build_opener

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
USER_AGENT = "ollama-fleet-bundle/1"
CHUNK = 1 << 20
REDIRECTS = (301, 302, 303, 307, 308)
LAYER_DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


class RegistryError(Exception):
    """A download that failed; str() names the URL and the reason."""


def manifest_layers(manifest):
    """``[{digest, size}]`` of a manifest (dict): its layers, then its config, each digest once,
    in the order Ollama downloads them. A digest that is not ``sha256:<64 hex>`` raises ValueError."""
    out, seen = [], set()
    items = list(manifest.get("layers") or [])
    if isinstance(manifest.get("config"), dict) and manifest["config"].get("digest"):
        items.append(manifest["config"])
    for layer in items:
        digest = str(layer.get("digest", ""))
        if not LAYER_DIGEST_RE.match(digest):
            raise ValueError("layer digest %r is not sha256:<64 hex>" % digest)
        if digest in seen:
            continue
        seen.add(digest)
        out.append({"digest": digest, "size": int(layer.get("size", 0))})
    return out


class _SameHostRedirects(HTTPRedirectHandler):
    """Follows redirects as Go's client does, except that a request marked ``same_host_only``
    is not followed to another host name: the redirect then surfaces as an HTTPError."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        same_host_only = getattr(req, "same_host_only", False)
        if same_host_only and urlsplit(newurl).hostname != urlsplit(req.full_url).hostname:
            return None
        new = HTTPRedirectHandler.redirect_request(self, req, fp, code, msg, headers, newurl)
        if new is not None:
            new.same_host_only = same_host_only
        return new


_OPENER = build_opener(_SameHostRedirects)


def open_url(url, headers=None, same_host_only=False, timeout=60.0, method="GET"):
    """The response to one request (redirects followed, see _SameHostRedirects); an HTTP error
    status raises urllib's HTTPError, a network failure URLError or OSError."""
    req = Request(url, headers=dict({"User-Agent": USER_AGENT}, **(headers or {})), method=method)
    req.same_host_only = same_host_only
    return _OPENER.open(req, timeout=timeout)


def fetch_manifest(url, timeout=60.0):
    """The manifest's bytes, exactly as the registry sent them (asked with Ollama's Accept)."""
    try:
        resp = open_url(url, {"Accept": MANIFEST_MEDIA_TYPE}, timeout=timeout)
        try:
            return resp.read()
        finally:
            resp.close()
    except HTTPError as exc:
        raise RegistryError("GET %s: %d %s" % (url, exc.code, exc.reason))
    except (URLError, HTTPException, OSError) as exc:
        raise RegistryError("GET %s: %s" % (url, getattr(exc, "reason", exc)))


def direct_url(url, timeout=60.0):
    """The URL a blob's bytes are read from, resolved as Ollama's downloader resolves it (see the
    module's docstring): a 307 to another host name, or the Location of a same-host answer."""
    try:
        resp = open_url(url, same_host_only=True, timeout=timeout)
    except HTTPError as exc:
        location = exc.headers.get("Location") if exc.headers else None
        if exc.code in REDIRECTS and location:
            if exc.code != 307:
                raise RegistryError("GET %s: unexpected status code %d" % (url, exc.code))
            return urljoin(exc.geturl() or url, location)
        raise RegistryError("GET %s: %d %s" % (url, exc.code, exc.reason))
    except (URLError, HTTPException, OSError) as exc:
        raise RegistryError("GET %s: %s" % (url, getattr(exc, "reason", exc)))
    location, final = resp.headers.get("Location"), resp.geturl()
    resp.close()  # the body is read with Range requests from the direct URL
    if not location:
        raise RegistryError("GET %s: http: no Location header in response" % url)
    return urljoin(final, location)


def _hash_existing(path, digest):
    """Feed the bytes already in ``path`` to ``digest``; their count."""
    done = 0
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
            done += len(block)
    return done


def _content_range_start(value):
    match = re.match(r"^bytes (\d+)-(\d+)/(\d+|\*)$", (value or "").strip())
    if not match:
        return None, None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def download(url, partial, size=None, progress=None, retries=5, timeout=60.0, sleep=time.sleep):
    """Fetch ``url`` into the file ``partial``, resuming the bytes it already holds, hashing
    while the bytes arrive. ``size`` (known from a manifest) bounds the Range asked; unknown, the
    answer's Content-Range / Content-Length gives it. A network failure or a 5xx is retried
    ``retries`` times from where the file stopped. ``progress(done, total)`` is called as bytes
    arrive. Returns ``{sha256, size, fetched}`` (``fetched``: bytes that came over the network)."""
    digest = hashlib.sha256()
    have = 0
    if os.path.exists(partial):
        if size is not None and os.path.getsize(partial) > size:
            os.truncate(partial, 0)
        have = _hash_existing(partial, digest)
    total = size
    fetched = 0
    attempt = 0
    started = have
    while True:
        if total is not None and have >= total:
            break
        rng = "bytes=%d-%s" % (have, "" if total is None else total - 1)
        if have > started:
            attempt = 0  # bytes came since the last failure: a fresh set of retries
        started = have
        try:
            resp = open_url(url, {"Range": rng}, timeout=timeout)
        except HTTPError as exc:
            if exc.code == 416 and have > 0 and total is None:
                # Asked from the end of a complete partial file: nothing is left to fetch.
                break
            if exc.code < 500 or attempt >= retries:
                raise RegistryError("GET %s (%s): %d %s" % (url, rng, exc.code, exc.reason))
            attempt += 1
            sleep(min(2 ** attempt, 30))
            continue
        except (URLError, HTTPException, OSError) as exc:
            if attempt >= retries:
                raise RegistryError("GET %s (%s): %s" % (url, rng, getattr(exc, "reason", exc)))
            attempt += 1
            sleep(min(2 ** attempt, 30))
            continue
        try:
            status = resp.getcode()
            if status == 206:
                start, whole = _content_range_start(resp.headers.get("Content-Range"))
                if start != have:
                    raise RegistryError("GET %s (%s): answered Content-Range %r" % (url, rng, resp.headers.get("Content-Range")))
                if total is None:
                    total = whole
            else:
                # The server ignored Range: the whole body comes again, from byte 0.
                if have:
                    os.truncate(partial, 0)
                    digest, have = hashlib.sha256(), 0
                length = resp.headers.get("Content-Length")
                if total is None and length is not None:
                    total = int(length)
            with open(partial, "ab") as out:
                while True:
                    want = CHUNK if total is None else min(CHUNK, total - have)
                    if want <= 0:
                        break
                    block = resp.read(want)
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    have += len(block)
                    fetched += len(block)
                    if progress:
                        progress(have, total)
        except (HTTPException, OSError, socket.timeout) as exc:
            if attempt >= retries:
                raise RegistryError("GET %s: %s after %d bytes" % (url, exc, have))
            attempt += 1
            sleep(min(2 ** attempt, 30))
            continue
        finally:
            resp.close()
        if total is None:
            break  # no length given: the body ended where the server ended it
        if have < total:
            if attempt >= retries:
                raise RegistryError("GET %s: the answer ended at byte %d of %d" % (url, have, total))
            attempt += 1
            sleep(min(2 ** attempt, 30))
    return {"sha256": digest.hexdigest(), "size": have, "fetched": fetched}

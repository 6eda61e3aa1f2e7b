"""Model names, parsed like Ollama's types/model package.

``qwen3:4b`` -> host registry.ollama.ai, namespace library, model qwen3, tag 4b.
"""

import os
from typing import NamedTuple

DEFAULT_HOST = "registry.ollama.ai"
DEFAULT_NAMESPACE = "library"
DEFAULT_TAG = "latest"
DEFAULT_SCHEME = "https"
MISSING = "!MISSING!"

_KIND_HOST, _KIND_NAMESPACE, _KIND_MODEL, _KIND_TAG = range(4)


class Name(NamedTuple):
    host: str
    namespace: str
    model: str
    tag: str
    scheme: str

    def is_valid(self) -> bool:
        parts = (self.host, self.namespace, self.model, self.tag)
        return all(_valid_part(kind, part) for kind, part in enumerate(parts))

    def display_shortest(self) -> str:
        if self.host.lower() != DEFAULT_HOST:
            prefix = "%s/%s/" % (self.host, self.namespace)
        elif self.namespace.lower() != DEFAULT_NAMESPACE:
            prefix = self.namespace + "/"
        else:
            prefix = ""
        return "%s%s:%s" % (prefix, self.model, self.tag)

    def full(self) -> str:
        return "%s/%s/%s:%s" % (self.host, self.namespace, self.model, self.tag)

    def filepath(self) -> str:
        return os.path.join(self.host, self.namespace, self.model, self.tag)

    def namespace_model(self) -> str:
        return "%s/%s" % (self.namespace, self.model)


def _cut_promised(text: str, sep: str):
    idx = text.rfind(sep)
    if idx < 0:
        return text, "", False
    return (text[:idx] or MISSING), (text[idx + len(sep) :] or MISSING), True


def parse_bare(text: str) -> Name:
    host = namespace = model = tag = scheme = ""
    if text.rfind(":") > text.rfind("/"):
        text, tag, _ = _cut_promised(text, ":")
    rest, model, promised = _cut_promised(text, "/")
    if not promised:
        return Name("", "", rest, tag, "")
    rest, namespace, promised = _cut_promised(rest, "/")
    if not promised:
        return Name("", rest, model, tag, "")
    scheme_part, sep, host_part = rest.partition("://")
    if sep:
        scheme, host = scheme_part, host_part
    else:
        host = rest
    return Name(host, namespace, model, tag, scheme)


def parse(text: str) -> Name:
    """ParseName: fill the missing parts with registry.ollama.ai/library/...:latest."""
    bare = parse_bare(text)
    return Name(
        bare.host or DEFAULT_HOST,
        bare.namespace or DEFAULT_NAMESPACE,
        bare.model,
        bare.tag or DEFAULT_TAG,
        bare.scheme or DEFAULT_SCHEME,
    )


def from_filepath(rel: str) -> "Name":
    parts = rel.split(os.sep)
    if len(parts) != 4:
        return Name("", "", "", "", "")
    return Name(parts[0], parts[1], parts[2], parts[3], DEFAULT_SCHEME)


def _alnum_or_underscore(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z") or ("0" <= ch <= "9") or ch == "_"


def _valid_part(kind: int, part: str) -> bool:
    limit = 350 if kind == _KIND_HOST else 80
    if not 1 <= len(part) <= limit:
        return False
    for i, ch in enumerate(part):
        if i == 0:
            if not _alnum_or_underscore(ch):
                return False
            continue
        if ch in "_-":
            continue
        if ch == ".":
            if kind == _KIND_NAMESPACE:
                return False
            continue
        if ch == ":":
            if kind != _KIND_HOST:
                return False
            continue
        if not _alnum_or_underscore(ch):
            return False
    return True

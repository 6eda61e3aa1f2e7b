"""Ollama's on-disk model store: manifests/<host>/<ns>/<model>/<tag> and blobs/sha256-<hex>."""

import hashlib
import json
import os
import re
import tempfile
from typing import Any, BinaryIO, Dict, Iterable, List, Optional, Tuple

from . import gguf, names

MANIFEST_MEDIA_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG_MEDIA_TYPE = "application/vnd.docker.container.image.v1+json"
MT_MODEL = "application/vnd.ollama.image.model"
MT_TEMPLATE = "application/vnd.ollama.image.template"
MT_SYSTEM = "application/vnd.ollama.image.system"
MT_PARAMS = "application/vnd.ollama.image.params"
MT_LICENSE = "application/vnd.ollama.image.license"
MT_MESSAGES = "application/vnd.ollama.image.messages"

_DIGEST_RE = re.compile(r"^sha256[:-][0-9a-fA-F]{64}$")


class InvalidDigest(ValueError):
    def __init__(self) -> None:
        super().__init__("invalid digest format")


class Store:
    def __init__(self, root: str) -> None:
        self.root = root

    # -- paths ---------------------------------------------------------------
    def manifests_dir(self) -> str:
        path = os.path.join(self.root, "manifests")
        os.makedirs(path, exist_ok=True)
        return path

    def blobs_dir(self) -> str:
        path = os.path.join(self.root, "blobs")
        os.makedirs(path, exist_ok=True)
        return path

    def blob_path(self, digest: str) -> str:
        if not _DIGEST_RE.match(digest):
            raise InvalidDigest()
        return os.path.join(self.blobs_dir(), digest.replace(":", "-"))

    def manifest_path(self, name: names.Name) -> str:
        return os.path.join(self.manifests_dir(), name.filepath())

    # -- blobs -----------------------------------------------------------------
    def new_layer(self, data: bytes, media_type: str) -> Dict[str, Any]:
        """manifest.NewLayer: store bytes as a blob; the status says whether it was new."""
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = self.blob_path(digest)
        status = "using existing layer"
        if not os.path.exists(path):
            status = "creating new layer"
            self._atomic_write(path, data)
        os.utime(path)
        return {"mediaType": media_type, "digest": digest, "size": len(data), "_status": "%s %s" % (status, digest)}

    def layer_from_blob(self, digest: str, media_type: str, source: str) -> Dict[str, Any]:
        """manifest.NewLayerFromLayer: reuse an existing blob, remembering where it came from."""
        path = self.blob_path(digest)
        size = os.path.getsize(path)
        os.utime(path)
        layer: Dict[str, Any] = {"mediaType": media_type, "digest": digest, "size": size}
        if source:
            layer["from"] = source
        layer["_status"] = "using existing layer %s" % digest
        return layer

    def write_blob_stream(self, stream: BinaryIO, length: Optional[int]) -> Tuple[str, str]:
        """Copy a request body into a temp blob; returns (digest, temp path)."""
        fd, tmp = tempfile.mkstemp(prefix="sha256-", dir=self.blobs_dir())
        sha = hashlib.sha256()
        remaining = length
        with os.fdopen(fd, "wb") as out:
            while remaining is None or remaining > 0:
                chunk = stream.read(1 << 20 if remaining is None else min(1 << 20, remaining))
                if not chunk:
                    break
                sha.update(chunk)
                out.write(chunk)
                if remaining is not None:
                    remaining -= len(chunk)
        return "sha256:" + sha.hexdigest(), tmp

    @staticmethod
    def _atomic_write(path: str, data: bytes) -> None:
        tmp = path + ".tmp-%d" % os.getpid()
        with open(tmp, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)

    # -- manifests ------------------------------------------------------------
    def read_manifest(self, name: names.Name) -> Tuple[Dict[str, Any], bytes, float]:
        """Returns (manifest, raw bytes, mtime); raises FileNotFoundError."""
        path = self.manifest_path(name)
        with open(path, "rb") as f:
            raw = f.read()
        return json.loads(raw), raw, os.stat(path).st_mtime

    def write_manifest(self, name: names.Name, config: Dict[str, Any], layers: List[Dict[str, Any]]) -> None:
        """manifest.WriteManifest: json.Encoder output, i.e. with a trailing newline."""
        doc = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": _clean_layer(config),
            "layers": [_clean_layer(layer) for layer in layers],
        }
        path = self.manifest_path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._atomic_write(path, json.dumps(doc, separators=(",", ":")).encode() + b"\n")

    def write_manifest_bytes(self, name: names.Name, raw: bytes) -> None:
        path = self.manifest_path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self._atomic_write(path, raw)

    def manifests(self) -> Dict[names.Name, Tuple[Dict[str, Any], bytes, float]]:
        """All valid manifests in the store (corrupt ones are skipped, like Manifests(true))."""
        found: Dict[names.Name, Tuple[Dict[str, Any], bytes, float]] = {}
        root = self.manifests_dir()
        for dirpath, _dirs, files in os.walk(root):
            for fname in files:
                rel = os.path.relpath(os.path.join(dirpath, fname), root)
                name = names.from_filepath(rel)
                if not name.is_valid():
                    continue
                try:
                    found[name] = self.read_manifest(name)
                except (OSError, ValueError):
                    continue
        return found

    def existing_name(self, name: names.Name) -> names.Name:
        """getExistingName: adopt the case of a stored model whose parts match case-insensitively."""
        host, ns, model, tag = name.host, name.namespace, name.model, name.tag
        for other in self.manifests():
            if other.host.lower() == host.lower():
                host = other.host
            if other.namespace.lower() == ns.lower():
                ns = other.namespace
            if other.model.lower() == model.lower():
                model = other.model
            if other.tag.lower() == tag.lower():
                tag = other.tag
        return names.Name(host, ns, model, tag, name.scheme)

    def delete(self, name: names.Name) -> None:
        manifest, _raw, _mtime = self.read_manifest(name)
        os.remove(self.manifest_path(name))
        self._prune_dirs(self.manifests_dir())
        self.remove_unused(layer["digest"] for layer in _all_layers(manifest))

    def remove_unused(self, digests: Iterable[str]) -> None:
        in_use = set()
        for manifest, _raw, _mtime in self.manifests().values():
            in_use.update(layer.get("digest", "") for layer in _all_layers(manifest))
        for digest in set(digests) - in_use:
            try:
                os.remove(self.blob_path(digest))
            except (OSError, InvalidDigest):
                pass

    def copy(self, src: names.Name, dst: names.Name) -> None:
        with open(self.manifest_path(src), "rb") as f:
            raw = f.read()
        if src.filepath() != dst.filepath():
            self.write_manifest_bytes(dst, raw)

    @staticmethod
    def _prune_dirs(root: str) -> None:
        for dirpath, _dirs, _files in sorted(os.walk(root), key=lambda e: -len(e[0])):
            if dirpath != root and not os.listdir(dirpath):
                os.rmdir(dirpath)

    # -- model view -------------------------------------------------------------
    def load_model(self, name: names.Name) -> "Model":
        manifest, raw, mtime = self.read_manifest(name)
        return Model(self, name, manifest, raw, mtime)


def _all_layers(manifest: Dict[str, Any]) -> List[Dict[str, Any]]:
    layers = list(manifest.get("layers") or [])
    if manifest.get("config", {}).get("digest"):
        layers.append(manifest["config"])
    return layers


def _clean_layer(layer: Dict[str, Any]) -> Dict[str, Any]:
    out = {"mediaType": layer["mediaType"], "digest": layer["digest"], "size": layer["size"]}
    if layer.get("from"):
        out["from"] = layer["from"]
    return out


class Model:
    """A stored model resolved into its parts (GetModel)."""

    def __init__(self, store: Store, name: names.Name, manifest: Dict[str, Any], raw: bytes, mtime: float) -> None:
        self.store = store
        self.name = name
        self.manifest = manifest
        self.digest = hashlib.sha256(raw).hexdigest()
        self.mtime = mtime
        self.config: Dict[str, Any] = {}
        self.model_path = ""
        self.parent_model = ""
        self.template: Optional[str] = None
        self.system = ""
        self.options: Dict[str, Any] = {}
        self.license: List[str] = []
        self.messages: List[Dict[str, str]] = []
        cfg_digest = manifest.get("config", {}).get("digest")
        if cfg_digest:
            with open(store.blob_path(cfg_digest), "rb") as f:
                self.config = json.load(f)
        for layer in manifest.get("layers") or []:
            path = store.blob_path(layer["digest"])
            media = layer.get("mediaType")
            if media == MT_MODEL:
                self.model_path = path
                self.parent_model = layer.get("from", "")
            elif media in (MT_TEMPLATE, "application/vnd.ollama.image.prompt"):
                self.template = _read_text(path)
            elif media == MT_SYSTEM:
                self.system = _read_text(path)
            elif media == MT_PARAMS:
                with open(path, "rb") as f:
                    self.options = json.load(f)
            elif media == MT_MESSAGES:
                with open(path, "rb") as f:
                    self.messages = json.load(f)
            elif media == MT_LICENSE:
                self.license.append(_read_text(path))

    @property
    def short_name(self) -> str:
        return self.name.display_shortest()

    def size(self) -> int:
        return sum(int(layer.get("size", 0)) for layer in _all_layers(self.manifest))

    def kv(self) -> Dict[str, Any]:
        if self.model_path and gguf.is_gguf(self.model_path):
            try:
                return gguf.read_metadata(self.model_path)
            except (OSError, gguf.GGUFError):
                return {}
        return {}

    def load_error(self) -> str:
        """Why loading the weights would fail (a malformed GGUF), or "" when they load."""
        if self.model_path and gguf.is_gguf(self.model_path):
            try:
                gguf.read_metadata(self.model_path)
            except (OSError, gguf.GGUFError) as exc:
                return "unable to load model: %s (%s)" % (self.model_path, exc)
        return ""

    def details(self) -> Dict[str, Any]:
        return {
            "parent_model": self.parent_model,
            "format": self.config.get("model_format", ""),
            "family": self.config.get("model_family", ""),
            "families": self.config.get("model_families"),
            "parameter_size": self.config.get("model_type", ""),
            "quantization_level": self.config.get("file_type", ""),
        }

    def capabilities(self) -> List[str]:
        caps: List[str] = list(self.config.get("capabilities") or [])
        kv = self.kv()
        if self.model_path and gguf.is_gguf(self.model_path):
            caps.append("embedding" if "pooling_type" in kv else "completion")
            if "vision.block_count" in kv:
                caps.append("vision")
        template = self.template or ""
        if ".Tools" in template:
            caps.append("tools")
        if ".Suffix" in template:
            caps.append("insert")
        if "<think>" in template and "</think>" in template:
            caps.append("thinking")
        seen: List[str] = []
        for cap in caps:
            if cap not in seen:
                seen.append(cap)
        return seen

    def trained_context_length(self) -> int:
        kv = self.kv()
        value = kv.get("%s.context_length" % kv.get("general.architecture", ""))
        return int(value) if isinstance(value, int) else 0


def _read_text(path: str) -> str:
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace")


#!/usr/bin/env python3
"""Build a synthetic model for the ollama STAND-IN (a test fixture: no weights, no inference).

    python3 tests/ollama_standin/build_model.py --name qwen3:4b --out MODELS_DIR [--size BYTES] [--seed S]
                                                [--variant thinking|instruct] [--answers FILE]

Writes an Ollama model store entry (OLLAMA_MODELS layout):
    MODELS_DIR/manifests/<host>/<namespace>/<model>/<tag>
    MODELS_DIR/blobs/sha256-<hex>   model (GGUF metadata + filler), template, license, params, config
The model blob is a GGUF v3 file with qwen3 metadata (4.0B parameters, Q4_K_M) and no tensors,
padded with deterministic pseudo-random bytes up to --size (streamed, never held in memory).
--answers FILE bakes an answer table (a JSON list of [regex, answer]) into the GGUF metadata
(`standin.answers`): those weights answer a prompt the table knows with its text, so a "good" and a
"bad" model differ on a golden set while the HTTP API stays Ollama's. A variant built FROM such a
model answers from the same weights (its model layer is the base's blob).
Output: line 1 = manifest digest (sha256 of the manifest file); line 2 = a JSON summary.
Same arguments -> same bytes -> same digest.
"""

import argparse
import hashlib
import json
import os
import re
import sys
from typing import Any, Dict, List, Tuple

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "src"))

from standin import gguf, gofmt, names  # noqa: E402
from standin.store import CONFIG_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, MT_LICENSE, MT_MODEL, MT_PARAMS, MT_TEMPLATE  # noqa: E402

BLOCK = 1 << 20

# A chat template in Ollama's Go-template dialect, written for the stand-in.  It
# mentions .Tools and <think> so the model reports the same capabilities as qwen3.
TEMPLATE = """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- if .Tools }}<|im_start|>system
Tools available:{{ range .Tools }} {{ .Function.Name }}{{ end }}<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

# The non-thinking (instruct) build: no <think> in the template, so no "thinking" capability,
# like qwen3:4b-instruct-2507-q4_K_M; it answers at once.
TEMPLATE_INSTRUCT = TEMPLATE.replace("{{ if .Thinking }}<think>{{ .Thinking }}</think>{{ end }}", "")

TEMPLATES = {"thinking": TEMPLATE, "instruct": TEMPLATE_INSTRUCT}

LICENSE = "Synthetic license text of an ollama stand-in test model.\nThis is not a real model and carries no weights.\n"

PARAMS = {"repeat_penalty": 1, "stop": ["<|im_start|>", "<|im_end|>"], "temperature": 0.6, "top_k": 20, "top_p": 0.95}


def metadata(family: str, param_count: int, seed: str, variant: str = "thinking",
             answers: str = "") -> List[Tuple[str, gguf.TypedValue]]:
    a = family
    # The default (thinking) build keeps its original bytes, so existing pins stay valid.
    label = "seed %s" % seed if variant == "thinking" else "seed %s, %s" % (seed, variant)
    tokens = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>", "hello", "world", "stand", "in"]
    # Without --answers nothing is added: existing pins keep their bytes.
    learned = [("standin.answers", (gguf.T_STRING, answers))] if answers else []
    return [
        ("general.architecture", (gguf.T_STRING, a)),
        ("general.type", (gguf.T_STRING, "model")),
        ("general.name", (gguf.T_STRING, "ollama stand-in synthetic model")),
        ("general.description", (gguf.T_STRING, "[ollama stand-in] synthetic test model, no weights (%s)" % label)),
        ("general.file_type", (gguf.T_UINT32, 15)),
        ("general.parameter_count", (gguf.T_UINT64, param_count)),
        ("general.quantization_version", (gguf.T_UINT32, 2)),
        ("%s.block_count" % a, (gguf.T_UINT32, 36)),
        ("%s.context_length" % a, (gguf.T_UINT32, 40960)),
        ("%s.embedding_length" % a, (gguf.T_UINT32, 2560)),
        ("%s.feed_forward_length" % a, (gguf.T_UINT32, 9728)),
        ("%s.attention.head_count" % a, (gguf.T_UINT32, 32)),
        ("%s.attention.head_count_kv" % a, (gguf.T_UINT32, 8)),
        ("%s.attention.key_length" % a, (gguf.T_UINT32, 128)),
        ("%s.attention.value_length" % a, (gguf.T_UINT32, 128)),
        ("%s.attention.layer_norm_rms_epsilon" % a, (gguf.T_FLOAT32, 1e-06)),
        ("%s.rope.freq_base" % a, (gguf.T_FLOAT32, 1000000.0)),
        ("tokenizer.ggml.model", (gguf.T_STRING, "gpt2")),
        ("tokenizer.ggml.pre", (gguf.T_STRING, "qwen2")),
        ("tokenizer.ggml.tokens", (gguf.T_ARRAY, (gguf.T_STRING, tokens))),
        ("tokenizer.ggml.token_type", (gguf.T_ARRAY, (gguf.T_INT32, [3, 3, 3, 4, 4, 1, 1, 1, 1]))),
        ("tokenizer.ggml.eos_token_id", (gguf.T_UINT32, 2)),
        ("tokenizer.ggml.padding_token_id", (gguf.T_UINT32, 0)),
    ] + learned


class BlobWriter:
    """Streams a blob into the store while hashing it."""

    def __init__(self, blobs_dir: str) -> None:
        self.blobs_dir = blobs_dir
        self.tmp = os.path.join(blobs_dir, "build-model-%d.tmp" % os.getpid())
        self.f = open(self.tmp, "wb")
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self.f.write(data)
        self.sha.update(data)
        self.size += len(data)

    def close(self, media_type: str) -> Dict[str, Any]:
        self.f.close()
        digest = "sha256:" + self.sha.hexdigest()
        os.chmod(self.tmp, 0o644)
        os.replace(self.tmp, os.path.join(self.blobs_dir, digest.replace(":", "-")))
        return {"mediaType": media_type, "digest": digest, "size": self.size}


def write_blob(blobs_dir: str, data: bytes, media_type: str) -> Dict[str, Any]:
    w = BlobWriter(blobs_dir)
    w.write(data)
    return w.close(media_type)


def write_model_blob(blobs_dir: str, header: bytes, size: int, seed: str) -> Dict[str, Any]:
    w = BlobWriter(blobs_dir)
    w.write(header)
    index = 0
    while w.size < size:
        block = hashlib.shake_256(("%s:%d" % (seed, index)).encode()).digest(min(BLOCK, size - w.size))
        w.write(block)
        index += 1
    return w.close(MT_MODEL)


def load_answers(path: str) -> str:
    """The answer table of --answers FILE as compact JSON, checked: a list of [regex, answer]."""
    with open(path, encoding="utf-8") as f:
        table = json.load(f)
    if not isinstance(table, list) or not all(
            isinstance(row, list) and len(row) == 2 and all(isinstance(x, str) and x for x in row) for row in table):
        raise SystemExit("build_model.py: %s must be a JSON list of [regex, answer] pairs of strings" % path)
    for pattern, _ in table:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise SystemExit("build_model.py: %s: %r is not a regular expression: %s" % (path, pattern, exc))
    return json.dumps(table, separators=(",", ":"), ensure_ascii=False)


def build(name_text: str, out: str, size: int, seed: str, family: str, param_count: int,
          variant: str = "thinking", answers: str = "") -> Tuple[str, Dict[str, Any]]:
    name = names.parse(name_text)
    if not name.is_valid():
        raise SystemExit("build_model.py: invalid model name %r" % name_text)
    blobs = os.path.join(out, "blobs")
    os.makedirs(blobs, exist_ok=True)
    header = gguf.encode_header(metadata(family, param_count, seed, variant, answers))
    layers = [
        write_model_blob(blobs, header, max(size, len(header)), seed),
        write_blob(blobs, TEMPLATES[variant].encode(), MT_TEMPLATE),
        write_blob(blobs, LICENSE.encode(), MT_LICENSE),
        write_blob(blobs, json.dumps(PARAMS, sort_keys=True, separators=(",", ":")).encode(), MT_PARAMS),
    ]
    config = {
        "model_format": "gguf",
        "model_family": family,
        "model_families": [family],
        "model_type": gofmt.human_number(param_count),
        "file_type": "Q4_K_M",
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]},
    }
    config_layer = write_blob(blobs, json.dumps(config, separators=(",", ":")).encode(), CONFIG_MEDIA_TYPE)
    manifest = {"schemaVersion": 2, "mediaType": MANIFEST_MEDIA_TYPE, "config": config_layer, "layers": layers}
    raw = json.dumps(manifest, separators=(",", ":")).encode()
    path = os.path.join(out, "manifests", name.filepath())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(raw)
    digest = hashlib.sha256(raw).hexdigest()
    summary = {
        "standin": True,
        "name": name.display_shortest(),
        "variant": variant,
        "manifest": path,
        "digest": digest,
        "size": sum(layer["size"] for layer in layers) + config_layer["size"],
        "layers": layers,
        "config": config_layer,
    }
    return digest, summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="model name, e.g. qwen3:4b or mirror.lan:8080/library/qwen3:4b")
    ap.add_argument("--out", required=True, help="models directory (OLLAMA_MODELS layout)")
    ap.add_argument("--size", type=int, default=0, help="model blob size in bytes (default: tiny)")
    ap.add_argument("--seed", default="0", help="seed of the filler bytes (changes the digest)")
    ap.add_argument("--family", default="qwen3", help="model architecture (default qwen3)")
    ap.add_argument("--parameter-count", type=int, default=4022468096, help="general.parameter_count (default 4.0B)")
    ap.add_argument("--variant", choices=sorted(TEMPLATES), default="thinking",
                    help="thinking (default: reasons before every answer, like qwen3:4b) or instruct (answers at once)")
    ap.add_argument("--answers", default="",
                    help="JSON file: a list of [regex, answer] baked into the weights (the model answers a matching prompt with it)")
    args = ap.parse_args()
    answers = load_answers(args.answers) if args.answers else ""
    digest, summary = build(args.name, args.out, args.size, args.seed, args.family, args.parameter_count, args.variant,
                            answers)
    print(digest)
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())

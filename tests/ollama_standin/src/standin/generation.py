"""Deterministic fake generation.  No inference happens: the text says so."""

import hashlib
import json
import re
from typing import Any, Dict, List, Optional, Tuple

_WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike "
    "november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:8]


def count_tokens(text: str) -> int:
    """A stand-in 'tokenizer': whitespace words plus one per 4 characters of long words."""
    return sum(1 + len(word) // 8 for word in text.split())


ANSWERS_KEY = "standin.answers"


def answer_table(kv: Dict[str, Any]) -> List[Tuple[str, str]]:
    """The answer table baked into a model's weights (build_model.py --answers): GGUF metadata
    `standin.answers`, a JSON list of [regex, answer]. Empty when absent or unusable."""
    raw = kv.get(ANSWERS_KEY)
    if not isinstance(raw, str):
        return []
    try:
        table = json.loads(raw)
    except ValueError:
        return []
    return [(str(row[0]), str(row[1])) for row in table if isinstance(row, list) and len(row) == 2]


def learned_answer(table: List[Tuple[str, str]], prompt: str) -> Optional[str]:
    """What the weights 'know' for this prompt: the answer of the first row whose regex is found
    (case-insensitive) in the conversation text; None when no row matches."""
    for pattern, answer in table:
        try:
            if re.search(pattern, prompt, re.IGNORECASE):
                return answer
        except re.error:
            continue
    return None


def tokens(model: str, prompt: str, system: str, options: Dict[str, Any], weights: str = "",
           answers: Optional[List[Tuple[str, str]]] = None) -> List[str]:
    """The full deterministic token sequence for a request, before num_predict/stop. As with a real
    model, the answer depends on the weights (the model blob's name, its digest): the same name
    and prompt at another pinned digest answers differently. Weights built with an answer table
    answer a prompt the table knows with its text (after the same stand-in header)."""
    seed = "%s\0%s\0%s\0%s\0%s" % (model, system, prompt, options.get("seed", ""), weights)
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    header = [
        "[ollama ",
        "stand-in] ",
        "model=%s " % model,
        "system=%s " % (short_hash(system) if system else "none"),
        "prompt=%s" % short_hash(prompt),
        ":",
    ]
    learned = learned_answer(answers or [], prompt)
    if learned is not None:
        return header + [" " + word for word in learned.split()]
    body_len = 8 + digest[0] % 17
    body = [" " + _WORDS[digest[(i % 31) + 1] % len(_WORDS)] for i in range(body_len)]
    return header + body + ["."]


def thinking_tokens(model: str, prompt: str, count: int) -> List[str]:
    """The deterministic reasoning a thinking model streams (message.thinking) before its answer."""
    if count <= 0:
        return []
    digest = hashlib.sha256(("think\0%s\0%s" % (model, prompt)).encode("utf-8")).digest()
    head = ["[ollama ", "stand-in] ", "thinking:"]
    body = [" " + _WORDS[digest[i % 32] % len(_WORDS)] for i in range(max(count - len(head), 0))]
    return (head + body)[:count]


def limit(seq: List[str], options: Dict[str, Any]):
    """Apply num_predict and stop sequences; returns (tokens, done_reason)."""
    out: List[str] = []
    num_predict = options.get("num_predict")
    stops = options.get("stop") or []
    if isinstance(stops, str):
        stops = [stops]
    text = ""
    for tok in seq:
        if isinstance(num_predict, (int, float)) and 0 <= num_predict <= len(out):
            return out, "length"
        text += tok
        hit = next((s for s in stops if s and s in text), None)
        if hit is not None:
            keep = text[: text.index(hit)]
            already = "".join(out)
            if len(keep) > len(already):
                out.append(keep[len(already) :])
            return out, "stop"
        out.append(tok)
    return out, "stop"


def context_ids(text: str, count: int) -> List[int]:
    """Fake token ids for /api/generate's deprecated 'context' field."""
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return [1 + (digest[i % 32] * 256 + digest[(i + 1) % 32] + i) % 151000 for i in range(max(count, 1))]

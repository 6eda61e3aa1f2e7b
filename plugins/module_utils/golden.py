# -*- coding: utf-8 -*-
# Copyright: ollama-fleet contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Golden questions: the one definition of the site's golden file, of a right answer and of the
resolution rate.

The file (YAML, beside the inventory; roles/ollama_verify/README.md documents it):

    cases:
      - name: return-window                 # unique: letters, digits, . _ -
        question: Can I return shoes after three weeks?
        # or, instead of question, a short conversation ending with the customer's turn:
        # conversation: [{role: user, content: ...}, {role: assistant, content: ...}, {role: user, content: ...}]
        all_of: ["30 days"]                 # every one must appear in the answer
        any_of: [receipt, order number]     # at least one must appear
        none_of: ["re:no (returns|refunds)"]  # none may appear

A pattern is a phrase (case-insensitive, runs of white space equal) or, written ``re:<regex>``, a
Python regular expression searched case-insensitively. A case needs all_of or any_of: what a right
answer must contain. Resolution rate = cases passed / cases.

Stdlib only, no Ansible import: the collection's filters (controller) and ollama_verify_probe
(on the node, and loaded by path by roles/ollama_metrics) import it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

import re

CASE_KEYS = ("name", "question", "conversation", "all_of", "any_of", "none_of")
PATTERN_KEYS = ("all_of", "any_of", "none_of")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ROLES = ("user", "assistant")
REGEX_PREFIX = "re:"
MAX_CASES = 200
EXCERPT = 160


def _text(value):
    return isinstance(value, str) and value.strip() != ""


def pattern_problem(pattern):
    """Why a pattern is unusable, or None."""
    if not _text(pattern):
        return "a pattern must be a non-empty string, got %r" % (pattern,)
    if pattern.startswith(REGEX_PREFIX):
        try:
            re.compile(pattern[len(REGEX_PREFIX):], re.IGNORECASE)
        except re.error as exc:
            return "%r is not a regular expression: %s" % (pattern, exc)
        if not pattern[len(REGEX_PREFIX):]:
            return "%r is an empty regular expression" % pattern
    return None


def _case_problems(index, case, seen):
    label = "case %d" % (index + 1)
    if not isinstance(case, dict):
        return ["%s is not a mapping" % label]
    problems = []
    name = case.get("name")
    if not isinstance(name, str) or not NAME_RE.match(name):
        problems.append("%s: name must be 1-64 letters, digits, '.', '_' or '-', got %r" % (label, name))
    else:
        label = "case %s" % name
        if name in seen:
            problems.append("%s: the name is used twice" % label)
        seen.add(name)
    unknown = sorted(str(k) for k in case if k not in CASE_KEYS)
    if unknown:
        problems.append("%s: unknown keys %s (allowed: %s)" % (label, ", ".join(unknown), ", ".join(CASE_KEYS)))
    has_question, has_conversation = "question" in case, "conversation" in case
    if has_question == has_conversation:
        problems.append("%s: needs either question or conversation" % label)
    elif has_question and not _text(case["question"]):
        problems.append("%s: question must be a non-empty string" % label)
    elif has_conversation:
        turns = case["conversation"]
        if not isinstance(turns, list) or not turns:
            problems.append("%s: conversation must be a non-empty list of {role, content}" % label)
        else:
            for n, turn in enumerate(turns):
                if (not isinstance(turn, dict) or sorted(turn) != ["content", "role"]
                        or turn["role"] not in ROLES or not _text(turn["content"])):
                    problems.append("%s: conversation turn %d must be {role: user|assistant, content: text}" % (label, n + 1))
            if isinstance(turns[-1], dict) and turns[-1].get("role") != "user":
                problems.append("%s: the conversation must end with the customer's (user) turn" % label)
    for key in PATTERN_KEYS:
        if key in case:
            value = case[key]
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list):
                problems.append("%s: %s must be a list of patterns" % (label, key))
                continue
            problems += ["%s: %s: %s" % (label, key, p) for p in map(pattern_problem, value) if p]
    if not any(case.get(key) for key in ("all_of", "any_of")):
        problems.append("%s: has no expectation: all_of or any_of must say what a right answer contains" % label)
    return problems


def problems(data):
    """Everything wrong with a parsed golden file (empty when usable)."""
    if not isinstance(data, dict) or sorted(data) != ["cases"]:
        return ["the file must be a mapping with the one key 'cases' (a list of cases)"]
    cases = data["cases"]
    if not isinstance(cases, list) or not cases:
        return ["cases must be a non-empty list"]
    if len(cases) > MAX_CASES:
        return ["cases has %d cases, at most %d" % (len(cases), MAX_CASES)]
    found, seen = [], set()
    for index, case in enumerate(cases):
        found += _case_problems(index, case, seen)
    return found


def _as_list(value):
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def normalize(data):
    """The cases of a usable golden file, each with name, messages (the API's chat messages) and
    the three pattern lists. Raises ValueError naming the problems of an unusable one."""
    found = problems(data)
    if found:
        raise ValueError("; ".join(found))
    cases = []
    for case in data["cases"]:
        if "question" in case:
            messages = [{"role": "user", "content": case["question"]}]
        else:
            messages = [{"role": t["role"], "content": t["content"]} for t in case["conversation"]]
        cases.append({"name": case["name"], "messages": messages,
                      "all_of": _as_list(case.get("all_of")), "any_of": _as_list(case.get("any_of")),
                      "none_of": _as_list(case.get("none_of"))})
    return cases


def _squash(text):
    return " ".join(text.split()).lower()


def matches(pattern, answer):
    """Whether a pattern is found in an answer (see the module's docstring)."""
    if pattern.startswith(REGEX_PREFIX):
        return re.search(pattern[len(REGEX_PREFIX):], answer, re.IGNORECASE) is not None
    return _squash(pattern) in _squash(answer)


def score(case, answer, error=None):
    """One case's verdict on an answer: passed, and why not (missing, forbidden, error)."""
    result = {"name": case["name"], "passed": False, "error": error, "missing": [], "forbidden": [],
              "answer": (answer or "")[:EXCERPT]}
    if error is not None:
        result["why"] = "no answer: %s" % error
        return result
    answer = answer or ""
    result["missing"] = [p for p in case["all_of"] if not matches(p, answer)]
    if case["any_of"] and not any(matches(p, answer) for p in case["any_of"]):
        result["missing"].append("any of: " + " | ".join(case["any_of"]))
    result["forbidden"] = [p for p in case["none_of"] if matches(p, answer)]
    result["passed"] = not result["missing"] and not result["forbidden"]
    why = ["missing %s" % ", ".join(repr(m) for m in result["missing"])] if result["missing"] else []
    why += ["contains %s" % ", ".join(repr(f) for f in result["forbidden"])] if result["forbidden"] else []
    result["why"] = "; ".join(why)
    return result


def summary(results, threshold, baseline_rate=None, margin=0.0):
    """The resolution rate of scored cases and the gate's verdict: passes when rate >= threshold
    and, with a baseline (the old model's rate on the same set), rate >= baseline - margin."""
    passed = sum(1 for r in results if r["passed"])
    rate = float(passed) / len(results) if results else 0.0
    failed = [r for r in results if not r["passed"]]
    problems_found = []
    names = "; ".join("%s (%s)" % (r["name"], r["why"]) for r in failed)
    if rate < threshold:
        problems_found.append("resolution rate %.2f (%d of %d golden cases) is below the threshold %.2f; failed: %s"
                              % (rate, passed, len(results), threshold, names))
    if baseline_rate is not None and rate < baseline_rate - margin - 1e-9:
        problems_found.append("resolution rate %.2f is below the old model's %.2f by more than %.2f; failed: %s"
                              % (rate, baseline_rate, margin, names))
    return {"cases": len(results), "passed": passed, "rate": rate, "threshold": threshold,
            "baseline_rate": baseline_rate, "margin": margin,
            "failed": [r["name"] for r in failed], "results": results, "problems": problems_found}


def _label(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


METRICS = (
    ("ollama_golden_resolution_rate", "Golden questions answered right / asked, at the last verification of this node."),
    ("ollama_golden_cases", "Golden questions asked at the last verification."),
    ("ollama_golden_passed", "Golden questions answered right at the last verification."),
    ("ollama_golden_threshold", "The lowest resolution rate that passes (ollama_verify_golden_threshold)."),
    ("ollama_golden_case_passed", "1 when the golden case was answered right at the last verification, else 0."),
)


def metrics_text(result, model, digest):
    """The golden set's result in Prometheus' text format, for node exporter's textfile collector
    (the ollama_verify role writes it on the node). Labels: the model asked and the digest of the
    model that answered (as /api/tags lists it); no timestamp, so the same result writes the same
    text. Prometheus adds instance (the node)."""
    labels = 'model="%s",digest="%s"' % (_label(model), _label(digest or "unknown"))
    values = {
        "ollama_golden_resolution_rate": [(labels, "%g" % result["rate"])],
        "ollama_golden_cases": [(labels, "%d" % result["cases"])],
        "ollama_golden_passed": [(labels, "%d" % result["passed"])],
        "ollama_golden_threshold": [("", "%g" % result["threshold"])],
        "ollama_golden_case_passed": [('%s,case="%s"' % (labels, _label(r["name"])), "1" if r["passed"] else "0")
                                      for r in result["results"]],
    }
    lines = []
    for name, text in METRICS:
        lines += ["# HELP %s %s" % (name, text), "# TYPE %s gauge" % name]
        lines += ["%s%s %s" % (name, "{%s}" % lab if lab else "", value) for lab, value in values[name]]
    return "\n".join(lines) + "\n"

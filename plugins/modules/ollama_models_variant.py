#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Create an Ollama model variant (base + parameters + system prompt) through /api/create,
only when the installed one differs. Stdlib only, Python 3.6+, runs on the node."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type  # pylint: disable=invalid-name

DOCUMENTATION = r"""
---
module: ollama_models_variant
short_description: Create an Ollama model variant only when its definition changed
description:
  - Compares the variant's C(/api/show) with the wanted definition - the base model's weights
    (the C(FROM) blob of both), each managed parameter and the system prompt - and calls
    C(/api/create) with C(from), C(parameters) and C(system) only when they differ.
  - A managed parameter left unset (null) must equal the base model's value.
options:
  url:
    description: Base URL of the Ollama API.
    type: str
    required: true
  name:
    description: Name of the variant.
    type: str
    required: true
  base:
    description: Model the variant is created from (must be installed).
    type: str
    required: true
  parameters:
    description: Managed parameters; null values mean "as in the base model".
    type: dict
    required: true
  system:
    description: System prompt.
    type: str
    required: true
  timeout:
    description: Seconds one API call may take.
    type: int
    default: 300
author: ollama-fleet
"""

EXAMPLES = r"""
- name: Create the customer-service variant from the pinned base model
  ollama_fleet.fleet.ollama_models_variant:
    url: http://127.0.0.1:11434
    name: qwen3-cs
    base: qwen3:4b-instruct-2507-q4_K_M
    parameters:
      num_ctx: 4096
      temperature: 0.4
    system: You are a courteous customer-service assistant.
"""

RETURN = r"""
before:
  description: The installed definition (null when the variant did not exist).
  returned: always
  type: dict
after:
  description: The wanted definition.
  returned: always
  type: dict
"""

import json

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ollama_fleet.fleet.plugins.module_utils.ollama_api import OllamaApiError, call


def parse_value(text):
    text = text.strip()
    if text.startswith('"'):
        try:
            return json.loads(text)
        except ValueError:
            return text.strip('"')
    try:
        return float(text)
    except ValueError:
        return text


def parse_parameters(text):
    """`/api/show` parameters ("key   value" lines, repeated keys for lists) -> {key: [values]}."""
    found = {}
    for line in (text or "").splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2:
            found.setdefault(parts[0], []).append(parse_value(parts[1]))
    return found


def weights(show):
    """The FROM line of a show response's modelfile: the model blob the model runs."""
    for line in (show.get("modelfile") or "").splitlines():
        if line.startswith("FROM "):
            return line[5:].strip()
    return None


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) <= 1e-6 * max(1.0, abs(a), abs(b))
    return a == b


def differences(base_show, variant_show, parameters, system):
    """What differs between the installed variant and the wanted one (empty list = up to date)."""
    if variant_show is None:
        return ["the variant is not installed"]
    found = []
    if weights(variant_show) != weights(base_show):
        found.append("base weights differ")
    have = parse_parameters(variant_show.get("parameters"))
    base = parse_parameters(base_show.get("parameters"))
    for key in sorted(parameters):
        want = parameters[key]
        want_values = base.get(key) if want is None else [float(want)]
        got_values = have.get(key)
        if want_values is None or got_values is None:
            if want_values != got_values:
                found.append("parameter %s" % key)
        elif len(want_values) != len(got_values) or not all(same(w, g) for w, g in zip(want_values, got_values)):
            found.append("parameter %s" % key)
    if (variant_show.get("system") or "") != system:
        found.append("system prompt")
    return found


def definition(show):
    if show is None:
        return None
    return {"from_weights": weights(show), "parameters": parse_parameters(show.get("parameters")), "system": show.get("system") or ""}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            name=dict(type="str", required=True),
            base=dict(type="str", required=True),
            parameters=dict(type="dict", required=True),
            system=dict(type="str", required=True),
            timeout=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    p = module.params
    try:
        base_show = call(p["url"], "/api/show", {"model": p["base"]}, p["timeout"])
        if base_show is None and module.check_mode:
            # The base is installed by an earlier task that check mode only predicted.
            module.exit_json(changed=True, reasons=["the base model %s is not installed yet" % p["base"]])
        if base_show is None:
            module.fail_json(msg="base model %s is not installed" % p["base"])
        variant_show = call(p["url"], "/api/show", {"model": p["name"]}, p["timeout"])
        reasons = differences(base_show, variant_show, p["parameters"], p["system"])
        result = dict(changed=bool(reasons), reasons=reasons, before=definition(variant_show),
                      after={"from": p["base"], "parameters": p["parameters"], "system": p["system"]})
        if reasons and not module.check_mode:
            body = {"model": p["name"], "from": p["base"], "system": p["system"], "stream": False,
                    "parameters": dict((k, v) for k, v in p["parameters"].items() if v is not None)}
            call(p["url"], "/api/create", body, p["timeout"])
            created = call(p["url"], "/api/show", {"model": p["name"]}, p["timeout"])
            left = differences(base_show, created, p["parameters"], p["system"])
            if left:
                module.fail_json(msg="created %s but it still differs: %s" % (p["name"], ", ".join(left)), **result)
    except OllamaApiError as exc:
        if module.check_mode:
            # Check mode before Ollama is installed: nothing answers yet, the variant would be created.
            module.exit_json(changed=True, reasons=["Ollama does not answer yet: %s" % exc])
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()

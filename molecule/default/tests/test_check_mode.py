"""`site.yml --check --diff` on the converged scenario: nothing would change, nothing fails, and a
secret in the service environment never reaches the output. (The scenario's `check` step already
ran site.yml --check on the bare hosts, before converge, and had to finish without a failure.)
The hosts run the ollama STAND-IN (tests/ollama_standin, a test double), not Ollama."""

import sys
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "molecule" / "shared"))
from playbook import recap, run_playbook  # noqa: E402  (shared helper, found through the line above)

SECRET = "Proxy-S3cret-9f2c"


def test_check_diff_on_a_converged_fleet_changes_nothing():
    rc, out = run_playbook("site.yml", "--check", "--diff")
    counters = recap(out)
    assert rc == 0, out[-4000:]
    assert counters and all(c["failed"] == 0 and c["changed"] == 0 for c in counters.values()), counters


def test_proxy_credentials_never_appear_in_diff_or_verbose_output():
    # A changed proxy would rewrite the environment file: the change is reported, its text is not.
    rc, out = run_playbook(
        "playbooks/ollama.yml", "--check", "--diff", "-v",
        "-e", f"ollama_https_proxy=http://fleet:{SECRET}@proxy.example.internal:3128",
    )
    assert rc == 0, out[-4000:]
    assert "Write the service environment" in out
    assert all(c["changed"] > 0 for c in recap(out).values()), "the proxy change was not even detected"
    assert SECRET not in out

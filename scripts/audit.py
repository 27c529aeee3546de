"""Audit the pinned runtime requirements for known vulnerabilities with pip-audit (`make lint`).

Exits 1 when any package has a known vulnerability. When the vulnerability service cannot be
reached, or answers for none of our packages (a registry mirror without PyPI's JSON API, no
internet), it prints a loud warning and exits 0: that is not a finding, but it must never pass
as pip-audit's own "No known vulnerabilities found". AUDIT_STRICT=1 (a CI with internet access)
turns that case into a failure as well.

    python scripts/audit.py [requirements.txt]

What is audited is the requirements' full closure as installed here (the pins and every
package they pull in, at the installed versions), read from the installed metadata; pip-audit
then needs no resolver run in a throw-away virtualenv, which is many times slower.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE_HINTS = (
    "Could not connect",
    "ConnectionError",
    "ProxyError",
    "Max retries exceeded",
    "Timeout",
    "not redirecting properly",
)


def verdict(report: dict) -> tuple[int, str]:
    """Exit code and message for a pip-audit JSON report (``pip-audit -f json``)."""
    dependencies = report.get("dependencies", [])
    vulnerable = [d for d in dependencies if d.get("vulns")]
    audited = [d for d in dependencies if "vulns" in d]
    skipped = [d for d in dependencies if "skip_reason" in d]
    if vulnerable:
        lines = [
            f"  {d['name']} {d['version']}: {v['id']}"
            + (f" (fixed in {', '.join(v['fix_versions'])})" if v.get("fix_versions") else "")
            for d in vulnerable
            for v in d["vulns"]
        ]
        return 1, "pip-audit: known vulnerabilities in pinned requirements:\n" + "\n".join(lines)
    if skipped:
        reason = skipped[0]["skip_reason"]
        return 0, (
            f"WARNING: pip-audit could not audit {len(skipped)} of {len(dependencies)} packages "
            f"(the vulnerability service did not answer for them), e.g. {reason!r}. "
            "NOT AUDITED: run `make audit` where PyPI is reachable."
        )
    return 0, f"pip-audit: no known vulnerabilities in {len(audited)} packages."


def installed_closure(requirements: Path) -> dict[str, str]:
    """{package: installed version} for the requirements and everything they depend on."""
    pending = [
        (Requirement(line), "")
        for raw in requirements.read_text().splitlines()
        if (line := raw.split("#", 1)[0].strip()) and not line.startswith("-")
    ]
    found: dict[str, str] = {}
    while pending:
        requirement, parent_extra = pending.pop()
        if requirement.marker and not requirement.marker.evaluate({"extra": parent_extra}):
            continue
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        if name in found:
            continue
        try:
            dist = distribution(requirement.name)
        except PackageNotFoundError:
            raise SystemExit(f"{requirement.name} is not installed: run `make install`") from None
        found[name] = dist.version
        for extra in ["", *requirement.extras]:
            pending.extend((Requirement(r), extra) for r in dist.requires or [])
    return found


def main() -> int:
    requirements = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / "requirements.txt")
    strict = os.environ.get("AUDIT_STRICT", "") not in {"", "0"}
    pins = "".join(f"{n}=={v}\n" for n, v in sorted(installed_closure(requirements).items()))
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as closure:
        closure.write(pins)
        closure.flush()
        command = [sys.executable, "-m", "pip_audit", "-r", closure.name, "-f", "json"]
        command += ["--no-deps", "--disable-pip", "--progress-spinner", "off"]
        command += ["--vulnerability-service", "pypi"]
        result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        if any(hint in result.stderr for hint in UNREACHABLE_HINTS) and not strict:
            print(
                "WARNING: pip-audit could not reach its vulnerability service. NOT AUDITED.\n"
                + result.stderr.strip().splitlines()[-1],
                file=sys.stderr,
            )
            return 0
        print(result.stderr, file=sys.stderr)
        return 2
    code, message = verdict(report)
    if code == 0 and strict and "NOT AUDITED" in message:
        code = 1
    print(message, file=sys.stderr if code or "WARNING" in message else sys.stdout)
    return code


if __name__ == "__main__":
    sys.exit(main())

"""SARIF 2.1.0 documents for GitHub code scanning, shared by the security reports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ci import __version__

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def result(
    *,
    rule_id: str,
    message: str,
    level: str,
    file: str,
    line: int | None = None,
    fingerprint: str | None = None,
    suppressed: bool = False,
) -> dict[str, Any]:
    """One SARIF result at ``file`` (and ``line`` when known)."""
    region = {"startLine": max(1, line)} if line else {}
    location: dict[str, Any] = {"artifactLocation": {"uri": file}}
    if region:
        location["region"] = region
    item: dict[str, Any] = {
        "ruleId": rule_id,
        "level": level,
        "message": {"text": message},
        "locations": [{"physicalLocation": location}],
    }
    if fingerprint:
        item["partialFingerprints"] = {"primaryLocationLineHash": fingerprint}
    if suppressed:
        item["suppressions"] = [{"kind": "external", "justification": "baseline or waiver"}]
    return item


def log(
    tool: str, rules: Iterable[str], results: Sequence[dict[str, Any]], *, help_uri: str = ""
) -> dict[str, Any]:
    """A SARIF log with one run of ``tool``."""
    driver: dict[str, Any] = {
        "name": tool,
        "version": __version__,
        "rules": [{"id": rule, "shortDescription": {"text": rule}} for rule in rules],
    }
    if help_uri:
        driver["informationUri"] = help_uri
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": list(results)}],
    }

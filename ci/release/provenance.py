"""The release's build provenance: an in-toto Statement v1 with a SLSA provenance v1 predicate.

``statement`` is pure (the manifest and the build's facts in, a JSON-ready dict out); its
subjects are the distributions (wheel, sdist) with their sha256, so ``verify`` can tie each
file in dist/ to the commit, uv.lock and command that built it. ``builder_facts`` reads who
built it from the environment (GitHub Actions' workflow and run, else a local build).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ci.release.package import DISTRIBUTION_KINDS, Manifest

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:noxgate:build-type:package:v1"  # python -m ci gate package (build twice)
LOCAL_BUILDER = "urn:noxgate:builder:local"
PROVENANCE = "provenance.intoto.json"
BUILD_COMMAND = ("python", "-m", "ci", "gate", "package")


@dataclass(frozen=True, slots=True, kw_only=True)
class BuilderFacts:
    """Who ran the build and where its source lives (no credentials, ever)."""

    builder_id: str
    source_uri: str | None
    invocation_id: str | None = None


def builder_facts(env: Mapping[str, str], remote: str | None) -> BuilderFacts:
    """GitHub Actions' workflow ref and run when set there, else a local build of ``remote``."""
    server, repository = env.get("GITHUB_SERVER_URL", ""), env.get("GITHUB_REPOSITORY", "")
    workflow = env.get("GITHUB_WORKFLOW_REF", "")
    if env.get("GITHUB_ACTIONS") == "true" and server and repository:
        run = env.get("GITHUB_RUN_ID", "")
        attempt = env.get("GITHUB_RUN_ATTEMPT", "1")
        return BuilderFacts(
            builder_id=f"{server}/{workflow}" if workflow else f"{server}/{repository}",
            source_uri=f"git+{server}/{repository}",
            invocation_id=f"{server}/{repository}/actions/runs/{run}/attempts/{attempt}"
            if run
            else None,
        )
    return BuilderFacts(builder_id=LOCAL_BUILDER, source_uri=_without_credentials(remote))


def _without_credentials(url: str | None) -> str | None:
    """``url`` without a user or password (``https://token@host/x`` -> ``https://host/x``)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme and "@" in parts.netloc:
        host = parts.netloc.rsplit("@", 1)[1]
        return "git+" + urlunsplit((parts.scheme, host, parts.path, "", ""))
    if re.fullmatch(r"[\w.-]+@[\w.-]+:\S+", url):  # scp-like git@host:owner/repo.git
        return "git+ssh://" + url.split("@", 1)[1].replace(":", "/", 1)
    return f"git+{url}" if parts.scheme else None


def subjects(manifest: Manifest) -> list[dict[str, Any]]:
    """The distributions as in-toto subjects: name and sha256 digest, sorted by name."""
    wanted = [a for a in manifest.artifacts if a.kind in DISTRIBUTION_KINDS]
    return [{"name": a.name, "digest": {"sha256": a.sha256}} for a in sorted(wanted, key=_name)]


def _name(artifact: Any) -> str:  # noqa: ANN401 - an Artifact; sorted's key
    return str(artifact.name)


def statement(
    manifest: Manifest, facts: BuilderFacts, command: Sequence[str] = BUILD_COMMAND
) -> dict[str, Any]:
    """The in-toto Statement v1 (SLSA provenance v1) of ``manifest``'s build (pure)."""
    build = manifest.build
    source: dict[str, Any] = {"uri": facts.source_uri or "", "digest": {}}
    if build.commit:
        source["digest"]["gitCommit"] = build.commit
    if build.tag:
        source["ref"] = f"refs/tags/{build.tag}"
    dependencies: list[dict[str, Any]] = [source]
    if build.uv_lock_sha256:
        dependencies.append({"uri": "uv.lock", "digest": {"sha256": build.uv_lock_sha256}})
    metadata: dict[str, Any] = {"startedOn": build.build_time}
    if facts.invocation_id:
        metadata["invocationId"] = facts.invocation_id
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects(manifest),
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "command": list(command),
                    "name": manifest.name,
                    "version": manifest.version,
                    "source": {k: v for k, v in source.items() if k != "digest"},
                },
                "internalParameters": {
                    "python": build.python,
                    "SOURCE_DATE_EPOCH": build.source_date_epoch,
                    "dirty": build.dirty,
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": facts.builder_id},
                "metadata": metadata,
            },
        },
    }


def to_bytes(document: Mapping[str, Any]) -> bytes:
    """The exact bytes written and signed (sorted keys, stable)."""
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def read_subjects(text: str) -> dict[str, str]:
    """``name -> sha256`` of a statement's subjects; ValueError when it is not ours to read."""
    document = json.loads(text)
    if not isinstance(document, dict):
        msg = "not a JSON object"
        raise ValueError(msg)
    if document.get("_type") != STATEMENT_TYPE:
        msg = f"_type is {document.get('_type')!r}, not {STATEMENT_TYPE}"
        raise ValueError(msg)
    if document.get("predicateType") != PREDICATE_TYPE:
        msg = f"predicateType is {document.get('predicateType')!r}, not {PREDICATE_TYPE}"
        raise ValueError(msg)
    found = {}
    for subject in document.get("subject") or []:
        name = subject.get("name") if isinstance(subject, dict) else None
        digest = subject.get("digest") if isinstance(subject, dict) else None
        sha = digest.get("sha256") if isinstance(digest, dict) else None
        if not isinstance(name, str) or not isinstance(sha, str):
            msg = f"a subject without a name and a sha256 digest: {subject!r}"
            raise ValueError(msg)
        found[name] = sha
    if not found:
        msg = "no subjects"
        raise ValueError(msg)
    return found

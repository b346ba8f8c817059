"""The prefiltered tree scan finds exactly what plain detect-secrets finds.

Guards a detect-secrets upgrade: a plugin, pattern or filter that the prefilter does not
understand must show up here as a difference, never as a quietly missed secret.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from detect_secrets.core.scan import scan_file
from detect_secrets.settings import default_settings, get_plugins, transient_settings

from ci.security import prefilter, secrets
from tests.support import secret_corpus

REPO = Path(__file__).resolve().parents[2]
Found = list[tuple[int, str, str]]


def plain(root: Path, names: Sequence[str]) -> dict[str, Found]:
    """What detect-secrets' own scan_file yields for each file, in its order."""
    return {
        name: [(s.line_number, s.type, s.secret_hash) for s in scan_file(str(root / name))]
        for name in names
    }


def fast(root: Path, names: Sequence[str]) -> dict[str, Found]:
    """What the prefiltered scan_file yields for each file, in its order."""
    wanted = prefilter.Prefilter(get_plugins())
    return {
        name: [
            (s.line_number, s.type, s.secret_hash)
            for s in secrets.scan_file(str(root / name), wanted)
        ]
        for name in names
    }


def assert_same(root: Path, names: Sequence[str]) -> int:
    """Equal findings file by file; returns how many there were."""
    expected, got = plain(root, names), fast(root, names)
    differ = {name: (expected[name], got[name]) for name in names if expected[name] != got[name]}
    assert not differ
    return sum(map(len, expected.values()))


@contextmanager
def limits(base64: float, hex_: float, exclude: str = "") -> Iterator[None]:
    """Every plugin, with these entropy limits and keyword exclusion."""
    with default_settings() as settings:
        config = settings.json()
    for plugin in config["plugins_used"]:
        if plugin["name"] == "Base64HighEntropyString":
            plugin["limit"] = base64
        elif plugin["name"] == "HexHighEntropyString":
            plugin["limit"] = hex_
        elif plugin["name"] == "KeywordDetector":
            plugin["keyword_exclude"] = exclude
    with transient_settings(config):
        yield


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param((4.5, 3.0, ""), id="defaults"),
        pytest.param((2.0, 1.5, ""), id="low-limits"),
        pytest.param((5.5, 0.0, "hint|name"), id="high-limits-exclude"),
    ],
)
def test_planted_corpus_matches_detect_secrets(
    tmp_path: Path, settings: tuple[float, float, str]
) -> None:
    """(b) Every plugin's positive and negative cases in files of every kind."""
    names = secret_corpus.planted(tmp_path)
    with limits(*settings):
        found = assert_same(tmp_path, names)
        types = {kind for _, kind, _ in (x for v in plain(tmp_path, names).values() for x in v)}
    assert found > len(names)
    if settings[0] == 4.5:  # with the default plugins every one flags something here
        with default_settings():
            enabled = {type(p).secret_type for p in get_plugins()}
        # except public IPs: the default filter is_not_alphanumeric_string drops every one
        assert types == enabled - {"Public IP (ipv4)"}


def test_generated_tree_matches_detect_secrets(tmp_path: Path) -> None:
    """(c) A generated tree of source with planted lines, under the default settings."""
    names = secret_corpus.generated(tmp_path, 80, planted_every=2)
    with default_settings():
        assert assert_same(tmp_path, names) > 0


def test_the_gate_scan_equals_the_plain_scan_on_the_corpus(tmp_path: Path) -> None:
    """scan_files (what the gate calls) reports exactly the plain findings, by line."""
    names = secret_corpus.planted(tmp_path)
    with default_settings():
        expected = {
            (name, kind, digest, line)
            for name, found in plain(tmp_path, names).items()
            for line, kind, digest in found
        }
        _, findings = secrets.scan_files(tmp_path, names)
    got = {(f.file, f.type, f.baseline_hash, f.line) for f in findings}
    # the gate keeps one finding per value and file; detect-secrets' baseline does the same
    assert got <= expected
    assert {k[:3] for k in got} == {k[:3] for k in expected}


# patterns whose matches could look past a line's end, or that a literal search must not miss
TRICKY = [
    r"tok-[a-z]{4}(?!\w)",
    r"(?<![\w.])\d+\.\d+(?![\w.])",
    r"\Akey=\w+\Z",
    r"^pw: \S+$",
    r"(?>\s*)end$",
    r"x\s*+$",
    r"(?:api|)(?:key|pwd)\s*=\s*'[a-z]+'",
    r"(?i)s(?:ecret|ig)_[0-9]{2,3}",
    r"(?i)kelvin-k",
    r"(?i)pr[iI]vate",
    r"AB[0-9]{2}(?=\W|$)",
    r"(['\"])([a-f0-9]{8,})(\1)",
]


def _lines(rng: random.Random) -> list[str]:
    alphabet = "abcdefkpstwxyzIK0123456789 .=:'\"-_\t\u212a\u0131\u017f"
    words = ["tok-", "key", "pwd", "api", "secret", "sig_", "end", "pw: ", "AB", "kelvin-", "1.2"]
    lines = []
    for _ in range(600):
        parts = [
            rng.choice(words) if rng.random() < 0.5 else rng.choice(alphabet) for _ in range(8)
        ]
        lines.append("".join(parts))
    return lines


@pytest.mark.parametrize("source", TRICKY)
def test_a_relaxed_test_finds_every_line_the_pattern_matches(source: str) -> None:
    """Joined lines, literals and folding never lose a line the pattern matches on its own."""
    pattern = re.compile(source)
    test = prefilter.test(pattern)
    assert test is not None
    lines = _lines(random.Random(source))
    lines += [
        "tok-abcd",
        "1.2",
        "key=abc",
        "pw: x",
        "  end",
        "x  ",
        "KEY = 'ab'",
        "apikey = 'ab'",
        "SIG_123",
    ]
    lines += ["\u212aelvin-\u212a", "pr\u0131vate", "PR\u0130VATE", "AB12", "'deadbeef'"]
    text, starts = prefilter._joined(lines)
    found = test.lines(text, starts, text.lower)
    matching = {i for i, line in enumerate(lines) if pattern.search(line)}
    assert matching, "the case table must exercise the pattern"
    assert matching <= found


def test_literals_are_what_every_match_holds() -> None:
    test = prefilter.test(re.compile(r"(?:glpat|gldt)-[A-Za-z0-9]{20}"))
    assert test is not None
    assert set(test.literals) == {"glpat-", "gldt-"}
    folded = prefilter.test(re.compile(r"aws.{0,20}?key", re.IGNORECASE))
    assert folded is not None
    assert folded.folded
    assert set(folded.literals) == {"aws"}


def test_relax_widens_what_could_see_the_next_line() -> None:
    relaxed = prefilter.relax(re.compile(r"\Atok(?!\w)"))
    assert relaxed is not None
    assert relaxed.search("x\ntok\nzz")
    assert prefilter.relax(re.compile(r"(a)?(?(1)b|c)")) is None  # conditional: no probe


class Unknown:
    """A plugin of a shape the prefilter does not know."""

    def analyze_line(self, **_: Any) -> set[Any]:
        return set()


def test_a_plugin_of_unknown_shape_sees_every_line() -> None:
    with default_settings():
        plugins = [*get_plugins(), Unknown()]
    wanted = prefilter.Prefilter(plugins)
    plan = wanted.plan(["a = 1", "b = 2"], "x.py")
    assert [index for index, _ in plan] == [0, 1]
    assert all(any(isinstance(p, Unknown) for p in ps) for _, ps in plan)


def test_the_entropy_length_bound_keeps_ties() -> None:
    assert prefilter._shortest(3.0) == 8  # eight symbols: exactly 3 bits, kept
    assert prefilter._shortest(4.5) == 23
    assert prefilter._shortest(0.0) == 1
    for limit in (1.0, 2.5, 3.3, 4.0):
        shortest = prefilter._shortest(limit)
        # one symbol fewer cannot reach the limit; this many can come within the margin
        assert math.log2(shortest - 1) < limit - 1e-9 <= math.log2(shortest)

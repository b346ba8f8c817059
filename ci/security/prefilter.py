r"""Which lines detect-secrets' plugins could flag, found cheaply and never too few.

Each plugin gets a probe derived from its own patterns: a regex-based plugin's patterns, the
keyword plugin's name list, a high-entropy plugin's quoted-string pattern limited to strings
long enough to exceed its entropy limit. A probe runs once over many lines joined by ``\n``
(one C-level pass instead of a call per line and plugin), so each pattern is first relaxed
into one that matches at least wherever the original matches on a single line: negative
lookarounds are dropped (they could see the next line), ``\A``/``\Z`` become line anchors,
atomic groups and possessive repeats become plain ones. A plugin of unknown shape, or a
pattern that cannot be relaxed, gets no probe: every line is a candidate for it.
"""

from __future__ import annotations

import bisect
import functools
import importlib
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

# detect-secrets judges each line on its own; the probes see many at once, joined by this
JOIN = "\n"
_MARGIN = 1e-9  # entropies are float sums: keep strings whose bound only ties the limit


@dataclass(frozen=True, slots=True, kw_only=True)
class Test:
    """One pattern of a plugin, as cheap tests of where in joined lines it could match."""

    relaxed: re.Pattern[str]  # see relax: searched over the joined lines
    literals: tuple[str, ...] = ()  # every match of the pattern holds one of these
    folded: bool = False  # literals are lower case, to find in the lower-cased text

    def lines(self, text: str, starts: Sequence[int], lowered: Callable[[], str]) -> set[int]:
        """Indexes of the joined lines (``starts``: where each begins in ``text``) to scan."""
        # ASCII text: re.IGNORECASE equals lower-casing both sides (non-ASCII has exceptions)
        if self.literals and (not self.folded or text.isascii()):
            haystack = lowered() if self.folded else text
            # a literal holds no line break: each occurrence lies on one line
            return {
                bisect.bisect_right(starts, at) - 1
                for literal in self.literals
                for at in _occurrences(haystack, literal)
            }
        hits: set[int] = set()
        if self.relaxed.search(text) is None:  # the common case: one C-level pass, no match
            return hits
        for match in self.relaxed.finditer(text):
            first = bisect.bisect_right(starts, match.start()) - 1
            last = bisect.bisect_right(starts, max(match.start(), match.end() - 1)) - 1
            hits.update(range(first, last + 1))
        return hits


def _occurrences(text: str, literal: str) -> Iterator[int]:
    at = text.find(literal)
    while at != -1:
        yield at
        at = text.find(literal, at + 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class Probe:
    """What a line must contain before one plugin can flag it."""

    plugin: Any  # a detect-secrets plugin (untyped)
    tests: tuple[Test, ...] = ()  # a line some test finds is a candidate
    everything: bool = False  # no sound probe: every line is a candidate
    # the plugin's own first step on one line (filename, line): True when it finds something
    confirm: Callable[[str, str], bool] | None = None

    def lines(self, text: str, starts: Sequence[int], lowered: Callable[[], str]) -> set[int]:
        """Indexes of the joined lines (``starts``: where each begins in ``text``) to scan."""
        if self.everything:
            return set(range(len(starts)))
        hits: set[int] = set()
        for test in self.tests:
            hits |= test.lines(text, starts, lowered)
        return hits


class Prefilter:
    """The probes of a set of plugins: which plugins could flag which lines."""

    def __init__(self, plugins: Iterable[object]) -> None:
        """One probe per plugin, derived from the plugin's own patterns."""
        self.plugins = tuple(plugins)
        self.probes = tuple(probe(plugin) for plugin in self.plugins)

    def plan(self, lines: Sequence[str], filename: str) -> list[tuple[int, tuple[Any, ...]]]:
        """(index, plugins in their order) of each of ``lines`` that some plugin would flag.

        A probe's candidate line is kept for its plugin only when the plugin's own first
        step (its patterns, entropy limit or keyword table for ``filename``) finds something
        in it: exactly the lines where detect-secrets' plugin call returns a secret.
        """
        stripped = [line.rstrip() for line in lines]
        text, starts = _joined(stripped)
        lowered = _Lowered(text)
        hits: dict[int, list[Any]] = {}
        for each in self.probes:
            for index in sorted(each.lines(text, starts, lowered)):
                if each.confirm is None or each.confirm(filename, stripped[index]):
                    hits.setdefault(index, []).append(each.plugin)
        return [(index, tuple(hits[index])) for index in sorted(hits)]

    def candidates(self, lines: Sequence[str]) -> list[int]:
        """Indexes of the ``lines`` some plugin might flag (a superset, never fewer)."""
        # detect-secrets judges each line on its own, so each distinct line is tested once
        unique = list(dict.fromkeys(line.rstrip() for line in lines))
        text, starts = _joined(unique)
        lowered = _Lowered(text)
        hit: set[int] = set()
        for each in self.probes:
            hit |= each.lines(text, starts, lowered)
        flagged = {unique[index] for index in hit}
        return [index for index, line in enumerate(lines) if line.rstrip() in flagged]


class _Lowered:
    """The lower-cased text, made once and only when a probe asks for it."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.lower: str | None = None

    def __call__(self) -> str:
        if self.lower is None:
            self.lower = self.text.lower()
        return self.lower


def _joined(lines: Sequence[str]) -> tuple[str, list[int]]:
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + len(JOIN))
    return JOIN.join(lines), starts if lines else []


def probe(plugin: object) -> Probe:
    """The probe of one plugin: derived from its patterns, or every line when it cannot be."""
    # detect-secrets is imported late: it lives in the security group, not in every session
    from detect_secrets.plugins import keyword  # noqa: PLC0415
    from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector  # noqa: PLC0415
    from detect_secrets.plugins.high_entropy_strings import (  # noqa: PLC0415
        HexHighEntropyString,
        HighEntropyStringsPlugin,
    )
    from detect_secrets.plugins.jwt import JwtTokenDetector  # noqa: PLC0415

    kind = type(plugin)
    own_line = getattr(kind, "analyze_line", None)
    own_string = getattr(kind, "analyze_string", None)
    # the JWT plugin only drops the denylist's matches that do not decode
    regex_strings = (RegexBasedDetector.analyze_string, JwtTokenDetector.analyze_string)
    if isinstance(plugin, RegexBasedDetector):
        if own_line is BasePlugin.analyze_line and own_string in regex_strings:
            return _patterns_probe(plugin, plugin.denylist, confirm=_found_by_strings(plugin))
    elif isinstance(plugin, keyword.KeywordDetector):
        if own_line is keyword.KeywordDetector.analyze_line and (
            own_string is keyword.KeywordDetector.analyze_string
        ):
            return _keyword_probe(plugin)
    elif isinstance(plugin, HighEntropyStringsPlugin):
        entropy = kind.calculate_shannon_entropy  # type: ignore[attr-defined]
        known = (
            HighEntropyStringsPlugin.calculate_shannon_entropy,
            # the hex plugin only lowers the entropy of strings of digits
            HexHighEntropyString.calculate_shannon_entropy,
        )
        if own_line is HighEntropyStringsPlugin.analyze_line and (
            own_string is HighEntropyStringsPlugin.analyze_string
        ):
            return _entropy_probe(plugin, bounded=entropy in known)
    return Probe(plugin=plugin, everything=True)


def _patterns_probe(
    plugin: object,
    patterns: Iterable[re.Pattern[str]],
    **kw: Any,  # noqa: ANN401
) -> Probe:
    tests = [test(pattern) for pattern in patterns]
    if any(each is None for each in tests):
        return Probe(plugin=plugin, everything=True)
    return Probe(plugin=plugin, tests=tuple(t for t in tests if t is not None), **kw)


def _found_by_strings(plugin: Any) -> Callable[[str, str], bool]:  # noqa: ANN401
    """The regex plugins' first step: their analyze_string yields something for the line."""

    def confirm(_filename: str, line: str) -> bool:
        return any(True for _ in plugin.analyze_string(line))

    return confirm


def _keyword_probe(plugin: Any) -> Probe:  # noqa: ANN401 - untyped plugin
    """Every keyword pattern starts (or ends) with the name list: one of its names must occur."""
    from detect_secrets.plugins import keyword  # noqa: PLC0415 - see probe
    from detect_secrets.util.filetype import determine_file_type  # noqa: PLC0415

    def confirm(filename: str, line: str) -> bool:
        table = keyword.REGEX_BY_FILETYPE.get(
            determine_file_type(filename), keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP
        )
        return any(True for _ in plugin.analyze_string(line, denylist_regex_to_group=table))

    tables = [keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP, *keyword.REGEX_BY_FILETYPE.values()]
    patterns = {pattern for table in tables for pattern in table}
    if not all(_needs_names(pattern) for pattern in patterns):
        return _patterns_probe(plugin, patterns, confirm=confirm)
    return _patterns_probe(
        plugin, [re.compile(keyword.DENYLIST_REGEX, re.IGNORECASE)], confirm=confirm
    )


def _needs_names(pattern: re.Pattern[str]) -> bool:
    """True when every match of ``pattern`` holds a match of the keyword name list."""
    from detect_secrets.plugins import keyword  # noqa: PLC0415 - see probe

    source = pattern.pattern
    if not (
        source.startswith(keyword.DENYLIST_REGEX)
        or source.endswith(keyword.DENYLIST_REGEX_WITH_PREFIX)
    ):
        return False
    parsed = _re_module("_parser").parse(source, pattern.flags)
    top = list(parsed.data)
    # a top-level alternation could match without the list
    return not (len(top) == 1 and top[0][0] is _re_module("_constants").BRANCH)


def _entropy_probe(plugin: Any, *, bounded: bool) -> Probe:  # noqa: ANN401 - untyped plugin
    """Quoted strings of the charset, long enough that their entropy can exceed the limit."""
    charset = str(plugin.charset)
    limit = float(plugin.entropy_limit)

    def confirm(_filename: str, line: str) -> bool:
        found = plugin.analyze_string(line)
        return any(plugin.calculate_shannon_entropy(each) > limit for each in found)

    quotes = "([\\'\"])"  # the plugin's own spelling: ([\'"])
    expected = quotes + rf"([{re.escape(charset)}]+)(\1)"
    if plugin.regex.pattern != expected:
        return _patterns_probe(plugin, [plugin.regex], confirm=confirm)
    shortest = 1
    # n symbols carry at most log2(n) bits each; with repeated symbols the sum overcounts
    if bounded and len(set(charset)) == len(charset):
        shortest = max(1, _shortest(limit))
    pattern = quotes + rf"([{re.escape(charset)}]{{{shortest},}})(\1)"
    relaxed = re.compile(pattern, re.MULTILINE)
    return Probe(plugin=plugin, tests=(Test(relaxed=relaxed),), confirm=confirm)


def _shortest(limit: float) -> int:
    """The shortest length whose highest entropy (log2 of it) can pass ``limit``."""
    if limit <= 0:
        return 1
    length = max(1, math.floor(2**limit) - 1)
    while math.log2(length) < limit - _MARGIN:
        length += 1
    return length


def _re_module(name: str) -> Any:  # noqa: ANN401 - the stdlib's regex parser is untyped
    return importlib.import_module(f"re.{name}")


def relax(pattern: re.Pattern[str]) -> re.Pattern[str] | None:
    r"""A multi-line pattern that matches wherever ``pattern`` matches within one line.

    Found in lines joined by ``\n``, a match of ``pattern`` inside one line is still a match:
    what could see past the line's end (a negative lookaround, ``\A``, ``\Z``, an atomic
    group that could swallow the ``\n``) is dropped or widened, which only adds matches.
    None when the pattern holds something this cannot vouch for.
    """
    parser, compiler = _re_module("_parser"), _re_module("_compiler")
    try:
        tree = parser.parse(pattern.pattern, pattern.flags)
    except (re.error, TypeError):  # pragma: no cover - it compiled once already
        return None
    if not _relax(tree):
        return None
    compiled: re.Pattern[str] = compiler.compile(tree, pattern.flags | re.MULTILINE)
    return compiled


def _relax(sub: Any) -> bool:  # noqa: ANN401 - the stdlib parser's tree
    """Rewrite the parsed ``sub`` in place (see relax); False when it holds an unknown node."""
    c = _re_module("_constants")
    anchors = {c.AT_BEGINNING_STRING: c.AT_BEGINNING, c.AT_END_STRING: c.AT_END}
    leaves = {c.LITERAL, c.NOT_LITERAL, c.IN, c.ANY, c.GROUPREF}
    repeats = {c.MAX_REPEAT, c.MIN_REPEAT}
    possessive = getattr(c, "POSSESSIVE_REPEAT", None)
    kept = []
    for op, av in sub.data:
        if op is c.ASSERT_NOT:
            continue  # zero-width: dropping it keeps every width the compiler relies on
        if op is c.AT:
            av = anchors.get(av, av)  # noqa: PLW2901
        elif op is c.ASSERT:
            if not _relax(av[1]):
                return False
        elif op in repeats or (possessive is not None and op is possessive):
            if not _relax(av[2]):
                return False
            op = c.MAX_REPEAT if op is possessive else op  # noqa: PLW2901
        elif op is c.SUBPATTERN:
            if not _relax(av[-1]):
                return False
        elif op is c.ATOMIC_GROUP:
            if not _relax(av):
                return False
            op, av = c.SUBPATTERN, (None, 0, 0, av)  # noqa: PLW2901
        elif op is c.BRANCH:
            if not all(_relax(branch) for branch in av[1]):
                return False
        elif op not in leaves:
            return False  # a conditional group or something newer: no probe
        kept.append((op, av))
    sub.data[:] = kept
    return True


_MOST = 128  # literal sets larger than this are not worth one find() each
# shorter literals are found on too many lines to help (case-sensitive ones are rarer)
_SHORTEST_LITERAL = 3
_SHORTEST_EXACT_CASE = 2
_EMPTY = frozenset({""})


def test(pattern: re.Pattern[str]) -> Test | None:
    """The cheap tests of one pattern (see Test); None when it cannot be relaxed."""
    relaxed = relax(pattern)
    if relaxed is None:
        return None
    if pattern.flags & re.LOCALE:  # pragma: no cover - str patterns cannot be LOCALE
        return Test(relaxed=relaxed)
    folded = bool(pattern.flags & re.IGNORECASE)
    tree = _re_module("_parser").parse(pattern.pattern, pattern.flags)
    exact, required = _sequence(tree, folded=folded)
    found = exact if exact is not None else required
    shortest = _SHORTEST_LITERAL if folded else _SHORTEST_EXACT_CASE
    if not found or min(len(each) for each in found) < shortest:
        return Test(relaxed=relaxed)
    literals = _cover(found, shortest)
    if any(JOIN in each for each in literals):  # pragma: no cover - kept to one line each
        return Test(relaxed=relaxed)
    return Test(relaxed=relaxed, literals=literals, folded=folded)


_FEW_LITERALS = 8


def _cover(strings: Iterable[str], shortest: int) -> tuple[str, ...]:
    """Fewer strings, one of which each of ``strings`` holds (so every match still holds one).

    Greedily picks the substring (``shortest`` characters or more) that most of the strings
    hold, longer first on ties, until each string holds a pick; one find() a pick is cheaper
    than one a string. Keeps ``strings`` when that does not make the set smaller.
    """
    left = set(strings)
    if len(left) <= _FEW_LITERALS:
        return tuple(sorted(left))
    picks: list[str] = []
    while left and len(picks) < _FEW_LITERALS:
        counts: dict[str, int] = {}
        for each in left:
            parts = {
                each[i:j] for i in range(len(each)) for j in range(i + shortest, len(each) + 1)
            }
            for part in parts:
                counts[part] = counts.get(part, 0) + 1
        best = max(counts, key=lambda part: (counts[part], len(part), part))
        picks.append(best)
        left = {each for each in left if best not in each}
    if left:
        return tuple(sorted(strings))
    return tuple(sorted(picks))


_Strings = frozenset[str]


def _better(a: _Strings | None, b: _Strings | None) -> _Strings | None:
    """Of two sets of which every match holds one, the one found on fewer lines (a guess)."""
    if not b or min(map(len, b)) == 0:
        return a
    if not a or min(map(len, a)) == 0:
        return b
    # past three characters a literal is rare enough; then fewer finds are cheaper
    return max(a, b, key=lambda each: (min(*map(len, each), 3), -len(each), min(map(len, each))))


def _sequence(sub: Any, *, folded: bool) -> tuple[_Strings | None, _Strings | None]:  # noqa: ANN401
    """(every string ``sub`` can match, if few) and (strings one of which every match holds)."""
    best: _Strings | None = None
    run: _Strings = _EMPTY
    whole = True  # every node so far had a few exact strings: run is the prefix's set
    for op, av in sub.data:
        exact, required = _node(op, av, folded=folded)
        if run == _EMPTY and exact is not None and "" in exact:
            whole = False  # an optional start adds nothing to the shortest string of a run
            continue
        if exact is not None and len(run) * len(exact) <= _MOST:
            run = frozenset(a + b for a in run for b in exact)
            continue
        whole = False
        best = _better(_better(best, run), required)
        run = exact if exact is not None and len(exact) <= _MOST else _EMPTY
    if whole:
        return run, run
    return None, _better(best, run)


def _node(op: Any, av: Any, *, folded: bool) -> tuple[_Strings | None, _Strings | None]:  # noqa: ANN401
    """_sequence for one node of the parsed pattern."""
    c = _re_module("_constants")
    if op is c.LITERAL:
        chars = _chars(av, folded=folded)
        return chars, chars
    if op is c.IN:
        members = _members(av)
        if members is None:
            return None, None
        chars = frozenset(x for m in members for x in _chars(m, folded=folded))
        return (chars, chars) if len(chars) <= _FEW_CHARS else (None, None)
    if op is c.SUBPATTERN:
        return _sequence(av[-1], folded=folded)
    if op is c.ATOMIC_GROUP:
        return _sequence(av, folded=folded)
    if op is c.BRANCH:
        branches = [_sequence(branch, folded=folded) for branch in av[1]]
        exacts = [exact for exact, _ in branches]
        if all(exact is not None for exact in exacts):
            union = frozenset(x for exact in exacts if exact is not None for x in exact)
            if len(union) <= _MOST:
                return union, union
        requireds = [exact if exact is not None else req for exact, req in branches]
        if any(not req or min(map(len, req)) == 0 for req in requireds):
            return None, None
        return None, frozenset(x for req in requireds if req is not None for x in req)
    if op in {c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)}:
        low, high, item = av
        exact, required = _sequence(item, folded=folded)
        if exact is not None and high is not c.MAXREPEAT and high <= _FEW_REPEATS:
            every: set[str] = set()
            for count in range(low, high + 1):
                product = frozenset({""})
                for _ in range(count):
                    product = frozenset(a + b for a in product for b in exact)
                    if len(product) > _MOST:
                        break
                every |= product
            if len(every) <= _MOST:
                return frozenset(every), frozenset(every)
        return None, (exact if exact is not None else required) if low >= 1 else None
    if op in {c.ASSERT, c.ASSERT_NOT, c.AT}:
        return frozenset({""}), frozenset({""})  # zero-width: consumes nothing
    return None, None


_FEW_CHARS = 16
_FEW_REPEATS = 4


def _members(items: Any) -> list[int] | None:  # noqa: ANN401 - the stdlib parser's tree
    """The characters of a parsed class, or None when it is large or not a plain set."""
    c = _re_module("_constants")
    members: list[int] = []
    for op, av in items:
        if op is c.LITERAL:
            members.append(av)
        elif op is c.RANGE and av[1] - av[0] < _FEW_CHARS:
            members.extend(range(av[0], av[1] + 1))
        else:
            return None
    return members


@functools.cache
def _chars(code: int, *, folded: bool) -> _Strings:
    """What one pattern character can match: itself, or (folded) the ASCII text it matches.

    Folded literals are only looked for in ASCII text, lower-cased; re.IGNORECASE itself says
    which ASCII characters a character matches (``K``, the Kelvin sign, matches ``k``).
    """
    char = chr(code)
    if not folded:
        return frozenset({char})
    pattern = re.compile(re.escape(char), re.IGNORECASE)
    ascii_ = frozenset(chr(a).lower() for a in range(128) if pattern.fullmatch(chr(a)))
    return ascii_ or frozenset({char})  # matches no ASCII: never found in ASCII text

"""Planted secrets for every detect-secrets plugin, near misses, and generated trees of source.

Every value is assembled at run time (split literals, a seeded generator), so this file itself
holds nothing a secret scanner flags.
"""

from __future__ import annotations

import base64
import json
import random
import string
from pathlib import Path

B64 = string.ascii_letters + string.digits + "+/"
HEX = "0123456789abcdef"
# names the keyword plugin looks for, split so this file does not hold them whole
PW, SEC, AKEY, SHORTPW = "pass" + "word", "sec" + "ret", "api" + "_key", "pass" + "wd"


def _pick(rng: random.Random, alphabet: str, size: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(size))


def _jwt(rng: random.Random) -> str:
    def part(data: dict[str, object]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    body = part({"sub": _pick(rng, HEX, 8), "iat": 1700000000})
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{body}.{_pick(rng, B64[:62], 43)}"


def positives(rng: random.Random) -> list[str]:
    """Lines each of which some enabled plugin flags (one or more cases per plugin)."""
    upper = string.ascii_uppercase + string.digits
    lower = string.ascii_lowercase + string.digits
    token = string.ascii_letters + string.digits
    return [
        # AWS access key id and secret access key
        f"aws_access_key_id = {'AK' + 'IA'}{_pick(rng, upper, 16)}",
        f"aws_{SEC}_access_key = '{_pick(rng, B64, 40)}'",
        # Artifactory
        f"artifactory_token = {'AK' + 'C'}{_pick(rng, token, 70)}",
        # Azure storage
        f"conn = 'AccountKey={_pick(rng, B64, 86)}=='",
        # basic auth in URLs
        f"url = 'https://deploy:{_pick(rng, lower, 12)}@example.com/path'",
        f"  - postgres://admin:{_pick(rng, lower, 10)}@db.internal:5432/app",
        # Cloudant
        f"cloudant_{PW} = '{_pick(rng, string.ascii_lowercase, 24)}'",
        f"https://acct:{_pick(rng, HEX, 64)}@acct.cloud" + "ant.com",
        # Discord bot token
        f"DISCORD = 'M{_pick(rng, token, 23)}.{_pick(rng, token, 6)}.{_pick(rng, token, 27)}'",
        # GitHub tokens
        f"gh = {'gh' + 'p_'}{_pick(rng, token, 36)}",
        f"GITHUB_TOKEN: {'gh' + 's_'}{_pick(rng, token, 36)}",
        # GitLab tokens
        f"gitlab = {'glp' + 'at-'}{_pick(rng, token, 20)}",
        f"runner: {'GR13' + '48941'}{_pick(rng, token, 20)}",
        # high-entropy strings
        f'blob = "{_pick(rng, B64, 40)}"',
        f"digest = '{_pick(rng, HEX, 40)}'",
        f'short_b64 = "{_pick(rng, B64, 24)}"',
        # IBM Cloud IAM and COS HMAC
        f"ibm_cloud_iam_api_key = '{_pick(rng, token + '_-', 44)}'",
        f"ibm_cos_{SEC}_access_key = '{_pick(rng, HEX, 48)}'",
        # public IP addresses
        "server = 8.8.4.4",
        "endpoint: 203.0.113.77:8443",
        # JSON web token
        f"auth = '{_jwt(rng)}'",
        # keyword secrets, several languages and file types (the file name picks the table)
        f'{PW} = "{_pick(rng, lower, 14)}"',
        f"const {SEC} = '{_pick(rng, lower, 12)}';",
        f'{SHORTPW} := "{_pick(rng, lower, 12)}"',
        f"{PW}: {_pick(rng, lower, 12)}",
        f'String db_{"pass"} = "{_pick(rng, lower, 12)}";',
        f'char *{AKEY} = "{_pick(rng, lower, 16)}";',
        f'{SEC.upper()}_TOKEN = "{_pick(rng, lower, 16)}"',
        f"contrase{'ña'} = '{_pick(rng, lower, 12)}'",
        f"if ('{_pick(rng, lower, 10)}' == user.{PW}) {{",
        f'pr\u0131vate_key = "{_pick(rng, lower, 12)}"',  # dotless i: IGNORECASE matches it
        f'\u212aEY_PASS = "{_pick(rng, lower, 12)}"',  # Kelvin sign
        # Mailchimp, npm, OpenAI, PyPI, SendGrid
        f"mc = '{_pick(rng, HEX, 32)}-us{rng.randint(1, 20)}'",
        f"//registry.npmjs.org/:_auth{'Token'}={'np' + 'm_'}{_pick(rng, token, 36)}",
        f"openai = '{'sk' + '-'}{_pick(rng, token, 20)}{'T3Blbk' + 'FJ'}{_pick(rng, token, 20)}'",
        f"pypi = {'pypi-AgEIcHlwaS5' + 'vcmc'}{_pick(rng, token, 70)}",
        f"sg = {'S' + 'G.'}{_pick(rng, token, 22)}.{_pick(rng, token, 43)}",
        # private keys
        "-----BEGIN RSA " + "PRIVATE KEY-----",
        "-----BEGIN OPENSSH " + "PRIVATE KEY-----",
        # Slack
        f"slack = {'xo' + 'xb-'}{rng.randint(10**10, 10**11)}-{_pick(rng, token, 24)}",
        "hook = 'https://hooks.slack.com/services/"
        f"T{_pick(rng, upper, 8)}/B{_pick(rng, upper, 8)}/{_pick(rng, token, 24)}'",
        # SoftLayer, Square, Stripe, Telegram, Twilio
        f"softlayer_api_key = '{_pick(rng, HEX, 64)}'",
        f"square = {'sq0' + 'csp-'}{_pick(rng, token, 43)}",
        f"stripe = {'sk_' + 'live_'}{_pick(rng, token, 24)}",
        f"{rng.randint(10**8, 10**9 - 1)}:{_pick(rng, token, 35)}",
        f"twilio = {'A' + 'C'}{_pick(rng, lower, 32)}",
        # trailing blanks, tabs and a pragma on the line before
        f'\t{PW} = "{_pick(rng, lower, 14)}"   \t',
    ]


def negatives(rng: random.Random) -> list[str]:
    """Near misses: lines no plugin should flag (or that a filter drops)."""
    return [
        f"{PW} = get_{PW}()",
        f"{PW} = os.environ['APP_{PW.upper()}']",
        f"{PW}: ${{{PW.upper()}}}",
        f'{PW} = ""',
        f"{SEC}_name = 'not-set'",
        "server = 192.168.1.10",
        "local = 127.0.0.1:8080",
        "version = 1.2.3.4.5",
        "gitlab = " + "glp" + "at-" + _pick(rng, string.ascii_letters, 60),
        f'low = "{"ab" * 20}"',
        f'digits = "{"".join(str(i % 10) for i in range(30))}"',
        f"uuid = '{_pick(rng, HEX, 8)}-{_pick(rng, HEX, 4)}-{_pick(rng, HEX, 4)}'",
        f"sequence = '{string.ascii_uppercase}'",
        f'allowed = "{_pick(rng, B64, 40)}"  # pragma: allowlist {SEC}',
        f"# pragma: allowlist nextline {SEC}",
        f'next_allowed = "{_pick(rng, B64, 40)}"',
        "https://example.com/plain/url?x=1",
        "-----BEGIN CERTIFICATE-----",
        "def handler(value: int) -> int:  # step 1",
        f"{PW}_hint = '${{user}}'",
    ]


# file names that pick different keyword tables, transformers and filters
NAMES = (
    "app.py",
    "app.js",
    "main.go",
    "Main.java",
    "main.c",
    "main.cpp",
    "Program.cs",
    "App.swift",
    "main.tf",
    "config.yaml",
    "settings.yml",
    "setup.cfg",
    "app.ini",
    "app.properties",
    "pyproject.toml",
    "data.json",
    "README.md",
    "notes.txt",
    ".env",
    "deploy.sh",
    "Dockerfile",
    "web.xml",
    "package-lock.json",
)

YAML_BLOCK = "description: |\n  first line\n  {value}\nnested:\n  key: {value}\n  {pw}: {plain}\n"
INI_BLOCK = "[server]\nhost = example.com\n{pw} = {plain}\ntoken = '{value}'\n"


def planted(root: Path, seed: int = 7) -> list[str]:
    """Write every positive and negative case into files of every kind; their names."""
    rng = random.Random(seed)
    names = []
    lines = positives(rng) + negatives(rng)
    for index, name in enumerate(NAMES):
        path = root / f"planted{index}" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        body = list(lines)
        rng.shuffle(body)
        path.write_text("\n".join(body) + "\n", encoding="utf-8")
        names.append(path.relative_to(root).as_posix())
    extras = {
        "blocks/config.yaml": YAML_BLOCK.format(
            value=_pick(rng, B64, 40), pw=PW, plain=_pick(rng, string.ascii_lowercase, 12)
        ),
        "blocks/app.ini": INI_BLOCK.format(
            value=_pick(rng, B64, 40), pw=PW, plain=_pick(rng, string.ascii_lowercase, 12)
        ),
        "blocks/unknown.conf": INI_BLOCK.format(
            value=_pick(rng, HEX, 40), pw=PW, plain=_pick(rng, string.ascii_lowercase, 12)
        ),
        "blocks/crlf.py": f'a = 1\r\n{PW} = "{_pick(rng, "xyz", 12)}"\r\nb = "{_pick(rng, B64, 30)}"\r\n',
        "blocks/cr.py": f'a = 1\r{PW} = "{_pick(rng, "xyz", 12)}"\rb = 2\r',
        "blocks/breaks.py": "a = 1\f\n\x0bx = 2\u2028"
        + f'{PW} = "{_pick(rng, "xyz", 12)}"\x85\nend = "{_pick(rng, B64, 30)}"\n',
        "blocks/empty.py": "",
        "blocks/noeol.py": f'{PW} = "{_pick(rng, "xyz", 12)}"',
    }
    for name, text in extras.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
        names.append(name)
    return names


WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "zeta",
    "theta",
    "kappa",
    "lambda",
    "sigma",
    "omega",
    "record",
    "value",
    "handler",
    "config",
    "request",
    "response",
    "session",
    "client",
    "server",
]


def _python(rng: random.Random, index: int) -> str:
    lines = [f'"""Module {index}: {" ".join(rng.sample(WORDS, 6))}."""', "", "import os", ""]
    for n in range(rng.randint(4, 10)):
        a, b = rng.sample(WORDS, 2)
        lines += [
            f"def {a}_{b}_{n}(value: int, name: str = '{b}') -> dict[str, int]:",
            f'    """Return the {a} of {b} ({n})."""',
            f"    result = {{'{a}': value * {n}, '{b}': len(name)}}",
            f"    if value > {rng.randint(1, 999)}:",
            f"        result['{a}_{n}'] = os.getpid()",
            "    return result",
            "",
        ]
    return "\n".join(lines) + "\n"


def _json(rng: random.Random, index: int) -> str:
    data = {w: {"id": rng.randint(1, 10**6), "name": f"{w}-{index}"} for w in rng.sample(WORDS, 5)}
    return json.dumps(data, indent=2) + "\n"


def _yaml(rng: random.Random, index: int) -> str:
    lines = [f"name: service-{index}", "steps:"]
    for word in rng.sample(WORDS, 5):
        lines += [
            f"  - name: {word}",
            f"    run: make {word}",
            f"    timeout: {rng.randint(1, 60)}",
        ]
    return "\n".join(lines) + "\n"


def _markdown(rng: random.Random, index: int) -> str:
    lines = [f"# Document {index}", ""]
    for _ in range(rng.randint(3, 8)):
        lines += [" ".join(rng.choice(WORDS) for _ in range(14)) + ".", ""]
    lines += ["```python", f"print('{rng.choice(WORDS)}')", "```"]
    return "\n".join(lines) + "\n"


KINDS = ((".py", _python), (".json", _json), (".yaml", _yaml), (".md", _markdown))


def generated(root: Path, count: int, *, seed: int = 11, planted_every: int = 500) -> list[str]:
    """Write ``count`` files of realistic source (Python, JSON, YAML, Markdown); their names.

    Every ``planted_every``-th file also gets one planted line (a positive or a near miss).
    """
    rng = random.Random(seed)
    cases = positives(rng) + negatives(rng)
    names = []
    for index in range(count):
        suffix, make = KINDS[index % len(KINDS)]
        name = f"pkg{index % 50}/mod{index}{suffix}"
        text = make(rng, index)
        if planted_every and index % planted_every == planted_every - 1:
            text += rng.choice(cases) + "\n"
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        names.append(name)
    return names

"""``package``, ``sign``, ``verify`` and ``publish``: build, sign, check and upload a release."""

from __future__ import annotations

import argparse
from pathlib import Path

from ci.cli.app import App
from ci.core.errors import ExitCode, UsageError
from ci.release import package, publish

PACKAGE_HELP = """\
Builds the wheel and the sdist with `python -m build` (SOURCE_DATE_EPOCH = the commit's
time, so the same commit always gives the same bytes; sdists are normalized to sorted,
root-owned members dated SOURCE_DATE_EPOCH, for backends such as setuptools that stamp
their own build time; the wheel is built from the unpacked sdist with the compilers told to
write its folder as `.` (-ffile-prefix-map, --remap-path-prefix), so extension modules are
reproducible too), stamps build metadata (commit sha,
branch, tag, dirty flag, uv.lock sha256, Python, build time) into the wheel as
<package>/_build_info.json, writes the asset bundle <name>-<version>-bundle.tar.gz
(noxfile.py, tasks.py, workflows, README, build-info.json; deterministic tar), runs
`twine check --strict`, and writes SHA256SUMS (`sha256sum -c` format) and manifest.json.

Output layout (what `publish`, `release-record` and deploy read). DIR holds distributions
only, so `twine upload DIR/*`, `twine check DIR/*` and `uv publish DIR/*` take it unchanged;
everything else goes in the folder beside it, DIR-assets (dist/ -> dist-assets/):
  DIR/<wheel> DIR/<sdist>                the current build's distributions
  DIR-assets/<bundle>                    the asset bundle
  DIR-assets/SHA256SUMS                  checksums of the wheel, the sdist and the bundle
  DIR-assets/manifest.json               {"schema": 1, "name", "version", "build_id",
                                          "build": {commit, branch, tag, dirty, uv_lock_sha256,
                                          python, source_date_epoch, build_time},
                                          "artifacts": [{name, kind (wheel|sdist|bundle),
                                          size, sha256, published: [urls]}],
                                          "publish": last publish attempt or null}
  DIR-assets/builds/NNNN-<version>-<sha12>/  the last [tool.ci.publish] retain builds
                                          (default 5), each with all five files

The new build appears only when it is complete; older builds are pruned after that.
Exit 1 when the build, twine check or the reproducibility check fails, 6 when build or
twine is not installed (`uv sync --group package`)."""

PUBLISH_HELP = """\
Uploads the build in DIR (default dist/) to a package index with twine, wheel first, then
the sdist, and then reads the index's simple API to check it serves each file with the
sha256 in manifest.json (the `#sha256=` fragment, or a download).

  - SHA256SUMS is verified before anything is uploaded (a corrupt file: exit 5).
  - Files already on the index with the same sha256 are skipped: publishing twice is exit 0.
  - A file name already on the index with other bytes: exit 5, "bump the version".
  - Any failed upload or verification: exit 5; files this run uploaded are removed again
    where the index allows it (pypiserver), otherwise the message names the exact files to
    remove or yank (PyPI); manifest.json records the attempt under "publish".
  - An index that cannot be read before any upload (dead, refusing connections, timing out,
    5xx after retries): exit 6, one line; credentials it refuses on that read: exit 3;
    credentials twine's upload is refused with: exit 5.

Index: --repository-url, else --repository NAME (a ~/.pypirc section), else
$CI_PUBLISH_REPOSITORY_URL, else [tool.ci.publish] repository_url. The simple API is derived
from it (PyPI's, /legacy/ -> /simple/, else <url>/simple/) unless --index-url or
$CI_PUBLISH_INDEX_URL says otherwise. Credentials: TWINE_USERNAME / TWINE_PASSWORD (or
~/.pypirc, or trusted publishing on GitHub Actions, which twine does by itself); they are
never printed."""


SIGN_HELP = """\
Writes DIR-assets/provenance.intoto.json, an in-toto Statement v1 with a SLSA provenance v1
predicate: its subjects are the distributions in DIR (name and sha256); it names the
builder (the GitHub workflow and run, or a local build), the source commit and tag, the
uv.lock sha256 and the build command. Then, when [tool.ci.release] names a signer, signs
SHA256SUMS and the provenance with `ssh-keygen -Y sign` (namespace `file`): SHA256SUMS.sig
and provenance.intoto.json.sig beside them. The key is signing_key (a file) or
signing_key_env (an environment variable holding it); it is never printed.
Exit 3 when the key is missing or ssh-keygen refuses it."""

VERIFY_HELP = """\
Checks a release offline, in DIR (default dist/, with DIR-assets/ beside it, or one flat
folder of downloaded release assets): every file in SHA256SUMS has its sha256; no wheel or
sdist is missing from it; SHA256SUMS.sig and provenance.intoto.json.sig are good
signatures by the signer (ssh-keygen -Y verify with the allowed_signers file); every
provenance subject is a distribution in DIR with that sha256, and every distribution is a
subject. Trust comes from --allowed-signers and --signer, else [tool.ci.release].
Exit 1 naming each check that does not hold, 2 for bad usage (no such folder, no signer)."""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``package``, ``sign``, ``verify`` and ``publish`` to the parser."""
    p = sub.add_parser(
        "package",
        help="build wheel, sdist and asset bundle: reproducible, stamped, checksummed",
        description=PACKAGE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--outdir",
        type=Path,
        metavar="DIR",
        help="output folder (default: dist/ beside pyproject.toml)",
    )
    p.add_argument(
        "--verify-reproducible",
        action="store_true",
        help="build twice in separate temp folders and fail (exit 1) naming any file that differs",
    )
    p.add_argument(
        "--wheel-matrix",
        action="store_true",
        help=(
            "build nothing; print `wheels=cibuildwheel` when [tool.ci.release] wheels asks the "
            "release workflow for cibuildwheel's platform wheels, else `wheels=local`, and "
            "`skip=<cibuildwheel identifier>` of the wheel the package gate builds there "
            "(lines for $GITHUB_OUTPUT)"
        ),
    )
    p.set_defaults(handler=_package)

    p = sub.add_parser(
        "sign",
        help="write the build provenance (in-toto, SLSA v1) and sign SHA256SUMS and it",
        description=SIGN_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--dist", type=Path, metavar="DIR", help="the folder `package` wrote")
    p.set_defaults(handler=_sign)

    p = sub.add_parser(
        "verify",
        help="check a release offline: checksums, signatures, provenance subjects",
        description=VERIFY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dist", nargs="?", type=Path, metavar="DIR", help="default: dist/")
    p.add_argument("--allowed-signers", type=Path, metavar="FILE", help="ssh allowed_signers")
    p.add_argument("--signer", metavar="ID", help="the identity that must have signed")
    p.set_defaults(handler=_verify)

    p = sub.add_parser(
        "publish",
        help="upload the build to a package index with twine, verified and idempotent",
        description=PUBLISH_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dist",
        type=Path,
        metavar="DIR",
        help="the folder `package` wrote (default: dist/ beside pyproject.toml)",
    )
    target = p.add_mutually_exclusive_group()
    target.add_argument("--repository-url", metavar="URL", help="the index's upload URL")
    target.add_argument("--repository", metavar="NAME", help="a repository section of ~/.pypirc")
    p.add_argument(
        "--index-url",
        metavar="URL",
        help="the index's simple API, when it is not derivable from the upload URL",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="read the index and print what would be uploaded or skipped; upload nothing",
    )
    p.set_defaults(handler=_publish)


def _package(args: argparse.Namespace, app: App) -> int:
    config = app.config
    if args.wheel_matrix:
        print(f"wheels={config.wheels}")
        print(f"skip={package.cibuildwheel_identifier(config.default_python)}")
        return ExitCode.OK
    outdir = args.outdir if args.outdir is not None else config.root / "dist"
    result = package.package(
        config.root,
        outdir.resolve(),
        runner=app.runner,
        env=app.env,
        packages=config.packages,
        retain=config.publish.retain,
        verify_reproducible=args.verify_reproducible,
    )
    print(package.render(result, wheels=config.wheels))
    return ExitCode.OK


def _publish(args: argparse.Namespace, app: App) -> int:
    config = app.config
    dist = (args.dist if args.dist is not None else config.root / "dist").resolve()
    repo = publish.resolve_repository(
        url=args.repository_url,
        name=args.repository,
        index_url=args.index_url,
        env=app.env,
        config_url=config.publish.repository_url,
    )
    todo, outcome = publish.publish(
        dist,
        repo,
        runner=app.runner,
        clock=app.clock,
        http=app.http,
        retry=app.retry(),
        dry_run=args.dry_run,
        env=app.env,
    )
    if args.dry_run:
        print("plan (dry run, nothing is uploaded):")
        print("\n".join(todo.lines(repo)))
        if todo.conflicts:
            print("publishing would fail: this version is on the index with other bytes; bump it")
            return ExitCode.DEPLOY_FAILED
        return ExitCode.OK
    print(publish.render(repo, outcome))
    return ExitCode.OK


def _sign(args: argparse.Namespace, app: App) -> int:
    from ci.release import signing  # noqa: PLC0415 - loaded only when the command runs

    config = app.config
    dist = (args.dist if args.dist is not None else config.root / "dist").resolve()
    signed = signing.sign_release(
        dist, config.signing, root=config.root, env=app.env, runner=app.runner
    )
    print(f"wrote {signed.provenance}")
    for path in signed.signatures:
        print(f"wrote {path}")
    if not signed.signatures:
        print(
            "warning: the release is not signed: set [tool.ci.release] signer, allowed_signers "
            "and signing_key (or signing_key_env)"
        )
    return ExitCode.OK


def _verify(args: argparse.Namespace, app: App) -> int:
    from ci.release import signing, verify  # noqa: PLC0415 - loaded only when the command runs

    config = app.config
    dist = (args.dist if args.dist is not None else config.root / "dist").resolve()
    signing_config = config.signing
    allowed = args.allowed_signers or (
        config.root / signing_config.allowed_signers if signing_config else None
    )
    signer = args.signer or (signing_config.signer if signing_config else None)
    if allowed is None or signer is None:
        msg = (
            "verify needs whom to trust: pass --allowed-signers FILE and --signer ID, or set "
            "[tool.ci.release] signer and allowed_signers"
        )
        raise UsageError(msg)
    trust = signing.Trust(allowed_signers=Path(allowed), signer=signer)
    verdict = verify.verify(dist, trust, app.runner)
    print(verify.render(dist, verdict))
    return ExitCode.OK if verdict else ExitCode.GATE_FAILED

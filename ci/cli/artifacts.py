"""``package`` and ``publish``: build the release artifacts, and put them on a package index."""

from __future__ import annotations

import argparse
from pathlib import Path

from ci.cli.app import App
from ci.core.errors import ExitCode
from ci.release import package, publish

PACKAGE_HELP = """\
Builds the wheel and the sdist with `python -m build` (SOURCE_DATE_EPOCH = the commit's
time, so the same commit always gives the same bytes; sdists are normalized to sorted,
root-owned members dated SOURCE_DATE_EPOCH, for backends such as setuptools that stamp
their own build time), stamps build metadata (commit sha,
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


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``package`` and ``publish`` to the parser."""
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
    p.set_defaults(handler=_package)

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
    print(package.render(result))
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

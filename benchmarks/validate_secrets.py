"""What secret redaction costs on the site-packages corpus: files that lose text, and speed.

    .venv/bin/python benchmarks/validate_secrets.py --max-repos 40 --repeat 3

The kept files (every check passed, redaction off) are redacted twice: by the prefix
patterns alone (``_secrets.KINDS``: what validate did before detect-secrets, the AWS
pairing rule and the keyword-entropy rule were added) and by the full ``redact``. Prints
how many kept files lose text to each, per kind; every file that a detector other than
``email`` touches, with the values replaced, so a person can judge each one (site-packages
holds no real credentials, so these are the false-positive cost); and CPU MB/s of both
passes (best of ``--repeat``). Prints Markdown for docs/validate.md.
"""

from __future__ import annotations

import argparse
import collections
import time

from codemill.records import FileRecord
from codemill.validate import ValidateConfig
from codemill.validate.checks import Checker
from codemill.validate.secret_values import find_values, lowered
from codemill.validate.secrets import _redact_patterns, redact
from codemill.validate.sources import SourceInfo, read_source
from codemill.validate.steps import build_decontaminator


def kept_texts(config: ValidateConfig) -> list[tuple[str, str]]:
    checker = Checker(config, build_decontaminator(config))
    out = []
    for c in read_source("site-packages", config, 0, 1, SourceInfo()):
        outcome, _ = checker.check(c)
        if isinstance(outcome, FileRecord):
            out.append((f"{outcome.repo}/{outcome.path}", outcome.content))
    return out


def cpu_seconds(repeat: int, fn) -> float:
    runs = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        runs.append(time.process_time() - start)
    return min(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-repos", type=int, default=40, help="distributions to read (default: 40)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs; the best counts (default: 3)")
    args = parser.parse_args()
    config = ValidateConfig(max_repos=args.max_repos, redact_secrets=False)
    texts = kept_texts(config)
    mb = sum(len(t.encode()) for _, t in texts) / 1e6

    before, after = collections.Counter(), collections.Counter()
    files_before = files_after = 0
    touched = []
    for name, text in texts:
        _, old = _redact_patterns(text)
        _, new = redact(text)
        before.update(old)
        after.update(new)
        files_before += bool(old)
        files_after += bool(new)
        if set(new) - {"email"}:
            partial, _ = _redact_patterns(text)
            values = find_values(partial, key_id_seen="aws_access_key" in old)
            touched.append((name, dict(new), sorted(values.items())[:4]))
    lower_seconds = cpu_seconds(args.repeat, lambda: [lowered(t) for _, t in texts])
    old_seconds = cpu_seconds(args.repeat, lambda: [_redact_patterns(t) for _, t in texts])
    new_seconds = cpu_seconds(args.repeat, lambda: [redact(t) for _, t in texts])

    print(f"corpus: site-packages, max_repos={args.max_repos}: {len(texts)} kept files, {mb:.2f} MB\n")
    print("| redaction | kept files that lose text | share | per kind | CPU s | MB/s per core |")
    print("|---|---|---|---|---|---|")
    for label, files, counts, seconds in (
        ("prefix patterns only (before)", files_before, before, old_seconds),
        ("full `redact` (after)", files_after, after, new_seconds),
    ):
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(counts.items()))
        print(f"| {label} | {files} | {files / len(texts):.2%} | {kinds} | {seconds:.2f} | {mb / seconds:.1f} |")
    print(f"\n(lower-casing the texts for the triggers alone: {lower_seconds:.3f} s)\n")
    print("Files touched by a detector other than email:\n")
    for name, counts, values in touched:
        shown = "; ".join(f"{kind}: {value[:24]}..." for value, kind in values)
        print(f"- `{name}` {counts} {shown}")


if __name__ == "__main__":
    main()

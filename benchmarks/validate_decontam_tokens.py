"""How many site-packages files each tokenization flags as HumanEval-contaminated.

    .venv/bin/python benchmarks/validate_decontam_tokens.py --max-repos 40

The decontamination rule is fixed (any shared 10-gram; benchmark strings of 3..9 tokens
by exact match); what a "token" is decides how often ordinary code matches. Installed
packages are not HumanEval copies, so nearly every flagged file is a false positive.
This prints, per tokenization, the flagged files and a few of the matched windows, for
docs/validate.md.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

from codemill.validate import ValidateConfig
from codemill.validate import decontam as _decontam
from codemill.validate.checks import _decode
from codemill.validate.sources import SourceInfo, read_source

TOKENIZATIONS = {
    "whitespace runs (used)": str.split,
    "words only (\\w+)": re.compile(r"\w+").findall,
    "words + single punctuation": re.compile(r"\w+|[^\w\s]").findall,
}


def corpus_texts(max_repos: int) -> list[tuple[str, str]]:
    texts = []
    for c in read_source("site-packages", ValidateConfig(max_repos=max_repos), 0, 1, SourceInfo()):
        if isinstance(c.data, bytes) and c.data and not c.problem:
            text, problem = _decode(c.data)
            if not problem:
                texts.append((f"{c.repo}/{c.path}", text))
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-repos", type=int, default=40, help="distributions to read (default: 40)")
    args = parser.parse_args()
    texts = corpus_texts(args.max_repos)
    benchmark = _decontam.load_benchmarks(["humaneval"], ["prompt", "canonical_solution", "test"])
    print(f"{len(texts)} decodable files from {args.max_repos} distributions\n")
    print("| tokenization | files flagged | share | most frequent matched windows |")
    print("|---|---|---|---|")
    original = _decontam.tokenize
    try:
        for name, tokenize in TOKENIZATIONS.items():
            _decontam.tokenize = tokenize
            finder = _decontam.Decontaminator(benchmark)
            hits = [hit for _, text in texts if (hit := finder.find(text))]
            windows = Counter(snippet for _, snippet in hits).most_common(3)
            shown = "; ".join(f"`{w}` ({n})" for w, n in windows).replace("|", "\\|")
            print(f"| {name} | {len(hits)} | {len(hits) / len(texts):.1%} | {shown} |")
    finally:
        _decontam.tokenize = original


if __name__ == "__main__":
    main()

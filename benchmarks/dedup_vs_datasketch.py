"""Dedup speed and quality on a corpus with planted near-duplicates.

    .venv/bin/python benchmarks/dedup_vs_datasketch.py --repeat 5   # speed + quality in docs/dedup.md (~6 min)
    .venv/bin/python benchmarks/dedup_vs_datasketch.py --memory 10000 50000   # memory per repository
    .venv/bin/python benchmarks/dedup_vs_datasketch.py --quick      # a smaller corpus, one seed

Corpus: every package folder of this interpreter's site-packages with 3+ Python files is
a repository (its .py files, capped at --max-repo-bytes). Planted near-duplicates are
made from some of them: forks with files removed and files of another package added,
identifiers renamed, whitespace changed (tabs, CRLF, trailing blanks), and mixes.

Speed: MB/s of repository text, one process, same parameters (5-grams of [a-z0-9_]
tokens, 256 permutations, threshold 0.7, 64-bit hashes) for
- codemill: MinHasher signatures + LSH bands + estimate check + union-find (the stage's
  own functions, default settings);
- datasketch: MinHash(scheme="affine64").update_batch + MinHashLSH insert + query;
- the whole dedup stage (`codemill.dedup.run`: Parquet in, Parquet out, exact dedup too).
The three run interleaved, --repeat rounds on the first seed's corpus; reported: each
one's best time and the median over rounds of the datasketch / codemill ratio.

Memory (--memory): the cluster step's peak resident memory for two corpus sizes of
small synthetic repositories (2 files each), in a fresh process each; the difference
divided by the difference in repositories is the cost of one more repository.

Quality: the repositories the stage removes, against the ones an exact computation
removes: exact Jaccard of the same shingle sets (hashed independently, BLAKE2b-64) for
every pair whose sizes allow >= threshold, union-find over pairs >= threshold, and the
same keep rule (most files, bytes, then name). Precision and recall of removed repos,
for each candidate check, on one corpus per --seeds value.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections import Counter

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from codemill import io  # noqa: E402
from codemill.dedup import DedupConfig, MinHasher, run  # noqa: E402
from codemill.dedup.near import EstimateCheck, Signatures, choose_kept, near_duplicate_sets  # noqa: E402
from codemill.records import FILE_SCHEMA, FileRecord, to_table  # noqa: E402

TOKEN = re.compile(rb"[a-z0-9_]+")
IDENT = re.compile(r"\b[A-Za-z_][A-Za-z0-9_]{3,}\b")

# ---------------------------------------------------------------------------- corpus


def base_repos(max_repo_bytes: int, limit: int) -> dict[str, dict[str, str]]:
    site = sysconfig.get_paths()["purelib"]
    repos = {}
    for name in sorted(os.listdir(site)):
        root = os.path.join(site, name)
        if not os.path.isdir(root) or name.endswith(("-info", "__pycache__")) or name.startswith("_"):
            continue
        files, size = {}, 0
        for dirpath, dirnames, names in sorted(os.walk(root)):
            dirnames.sort()
            for f in sorted(names):
                path = os.path.join(dirpath, f)
                if f.endswith(".py") and size + os.path.getsize(path) <= max_repo_bytes:
                    with open(path, encoding="utf-8", errors="replace") as fh:
                        files[os.path.relpath(path, root)] = fh.read()
                    size += len(files[os.path.relpath(path, root)].encode())
        if len(files) >= 3:
            repos[f"pypi/{name}"] = files
        if len(repos) >= limit:
            break
    return repos


def plant(repos: dict[str, dict[str, str]], share: float, rng: random.Random) -> dict[str, dict[str, str]]:
    """Near-duplicate variants of a share of the repositories, of random kinds and strengths."""
    names = sorted(repos)
    out = dict(repos)
    for i, name in enumerate(rng.sample(names, int(len(names) * share))):
        files = dict(repos[name])
        kind = rng.choice(["fork", "rename", "whitespace", "mix"])
        if kind in ("fork", "mix"):
            drop = rng.uniform(0.0, 0.4)
            files = {p: c for p, c in files.items() if rng.random() >= drop} or files
            donor = repos[rng.choice(names)]
            for p in rng.sample(sorted(donor), min(len(donor), rng.randint(0, 3))):
                files[f"vendor/{p}"] = donor[p]
        if kind in ("rename", "mix"):
            common = [w for w, _ in Counter(IDENT.findall("\n".join(files.values()))).most_common(40)]
            for old in rng.sample(common, min(len(common), rng.randint(1, 8))):
                pattern = re.compile(rf"\b{old}\b")
                files = {p: pattern.sub(old + "_x", c) for p, c in files.items()}
        if kind == "whitespace":
            files = {p: c.replace("    ", "\t").replace("\n", " \r\n") for p, c in files.items()}
        out[f"planted{i:03d}-{kind}/{name.split('/')[1]}"] = files
    return out


def documents(repos: dict[str, dict[str, str]]) -> dict[str, bytes]:
    return {r: b"\n".join(repos[r][p].encode("utf-8") for p in sorted(repos[r])) for r in sorted(repos)}


# ---------------------------------------------------------------------------- ground truth


def shingle_set(doc: bytes, n: int) -> np.ndarray:
    tokens = TOKEN.findall(doc.lower())
    grams = [tokens] if 0 < len(tokens) < n else [tokens[i : i + n] for i in range(len(tokens) - n + 1)]
    hashed = {int.from_bytes(hashlib.blake2b(b" ".join(g), digest_size=8).digest(), "little") for g in grams}
    return np.array(sorted(hashed), dtype=np.uint64)


def exact_removed(repos, docs, threshold: float, n: int) -> set[str]:
    names = sorted(docs)
    sets = [shingle_set(docs[r], n) for r in names]
    sizes = np.array([len(s) for s in sets])
    parent = list(range(len(names)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            small, large = sorted((sizes[i], sizes[j]))
            if small == 0 or small < threshold * large:  # Jaccard <= small / large
                continue
            common = len(np.intersect1d(sets[i], sets[j], assume_unique=True))
            if common / (sizes[i] + sizes[j] - common) >= threshold:
                a, b = root(i), root(j)
                parent[max(a, b)] = min(a, b)
    roots = np.array([root(i) for i in range(len(names))])
    files = np.array([len(repos[r]) for r in names])
    size = np.array([len(docs[r]) for r in names])
    kept = choose_kept(roots, files, size, np.array(names, dtype=np.str_))
    return {names[i] for i in range(len(names)) if kept[i] != i}


# ---------------------------------------------------------------------------- timed runs


def codemill_core(docs: dict[str, bytes], config: DedupConfig) -> int:
    hasher = MinHasher(config.num_perm, config.ngram, config.seed, config.chunk_bytes)
    signed = [hasher.signature(d) for d in docs.values()]
    matrix = np.stack([s for s, _ in signed], axis=1)
    active = np.array([c > 0 for _, c in signed])
    bands, rows = config.band_layout()
    signatures = Signatures([matrix])
    check = EstimateCheck(signatures, config.threshold) if config.check == "estimate" else None
    roots, _ = near_duplicate_sets(signatures, active, bands, rows, check)
    return int((roots != np.arange(len(roots))).sum())


def datasketch_core(docs: dict[str, bytes], config: DedupConfig) -> int:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
    sketches = {}
    for name, doc in docs.items():
        tokens = TOKEN.findall(doc.lower())
        grams = {b" ".join(tokens[i : i + config.ngram]) for i in range(len(tokens) - config.ngram + 1)}
        m = MinHash(num_perm=config.num_perm, seed=config.seed, scheme="affine64")
        m.update_batch(list(grams))
        lsh.insert(name, m)
        sketches[name] = m
    return sum(len(lsh.query(m)) > 1 for m in sketches.values())


def write_input(repos, work: str) -> str:
    records = [
        FileRecord(repo=r, path=p, content=repos[r][p], language="python").finalize()
        for r in sorted(repos)
        for p in sorted(repos[r])
    ]
    inp = os.path.join(work, "in")
    io.write_parquet(to_table(records, FILE_SCHEMA), os.path.join(inp, "files", "shard-00000-of-00001.parquet"))
    return inp


def stage_run(inp: str, config: DedupConfig, work: str) -> str:
    out = os.path.join(work, f"out-{time.perf_counter_ns()}")
    with contextlib.redirect_stdout(sys.stderr):  # the stage prints its config
        run(config, inp, out)
    return out


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def synthetic_input(n: int, work: str, seed: int) -> str:
    """n small repositories of 2 files of random identifiers; every 20th copies the one before."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"name{i}" for i in range(20000)])
    records, previous = [], None
    for r in range(n):
        files = (
            previous
            if (r % 20 == 19 and previous)
            else {f"src/mod{k}.py": " ".join(vocab[rng.integers(0, len(vocab), 60)]) for k in range(2)}
        )
        records += [
            FileRecord(repo=f"user{r:07d}/project", path=p, content=c, language="python").finalize()
            for p, c in sorted(files.items())
        ]
        previous = files
    inp = os.path.join(work, f"in-{n}")
    io.write_parquet(to_table(records, FILE_SCHEMA), os.path.join(inp, "files", "shard-00000-of-00001.parquet"))
    return inp


def cluster_peak_rss(n: int, work: str, seed: int) -> int:
    """Peak RSS (bytes) of a fresh process running only the cluster step over n repositories."""
    from codemill.dedup import signature_shard

    out = os.path.join(work, f"out-{n}")
    signature_shard(DedupConfig(seed=seed), synthetic_input(n, work, seed), out)
    # VmHWM, not ru_maxrss: after fork + exec, ru_maxrss still carries the parent's size.
    code = (
        "import sys; from codemill.dedup import DedupConfig, cluster; "
        f"cluster(DedupConfig(seed={seed}), {out!r}); "
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0], file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(done.stderr.strip().splitlines()[-1]) * 1024


def memory(sizes: tuple[int, int], seed: int) -> dict:
    with tempfile.TemporaryDirectory() as work:
        small, large = (cluster_peak_rss(n, work, seed) for n in sizes)
    return {
        "repos": list(sizes),
        "peak_rss_mb": [round(small / 1e6, 1), round(large / 1e6, 1)],
        "bytes_per_repo": round((large - small) / (sizes[1] - sizes[0])),
    }


def speed(repos, docs, mb: float, repeat: int, work: str) -> dict:
    """Interleaved runs (other load on the machine hits every method alike): the best time
    of each method, and the median over rounds of the datasketch / codemill time ratio."""
    config = DedupConfig()
    inp = write_input(repos, work)
    runs = {"codemill": [], "datasketch": [], "stage": []}
    for _ in range(repeat):
        runs["codemill"].append(timed(codemill_core, docs, config))
        runs["datasketch"].append(timed(datasketch_core, docs, config))
        runs["stage"].append(timed(stage_run, inp, config, work))
    out = {}
    for key, times in runs.items():
        out[f"{key}_s"] = round(min(times), 3)
        out[f"{key}_mb_per_s"] = round(mb / min(times), 2)
    out["speedup_best_times"] = round(min(runs["datasketch"]) / min(runs["codemill"]), 2)
    ratios = [d / c for d, c in zip(runs["datasketch"], runs["codemill"])]
    out["speedup_median_round"] = round(float(np.median(ratios)), 2)
    return out


def quality(repos, docs, seed: int, work: str) -> dict:
    """Precision and recall of the removed repositories, per candidate check."""
    inp = write_input(repos, os.path.join(work, f"quality-{seed}"))
    truth = exact_removed(repos, docs, DedupConfig().threshold, DedupConfig().ngram)
    out = {"removed_by_exact_jaccard": len(truth)}
    for check in ("estimate", "none", "exact"):  # the default first
        result = stage_run(inp, DedupConfig(seed=seed, check=check), work)
        predicted = {
            r["repo"] for r in io.read_parquet(os.path.join(result, "clusters.parquet")).to_pylist() if not r["kept"]
        }
        hit = len(predicted & truth)
        out[check] = {
            "removed": len(predicted),
            "true_positives": hit,
            "precision": round(hit / len(predicted), 4) if predicted else 1.0,
            "recall": round(hit / len(truth), 4) if truth else 1.0,
            "missed": sorted(truth - predicted),
            "extra": sorted(predicted - truth),
        }
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--max-repo-bytes", type=int, default=400_000, help="cap on each base repository's text")
    p.add_argument("--repos", type=int, default=1000, help="at most this many base repositories")
    p.add_argument("--planted", type=float, default=0.5, help="share of repositories given a planted variant")
    p.add_argument("--repeat", type=int, default=3, help="timed rounds on the first seed's corpus (0: no timing)")
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2, 3],
        help="one corpus (planted variants) and MinHash seed per value, for quality",
    )
    p.add_argument("--quick", action="store_true", help="30 repositories of at most 100 kB, one seed")
    p.add_argument("--json", default="", help="also write the results here")
    p.add_argument(
        "--memory",
        type=int,
        nargs=2,
        metavar=("N1", "N2"),
        default=None,
        help="only measure the cluster step's memory at N1 and N2 synthetic repositories",
    )
    args = p.parse_args()
    if args.memory:
        print(json.dumps(memory(tuple(args.memory), args.seeds[0]), indent=2))
        return
    if args.quick:
        args.repos, args.max_repo_bytes, args.seeds = 30, 100_000, args.seeds[:1]
    bases = base_repos(args.max_repo_bytes, args.repos)
    results: dict = {"quality": {}}
    with tempfile.TemporaryDirectory() as work:
        for i, seed in enumerate(args.seeds):
            repos = plant(bases, args.planted, random.Random(seed))
            docs = documents(repos)
            mb = sum(len(d) for d in docs.values()) / 1e6
            print(
                f"corpus (seed {seed}): {len(repos)} repositories, {sum(map(len, repos.values()))} files, {mb:.1f} MB",
                file=sys.stderr,
                flush=True,
            )
            if i == 0 and args.repeat:
                results["speed"] = {
                    "repositories": len(repos),
                    "mb": round(mb, 2),
                    **speed(repos, docs, mb, args.repeat, work),
                }
            results["quality"][seed] = quality(repos, docs, seed, work)
    results["quality_worst"] = {
        check: {m: min(q[check][m] for q in results["quality"].values()) for m in ("precision", "recall")}
        for check in ("estimate", "none", "exact")
    }
    print(json.dumps(results, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()

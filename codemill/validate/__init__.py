"""validate: the first stage. Source repositories in, clean UTF-8 source files out.

Every input record ends up in exactly one place: ``files/`` (kept, secrets redacted) or
``quarantine/`` (with a machine-readable ``reason`` and a human ``detail``), and
``finish`` checks ``input_records == kept + quarantined``. The pieces, in the order a
record meets them:

- :mod:`.sources`, :mod:`.repos`, :mod:`.tabular`: read site-packages, a folder of
  repositories or JSONL/Parquet files, and keep this shard's records (by repository);
- :mod:`.checks`: reading problems, size, binary, UTF-8, language;
- :mod:`.filters`: DeepSeek-Coder / StarCoder quality filters;
- :mod:`.decontam`: drop files sharing a 10-gram with HumanEval (or any benchmark JSONL);
- :mod:`.secrets`: redact keys, tokens and e-mail addresses in what is kept;
- :mod:`.steps`: ``run_shard`` (one shard, resumable) and ``finish`` (merge, check, report).

``codemill validate --help`` lists every setting; docs/validate.md explains them.
"""

from codemill.validate.config import ValidateConfig
from codemill.validate.steps import InvariantError, finish, run_shard

__all__ = ["ValidateConfig", "run_shard", "finish", "InvariantError"]

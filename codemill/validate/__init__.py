"""validate: the first stage. Source repositories in, clean UTF-8 source files out.

Every input record ends up in exactly one place: ``files/`` (kept, secrets redacted) or
``quarantine/`` (with a machine-readable ``reason`` and a human ``detail``), and
``finish`` checks ``input_records == kept + quarantined``. The pieces, in the order a
record meets them:

- :mod:`._sources`, :mod:`._repos`, :mod:`._tabular`: read site-packages, a folder of
  repositories or JSONL/Parquet files, and keep this shard's records (by repository);
- :mod:`._checks`: reading problems, size, binary, UTF-8, language;
- :mod:`._filters`: DeepSeek-Coder / StarCoder quality filters;
- :mod:`._decontam`: drop files sharing a 10-gram with HumanEval (or any benchmark JSONL);
- :mod:`._secrets`: redact keys, tokens and e-mail addresses in what is kept;
- :mod:`._stage`: ``run_shard`` (one shard, resumable) and ``finish`` (merge, check, report).

``codemill validate --help`` lists every setting; docs/validate.md explains them.
"""

from codemill.validate._config import ValidateConfig, config_from_options
from codemill.validate._stage import InvariantError, finish, run_shard

__all__ = ["ValidateConfig", "config_from_options", "run_shard", "finish", "InvariantError"]

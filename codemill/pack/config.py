"""The pack stage's configuration: one dataclass, every field a CLI flag."""

from __future__ import annotations

from dataclasses import dataclass, field

from codemill.stage import InputError


@dataclass
class PackConfig:
    seq_len: int = field(
        default=512, metadata={"help": "tokens per packed sequence (small for the local preset; 4096+ on a cluster)"}
    )
    fim_rate: float = field(
        default=0.5, metadata={"help": "share of training units turned into Fill-In-the-Middle examples"}
    )
    spm_rate: float = field(default=0.5, metadata={"help": "share of FIM examples in SPM layout (the rest are PSM)"})
    vocab_size: int = field(
        default=8192, metadata={"help": "vocabulary size of the byte-level BPE tokenizer trained on the corpus"}
    )
    tokenizer: str = field(
        default="",
        metadata={
            "help": "reuse this Hugging Face tokenizer directory (URL) instead of training one",
            "metavar": "PATH",
        },
    )
    val_fraction: float = field(
        default=0.05,
        metadata={"help": "share of repositories held out for validation (at least one when there are two or more)"},
    )
    seed: int = field(
        default=0,
        metadata={"help": "random seed: held-out repositories, dependency-order ties, FIM spans, document order"},
    )
    tokenizer_sample_mb: float = field(
        default=256.0, metadata={"help": "at most this many MB of training-split text to train the tokenizer on"}
    )
    min_frequency: int = field(default=2, metadata={"help": "BPE: a pair must occur this often to be merged"})
    min_unit_tokens: int = field(
        default=8,
        metadata={"help": "a sequence with less free space than this is padded instead of starting a new unit"},
    )
    encode_batch_mb: float = field(
        default=4.0, metadata={"help": "MB of text per encode call; the next batch is encoded while one is packed"}
    )

    def ensure_valid(self) -> PackConfig:
        """Raise InputError naming the first field that cannot work."""
        if self.seq_len < 16:
            raise InputError(f"pack: seq_len={self.seq_len} is too small (need >= 16)")
        for name in ("fim_rate", "spm_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"pack: {name}={getattr(self, name)} must be within [0, 1]")
        if not 0.0 <= self.val_fraction < 1.0:
            raise InputError(f"pack: val_fraction={self.val_fraction} must be within [0, 1)")
        if not self.tokenizer and self.vocab_size < 512:
            raise InputError(f"pack: vocab_size={self.vocab_size} is too small for byte-level BPE (need >= 512)")
        if not 8 <= self.min_unit_tokens <= self.seq_len // 2:
            raise InputError(f"pack: min_unit_tokens={self.min_unit_tokens} must be within [8, seq_len/2]")
        if self.tokenizer_sample_mb <= 0 or self.encode_batch_mb <= 0 or self.min_frequency < 1:
            raise InputError("pack: tokenizer_sample_mb, encode_batch_mb and min_frequency must be positive")
        return self

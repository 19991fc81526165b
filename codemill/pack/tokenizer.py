"""The tokenizer: train a byte-level BPE on the corpus, or reuse one; encode code as text.

Training follows DeepSeek-Coder (byte-level BPE with Hugging Face ``tokenizers``); the
vocabulary size is a config value. BOS/EOS/PAD and the FIM sentinels are special tokens
(ids 0-5 of a trained tokenizer), saved as a standard Hugging Face directory whose
post-processor prepends BOS, the way every training unit starts.

Source code is encoded by :class:`TextEncoder` with ``encode_special_tokens`` on: the
text ``<｜fim▁begin｜>`` inside a file becomes ordinary byte-level tokens, never the
sentinel. Only the packer places special ids. ``encode_batch_fast`` (no offsets) is
enough because in a byte-level vocabulary every token stands for a fixed number of
bytes, so a table of byte lengths turns ids into byte offsets with one ``cumsum``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable

import numpy as np

from codemill.pack.fim import FIM_BEGIN, FIM_END, FIM_HOLE
from codemill.stage import InputError

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
PAD = "<｜▁pad▁｜>"
SPECIAL_TOKENS = {"bos": BOS, "eos": EOS, "pad": PAD, "fim_begin": FIM_BEGIN, "fim_hole": FIM_HOLE, "fim_end": FIM_END}


def train_bpe(texts: Iterable[str], vocab_size: int, min_frequency: int):
    """A byte-level BPE trained on ``texts``, special tokens first (ids 0-5)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def save_trained(tok, directory: str, seq_len: int) -> None:
    """Save a trained tokenizer as a Hugging Face directory (BOS prepended on encode)."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    bos_id = tok.token_to_id(BOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, bos_id)]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=[FIM_BEGIN, FIM_HOLE, FIM_END],
        clean_up_tokenization_spaces=False,
        model_max_length=seq_len,
    )
    hf.save_pretrained(directory)


def save_reused(source_dir: str, directory: str) -> list[str]:
    """Copy a base model's tokenizer, adding the special tokens it lacks; returns those added.

    The base model's own BOS/EOS/PAD are kept when it defines them (its embeddings know
    them); the FIM sentinels are always DeepSeek-Coder's strings.
    """
    from transformers import AutoTokenizer

    try:
        hf = AutoTokenizer.from_pretrained(source_dir)
    except (OSError, ValueError) as e:
        raise InputError(f"--tokenizer {source_dir}: not a loadable Hugging Face tokenizer: {e}") from e
    if not getattr(hf, "is_fast", False):
        raise InputError(f"--tokenizer {source_dir}: needs a fast tokenizer (tokenizer.json)")
    before = set(hf.get_vocab())
    missing = {k: v for k, v in (("bos_token", BOS), ("eos_token", EOS), ("pad_token", PAD)) if getattr(hf, k) is None}
    hf.add_special_tokens({**missing, "additional_special_tokens": [FIM_BEGIN, FIM_HOLE, FIM_END]})
    hf.save_pretrained(directory)
    return sorted(set(hf.get_vocab()) - before)


class TextEncoder:
    """Encodes text with special-token parsing off; knows the special ids and byte lengths.

    Reads the directory with ``tokenizers`` alone (importing transformers pulls in torch,
    seconds that a pack shard does not need).
    """

    def __init__(self, directory: str):
        from tokenizers import Tokenizer

        path = os.path.join(directory, "tokenizer.json")
        if not os.path.exists(path):
            raise InputError(f"{directory}: no tokenizer.json (pack needs a fast, byte-level BPE tokenizer)")
        self.tokenizer = Tokenizer.from_file(path)
        self.tokenizer.encode_special_tokens = True  # sentinel text in code stays text
        names = _special_token_names(directory)
        self.ids = {}
        for key, token in names.items():
            token_id = self.tokenizer.token_to_id(token)
            if token_id is None:
                raise InputError(f"{directory}: special token {key}={token!r} is not in the vocabulary")
            self.ids[key] = token_id
        self.vocab_size = self.tokenizer.get_vocab_size(with_added_tokens=True)
        self.byte_lengths = _byte_lengths(self.tokenizer, path, self.vocab_size)
        self.special_ids = np.array(sorted(set(self.ids.values())), dtype=np.uint32)

    def encode(self, texts: list[str]) -> list[np.ndarray]:
        """Token ids (uint32) of each text: no BOS/EOS, no special tokens."""
        return [
            np.array(e.ids, dtype=np.uint32) for e in self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        ]

    def encode_fragments(self, texts: list[str]) -> list[np.ndarray]:
        """Like :meth:`encode` for a few short strings (no thread pool round trip)."""
        return [
            np.array(self.tokenizer.encode(t, add_special_tokens=False).ids if t else (), dtype=np.uint32)
            for t in texts
        ]

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)


def _special_token_names(directory: str) -> dict[str, str]:
    """BOS/EOS/PAD as the directory names them (tokenizer_config.json, special_tokens_map.json)."""
    names = {k: SPECIAL_TOKENS[k] for k in ("fim_begin", "fim_hole", "fim_end")}
    for filename in ("special_tokens_map.json", "tokenizer_config.json"):  # the config wins
        file = os.path.join(directory, filename)
        if os.path.exists(file):
            with open(file, encoding="utf-8") as f:
                spec = json.load(f)
            for key in ("bos", "eos", "pad"):
                value = spec.get(f"{key}_token")
                if isinstance(value, dict):
                    value = value.get("content")
                if value:
                    names[key] = value
    missing = [k for k in ("bos", "eos", "pad") if k not in names]
    if missing:
        raise InputError(f"{directory}: no {', '.join(missing)} token named in tokenizer_config.json")
    return names


def _byte_lengths(tokenizer, path: str, vocab_size: int) -> np.ndarray:
    """UTF-8 bytes each id stands for; fails for tokenizers that are not byte-level BPE."""
    from tokenizers import pre_tokenizers

    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    decoder = spec.get("decoder") or {}
    kinds = {decoder.get("type")} | {d.get("type") for d in decoder.get("decoders", [])}
    if spec.get("model", {}).get("type") != "BPE" or "ByteLevel" not in kinds or spec.get("normalizer"):
        raise InputError(
            f"{path}: pack needs a byte-level BPE tokenizer without normalizer "
            f"(model {spec.get('model', {}).get('type')}, decoder {decoder.get('type')})"
        )
    alphabet = set(pre_tokenizers.ByteLevel.alphabet())
    lengths = np.zeros(vocab_size, dtype=np.int64)
    for token, i in tokenizer.get_vocab(with_added_tokens=False).items():
        if all(c in alphabet for c in token):
            lengths[i] = len(token)
    for added in spec.get("added_tokens", []):
        if not added.get("special"):  # plain added tokens match raw text
            lengths[added["id"]] = len(added["content"].encode("utf-8"))
    return lengths

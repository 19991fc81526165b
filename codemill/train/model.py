"""The model: a Llama sized by the preset (from scratch) or any ``AutoModelForCausalLM``
checkpoint (continued pretraining), always with pack's tokenizer.

Every compatibility check runs on configs and tokenizers only, before a weight is
allocated: sequence length against the model's positions, the tokenizer's ids against
the embedding rows, and a base model's own tokenizer against pack's.
"""

from __future__ import annotations

import json
import os

from codemill import io
from codemill.stage import InputError


def llama_config(shape: dict, tokenizer, attn_implementation: str):
    """A LlamaConfig from a preset's ``model`` section; the vocabulary defaults to the tokenizer's."""
    from transformers import LlamaConfig

    shape = dict(shape)
    rope = {"rope_type": "default", "rope_theta": float(shape.pop("rope_theta", 10000.0))}
    scaling = shape.pop("rope_scaling", None)
    if scaling:
        rope.update({"rope_type": scaling.get("type", scaling.get("rope_type")), "factor": float(scaling["factor"])})
    shape.setdefault("vocab_size", len(tokenizer))
    return LlamaConfig(
        **shape,
        rope_parameters=rope,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=False,
        attn_implementation=attn_implementation,
    )


def base_config(base_dir: str, attn_implementation: str):
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(base_dir)
    except (OSError, ValueError) as e:
        raise InputError(f"base model {base_dir}: not a Hugging Face model directory ({e})") from e
    config._attn_implementation = attn_implementation
    return config


def check_compatible(model_config, tokenizer, meta: dict, seq_len: int, where: str) -> None:
    """Fail before any compute when the data cannot go through this model."""
    positions = getattr(model_config, "max_position_embeddings", None)
    if positions is not None and seq_len > positions:
        raise InputError(f"{where}: seq_len {seq_len} is above the model's max_position_embeddings {positions}")
    rows = model_config.vocab_size
    needed = max(len(tokenizer), int(meta.get("vocab_size", 0)))
    if needed > rows:
        raise InputError(
            f"{where}: tokenizer/model vocabulary mismatch: the tokenizer has {needed} ids "
            f"but the model's embedding has {rows} rows"
        )


def check_same_tokenizer(base_dir: str, tokenizer) -> None:
    """A base model must be continued with the tokenizer it was trained with."""
    names = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "tokenizer.model")
    if not any(os.path.exists(os.path.join(base_dir, n)) for n in names):
        return
    from transformers import AutoTokenizer

    base_tok = AutoTokenizer.from_pretrained(base_dir)
    if base_tok.get_vocab() != tokenizer.get_vocab():
        raise InputError(
            f"base model {base_dir}: its tokenizer differs from pack's ({len(base_tok)} vs "
            f"{len(tokenizer)} tokens); re-run pack with the base model's tokenizer"
        )


def fetch_base(base_model: str, scratch: str) -> str:
    """A local directory holding the base checkpoint (s3:// is downloaded once)."""
    if not io.is_s3(base_model) and not os.path.isdir(io.local_path(base_model)):
        raise InputError(f"base model {base_model}: no such directory")
    return io.download_dir(base_model, os.path.join(scratch, "base-model"))


def build_model(model_config, base_dir: str | None):
    """Weights: loaded from ``base_dir`` or freshly initialised (under the caller's seed)."""
    from transformers import AutoModelForCausalLM

    if base_dir:
        return AutoModelForCausalLM.from_pretrained(
            base_dir, config=model_config, dtype="float32", attn_implementation=model_config._attn_implementation
        )
    return AutoModelForCausalLM.from_config(model_config, dtype="float32")


def count_parameters(model) -> dict:
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight.numel()
    tied = model.get_output_embeddings().weight is model.get_input_embeddings().weight
    # The input embedding is a lookup (no FLOPs); a tied one still costs FLOPs as the LM head.
    return {
        "parameters": total,
        "non_embedding_parameters": total - embed,
        "matmul_parameters": total if tied else total - embed,
    }


def flops_per_token(model_config, n_params: int, seq_len: int) -> float:
    """Training FLOPs per token: 6N over the matmul weights plus 12·layers·hidden·seq for attention
    (PaLM, appendix B); what MFU divides by."""
    layers = getattr(model_config, "num_hidden_layers", 0)
    hidden = getattr(model_config, "hidden_size", 0)
    return 6.0 * n_params + 12.0 * layers * hidden * seq_len


def write_generation_config(model_dir: str, tokenizer, base_dir: str | None) -> None:
    from transformers import GenerationConfig

    if base_dir and os.path.exists(os.path.join(base_dir, "generation_config.json")):
        gen = GenerationConfig.from_pretrained(base_dir)
    else:
        gen = GenerationConfig(
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            max_new_tokens=256,
        )
    gen.save_pretrained(model_dir)


def read_meta(pack_dir: str) -> dict:
    url = io.join(pack_dir, "meta.json")
    try:
        meta = json.loads(io.read_text(url))
    except io.StorageError as e:
        raise InputError(f"{pack_dir}: no readable meta.json; is this pack's output? ({e})") from e
    if "seq_len" not in meta:
        raise InputError(f"{url}: missing seq_len")
    return meta

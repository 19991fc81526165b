"""``model/``: what serving and evaluation load with ``AutoModelForCausalLM``/``AutoTokenizer``.

Full weights (a LoRA adapter is merged into the base, and also kept as ``adapter/`` beside
``model/``), the tokenizer with its chat template, and a generation config that stops at
the end of an assistant turn as well as at EOS.
"""

from __future__ import annotations

import os
import shutil

from codemill.sft import template


def save(trainer, tokenizer, model_dir: str) -> str:
    from transformers import GenerationConfig

    shutil.rmtree(model_dir, ignore_errors=True)
    model = trainer.model
    if hasattr(model, "merge_and_unload"):  # a peft model
        model.save_pretrained(os.path.join(os.path.dirname(model_dir), "adapter"))
        model = model.merge_and_unload()
        model.save_pretrained(model_dir)
    else:
        trainer.save_model(model_dir)  # gathers ZeRO-3 shards under DeepSpeed
    model.config.use_cache = True
    model.config.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    eos = template.end_of_turn_ids(tokenizer)
    GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos if len(eos) > 1 else eos[0],
        pad_token_id=tokenizer.pad_token_id,
        max_new_tokens=512,
    ).save_pretrained(model_dir)
    for name in ("training_args.bin",):  # written by trainer.save_model; not part of the model
        path = os.path.join(model_dir, name)
        if os.path.exists(path):
            os.remove(path)
    return model_dir


def save_collective(trainer, scratch_dir: str) -> None:
    """What a rank other than 0 does while rank 0 saves: take part in gathering ZeRO-3 shards
    (``save_model`` writes only on rank 0). A LoRA model needs nothing: merging is local."""
    if not hasattr(trainer.model, "merge_and_unload"):
        trainer.save_model(scratch_dir)

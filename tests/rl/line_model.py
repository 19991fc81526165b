"""A tiny causal LM whose tokens are whole program lines, and stdin/stdout problems it can solve.

A random model over the ordinary tiny BPE vocabulary essentially never writes a program
that passes a test, so rewards would all be zero and RL would have nothing to learn from.
Here each token is one line of Python (``print(int(input()) + 1)\\n``, ``pass\\n``, ...),
so a random completion of a few tokens passes some of the time, groups have spread, and
learning to prefer the right line for the statement is measurable in a few CPU steps.
The rewards still come from running the decoded program in the sandbox.
"""

from __future__ import annotations

import json
import os

import torch

SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
LINES = ["print(int(input()) + 1)\n", "print(int(input()) * 2)\n", "print(int(input()) - 1)\n", "pass\n"]
# statement words the model can condition on (the rest of a prompt maps to <unk>)
WORDS = ["plus", "twice"]
OPS = {"plus-one": ("Print n plus one", lambda n: n + 1), "twice": ("Print twice n", lambda n: 2 * n)}


# lines for mined-style tasks (tests/rl/conftest.py): a function body, literals for output/input tasks
TASK_LINES = ["    return x + 1\n", "    return x * 2\n", "4\n", "3\n", "pass\n"]


def build_tokenizer(path: str, lines: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {t: i for i, t in enumerate(list(SPECIAL.values()) + lines + WORDS)}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=SPECIAL["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.decoder = decoders.Fuse()  # lines are concatenated as they are
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIAL)
    fast.save_pretrained(path)
    return fast


def build_model(path: str, seed: int = 0, lines: list[str] = LINES) -> str:
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer(path, lines)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(path)
    GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    ).save_pretrained(path)
    return path


def write_problems(
    path: str, ops: list[str], per_op: int = 2, cases: int = 2, layout: str = "livecodebench", start: int = 2
) -> str:
    """``per_op`` problems per operation, each with ``cases`` stdin tests (inputs from ``start``), in either layout."""
    rows = []
    for op in ops:
        statement, fn = OPS[op]
        for k in range(per_op):
            inputs = [str(start + k * 10 + j) for j in range(cases)]
            outputs = [f"{fn(int(i))}\n" for i in inputs]
            qid = f"{op}-{k}"
            if layout == "rstar":
                rows.append(
                    {
                        "question_id": qid,
                        "question": statement,
                        "inputs": [i + "\n" for i in inputs],
                        "outputs": outputs,
                    }
                )
            else:
                tests = [{"input": i + "\n", "output": o, "testtype": "stdin"} for i, o in zip(inputs, outputs)]
                rows.append(
                    {
                        "question_id": qid,
                        "question_title": op,
                        "question_content": statement,
                        "public_test_cases": json.dumps(tests[:1]),
                        "private_test_cases": json.dumps(tests[1:]),
                    }
                )
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return path

"""Shared fixtures: a local S3 endpoint over HTTP, and a tiny real causal LM.

The tiny model is a randomly initialised Llama with a byte-level BPE tokenizer that has
BOS/EOS/PAD and DeepSeek-Coder's FIM sentinels, saved as an ordinary Hugging Face
directory; nothing is downloaded.
"""

from __future__ import annotations

import builtins
import glob
import os
import socket
import sys

import pytest

FIM_TOKENS = ["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"]
SPECIAL = {"bos_token": "<｜begin▁of▁sentence｜>", "eos_token": "<｜end▁of▁sentence｜>", "pad_token": "<｜pad｜>"}


@pytest.fixture(autouse=True)
def _restore_print():
    """kfp.local indents output by patching builtins.print and, when its ParallelFor threads
    finish out of order, leaves it patched; tests that run kfp.local must not leak that."""
    original = builtins.print
    yield
    builtins.print = original


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def s3_endpoint(monkeypatch):
    """A moto S3 server on 127.0.0.1 (real HTTP); yields its URL with credentials set."""
    from moto.server import ThreadedMotoServer

    from codemill import io

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    for k, v in {
        "AWS_ENDPOINT_URL": url,
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(k, v)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    io.reset_s3_client()
    yield url
    io.reset_s3_client()
    server.stop()


def python_sources(limit: int = 40) -> list[str]:
    """Real Python files from the standard library, a stable choice."""
    root = os.path.dirname(os.__file__)
    files = sorted(glob.glob(os.path.join(root, "*.py")))
    return files[:limit]


def build_tiny_tokenizer(path: str, vocab_size: int = 512):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL.values()) + FIM_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    texts = [open(f, encoding="utf-8", errors="replace").read() for f in python_sources()]
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, additional_special_tokens=FIM_TOKENS, **SPECIAL)
    fast.save_pretrained(path)
    return fast


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    """A tiny random Llama + tokenizer saved with save_pretrained (session-wide, read-only)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    path = str(tmp_path_factory.mktemp("tiny-model"))
    tok = build_tiny_tokenizer(path)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(path)
    GenerationConfig(
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id
    ).save_pretrained(path)
    return path


@pytest.fixture()
def python_exe() -> str:
    return sys.executable

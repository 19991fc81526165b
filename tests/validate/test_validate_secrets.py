"""Secrets and e-mail addresses become placeholders, counted per kind; code stays code."""

import os

import pytest

from codemill.validate._secrets import present_kinds, redact

PEM_BODY = "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\naFDrBz9vFqU4yVZ3c+1LRQ==\n"

CASES = [
    ("private_key", f'KEY = """-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----"""',
     'KEY = """<KEY>"""'),
    ("private_key", f"-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n{PEM_BODY}-----END PRIVATE KEY-----",
     "<KEY>"),
    ("aws_access_key", "aws_access_key_id = AKIAIOSFODNN7EXAMPLE", "aws_access_key_id = <KEY>"),
    ("aws_access_key", "key: ASIAY34FZKBOKMUTVV7A", "key: <KEY>"),
    ("google_api_key", 'maps_key = "AIzaSyDaGmWKa4JsXZ-HjGw7ISLn_3namBGewQe"', 'maps_key = "<KEY>"'),
    ("github_token", "token=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", "token=<KEY>"),
    ("github_token", "gho_16C7e42F292c6912E7710c838347Ae178B4a", "<KEY>"),
    ("github_token", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "<KEY>"),
    ("slack_token", "SLACK = 'xoxb-263594206564-2343594206574-FGqddMF8t08v8N7Oq4i57vs1'", "SLACK = '<KEY>'"),
    ("openai_key", "OPENAI_API_KEY=sk-proj-Abc123Def456Ghi789Jkl012", "OPENAI_API_KEY=<KEY>"),
    ("gitlab_token", "glpat-xXxXxXxXxXxXxXxXxXxX and more", "<KEY> and more"),
    ("email", "Maintainer: Jane Doe <jane.doe+lists@mail.example.co.uk>", "Maintainer: Jane Doe <<EMAIL>>"),
]


@pytest.mark.parametrize("kind,text,expected", CASES)
def test_each_kind_is_replaced_and_counted(kind, text, expected):
    assert redact(text) == (expected, {kind: 1})


def test_code_that_only_looks_like_secrets_is_untouched():
    code = (
        "@property\ndef name(self):\n    return self._name\n"
        'BEGIN = b"-----BEGIN OPENSSH PRIVATE KEY-----"\nEND = b"-----END OPENSSH PRIVATE KEY-----"\n'
        "ask-me = 1  # sk- followed by too few characters\n"
        "matrix @ other  # the matmul operator\n"
    )
    assert redact(code) == (code, {})


def test_counts_add_up_over_one_pass():
    text = "a@example.com b@example.com AKIAIOSFODNN7EXAMPLE\n" * 3
    redacted, counts = redact(text)
    assert counts == {"email": 6, "aws_access_key": 3}
    assert redacted == "<EMAIL> <EMAIL> <KEY>\n" * 3


def test_precheck_skips_texts_without_triggers():
    assert present_kinds("def f(x):\n    return x\n") == ()
    assert present_kinds("user@host and AKIA") == ("aws_access_key", "email")


def test_real_source_file_only_loses_its_email():
    path = os.path.join(os.path.dirname(os.__file__), "textwrap.py")
    with open(path, encoding="utf-8") as f:
        text = f.read()
    redacted, counts = redact(text)
    assert set(counts) == {"email"}
    assert redacted.replace("<EMAIL>", "") == text.replace("gward@python.net", "")

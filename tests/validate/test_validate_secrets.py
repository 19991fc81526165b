"""Secrets and e-mail addresses become placeholders, counted per kind; code stays code."""

import os

import pytest

from codemill.validate.secrets import present_kinds, redact

PEM_BODY = "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\naFDrBz9vFqU4yVZ3c+1LRQ==\n"

CASES = [
    (
        "private_key",
        f'KEY = """-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}-----END RSA PRIVATE KEY-----"""',
        'KEY = """<KEY>"""',
    ),
    (
        "private_key",
        f"-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n{PEM_BODY}-----END PRIVATE KEY-----",
        "<KEY>",
    ),
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


# ---------------------------------------------------------------------------- by value
# detect-secrets' plugins, TruffleHog's AWS pairing rule, high entropy near a key word.
# The values below are made up in the shape of each kind; none is a real credential.

KEY_ID, SECRET = "AKIAZ7QXK3M2PLW4RT6N", "9fQe2Lr/tX8kVb+Wm4NzYd1Hs7GpJu0Ca5oEiK3R"

HELD_OUT = f'''def connect():
    """Connect to the archive bucket.

    The credentials for the test account are {KEY_ID} with the secret
    access key {SECRET} so anyone can reproduce it.
    """
'''


def test_aws_pair_in_a_docstring_is_fully_redacted():
    redacted, counts = redact(HELD_OUT)
    assert KEY_ID not in redacted and SECRET not in redacted
    assert counts == {"aws_access_key": 1, "aws_secret_key": 1}
    assert "are <KEY> with the secret\n    access key <KEY> so anyone" in redacted


def test_aws_pair_needs_no_keyword_and_goes_everywhere_the_secret_is():
    text = f"# id {KEY_ID}\nprint('{SECRET}')\nVALUE = '{SECRET}'\n"
    assert redact(text) == ("# id <KEY>\nprint('<KEY>')\nVALUE = '<KEY>'\n", {"aws_access_key": 1, "aws_secret_key": 2})


def test_a_40_character_run_without_a_key_id_or_keyword_is_kept():
    text = f"# an example value: {SECRET}\n"
    assert redact(text) == (text, {})


def test_pairing_spares_git_shas_and_words_next_to_a_key_id():
    sha = "e83c5163316f89bfbde7d9ab23ca2e25604af290"  # 40 hex: a commit, not a secret
    words = "ThisIsFortyCharactersOfPlainCamelCaseAbc"
    text = f"{KEY_ID}\ncommit {sha}\nname {words}\n"
    redacted, counts = redact(text)
    assert counts == {"aws_access_key": 1} and sha in redacted and words in redacted


def test_a_key_id_inside_a_base64_blob_is_not_an_id():
    # an embedded font (pillow's ImageFont.py) holds "AKIAAQAAAAAB..." mid-blob
    blob = "AAEAAAAPAIAAAwBwRkZUTWIKsJ0AAAD8AAAAHEdERUYAKAAlAAABGAAAAB5PUy8yAKIAAQAAAAAB" * 3
    text = f'FONT = b"{blob}"\n'
    assert redact(text) == (text, {})


@pytest.mark.parametrize(
    "kind,text,expected",
    [
        (
            "jwt",
            'AUTH = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.'
            'dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk"',
            'AUTH = "<KEY>"',
        ),
        (
            "slack_token",
            'HOOK = "https://hooks.slack.com/services/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"',
            'HOOK = "<KEY>"',
        ),
        ("stripe_key", 'stripe.api_key = "sk_live_4eC39HqLyjWDarjtT1zdp7dc"', 'stripe.api_key = "<KEY>"'),
        (
            "sendgrid_key",
            'SG = "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"',
            'SG = "<KEY>"',
        ),
        (
            "npm_token",
            "//registry.npmjs.org/:_authToken=npm_aB3dE6gH9jK2mN5pQ8sT1vW4yZ7bC0eF3hJ6 # ci",
            "//registry.npmjs.org/:_authToken=<KEY> # ci",
        ),
        (
            "azure_storage_key",
            "DefaultEndpointsProtocol=https;AccountKey="
            + "Zq8Xw3Lp0Rt5Vn2Bm7Kc4Hs9Jd1Fg6Ya" * 2
            + "Zq8Xw3Lp0Rt5Vn2Bm7Kc4H==",
            "DefaultEndpointsProtocol=https;AccountKey=<KEY>",
        ),
    ],
)
def test_detect_secrets_plugins_find_their_kinds(kind, text, expected):
    assert redact(text) == (expected, {kind: 1})


@pytest.mark.parametrize(
    "text",
    [
        'API_TOKEN = "f3a9c2b7e1d04b6a8c5e9f2d7b1a3c6e"',  # hex, after a keyword
        "the secret for staging is Qm9LZ2x1dGVyX3Rva2VuXzIwMjQ4a3Fw9Z",  # prose, no assignment
        "apiKey: 'q3Lw9ZpX7mR2vT8nB4kY1cF6hJ0sD5gA'",  # camelCase keyword
        'password =\n    "u7Hk2Lm9Pq4Rs1Tv8Wx3Yz6Ab0Cd5Ef"',  # the value on the next line
        'key = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")',  # a test vector (AES): a key all the same
    ],
)
def test_high_entropy_values_near_key_words_are_redacted(text):
    redacted, counts = redact(text)
    assert counts == {"high_entropy_secret": 1}
    assert redacted.count("<KEY>") == 1 and len(redacted) < len(text) - 15


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ('DB_PASSWORD = "h7Gk2pQz9XvB4nLw8RtY"\n', "h7Gk2pQz9XvB4nLw8RtY"),  # 20 characters: 4.32 bits at most
        ("the password is Xk9pL2mQ7vRt4 for now", "Xk9pL2mQ7vRt4"),  # prose, 13 characters
        ("api_key: 'Zr4Tq8Wm2Nc6Hs1Vb9Ky3F'", "Zr4Tq8Wm2Nc6Hs1Vb9Ky3F"),
    ],
)
def test_short_random_values_near_key_words_are_redacted(text, value):
    assert redact(text) == (text.replace(value, "<KEY>"), {"high_entropy_secret": 1})


@pytest.mark.parametrize(
    "text",
    [
        'password = "Password123456"',  # a word and a digit run
        'token = "changeme"',
        'api_key = "<your-token>"',
        'key = os.environ["API_KEY_PRODUCTION_2"]',
        'secret = "${SECRET_VALUE_2024}"',
        'token = "xxxxxxxxxxxxxxxxxxxx"',
        "key: HelloWorld2024",  # words: entropy well under the most 14 characters allow
        "apiKey = getApiKeyForService1()",  # an identifier
        "def public_key(self) -> Ed25519PublicKey, Ed448PublicKey",  # CamelCase class names
        'password = "h7Gk2pQz9Xv"',  # 11 characters: below the minimum length
        "--hash=sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",  # pip lock hash
        '{file = "x.whl", hash = "sha256:9d71491b50023b06fc76928e6eddb952a8f1c7b35e"}',  # poetry.lock
        '"integrity": "sha512-Vo0ZEaVzAaHq8yY3lc+mRbf1xJ9xl8qQ8PbM4c2Bv7y3kW2sTvHx0aBc=="',  # package-lock
        'expected = base64.b64decode("SGVsbG8gV29ybGQhIFRoaXMgaXMgYSB0ZXN0IHZlY3Rvcg==")',  # a test vector
        'key = bytes.fromhex("000102030405060708090a0b0c0d0e0f")',  # a sequential test key
        'token = "123e4567-e89b-12d3-a456-426614174000"',  # a UUID
        "account_sid = 'ACxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'",  # a placeholder
        'password = "correct horse battery staple"',  # words, low entropy
        "    >>> tokenize([1, 2, '3'])\n    '9d71491b50023b06fc76928e6eddb952'",  # "token" inside a word
        "KEY_EXCHANGE = id_GostR3410_2001_KeyTransportSmth2",  # an identifier
        "-----BEGIN CERTIFICATE-----\nMIIDdzCCAl+gAwIBAgIEAgAAuTANBgkqhkiG9w0BAQUFADBaMQswCQYDVQQGEwJJ\n"
        "RTESMBAGA1UEChMJQmFsdGltb3JlMRMwEQYDVQQLEwpDeWJlclRydXN0MSIwIAYD\n-----END CERTIFICATE-----",
    ],
)
def test_ordinary_code_and_data_are_kept(text):
    assert redact(text) == (text, {})


def test_site_packages_lose_no_text_beyond_emails_and_known_keys():
    # the files of this environment hold no credentials: only the e-mail pass may touch them
    root = os.path.dirname(os.__file__)
    # (not secrets.py: its docstring shows token_hex(16) output, a random token after "token")
    for name in ("base64.py", "hashlib.py", "hmac.py", "uuid.py", "ssl.py", "smtplib.py", "getpass.py"):
        with open(os.path.join(root, name), encoding="utf-8") as f:
            text = f.read()
        _, counts = redact(text)
        assert set(counts) <= {"email"}, (name, counts)


def test_artifactory_token_between_spaces_keeps_the_spaces():
    text = "export ARTIFACTORY=AKCp8jQ7Zk3Lm9Xw2Rt5Vn0Bq4Hs6Dc1Fg8Ya3Jp7Lk2Mn5Qr9St4Wv0Xy6 && curl\n"
    assert redact(text) == ("export ARTIFACTORY=<KEY> && curl\n", {"artifactory_token": 1})

"""The one I/O module: every location in codemill is a URL opened here.

Accepted URLs: a plain path, ``file://`` path, or ``s3://bucket/key``. S3 goes through
boto3, so any S3-compatible endpoint works (``AWS_ENDPOINT_URL``, or
``AWS_ENDPOINT_URL_S3``, as boto3 reads them). Stages never import boto3 themselves.

Errors are raised as :class:`StorageError` with the URL in the message, never as a raw
botocore traceback.
"""

from __future__ import annotations

import fnmatch
import glob as _glob
import io as _io
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


class StorageError(RuntimeError):
    """A location could not be read or written; the message names it and why."""


# ---------------------------------------------------------------------------- URLs


def is_s3(url: str) -> bool:
    return str(url).startswith("s3://")


def local_path(url: str) -> str:
    """The filesystem path of a local URL (plain path or file://)."""
    url = str(url)
    if url.startswith("file://"):
        return url[len("file://") :]
    if is_s3(url):
        raise StorageError(f"{url}: expected a local path, got an s3:// URL")
    return url


def join(url: str, *parts: str) -> str:
    url = str(url)
    if is_s3(url):
        return "/".join([url.rstrip("/")] + [p.strip("/") for p in parts])
    return os.path.join(url, *parts)


def split_s3(url: str) -> tuple[str, str]:
    rest = url[len("s3://") :]
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise StorageError(f"{url}: no bucket in S3 URL")
    return bucket, key


_S3_CLIENT = None


def s3_client():
    """A shared boto3 client; endpoint from AWS_ENDPOINT_URL(_S3) when set.

    ``AWS_MAX_ATTEMPTS`` (boto3's own variable) overrides the 5 attempts, so a test or an
    operator can make an unreachable endpoint fail fast.
    """
    global _S3_CLIENT
    if _S3_CLIENT is None:
        import boto3
        from botocore.config import Config

        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        attempts = int(os.environ.get("AWS_MAX_ATTEMPTS") or 5)
        with _s3_errors(endpoint or "s3", "create an S3 client"):
            # A fresh session, not boto3's module-wide default one, so credentials and
            # region are read again after reset_s3_client().
            _S3_CLIENT = boto3.session.Session().client(
                "s3",
                endpoint_url=endpoint or None,
                config=Config(retries={"max_attempts": attempts, "mode": "standard"}),
            )
    return _S3_CLIENT


def reset_s3_client() -> None:
    """Forget the cached client (tests change the endpoint between cases)."""
    global _S3_CLIENT
    _S3_CLIENT = None


@contextmanager
def _s3_errors(url: str, action: str):
    # Every failure boto3 can raise: service answers (ClientError), client-side ones such
    # as NoCredentialsError or EndpointConnectionError (BotoCoreError), and s3transfer's
    # wrappers for upload_file/download_file (Boto3Error, e.g. S3UploadFailedError).
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except ClientError as e:
        err = e.response.get("Error", {})
        raise StorageError(f"{url}: cannot {action}: {err.get('Code', '?')} {err.get('Message', '')}".rstrip()) from e
    except (BotoCoreError, Boto3Error) as e:
        raise StorageError(f"{url}: cannot {action}: {type(e).__name__}: {e}") from e


# ---------------------------------------------------------------------------- reading/writing


@contextmanager
def open_url(url: str, mode: str = "rb", encoding: str | None = None) -> Iterator[IO[Any]]:
    """Open a URL for reading ("r"/"rb") or writing ("w"/"wb").

    S3 writes are staged in a temporary file and uploaded on a clean close, so a
    crashed writer never leaves a half-written object behind.
    """
    text = "b" not in mode
    if not is_s3(url):
        path = local_path(url)
        if "w" in mode or "a" in mode:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        try:
            # opened here and entered below, so only the open itself maps to StorageError
            f = open(path, mode, encoding=encoding or ("utf-8" if text else None))  # noqa: SIM115
        except OSError as e:
            raise StorageError(f"{url}: cannot open: {e.strerror or e}") from e
        with f:
            yield f
        return
    bucket, key = split_s3(url)
    if "r" in mode:
        with _s3_errors(url, "read"):
            body = s3_client().get_object(Bucket=bucket, Key=key)["Body"].read()
        buf = _io.BytesIO(body)
        yield _io.TextIOWrapper(buf, encoding=encoding or "utf-8") if text else buf
        return
    with tempfile.NamedTemporaryFile("w+b", delete=False) as tmp:
        tmp_path = tmp.name
    try:
        with open(tmp_path, mode, encoding=encoding or ("utf-8" if text else None)) as f:
            yield f
        with _s3_errors(url, "write"):
            s3_client().upload_file(tmp_path, bucket, key)
    finally:
        os.unlink(tmp_path)


def read_bytes(url: str) -> bytes:
    with open_url(url, "rb") as f:
        return f.read()


def write_bytes(url: str, data: bytes) -> None:
    with open_url(url, "wb") as f:
        f.write(data)


def read_text(url: str) -> str:
    return read_bytes(url).decode("utf-8")


def write_text(url: str, text: str) -> None:
    write_bytes(url, text.encode("utf-8"))


def read_json(url: str) -> Any:
    return json.loads(read_text(url))


def write_json(url: str, obj: Any) -> None:
    write_text(url, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def exists(url: str) -> bool:
    if not is_s3(url):
        return os.path.exists(local_path(url))
    bucket, key = split_s3(url)
    from botocore.exceptions import ClientError

    try:
        with _s3_errors(url, "check existence"):
            s3_client().head_object(Bucket=bucket, Key=key)
        return True
    except StorageError as e:
        cause = e.__cause__
        if isinstance(cause, ClientError) and cause.response.get("Error", {}).get("Code") in (
            "404",
            "NoSuchKey",
            "NotFound",
        ):
            return False
        raise


def makedirs(url: str) -> None:
    """Create a local directory (S3 has no directories; a no-op there)."""
    if not is_s3(url):
        os.makedirs(local_path(url), exist_ok=True)


def remove_tree(url: str) -> None:
    if not is_s3(url):
        shutil.rmtree(local_path(url), ignore_errors=True)
        return
    bucket, prefix = split_s3(url.rstrip("/") + "/")
    for key in _list_keys(bucket, prefix):
        with _s3_errors(url, "delete"):
            s3_client().delete_object(Bucket=bucket, Key=key)


# ---------------------------------------------------------------------------- listing


def _list_keys(bucket: str, prefix: str) -> Iterator[str]:
    paginator = s3_client().get_paginator("list_objects_v2")
    with _s3_errors(f"s3://{bucket}/{prefix}", "list"):
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]


def list_files(url: str, suffix: str = "") -> list[str]:
    """All files under a directory URL (recursively), sorted, optionally by suffix."""
    if is_s3(url):
        bucket, prefix = split_s3(url.rstrip("/") + "/")
        keys = [k for k in _list_keys(bucket, prefix) if k.endswith(suffix)]
        return sorted(f"s3://{bucket}/{k}" for k in keys)
    root = local_path(url)
    out = []
    for dirpath, _, names in os.walk(root):
        out.extend(os.path.join(dirpath, n) for n in names if n.endswith(suffix))
    return sorted(out)


def expand(pattern: str) -> list[str]:
    """Expand a URL that may hold glob characters (``*``, ``?``, ``[``) into file URLs."""
    if not any(c in pattern for c in "*?["):
        if is_s3(pattern) or os.path.isfile(local_path(pattern)):
            return [pattern] if exists(pattern) else []
        if os.path.isdir(local_path(pattern)):
            return list_files(pattern)
        return []
    if not is_s3(pattern):
        return sorted(p for p in _glob.glob(local_path(pattern), recursive=True) if os.path.isfile(p))
    bucket, key_pattern = split_s3(pattern)
    fixed = key_pattern
    for i, c in enumerate(key_pattern):
        if c in "*?[":
            fixed = key_pattern[:i]
            break
    keys = [k for k in _list_keys(bucket, fixed) if fnmatch.fnmatchcase(k, key_pattern)]
    return sorted(f"s3://{bucket}/{k}" for k in keys)


# ---------------------------------------------------------------------------- directories


def upload_dir(local_dir: str, url: str) -> None:
    """Copy a local directory tree to a URL (a copy for local targets)."""
    if not is_s3(url):
        dst = local_path(url)
        if os.path.abspath(dst) != os.path.abspath(local_dir):
            shutil.copytree(local_dir, dst, dirs_exist_ok=True)
        return
    bucket, prefix = split_s3(url.rstrip("/") + "/")
    for path in sorted(Path(local_dir).rglob("*")):
        if path.is_file():
            key = prefix + path.relative_to(local_dir).as_posix()
            with _s3_errors(f"s3://{bucket}/{key}", "upload"):
                s3_client().upload_file(str(path), bucket, key)


def download_dir(url: str, local_dir: str) -> str:
    """Make a directory URL available locally; returns the local path.

    Local URLs are returned as they are (no copy); S3 prefixes are downloaded.
    """
    if not is_s3(url):
        return local_path(url)
    bucket, prefix = split_s3(url.rstrip("/") + "/")
    found = False
    for key in _list_keys(bucket, prefix):
        found = True
        dst = os.path.join(local_dir, key[len(prefix) :])
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        with _s3_errors(f"s3://{bucket}/{key}", "download"):
            s3_client().download_file(bucket, key, dst)
    if not found:
        raise StorageError(f"{url}: no objects under this prefix")
    return local_dir


# ---------------------------------------------------------------------------- Parquet


def _arrow():
    """pyarrow and its Parquet module, imported on first use: the steps that never touch
    Parquet (the scorer, the sandbox service) do not pay for pyarrow and numpy's imports
    and thread pools."""
    import pyarrow
    import pyarrow.parquet

    return pyarrow, pyarrow.parquet


def write_parquet(table: pa.Table, url: str) -> None:
    """Write a table deterministically (no timestamps in metadata, fixed compression)."""
    _, pq = _arrow()
    with open_url(url, "wb") as f:
        pq.write_table(table, f, compression="zstd", write_statistics=True, store_schema=True)


def read_parquet(url: str, columns: list[str] | None = None) -> pa.Table:
    pa, pq = _arrow()
    try:
        if is_s3(url):
            return pq.read_table(_io.BytesIO(read_bytes(url)), columns=columns)
        return pq.read_table(local_path(url), columns=columns)
    except (pa.ArrowInvalid, OSError) as e:
        raise StorageError(f"{url}: not a readable Parquet file: {e}") from e


def parquet_schema(url: str) -> pa.Schema:
    pa, pq = _arrow()
    if is_s3(url):
        return pq.read_schema(_io.BytesIO(read_bytes(url)))
    try:
        return pq.read_schema(local_path(url))
    except (pa.ArrowInvalid, OSError) as e:
        raise StorageError(f"{url}: not a readable Parquet file: {e}") from e


def iter_parquet_batches(
    url: str, columns: list[str] | None = None, batch_size: int = 1024
) -> Iterator[pa.RecordBatch]:
    """Stream a Parquet file in record batches (S3 objects are fetched once, then streamed)."""
    pa, pq = _arrow()
    source = _io.BytesIO(read_bytes(url)) if is_s3(url) else local_path(url)
    try:
        pf = pq.ParquetFile(source)
        yield from pf.iter_batches(batch_size=batch_size, columns=columns)
    except (pa.ArrowInvalid, OSError) as e:
        raise StorageError(f"{url}: not a readable Parquet file: {e}") from e


# ---------------------------------------------------------------------------- staged folders and atomic writes


def write_atomic(url: str, data: bytes) -> None:
    """Write ``data`` so a reader sees the old content or the new, never a half-written file.

    Local files go to a temporary file in the same folder, are fsynced and renamed over
    the target; an S3 PUT is already all-or-nothing. Completion markers use this, so a kill
    between create and write cannot leave an empty marker behind (docs/architecture.md).
    """
    if is_s3(url):
        write_bytes(url, data)
        return
    path = local_path(url)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


@contextmanager
def staged_dir(url: str) -> Iterator[str]:
    """A local folder whose files end up at ``url``: the folder itself when ``url`` is
    local, else a temporary folder uploaded when the block ends without an error."""
    if not is_s3(url):
        os.makedirs(local_path(url), exist_ok=True)
        yield local_path(url)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield tmp
        upload_dir(tmp, url)


@contextmanager
def local_copy(url: str) -> Iterator[str]:
    """A local folder with the contents of the folder ``url`` (the folder itself when local)."""
    if not is_s3(url):
        yield local_path(url)
        return
    with tempfile.TemporaryDirectory() as tmp:
        yield download_dir(url, tmp)


@contextmanager
def local_files(url: str, names: list[str] | tuple[str, ...]) -> Iterator[str]:
    """A local folder holding the files ``names`` (relative paths) of the folder ``url``:
    the folder itself when local, else a temporary folder with just those files fetched."""
    if not is_s3(url):
        yield local_path(url)
        return
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            dst = os.path.join(tmp, name)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            with open(dst, "wb") as f:
                f.write(read_bytes(join(url, name)))
        yield tmp

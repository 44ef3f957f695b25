"""Create the bucket of TUNE_CKPT_STORAGE_PATH on an S3-compatible store, waiting for the store.

Idempotent: a bucket that already exists is fine. Exits 0 when the bucket is there and can be
written (a small probe object is written and deleted), non-zero after the timeout otherwise.
Storage that is not s3:// (gs://, a local path) is left alone: such buckets or folders are
made with their own tools.

Settings (environment variables):
  TUNE_CKPT_STORAGE_PATH   s3://bucket/prefix; the bucket is created (required)
  AWS_ENDPOINT_URL         the store, e.g. http://minio:9000 (unset: AWS S3 itself)
  AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION
                           credentials and region, as every AWS tool reads them
  CREATE_BUCKET_TIMEOUT    seconds to wait for the store to answer (default 60)

Run: python docker/create-bucket.py
"""

from __future__ import annotations

import os
import sys
import time
import urllib.parse

import pyarrow.fs as pafs

# Answers that waiting does not change: wrong credentials or no permission.
DENIED = ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden")


def s3_filesystem() -> pafs.S3FileSystem:
    """An S3 filesystem for AWS_ENDPOINT_URL (pyarrow itself ignores that variable)."""
    options: dict = {"allow_bucket_creation": True, "connect_timeout": 2, "request_timeout": 5}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parsed = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["endpoint_override"] = parsed.netloc
        options["scheme"] = parsed.scheme
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if region:
        options["region"] = region
    return pafs.S3FileSystem(**options)


def bucket_of(storage_path: str) -> str | None:
    """The bucket of an s3:// path; None for other storage (gs://, a local path)."""
    parsed = urllib.parse.urlsplit(storage_path)
    if parsed.scheme != "s3":
        return None
    if not parsed.netloc:
        raise SystemExit(f"no bucket in TUNE_CKPT_STORAGE_PATH={storage_path!r}")
    return parsed.netloc


def main() -> int:
    storage_path = os.environ.get("TUNE_CKPT_STORAGE_PATH", "")
    if not storage_path:
        print("set TUNE_CKPT_STORAGE_PATH to s3://bucket/prefix", file=sys.stderr)
        return 2
    bucket = bucket_of(storage_path)
    if bucket is None:
        print(f"{storage_path} is not on S3: no bucket to create here", flush=True)
        return 0
    timeout = float(os.environ.get("CREATE_BUCKET_TIMEOUT", "60"))
    endpoint = os.environ.get("AWS_ENDPOINT_URL") or "AWS S3"
    fs = s3_filesystem()
    deadline = time.monotonic() + timeout
    while True:
        try:
            if fs.get_file_info(bucket).type == pafs.FileType.NotFound:
                fs.create_dir(bucket)
                print(f"created bucket {bucket} on {endpoint}", flush=True)
            else:
                print(f"bucket {bucket} exists on {endpoint}", flush=True)
            probe = f"{bucket}/.create-bucket-probe-{os.getpid()}"
            with fs.open_output_stream(probe) as out:
                out.write(b"ok")
            fs.delete_file(probe)
            return 0
        except OSError as exc:  # pyarrow raises OSError subclasses for every S3 failure
            if any(code in str(exc) for code in DENIED) or time.monotonic() > deadline:
                print(f"bucket {bucket} on {endpoint} is not usable: {exc}", file=sys.stderr)
                return 1
            print(f"waiting for {endpoint}: {str(exc).splitlines()[0]}", flush=True)
            time.sleep(1)


if __name__ == "__main__":
    sys.exit(main())

"""storage.py against the local filesystem and a real moto S3 server on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from audiomill import storage
from audiomill.testing.s3 import create_bucket, moto_s3_server

# Names chosen so a naive per-directory sort disagrees with full-path order: "a-c" < "a/b".
TREE = ["a/b", "a-c", "a.txt", "a/z/deep.bin", "b", "A"]


@pytest.fixture(scope="module")
def s3_bucket():
    with moto_s3_server():
        yield create_bucket("audiomill-test")


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path) -> str:
    """An empty directory: tmp_path, or a fresh prefix in the shared bucket."""
    if request.param == "local":
        return str(tmp_path)
    return storage.join(request.getfixturevalue("s3_bucket"), tmp_path.name)


def _write_tree(root: str) -> list[str]:
    uris = [storage.join(root, name) for name in TREE]
    for uri in uris:
        storage.write_bytes(uri, uri.encode())
    return uris


def test_write_read_roundtrip(root):
    uri = storage.join(root, "sub", "clip.bin")
    storage.write_bytes(uri, b"first")
    storage.write_bytes(uri, b"\x00\x01payload\xff")
    assert storage.read_bytes(uri) == b"\x00\x01payload\xff"
    assert storage.size(uri) == 10
    assert storage.exists(uri)
    text_uri = storage.join(root, "label.txt")
    storage.write_text(text_uri, "héllo wörld ✓")
    assert storage.read_text(text_uri) == "héllo wörld ✓"


def test_ranged_read(root):
    data = bytes(range(256)) * 4
    uri = storage.join(root, "ranged.bin")
    storage.write_bytes(uri, data)
    assert storage.read_bytes(uri, offset=10, length=5) == data[10:15]
    assert storage.read_bytes(uri, offset=1000) == data[1000:]
    assert storage.read_bytes(uri, offset=1020, length=100) == data[1020:]
    assert storage.read_bytes(uri, offset=5000, length=10) == b""
    assert storage.read_bytes(uri, offset=3, length=0) == b""
    with pytest.raises(ValueError, match="offset"):
        storage.read_bytes(uri, offset=-1)


def test_open_read_streams_whole_object(root):
    data = os.urandom(700_000)
    uri = storage.join(root, "stream.bin")
    storage.write_bytes(uri, data)
    with storage.open_read(uri) as handle:
        chunks = list(iter(lambda: handle.read(65536), b""))
    assert b"".join(chunks) == data
    assert handle.closed


def test_write_file_roundtrip(root, tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(os.urandom(9 * 1024 * 1024))  # over boto3's 8 MiB multipart threshold
    uri = storage.join(root, "copied", "target.bin")
    storage.write_file(uri, str(source))
    assert storage.read_bytes(uri) == source.read_bytes()
    with pytest.raises(FileNotFoundError, match="absent.bin"):
        storage.write_file(storage.join(root, "x.bin"), str(tmp_path / "absent.bin"))


def test_list_is_recursive_and_in_full_uri_order(root):
    uris = _write_tree(root)
    listed = list(storage.list_files(root))
    assert [info.uri for info in listed] == sorted(uris)
    assert [info.size for info in listed] == [len(info.uri.encode()) for info in listed]
    top_level = [info.uri for info in storage.list_files(root, recursive=False)]
    assert top_level == sorted(storage.join(root, name) for name in ["a-c", "a.txt", "b", "A"])
    assert [i.uri for i in storage.list_files(storage.join(root, "a"))] == sorted(
        storage.join(root, name) for name in ["a/b", "a/z/deep.bin"])


def test_exists_for_files_and_directories(root):
    assert not storage.exists(storage.join(root, "a"))
    _write_tree(root)
    assert storage.exists(root)
    assert storage.exists(storage.join(root, "a"))  # a directory (an S3 prefix with keys)
    assert storage.exists(storage.join(root, "a/z/deep.bin"))
    assert not storage.exists(storage.join(root, "a/z/deep"))
    assert not storage.exists(storage.join(root, "a/y"))


def test_list_single_file_yields_itself(root):
    _write_tree(root)
    uri = storage.join(root, "a.txt")
    assert list(storage.list_files(uri)) == [storage.FileInfo(uri, len(uri.encode()))]


def test_missing_raises_file_not_found_with_uri(root):
    uri = storage.join(root, "missing.wav")
    assert not storage.exists(uri)
    for call in (storage.read_bytes, storage.size, storage.open_read, storage.read_text):
        with pytest.raises(FileNotFoundError, match="missing.wav"):
            call(uri)


def test_delete_and_delete_prefix(root):
    for name in ["d/x", "d/y/z", "d2/w", "dx", "keep"]:
        storage.write_bytes(storage.join(root, name), b"1")
    storage.delete(storage.join(root, "keep"))
    storage.delete(storage.join(root, "keep"))  # missing is fine
    storage.delete_prefix(storage.join(root, "d"))
    storage.delete_prefix(storage.join(root, "never-existed"))
    remaining = [info.uri for info in storage.list_files(root)]
    assert remaining == [storage.join(root, "d2/w"), storage.join(root, "dx")]


def test_delete_prefix_refuses_bucket_root(s3_bucket):
    with pytest.raises(ValueError, match="whole bucket"):
        storage.delete_prefix(s3_bucket + "/")


def test_local_missing_dir_raises_but_empty_s3_prefix_is_empty(tmp_path, s3_bucket):
    with pytest.raises(FileNotFoundError, match="nope"):
        storage.list_files(str(tmp_path / "nope"))
    assert list(storage.list_files(storage.join(s3_bucket, "nope"))) == []


def test_atomic_local_write_leaves_no_temp_files(tmp_path, monkeypatch):
    target = tmp_path / "out" / "nested" / "shard.tar"
    storage.write_bytes(str(target), b"v1")
    storage.write_text(str(target.with_suffix(".txt")), "v1")
    storage.write_file(str(target.with_suffix(".copy")), str(target))
    assert sorted(os.listdir(target.parent)) == ["shard.copy", "shard.tar", "shard.txt"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~_umask())

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        storage.write_bytes(str(target), b"v2-partial")
    assert target.read_bytes() == b"v1"
    assert sorted(os.listdir(target.parent)) == ["shard.copy", "shard.tar", "shard.txt"]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


@pytest.mark.timeout(10)
def test_symlink_loop_does_not_hang_listing(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "clip.wav").write_bytes(b"RIFF")
    os.symlink(tmp_path, tmp_path / "d" / "loop")
    os.symlink(tmp_path / "d" / "clip.wav", tmp_path / "alias.wav")
    listed = [info.uri for info in storage.list_files(str(tmp_path))]
    assert listed == [str(tmp_path / "alias.wav"), str(tmp_path / "d" / "clip.wav")]


def test_broken_symlink_is_skipped_with_warning(tmp_path, caplog):
    (tmp_path / "good.wav").write_bytes(b"RIFF")
    os.symlink(tmp_path / "gone.wav", tmp_path / "dangling.wav")
    with caplog.at_level(logging.WARNING, logger="audiomill.storage"):
        listed = [info.uri for info in storage.list_files(str(tmp_path))]
    assert listed == [str(tmp_path / "good.wav")]
    assert "dangling.wav" in caplog.text


@pytest.mark.slow  # ~8 s: moto answers each of the 1,100 puts in ~7 ms
def test_s3_listing_paginates_and_streams(s3_bucket):
    prefix = storage.join(s3_bucket, "many")
    uris = [storage.join(prefix, f"{i:05d}.flac") for i in range(1100)]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda uri: storage.write_bytes(uri, b"x"), uris))
    storage.s3_client().put_object(Bucket="audiomill-test", Key="many/marker-dir/", Body=b"")

    list_calls = []

    def count_call(**kwargs):
        list_calls.append(1)

    events = storage.s3_client().meta.events
    events.register("before-call.s3.ListObjectsV2", count_call)
    try:
        listing = storage.list_files(prefix)
        first = next(listing)
        assert len(list_calls) == 1, "the first file must arrive before later pages are fetched"
        rest = [info.uri for info in listing]
    finally:
        events.unregister("before-call.s3.ListObjectsV2", count_call)
    assert len(list_calls) == 2
    assert [first.uri, *rest] == uris  # marker key "many/marker-dir/" is not a file


def test_redact_strips_credentials_and_query():
    assert storage.redact("s3://AKIA:se%2Fcret@bucket/key.wav?X-Amz-Signature=abc") == (
        "s3://bucket/key.wav")
    assert storage.redact("https://user:pw@host:9000/p/a.wav?token=t#frag") == (
        "https://host:9000/p/a.wav")
    assert storage.redact("/data/plain?name.wav") == "/data/plain?name.wav"
    message = storage.redact(
        "GET https://AKIA:s3cret@host/b/k.wav?X-Amz-Signature=abc123 failed: 'timeout'")
    assert message == "GET https://host/b/k.wav failed: 'timeout'"


def test_error_message_never_contains_credentials(s3_bucket):
    with pytest.raises(FileNotFoundError) as info:
        storage.read_bytes(storage.join(s3_bucket, "nope.wav?X-Amz-Credential=SECRET"))
    assert "SECRET" not in str(info.value) and "nope.wav" in str(info.value)


def test_join_and_local_path():
    assert storage.join("s3://b", "x/", "/y.wav") == "s3://b/x/y.wav"
    assert storage.join("s3://b/", "x") == "s3://b/x"
    assert storage.join("/data", "x", "y.wav") == "/data/x/y.wav"
    assert storage.local_path("/data/x") == "/data/x"
    assert storage.local_path("file:///data/x") == "/data/x"
    assert storage.local_path("s3://b/x") is None
    assert storage.is_s3("s3://b/x") and not storage.is_s3("/s3/x")


@pytest.fixture
def fresh_client():
    storage.reset_s3_client()
    yield
    storage.reset_s3_client()  # the next caller rebuilds from the restored env


def test_s3_client_honors_env(monkeypatch, fresh_client):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("AUDIOMILL_S3_ENDPOINT_URL", "http://127.0.0.1:2")
    monkeypatch.setenv("AUDIOMILL_S3_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = storage.s3_client()
    assert client.meta.endpoint_url == "http://127.0.0.1:2"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_s3_client_is_shared_across_threads(monkeypatch, fresh_client):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    barrier, clients = threading.Barrier(8), []

    def grab():
        barrier.wait()
        clients.append(storage.s3_client())

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(clients) == 8 and len({id(client) for client in clients}) == 1

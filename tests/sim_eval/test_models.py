"""`perovss models`: catalogue listing, verified downloads from a local server, fast offline failure."""

from __future__ import annotations

import functools
import hashlib
import http.server
import socket
import threading
import time

import pytest

from perovss_ros.cli import main
from perovss_ros.core import checkpoints
from perovss_ros.core.checkpoints import Checkpoint

PAYLOAD = bytes(range(256)) * 4099  # ~1 MB: more than one read chunk


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "blob.bin").write_bytes(PAYLOAD)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _inject(monkeypatch, url, sha256):
    entry = Checkpoint(name="test_blob", family="test", model="blob", filename="blob.bin", url=url,
                       sha256=sha256, size_bytes=len(PAYLOAD), description="test payload")
    monkeypatch.setitem(checkpoints.CHECKPOINTS, "test_blob", entry)
    return entry


def test_list_shows_catalogue(tmp_path, capsys):
    (tmp_path / "sam_vit_b_01ec64.pth").write_bytes(b"x")
    assert main(["models", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for ckpt in checkpoints.CHECKPOINTS.values():
        assert ckpt.name in out and ckpt.sha256 in out and ckpt.url in out
    assert "375.0 MB" in out  # sam_vit_b size
    line = next(x for x in out.splitlines() if x.startswith("sam_vit_b"))
    assert "present" in line
    line = next(x for x in out.splitlines() if x.startswith("sam_vit_h"))
    assert "missing" in line
    assert main(["models", "list", "--dir", str(tmp_path)]) == 0


def test_unknown_name(tmp_path, capsys):
    assert main(["models", "download", "sam_vit_x", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "unknown checkpoint 'sam_vit_x'" in err and "sam_vit_b" in err
    assert list(tmp_path.iterdir()) == []


def test_download_verifies_and_places(tmp_path, server, monkeypatch, capsys):
    entry = _inject(monkeypatch, f"{server}/blob.bin", hashlib.sha256(PAYLOAD).hexdigest())
    models = tmp_path / "models"
    monkeypatch.setenv(checkpoints.MODEL_DIR_ENV, str(models))  # the directory the node looks in
    assert main(["models", "download", "test_blob"]) == 0
    assert (models / entry.filename).read_bytes() == PAYLOAD
    assert [p.name for p in models.iterdir()] == ["blob.bin"]  # no temporary file left
    assert checkpoints.find_checkpoint("test_blob") == models / "blob.bin"
    assert "verified" in capsys.readouterr().out
    assert main(["models", "verify"]) == 0
    assert "OK" in capsys.readouterr().out
    (models / "blob.bin").write_bytes(b"corrupted")
    assert main(["models", "verify"]) == 1
    assert "MISMATCH" in capsys.readouterr().out


def test_checksum_mismatch_places_nothing(tmp_path, server, monkeypatch, capsys):
    _inject(monkeypatch, f"{server}/blob.bin", "0" * 64)
    models = tmp_path / "models"
    assert main(["models", "download", "test_blob", "--dir", str(models)]) == 1
    err = capsys.readouterr().err
    assert "expected " + "0" * 64 in err and "nothing was stored" in err
    assert list(models.iterdir()) == []


def test_unreachable_fails_fast_with_manual_hint(tmp_path, monkeypatch, capsys):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    _inject(monkeypatch, f"http://127.0.0.1:{port}/blob.bin", sha)
    start = time.monotonic()
    assert main(["models", "download", "test_blob", "--dir", str(tmp_path), "--timeout", "2"]) == 1
    assert time.monotonic() - start < 30  # generous: the point is it does not hang
    err = capsys.readouterr().err
    assert "cannot download test_blob" in err
    assert str(tmp_path / "blob.bin") in err and sha in err  # where to put it by hand, and its checksum
    assert list(tmp_path.iterdir()) == []

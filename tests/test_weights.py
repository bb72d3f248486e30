"""Trunk weights: lookup order, verified download from a local server, offline errors."""

from __future__ import annotations

import functools
import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import torch

from iqa_bench.backbones import TrunkWeights
from iqa_bench.weights import WeightsUnavailableError, trunk_weights_path


@pytest.fixture
def served_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A torchvision-style full checkpoint served over HTTP on 127.0.0.1, named by its hash."""
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    serve = tmp_path / "serve"
    serve.mkdir()
    state = {
        "features.0.weight": torch.randn(4, 3, 3, 3),
        "features.0.bias": torch.randn(4),
        "classifier.1.weight": torch.randn(10, 4),
    }
    raw = serve / "raw.pth"
    torch.save(state, raw)
    prefix = hashlib.sha256(raw.read_bytes()).hexdigest()[:8]
    raw.rename(serve / f"tiny-{prefix}.pth")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(serve))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/tiny-{prefix}.pth"
    monkeypatch.delenv("IQA_BENCH_OFFLINE", raising=False)
    monkeypatch.delenv("IQA_BENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("IQA_BENCH_CACHE", str(tmp_path / "cache"))
    yield TrunkWeights(stem=f"tiny-{prefix}", url=url), state
    httpd.shutdown()


def test_download_keeps_only_features_and_verifies_hash_prefix(served_checkpoint):
    weights, state = served_checkpoint
    path = trunk_weights_path(weights, progress=False)
    assert path.name == f"{weights.stem}-features.pth"
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"features.0.weight", "features.0.bias"}
    assert torch.equal(saved["features.0.weight"], state["features.0.weight"])
    assert not (path.parent / f"{weights.stem}.pth").exists(), "the full checkpoint is deleted"
    assert trunk_weights_path(weights, progress=False) == path  # second call: from the cache


def test_download_with_wrong_hash_prefix_is_refused(served_checkpoint):
    weights, _ = served_checkpoint
    bad = TrunkWeights(stem="tiny-00000000", url=weights.url)
    with pytest.raises(ValueError, match="does not start with 00000000"):
        trunk_weights_path(bad, progress=False)


def test_offline_without_files_names_the_file_url_and_variable(served_checkpoint, monkeypatch):
    weights, _ = served_checkpoint
    monkeypatch.setenv("IQA_BENCH_OFFLINE", "1")
    with pytest.raises(
        WeightsUnavailableError, match=rf"{weights.features_file}.*IQA_BENCH_WEIGHTS"
    ):
        trunk_weights_path(weights)
    try:
        trunk_weights_path(weights)
    except WeightsUnavailableError as exc:
        assert weights.url in str(exc)


@pytest.mark.slow  # 7-20 s on a 2-core CPU
def test_unreachable_host_is_reported_as_unavailable(tmp_path, monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv("IQA_BENCH_OFFLINE", raising=False)
    monkeypatch.delenv("IQA_BENCH_WEIGHTS", raising=False)
    monkeypatch.setenv("IQA_BENCH_CACHE", str(tmp_path))
    weights = TrunkWeights(stem="gone-12345678", url=f"http://127.0.0.1:{port}/gone-12345678.pth")
    with pytest.raises(WeightsUnavailableError, match="download failed"):
        trunk_weights_path(weights, progress=False)


def test_weights_folder_is_used_before_the_cache(tmp_path, monkeypatch):
    folder = tmp_path / "offline"
    folder.mkdir()
    weights = TrunkWeights(stem="local-abcdef12", url="http://127.0.0.1:9/never")
    torch.save({"features.0.weight": torch.zeros(1)}, folder / weights.features_file)
    monkeypatch.setenv("IQA_BENCH_WEIGHTS", str(folder))
    assert trunk_weights_path(weights, download=False) == folder / weights.features_file


def test_features_file_with_wrong_sha256_is_rejected(tmp_path, monkeypatch):
    folder = tmp_path / "offline"
    folder.mkdir()
    weights = TrunkWeights(
        stem="local-abcdef12", url="http://127.0.0.1:9/x", features_sha256="0" * 64
    )
    torch.save({"features.0.weight": torch.zeros(1)}, folder / weights.features_file)
    monkeypatch.setenv("IQA_BENCH_WEIGHTS", str(folder))
    with pytest.raises(ValueError, match="does not match the expected 0000"):
        trunk_weights_path(weights, download=False)

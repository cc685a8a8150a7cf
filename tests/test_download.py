"""``acsl.data.download`` against a local HTTP server on 127.0.0.1 (no internet here: docs/ARCHITECTURE.md,
"Environment facts").

The server serves small fake zip archives built here, honours ``Range`` requests, and can be told
to drop the connection after K bytes, to ignore ``Range``, or to corrupt the bytes it sends. Only
loopback traffic: every call passes ``base_url`` pointing at that server.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from acsl.data import download as dl

# ------------------------------------------------------------------------------------------------
# fake archives


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _fake_lvis_json(n_images: int = 400, tag: str = "a") -> bytes:
    images = [{"id": i, "file_name": f"{i:012d}.jpg", "tag": tag} for i in range(n_images)]
    return json.dumps({"images": images, "annotations": [], "categories": []}).encode()


ANN_ZIP = _zip({"lvis_v0.5_train.json": _fake_lvis_json()})
IMG_ZIP = _zip({"val2017/": b"", **{f"val2017/{i:012d}.jpg": bytes([i]) * 300 for i in range(5)}})


def _tiny_spec(ann_sha256: str | None = None, ann_size: int | None = None) -> dl.DatasetSpec:
    return dl.DatasetSpec(
        name="tiny",
        description="test-only",
        archives=(
            dl.Archive(
                url="https://example.invalid/LVIS/tiny_ann.zip",
                filename="tiny_ann.zip",
                size_bytes=ann_size,
                sha256=ann_sha256,
                md5=None,
                extract_to="lvis_v0.5/annotations",
                expected_paths=("lvis_v0.5/annotations/lvis_v0.5_train.json",),
            ),
            dl.Archive(
                url="https://example.invalid/zips/tiny_val.zip",
                filename="tiny_val.zip",
                size_bytes=None,
                sha256=None,
                md5=None,
                extract_to="coco",
                expected_paths=("coco/val2017",),
            ),
        ),
    )


# ------------------------------------------------------------------------------------------------
# the local server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # keep test output quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server API)
        srv = self.server
        name = self.path.rsplit("/", 1)[-1]
        rng = self.headers.get("Range")
        with srv.lock:
            srv.requests.append((name, rng))
            drop_after = srv.drop_after
            srv.drop_after = None  # one-shot
        data = srv.files.get(name)
        if data is None:
            self.send_error(404)
            return
        if srv.corrupt:
            data = bytes(b ^ 0xFF for b in data)
        start = 0
        m = re.fullmatch(r"bytes=(\d+)-", rng or "")
        if m and not srv.ignore_range:
            start = int(m.group(1))
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if drop_after is not None:
            self.wfile.write(body[:drop_after])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.drop_after: int | None = None
        self.ignore_range = False
        self.corrupt = False

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server():
    srv = _Server()
    srv.files = {"tiny_ann.zip": ANN_ZIP, "tiny_val.zip": IMG_ZIP}
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture
def tiny(monkeypatch):
    spec = _tiny_spec()
    monkeypatch.setitem(dl.DATASETS, "tiny", spec)
    return spec


def _get(root: Path, server: _Server, **kw) -> list[Path]:
    return dl.download_dataset("tiny", root, base_url=server.base_url, progress=False, timeout=10, **kw)


# ------------------------------------------------------------------------------------------------
# tests


def test_registry_urls_and_layout():
    assert set(dl.DATASETS) >= {"lvis-v0.5", "lvis-v1", "coco2017"}
    bucket = "https://s3-us-west-2.amazonaws.com/dl.fbaipublicfiles.com/LVIS/"
    urls = {a.url for s in dl.DATASETS.values() for a in s.archives}
    assert urls == {
        bucket + "lvis_v0.5_train.json.zip",
        bucket + "lvis_v0.5_val.json.zip",
        bucket + "lvis_v1_train.json.zip",
        bucket + "lvis_v1_val.json.zip",
        "http://images.cocodataset.org/zips/train2017.zip",
        "http://images.cocodataset.org/zips/val2017.zip",
        *(f"https://storage.googleapis.com/openimages/challenge_2019/{name}" for name in dl.OPENIMAGES_FILES),
    }
    assert dl.DATASETS["lvis-v0.5"].expected_paths == (
        "lvis_v0.5/annotations/lvis_v0.5_train.json",
        "lvis_v0.5/annotations/lvis_v0.5_val.json",
    )
    assert dl.DATASETS["lvis-v1"].expected_paths == (
        "lvis_v1/annotations/lvis_v1_train.json",
        "lvis_v1/annotations/lvis_v1_val.json",
    )
    assert dl.DATASETS["coco2017"].expected_paths == ("coco/train2017", "coco/val2017")
    for spec in dl.DATASETS.values():
        for a in spec.archives:
            assert a.url.endswith("/" + a.filename)
            assert a.source, f"{a.filename}: provenance of its checksum (or its absence) must be stated"
            for digest, length in ((a.sha256, 64), (a.md5, 32)):
                assert digest is None or re.fullmatch(f"[0-9a-f]{{{length}}}", digest)


def test_full_download_and_layout(tmp_path, server, tiny):
    paths = _get(tmp_path, server)
    assert paths == [tmp_path / "lvis_v0.5/annotations/lvis_v0.5_train.json", tmp_path / "coco/val2017"]
    assert (tmp_path / "lvis_v0.5/annotations/lvis_v0.5_train.json").read_bytes() == _fake_lvis_json()
    assert sorted(p.name for p in (tmp_path / "coco/val2017").iterdir()) == [f"{i:012d}.jpg" for i in range(5)]
    # nothing left behind: no archives, no .part, no temp extraction dirs
    assert not (tmp_path / dl.DOWNLOAD_DIR).exists()
    assert not list(tmp_path.rglob("*.extract-*"))
    assert dl.missing_data("tiny", tmp_path) == []
    assert dl.require_data("tiny", tmp_path) == paths
    assert all(rng is None for _, rng in server.requests)


def test_interrupted_transfer_resumes_with_range(tmp_path, server, tiny):
    k = 5000
    server.drop_after = k
    with pytest.raises(dl.DownloadError) as err:
        _get(tmp_path, server)
    msg = str(err.value)
    assert "connection dropped" in msg and "kept" in msg and "re-run" in msg and "resume" in msg
    part = tmp_path / dl.DOWNLOAD_DIR / "tiny_ann.zip.part"
    assert part.stat().st_size == k
    assert not (tmp_path / "lvis_v0.5/annotations/lvis_v0.5_train.json").exists()

    _get(tmp_path, server, keep_archives=True)
    assert ("tiny_ann.zip", f"bytes={k}-") in server.requests
    assert (tmp_path / dl.DOWNLOAD_DIR / "tiny_ann.zip").read_bytes() == ANN_ZIP
    assert (tmp_path / "lvis_v0.5/annotations/lvis_v0.5_train.json").read_bytes() == _fake_lvis_json()


def test_server_ignoring_range_restarts_from_zero(tmp_path, server, tiny):
    server.drop_after = 3000
    with pytest.raises(dl.DownloadError):
        _get(tmp_path, server)
    server.ignore_range = True
    _get(tmp_path, server, keep_archives=True)
    assert ("tiny_ann.zip", "bytes=3000-") in server.requests  # asked, got a 200 with the whole file
    assert (tmp_path / dl.DOWNLOAD_DIR / "tiny_ann.zip").read_bytes() == ANN_ZIP


def test_complete_part_answered_416_is_used(tmp_path, server, tiny):
    ddir = tmp_path / dl.DOWNLOAD_DIR
    ddir.mkdir()
    (ddir / "tiny_ann.zip.part").write_bytes(ANN_ZIP)
    _get(tmp_path, server)
    assert ("tiny_ann.zip", f"bytes={len(ANN_ZIP)}-") in server.requests
    assert (tmp_path / "lvis_v0.5/annotations/lvis_v0.5_train.json").read_bytes() == _fake_lvis_json()


def test_checksum_mismatch_refused_nothing_extracted(tmp_path, server, monkeypatch):
    good = hashlib.sha256(ANN_ZIP).hexdigest()
    monkeypatch.setitem(dl.DATASETS, "tiny", _tiny_spec(ann_sha256=good, ann_size=len(ANN_ZIP)))
    server.corrupt = True  # same length, flipped bytes
    with pytest.raises(dl.DownloadError) as err:
        _get(tmp_path, server)
    msg = str(err.value)
    bad = hashlib.sha256(bytes(b ^ 0xFF for b in ANN_ZIP)).hexdigest()
    assert "tiny_ann.zip" in msg and good in msg and bad in msg
    assert not (tmp_path / "lvis_v0.5").exists() or not any((tmp_path / "lvis_v0.5").rglob("*.json"))
    assert not (tmp_path / dl.DOWNLOAD_DIR / "tiny_ann.zip").exists()  # the bad file is deleted
    assert not (tmp_path / dl.CHECKSUM_RECORD).exists()


def test_size_mismatch_refused(tmp_path, server, monkeypatch):
    monkeypatch.setitem(dl.DATASETS, "tiny", _tiny_spec(ann_size=len(ANN_ZIP) + 7))
    with pytest.raises(dl.DownloadError, match=rf"tiny_ann.zip.*{len(ANN_ZIP) + 7}.*{len(ANN_ZIP)}"):
        _get(tmp_path, server)
    assert not (tmp_path / dl.DOWNLOAD_DIR / "tiny_ann.zip").exists()


def test_corrupt_zip_leaves_no_partial_directory(tmp_path, server, tiny):
    # a zip whose second member's data is damaged: the first member would extract fine
    broken = bytearray(IMG_ZIP)
    off = broken.find(bytes([3]) * 300)
    broken[off + 100 : off + 110] = b"XXXXXXXXXX"
    server.files["tiny_val.zip"] = bytes(broken)
    with pytest.raises(dl.DownloadError, match="tiny_val.zip"):
        _get(tmp_path, server)
    assert not (tmp_path / "coco/val2017").exists()
    assert not list(tmp_path.rglob("*.extract-*"))
    assert not (tmp_path / dl.DOWNLOAD_DIR / "tiny_val.zip").exists()
    rec = json.loads((tmp_path / dl.CHECKSUM_RECORD).read_text())["archives"]
    assert "tiny_val.zip" not in rec  # a corrupt archive is never trusted
    # not a zip at all
    server.files["tiny_val.zip"] = b"<html>not a zip</html>"
    with pytest.raises(dl.DownloadError, match="cannot extract tiny_val.zip"):
        _get(tmp_path, server)
    assert not (tmp_path / "coco/val2017").exists()


def test_idempotent_rerun_makes_no_request(tmp_path, server, tiny):
    _get(tmp_path, server)
    n = len(server.requests)
    assert n == 2
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    assert _get(tmp_path, server) == [tmp_path / p for p in tiny.expected_paths]
    assert len(server.requests) == n
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before
    # also with the network unreachable: nothing is contacted
    assert dl.download_dataset("tiny", tmp_path, base_url="http://127.0.0.1:9", progress=False)


def test_trust_on_first_use_recorded_then_enforced(tmp_path, server, tiny):
    _get(tmp_path, server)
    rec = json.loads((tmp_path / dl.CHECKSUM_RECORD).read_text())["archives"]
    assert rec["tiny_ann.zip"]["sha256"] == hashlib.sha256(ANN_ZIP).hexdigest()
    assert rec["tiny_ann.zip"]["size_bytes"] == len(ANN_ZIP)
    assert rec["tiny_ann.zip"]["basis"] == "trust on first use"
    assert rec["tiny_val.zip"]["sha256"] == hashlib.sha256(IMG_ZIP).hexdigest()

    # later: the data is gone and upstream serves a different archive
    (tmp_path / "lvis_v0.5/annotations/lvis_v0.5_train.json").unlink()
    other = _zip({"lvis_v0.5_train.json": _fake_lvis_json(tag="b")})
    server.files["tiny_ann.zip"] = other
    with pytest.raises(dl.DownloadError) as err:
        _get(tmp_path, server)
    msg = str(err.value)
    assert "tiny_ann.zip" in msg and rec["tiny_ann.zip"]["sha256"] in msg
    assert hashlib.sha256(other).hexdigest() in msg and dl.CHECKSUM_RECORD in msg
    assert not (tmp_path / "lvis_v0.5/annotations/lvis_v0.5_train.json").exists()

    # the original archive still passes
    server.files["tiny_ann.zip"] = ANN_ZIP
    _get(tmp_path, server)
    assert (tmp_path / "lvis_v0.5/annotations/lvis_v0.5_train.json").read_bytes() == _fake_lvis_json()


def test_require_data_names_missing_paths_and_command(tmp_path, tiny):
    (tmp_path / "coco/val2017").mkdir(parents=True)
    assert dl.missing_data("tiny", tmp_path) == [tmp_path / "lvis_v0.5/annotations/lvis_v0.5_train.json"]
    with pytest.raises(dl.DataMissingError) as err:
        dl.require_data("tiny", tmp_path)
    assert isinstance(err.value, FileNotFoundError)
    msg = str(err.value)
    assert str(tmp_path / "lvis_v0.5/annotations/lvis_v0.5_train.json") in msg
    assert "coco/val2017" not in msg
    assert f"acsl data download tiny --root {tmp_path}" in msg
    with pytest.raises(dl.DataMissingError, match=r"acsl data download lvis-v1 --root /nowhere"):
        dl.require_data("lvis-v1", "/nowhere")


def test_unknown_dataset_and_http_errors(tmp_path, server, tiny):
    with pytest.raises(ValueError, match="coco2017"):
        dl.download_dataset("nope", tmp_path, progress=False)
    del server.files["tiny_ann.zip"]
    with pytest.raises(dl.DownloadError, match="HTTP 404"):
        _get(tmp_path, server)


def test_progress_bar_shows_bytes(tmp_path, server, tiny, capsys):
    _get_progress = dl.download_dataset("tiny", tmp_path, base_url=server.base_url, progress=True, timeout=10)
    assert _get_progress
    err = capsys.readouterr().err
    assert "tiny_ann.zip" in err and "B/s" in err


def test_openimages_annotation_files_download_verified_and_read(tmp_path, server):
    """The Open Images files are plain CSV / JSON: fetched, verified and moved into place (no extraction),
    then the reader turns them into the internal form and names the images still missing."""
    import json as json_module

    from acsl.data.openimages import read_openimages

    classes = b"/m/cat,Cat\n/m/car,Car\n"
    hierarchy = json_module.dumps({"LabelName": "/m/0bl9f", "Subcategory": [{"LabelName": "/m/cat"},
                                                                            {"LabelName": "/m/car"}]}).encode()
    boxes = b"ImageID,Source,LabelName,Confidence,XMin,XMax,YMin,YMax,IsOccluded,IsTruncated,IsGroupOf\nimgA,x,/m/cat,1,0.1,0.5,0.1,0.5,0,0,0\n"
    labels = b"ImageID,Source,LabelName,Confidence\nimgA,v,/m/car,0\n"
    contents = {"classes-description-500.csv": classes, "label500-hierarchy.json": hierarchy,
                "detection-bbox.csv": boxes, "human-imagelabels.csv": labels}
    server.files = {name: next(v for k, v in contents.items() if name.endswith(k)) for name in dl.OPENIMAGES_FILES}
    paths = dl.download_dataset("openimages", tmp_path, base_url=server.base_url, progress=False, timeout=10)
    assert [p.name for p in paths] == list(dl.OPENIMAGES_FILES) and all(p.is_file() for p in paths)
    assert not (tmp_path / dl.DOWNLOAD_DIR).exists()
    records = json_module.loads((tmp_path / ".acsl-checksums.json").read_text())
    assert set(records["archives"]) >= set(dl.OPENIMAGES_FILES)  # trusted on first use, enforced afterwards
    folder = tmp_path / "openimages" / "annotations"
    data = read_openimages(folder / "challenge-2019-validation-detection-bbox.csv",
                           folder / "challenge-2019-classes-description-500.csv",
                           folder / "challenge-2019-label500-hierarchy.json", tmp_path / "openimages" / "images",
                           folder / "challenge-2019-validation-detection-human-imagelabels.csv")
    assert data["info"]["missing_images"] == ["imgA"] and data["images"] == []
    assert dl.download_dataset("openimages", tmp_path, base_url="http://127.0.0.1:9", progress=False) == paths

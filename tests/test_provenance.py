"""Provenance (acsl.provenance): the record's keys and values, git's commit and dirty state in a real
checkout and "unknown" outside one or without git, and the block a notebook displays."""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata

import pytest

from acsl import provenance as prov
from acsl.provenance import UNKNOWN, git_state, provenance, provenance_markdown, show_provenance

KEYS = {"git_commit", "git_dirty", "python", "torch", "torchvision", "faster_coco_eval", "numpy", "device",
        "profile", "seeds", "cpu_model", "cpu_pinning", "cpu_capability", "cpu_note"}
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(cwd, *args):
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def checkout(tmp_path):
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("a")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_the_record_has_every_key_and_the_installed_versions(tmp_path):
    record = provenance("quick", 0, device="cpu", root=tmp_path)
    assert set(record) == KEYS
    assert record["profile"] == "quick" and record["seeds"] == [0]
    assert record["torch"] == metadata.version("torch") and record["numpy"] == metadata.version("numpy")
    assert record["faster_coco_eval"] == metadata.version("faster-coco-eval")
    assert record["torchvision"] == metadata.version("torchvision")
    assert record["python"].count(".") == 2 and record["device"].startswith("cpu (")


@needs_git
def test_a_clean_then_dirty_checkout(checkout):
    head = _git(checkout, "rev-parse", "HEAD")
    assert git_state(checkout) == (head, False)
    (checkout / "a.txt").write_text("changed")
    assert git_state(checkout) == (head, True)
    record = provenance("smoke", [0, 1], device=None, root=checkout)
    assert record["git_commit"] == head and record["git_dirty"] is True and record["seeds"] == [0, 1]


@needs_git
def test_untracked_files_make_it_dirty_unless_ignored(checkout):
    (checkout / ".gitignore").write_text("runs/\n")
    _git(checkout, "add", ".gitignore")
    _git(checkout, "commit", "-q", "-m", "ignore")
    (checkout / "runs").mkdir()
    (checkout / "runs" / "metrics.json").write_text("{}")
    assert git_state(checkout)[1] is False
    (checkout / "new.py").write_text("")
    assert git_state(checkout)[1] is True


def test_outside_a_checkout_or_without_git_everything_is_unknown(tmp_path, monkeypatch):
    assert git_state(tmp_path) == (UNKNOWN, UNKNOWN)

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    monkeypatch.setattr(prov.subprocess, "run", no_git)
    assert git_state() == (UNKNOWN, UNKNOWN)
    monkeypatch.setattr(prov, "repository_root", lambda: None)  # a wheel install: no checkout to read
    assert provenance("quick", device=None)["git_commit"] == UNKNOWN


def test_the_device_is_described_and_never_fails():
    assert prov.describe_device(None).startswith("none")
    assert prov.describe_device("cpu").startswith("cpu (")
    assert prov.describe_device("auto").split(" ")[0] in {"cpu", "cuda:0"}
    assert "not resolved here" in prov.describe_device("no-such-device")


@pytest.mark.parametrize("seeds", ["0", [0, "1"], 1.5, True])
def test_bad_seeds_are_refused_by_name(seeds):
    with pytest.raises(ValueError, match="^seeds: expected an int, a list of ints or None"):
        provenance("quick", seeds, device=None)


def test_the_markdown_block_names_commit_versions_device_profile_and_seeds():
    record = {"git_commit": "0123456789abcdef0123", "git_dirty": True, "python": "3.11.7", "torch": "2.14.1",
              "torchvision": "0.29.1", "faster_coco_eval": "1.8.0", "numpy": "2.4.6", "device": "cpu (2 cores)",
              "profile": "quick", "seeds": [0, 1, 2]}
    text = provenance_markdown(record)
    assert "commit `0123456789ab` (with uncommitted changes)" in text
    for fragment in ("Python 3.11.7", "torch 2.14.1", "torchvision 0.29.1", "faster-coco-eval 1.8.0", "numpy 2.4.6",
                     "device: cpu (2 cores)", "profile `quick`", "seed(s): 0, 1, 2"):
        assert fragment in text
    unknown = provenance_markdown({**record, "git_commit": UNKNOWN, "git_dirty": UNKNOWN, "seeds": []})
    assert "commit unknown (not a git checkout)" in unknown and "seed(s): none" in unknown


def test_show_provenance_displays_the_block_with_the_record_in_its_metadata(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj, metadata=None: shown.append((obj, metadata)))
    assert show_provenance("smoke", seeds=3, device=None) is None
    ((markdown, meta),) = shown
    assert markdown.data.startswith("**Provenance**") and "seed(s): 3" in markdown.data
    assert set(meta["acsl_provenance"]) == KEYS and meta["acsl_provenance"]["seeds"] == [3]

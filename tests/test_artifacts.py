"""The artifact format: atomic versioned saves, and loads that refuse anything not verified."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.dummy import DummyClassifier

from app.model import artifacts

METADATA = {"schema": {"features": []}, "classes": [0, 1]}


def fitted_model():
    return DummyClassifier(strategy="prior").fit([[0], [1]], [0, 1])


def saved(tmp_path: Path, name: str = "demo") -> artifacts.Artifact:
    return artifacts.save(tmp_path, name, fitted_model(), METADATA)


def rewrite_metadata(folder: Path, **changes) -> None:
    path = folder / artifacts.METADATA_FILE
    record = json.loads(path.read_text())
    record.update(changes)
    path.write_text(json.dumps(record))


def test_save_then_load_round_trips_model_and_metadata(tmp_path):
    artifact = saved(tmp_path)
    loaded = artifacts.load(artifact.path)
    assert (loaded.name, loaded.version) == ("demo", 1)
    assert loaded.model.predict_proba([[0]]).tolist() == [[0.5, 0.5]]
    assert loaded.metadata["model_sha256"] == artifacts.sha256_file(artifact.path / artifacts.MODEL_FILE)
    assert set(loaded.metadata["versions"]) == {"python", "scikit-learn", "numpy", "pandas", "joblib"}


def test_versions_increment_and_never_overwrite(tmp_path):
    first, second, third = saved(tmp_path), saved(tmp_path), saved(tmp_path)
    assert [first.version, second.version, third.version] == [1, 2, 3]
    assert artifacts.list_versions(tmp_path, "demo") == [1, 2, 3]
    assert json.loads((first.path / "metadata.json").read_text())["version"] == 1


def test_save_skips_a_version_that_appeared_concurrently(tmp_path, monkeypatch):
    saved(tmp_path)
    # Another trainer publishes version 2 between our look at the folder and our rename.
    real_list = artifacts.list_versions
    monkeypatch.setattr(artifacts, "list_versions", lambda d, n: [1])
    (tmp_path / "demo" / "2").mkdir()
    (tmp_path / "demo" / "2" / "metadata.json").write_text("{}")
    artifact = saved(tmp_path)
    monkeypatch.setattr(artifacts, "list_versions", real_list)
    assert artifact.version == 3
    assert (tmp_path / "demo" / "2" / "metadata.json").read_text() == "{}"


def test_failed_save_leaves_no_half_version(tmp_path, monkeypatch):
    def explode(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(artifacts, "_write_json", explode)
    with pytest.raises(OSError):
        saved(tmp_path)
    assert artifacts.list_versions(tmp_path, "demo") == []
    assert list((tmp_path / "demo").iterdir()) == []


def test_hidden_staging_folders_are_not_versions(tmp_path):
    saved(tmp_path)
    (tmp_path / "demo" / ".staging-1-abc").mkdir()
    assert artifacts.list_versions(tmp_path, "demo") == [1]


def test_tampered_model_file_is_refused_before_unpickling(tmp_path):
    artifact = saved(tmp_path)
    with open(artifact.path / artifacts.MODEL_FILE, "ab") as stream:
        stream.write(b"tampered")
    with pytest.raises(artifacts.ArtifactCorrupt, match="sha256"):
        artifacts.load(artifact.path)


def test_truncated_model_file_is_refused(tmp_path):
    artifact = saved(tmp_path)
    model_file = artifact.path / artifacts.MODEL_FILE
    model_file.write_bytes(model_file.read_bytes()[:100])
    with pytest.raises(artifacts.ArtifactCorrupt, match="changed or truncated"):
        artifacts.load(artifact.path)


def test_artifact_from_another_scikit_learn_is_refused_with_the_fix(tmp_path):
    artifact = saved(tmp_path)
    rewrite_metadata(artifact.path, versions={**artifact.metadata["versions"], "scikit-learn": "0.24.2"})
    with pytest.raises(artifacts.ArtifactIncompatible, match=r"trained with scikit-learn 0\.24\.2.*install scikit-learn==0\.24\.2"):
        artifacts.load(artifact.path)


def test_unknown_artifact_format_is_refused(tmp_path):
    artifact = saved(tmp_path)
    rewrite_metadata(artifact.path, format_version=99)
    with pytest.raises(artifacts.ArtifactIncompatible, match="format 99"):
        artifacts.load(artifact.path)


@pytest.mark.parametrize("content, reason", [
    (None, "missing"),
    ("{not json", "not readable JSON"),
    ("[1, 2]", "JSON object"),
    ('{"format_version": 1}', "lacks"),
])
def test_unreadable_metadata_is_refused(tmp_path, content, reason):
    artifact = saved(tmp_path)
    path = artifact.path / "metadata.json"
    path.unlink() if content is None else path.write_text(content)
    with pytest.raises(artifacts.ArtifactError, match=reason):
        artifacts.load(artifact.path)


def test_missing_model_file_is_refused(tmp_path):
    artifact = saved(tmp_path)
    (artifact.path / artifacts.MODEL_FILE).unlink()
    with pytest.raises(artifacts.ArtifactNotFound, match="missing"):
        artifacts.load(artifact.path)


@pytest.mark.parametrize("name", ["", "Upper", "../escape", "a/b", "-lead", "x" * 65])
def test_unsafe_model_names_are_rejected(tmp_path, name):
    with pytest.raises(ValueError, match="invalid model name"):
        artifacts.save(tmp_path, name, fitted_model(), METADATA)

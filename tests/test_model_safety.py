"""Loading a model never runs code from it: skops with a trusted-types list, no pickles, signatures."""
from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import (ExtraTreesRegressor, GradientBoostingClassifier, HistGradientBoostingRegressor,
                              RandomForestClassifier)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC, SVR

from app import create_app
from app.model import artifacts, signing
from app.model.registry import Registry
from app.model.trust import DEFAULT_TRUSTED_TYPES
from tests.conftest import PIMA, ROOT
from tests.records import RECORD

X = pd.read_csv(ROOT / "data" / "training.csv")
FEATURES, LABELS = X.drop(columns="Outcome").fillna(X.median()), X["Outcome"]  # gaps filled: plain estimators


class Marker:
    """What an attacker ships: building it writes a file (it stands for any code at all)."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (exec, (f"open({self.path!r}, 'w').write('ran')",))


def marker(tmp_path: Path) -> Path:
    return tmp_path / "code-ran"


def good_version(folder: Path, **metadata_changes) -> Path:
    """A real version of the default model (skops), copied so the test may change it."""
    artifact = artifacts.save(folder, PIMA, LogisticRegression(max_iter=1000).fit(FEATURES, LABELS),
                              {"schema": {"features": [{"name": n, "type": "number", "allow_missing": False}
                                                       for n in FEATURES.columns]},
                               "classes": [0, 1], "task": "classification", **metadata_changes})
    return artifact.path


def swap_model_file(version: Path, data: bytes, name: str) -> None:
    """Replace the model file and fix its sha256 in the metadata: what someone who can write both files does."""
    (version / artifacts.MODEL_FILE).unlink()
    (version / name).write_bytes(data)
    metadata = json.loads((version / artifacts.METADATA_FILE).read_text())
    metadata.update(model_file=name, model_sha256=artifacts.sha256_file(version / name))
    (version / artifacts.METADATA_FILE).write_text(json.dumps(metadata))


def hostile_pickle(tmp_path: Path) -> bytes:
    return pickle.dumps(Marker(str(marker(tmp_path))))


def nested_hostile_pickle(tmp_path: Path) -> bytes:
    """An otherwise good pipeline with the payload tucked into one step's attribute."""
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(FEATURES, LABELS)
    pipeline.steps[0][1].note = Marker(str(marker(tmp_path)))
    return pickle.dumps(pipeline)


def skops_with_an_untrusted_function() -> bytes:
    """A skops file whose pipeline calls os.system: skops lists it, and nobody trusts it."""
    import os

    pipeline = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression(max_iter=1000)).fit(FEATURES, LABELS)
    pipeline.steps[0][1].func = os.system  # set after fitting: fitting would have called it
    return sio.dumps(pipeline)


DISGUISES = [
    # (id, model file bytes, its name, the words of the reason)
    ("pickle-as-the-model-file", hostile_pickle, artifacts.PICKLE_FILE, "is a pickle, which runs code when it is loaded"),
    ("pickle-nested-in-a-good-pipeline", nested_hostile_pickle, artifacts.PICKLE_FILE, "is a pickle"),
    ("pickle-named-as-skops", hostile_pickle, artifacts.MODEL_FILE, "is not a readable skops file"),
    ("skops-naming-an-untrusted-function", lambda t: skops_with_an_untrusted_function(), artifacts.MODEL_FILE,
     "holds types nobody vouched for: posix.system"),
]


@pytest.mark.parametrize("build, name, reason", [d[1:] for d in DISGUISES], ids=[d[0] for d in DISGUISES])
def test_a_crafted_model_never_runs_code_and_is_listed_unavailable_with_the_reason(tmp_path, build, name, reason):
    models = tmp_path / "models"
    good_version(models)
    swap_model_file(good_version(models), build(tmp_path), name)  # version 2, the newest
    registry = Registry.load(models, PIMA, compile_models=False)
    assert not marker(tmp_path).exists(), "code from the model file ran"
    assert reason in registry.failures[PIMA][2]
    assert registry.get(PIMA, 1).version == 1  # the good version still serves
    client = create_app({"TESTING": True, "MODELS_DIR": str(models), "MODEL_VERSION": 1}).test_client()
    described = client.get(f"/models/{PIMA}/2").json
    assert described["loaded"] is False and reason in described["reason"]
    assert not marker(tmp_path).exists()


def test_pickles_load_only_with_the_dangerous_setting(tmp_path):
    version = good_version(tmp_path)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(FEATURES, LABELS)
    swap_model_file(version, pickle.dumps(model), artifacts.PICKLE_FILE)
    with pytest.raises(artifacts.ArtifactUntrusted, match="ALLOW_PICKLE_MODELS=true"):
        artifacts.load(version)
    loaded = artifacts.load(version, artifacts.LoadPolicy(allow_pickle=True))
    assert loaded.model.predict(FEATURES.head(3)).tolist() == model.predict(FEATURES.head(3)).tolist()


def test_the_operator_admits_a_type_in_configuration_and_the_artifact_cannot(tmp_path):
    models = tmp_path / "models"
    version = good_version(models, trusted_types=["posix.system"])  # what the artifact says counts for nothing
    swap_model_file(version, skops_with_an_untrusted_function(), artifacts.MODEL_FILE)
    assert PIMA in Registry.load(models, PIMA, compile_models=False).failures
    types_file = tmp_path / "trusted.txt"
    types_file.write_text("# reviewed\nposix.system\n")
    policy = artifacts.load_policy({"TRUSTED_TYPES": (), "TRUSTED_TYPES_FILE": str(types_file)})
    assert artifacts.load(version, policy).model is not None
    policy = artifacts.load_policy({"TRUSTED_TYPES": ("posix.system",)})
    assert artifacts.load(version, policy).model is not None


SUPPORTED = [
    make_pipeline(StandardScaler(), CalibratedClassifierCV(SVC(), ensemble=False)),
    CalibratedClassifierCV(LogisticRegression(max_iter=1000), method="isotonic"),
    RandomForestClassifier(n_estimators=5), GradientBoostingClassifier(n_estimators=5), KNeighborsClassifier(),
    make_pipeline(StandardScaler(), KNeighborsRegressor(algorithm="ball_tree", metric="manhattan")),
    ExtraTreesRegressor(n_estimators=5), HistGradientBoostingRegressor(max_iter=5), SVR(), Ridge(),
    make_pipeline(ColumnTransformer([("n", StandardScaler(), ["Glucose"])], remainder="passthrough"),
                  LogisticRegression(max_iter=1000)),
]


@pytest.mark.parametrize("model", SUPPORTED, ids=lambda m: type(m).__name__ if not hasattr(m, "steps") else
                         "+".join(type(s).__name__ for _, s in m.steps))
def test_every_supported_estimator_needs_only_the_projects_trusted_types(model):
    fitted = model.fit(FEATURES, LABELS)
    assert set(sio.get_untrusted_types(data=sio.dumps(fitted))) <= DEFAULT_TRUSTED_TYPES


def test_the_trained_default_model_is_skops_and_loads_with_the_default_list(models_dir):
    metadata = artifacts.read_metadata(models_dir / PIMA / "1")
    assert metadata["model_file"] == "model.skops" and metadata["model_format"] == "skops"
    assert artifacts.load(models_dir / PIMA / "1").model is not None


# ---- signatures -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def keys(tmp_path_factory) -> dict[str, dict]:
    folder = tmp_path_factory.mktemp("keys")
    pairs = {}
    for name in ("old", "new"):
        identity = signing.generate_key_pair(folder / f"{name}.key", folder / f"{name}.pub")
        pairs[name] = {"id": identity, "private": signing.load_private_key(folder / f"{name}.key"),
                       "public": folder / f"{name}.pub"}
    return pairs


def signed_version(folder: Path, key) -> Path:
    return artifacts.save(folder, PIMA, LogisticRegression(max_iter=1000).fit(FEATURES, LABELS),
                          {"schema": {"features": [{"name": n, "type": "number", "allow_missing": False}
                                                   for n in FEATURES.columns]}, "classes": [0, 1]}, key).path


def trusting(*publics: Path) -> artifacts.LoadPolicy:
    folder = publics[0].parent
    bundle = folder / ("+".join(p.stem for p in publics) + ".pem")
    bundle.write_bytes(b"".join(p.read_bytes() for p in publics))
    return artifacts.load_policy({"VERIFY_KEYS_FILE": str(bundle)})


def test_a_signed_version_loads_and_keys_rotate_without_downtime(tmp_path, keys):
    first, second = signed_version(tmp_path, keys["old"]["private"]), signed_version(tmp_path, keys["new"]["private"])
    both = trusting(keys["old"]["public"], keys["new"]["public"])
    assert artifacts.load(first, both).version == 1 and artifacts.load(second, both).version == 2
    only_new = trusting(keys["new"]["public"])
    assert artifacts.load(second, only_new).version == 2
    with pytest.raises(artifacts.ArtifactUntrusted, match=f"signed by key {keys['old']['id']}, which VERIFY_KEYS_FILE "
                                                          "does not trust"):
        artifacts.load(first, only_new)


def forge_metadata(version: Path, tmp_path: Path) -> None:
    """Point the signed metadata at a crafted model: the signature no longer matches."""
    swap_model_file(version, hostile_pickle(tmp_path), artifacts.PICKLE_FILE)


def garble_signature(version: Path, tmp_path: Path) -> None:
    (version / signing.SIGNATURE_FILE).write_text('{"algorithm": "ed25519", "key_id": "x", "signature": "%%%"}')


def drop_signature(version: Path, tmp_path: Path) -> None:
    (version / signing.SIGNATURE_FILE).unlink()


def sign_with_another_key(version: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    stranger = Ed25519PrivateKey.generate()
    (version / signing.SIGNATURE_FILE).write_bytes(signing.sign(stranger, (version / artifacts.METADATA_FILE).read_bytes()))


def copy_a_valid_signature_from_another_version(version: Path, tmp_path: Path) -> None:
    """A real signature by a trusted key, but of other metadata."""
    other = version.parent / "1"
    shutil.copy(other / signing.SIGNATURE_FILE, version / signing.SIGNATURE_FILE)


SIGNATURE_ATTACKS = [
    ("metadata-changed-after-signing", forge_metadata, "does not match its metadata"),
    ("malformed-signature", garble_signature, "is malformed"),
    ("unsigned", drop_signature, "is not signed"),
    ("signed-by-an-unknown-key", sign_with_another_key, "which VERIFY_KEYS_FILE does not trust"),
    ("signature-of-another-version", copy_a_valid_signature_from_another_version, "does not match its metadata"),
]


@pytest.mark.parametrize("attack, reason", [a[1:] for a in SIGNATURE_ATTACKS], ids=[a[0] for a in SIGNATURE_ATTACKS])
def test_a_version_without_a_valid_signature_is_refused_before_it_is_read(tmp_path, keys, attack, reason):
    models = tmp_path / "models"
    signed_version(models, keys["new"]["private"])
    version = signed_version(models, keys["new"]["private"])
    attack(version, tmp_path)
    policy = trusting(keys["new"]["public"])
    registry = Registry.load(models, PIMA, compile_models=False, policy=policy)
    assert reason in registry.failures[PIMA][2] and "refused unread" in registry.failures[PIMA][2]
    assert registry.get(PIMA, 1).version == 1
    assert not marker(tmp_path).exists()


def test_gunicorn_with_verify_keys_serves_signed_versions_and_train_signs_them(tmp_path, keys, env_without_settings):
    from tests import server

    folder = tmp_path / "keys"
    signing.generate_key_pair(folder.with_suffix(".key"), folder.with_suffix(".pub"))
    environment = {**env_without_settings, "SIGNING_KEY_FILE": str(folder.with_suffix(".key"))}
    done = subprocess.run([sys.executable, "train.py", "--models-dir", str(tmp_path / "m"), "--estimator", "logreg",
                           "--quiet"], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m" / PIMA / "1" / signing.SIGNATURE_FILE).is_file()
    with server.running(tmp_path / "m", tmp_path / "server.log", VERIFY_KEYS_FILE=str(folder.with_suffix(".pub"))) as url:
        import requests

        assert requests.post(f"{url}/predict", json=RECORD, timeout=10).status_code == 200
    unsigned = tmp_path / "unsigned"
    good_version(unsigned)
    log = tmp_path / "refused.log"
    process, _ = server.start(unsigned, log, VERIFY_KEYS_FILE=str(folder.with_suffix(".pub")))
    assert process.wait(timeout=60) != 0
    assert "is not signed" in log.read_text()


def test_manage_keygen_never_overwrites_a_key(tmp_path):
    first = subprocess.run([sys.executable, "manage.py", "keygen", str(tmp_path / "k"), str(tmp_path / "k.pub")],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0 and oct((tmp_path / "k").stat().st_mode & 0o777) == "0o600"
    again = subprocess.run([sys.executable, "manage.py", "keygen", str(tmp_path / "k"), str(tmp_path / "k2.pub")],
                           cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and again.stderr.startswith("error: ") and "never overwritten" in again.stderr


def test_import_refuses_untrusted_types_unless_trusted_on_the_command_line(tmp_path):
    import os

    pipeline = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression(max_iter=1000)).fit(FEATURES, LABELS)
    pipeline.steps[0][1].func = os.system
    joblib.dump(pipeline, tmp_path / "odd.joblib")
    command = [sys.executable, "manage.py", "--models-dir", str(tmp_path / "m"), "import", str(tmp_path / "odd.joblib"),
               "--name", "odd"]
    refused = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "holds types nobody vouched for: posix.system" in refused.stderr
    assert "--trust posix.system" in refused.stderr and not (tmp_path / "m" / "odd").exists()

"""deploy/kubernetes/: valid against the Kubernetes schemas (offline), and consistent with the service
(and, with deploy/compose/, with what the image installs: a redis:// rate-limit storage needs redis)."""
from __future__ import annotations

import re
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from app import config
from app.http import routes
from tests.conftest import ROOT

FOLDER = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"  # a version every maintained cluster runs or exceeds


def documents(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def resources() -> list[dict]:
    listed = yaml.safe_load((FOLDER / "kustomization.yaml").read_text())["resources"]
    return [d for name in listed for d in documents(FOLDER / name)]


def one(kind: str, name: str) -> dict:
    (found,) = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("path", sorted(p.name for p in FOLDER.glob("*.yaml") if p.name != "kustomization.yaml"))
def test_every_manifest_is_valid_against_the_kubernetes_schemas_strictly(path):
    for document in documents(FOLDER / path):
        if path == "models-from-volume.yaml":  # a patch: valid once merged, so check its merged form below
            continue
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


OPTIONAL = {"models-from-volume.yaml", "training-worker.yaml"}  # the shared-volume variant: a patch and a worker


def test_the_kustomization_lists_every_manifest_but_the_optional_shared_volume_variant():
    listed = set(yaml.safe_load((FOLDER / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in FOLDER.glob("*.yaml")} - {"kustomization.yaml"} - OPTIONAL


def patched_deployment() -> dict:
    """The Deployment with models-from-volume.yaml merged in (its lists appended, as a strategic
    merge adds volumes, mounts and env entries of new names)."""
    deployment = one("Deployment", "sklearn-serve")
    patch = documents(FOLDER / "models-from-volume.yaml")[0]["spec"]["template"]["spec"]
    pod = deployment["spec"]["template"]["spec"]
    pod["volumes"] = pod["volumes"] + patch["volumes"]
    (container,), (patched,) = pod["containers"], patch["containers"]
    assert container["name"] == patched["name"]
    container["volumeMounts"] += patched["volumeMounts"]
    container["env"] = container.get("env", []) + patched["env"]
    return deployment


def test_the_models_volume_patch_is_valid_once_merged_into_the_deployment():
    deployment = patched_deployment()
    kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    pod = deployment["spec"]["template"]["spec"]
    # read-write: the admin API publishes and promotes there, and writes the jobs' folders
    assert {"name": "models", "mountPath": "/app/models"} in pod["containers"][0]["volumeMounts"]


def environment(container: dict) -> dict:
    """What the service reads in the container: the ConfigMap, overridden by its own env entries."""
    settings = dict(one("ConfigMap", "sklearn-serve-settings")["data"])
    assert [source["configMapRef"]["name"] for source in container["envFrom"]] == ["sklearn-serve-settings"]
    return {**settings, **{entry["name"]: entry["value"] for entry in container.get("env", [])}}


def claim(pod: dict, container: dict, path: str) -> str:
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == path]
    assert not mount.get("readOnly")
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert not volume["persistentVolumeClaim"].get("readOnly")
    return volume["persistentVolumeClaim"]["claimName"]


def test_the_training_worker_shares_the_servers_models_claim_queue_settings_and_image():
    (worker,) = documents(FOLDER / "training-worker.yaml")
    server_pod = patched_deployment()["spec"]["template"]["spec"]
    worker_pod = worker["spec"]["template"]["spec"]
    (server,), (container,) = server_pod["containers"], worker_pod["containers"]
    assert container["image"] == server["image"]
    assert container["command"] == ["python", "manage.py", "worker"]
    models = "/app/models"  # the image's MODELS_DIR
    assert f"MODELS_DIR={models}" in (ROOT / "Dockerfile").read_text() and "MODELS_DIR" not in environment(server)
    assert claim(worker_pod, container, models) == claim(server_pod, server, models) == "sklearn-serve-models"
    served, working = config.load(environment(server)), config.load(environment(container))
    assert working["JOBS_QUEUE_URL"] == served["JOBS_QUEUE_URL"]
    assert served["JOBS_QUEUE_URL"].startswith(f"redis://{one('Service', 'sklearn-serve-redis')['metadata']['name']}:")
    assert served["JOBS_QUEUE_URL"] != served["RATE_LIMIT_STORAGE_URI"]  # its own database
    assert served["MODELS_POLL_INTERVAL"] > 0  # the worker cannot HUP the servers
    # the same owner for what both write on the volume, and the settings' key files mounted alike
    assert worker_pod["securityContext"]["runAsUser"] == server_pod["securityContext"]["runAsUser"]
    keys = next(m for m in server["volumeMounts"] if m["name"] == "keys")
    assert {**keys} in container["volumeMounts"]
    assert any(v.get("secret", {}).get("secretName") == "sklearn-serve-keys" for v in worker_pod["volumes"])
    assert worker["spec"]["selector"]["matchLabels"].items() <= worker["spec"]["template"]["metadata"]["labels"].items()
    # the servers' Service and budget do not pick up the worker's pods
    labels = worker["spec"]["template"]["metadata"]["labels"]
    assert not one("Service", "sklearn-serve")["spec"]["selector"].items() <= labels.items()


def test_the_admin_keys_come_from_the_secret_and_its_placeholder_is_refused():
    server = patched_deployment()["spec"]["template"]["spec"]["containers"][0]
    keys = next(m for m in server["volumeMounts"] if m["name"] == "keys")
    path = config.load(environment(server))["ADMIN_API_KEYS_FILE"]
    assert path == f"{keys['mountPath']}/admin-api-keys"
    placeholder = one("Secret", "sklearn-serve-keys")["stringData"]["admin-api-keys"]
    with pytest.raises(config.ConfigError):
        config.check_keys("ADMIN_API_KEYS_FILE", tuple(line.strip() for line in placeholder.splitlines() if line.strip()))


def test_the_workers_command_is_in_the_image():
    copied = " ".join(line for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("COPY"))
    assert re.search(r"\bmanage\.py\b", copied)


def test_the_deployment_probes_the_services_own_endpoints_and_waits_for_its_graceful_timeout():
    deployment = one("Deployment", "sklearn-serve")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    settings = one("ConfigMap", "sklearn-serve-settings")["data"]
    assert container["startupProbe"]["httpGet"]["path"] == "/ready"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert routes.match(container[probe]["httpGet"]["path"]).open  # no API key needed
    assert container["ports"][0]["containerPort"] == int(settings["PORT"])
    prestop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] >= int(settings["GRACEFUL_TIMEOUT"]) + prestop


def test_the_pod_runs_as_the_images_non_root_user_with_a_read_only_root_filesystem():
    pod = one("Deployment", "sklearn-serve")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 10001
    assert "--uid 10001" in (ROOT / "Dockerfile").read_text()
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert "limits" in container["resources"] and "requests" in container["resources"]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/tmp" in mounts  # gunicorn's heartbeat and the metrics folder need a writable place


def test_every_setting_in_the_configmap_is_one_the_service_reads_and_parses():
    settings = one("ConfigMap", "sklearn-serve-settings")["data"]
    assert set(settings) <= set(config.SETTINGS)
    parsed = config.load(settings)
    assert parsed["RATE_LIMIT_STORAGE_URI"].startswith("redis://")
    redis_service = one("Service", "sklearn-serve-redis")
    assert redis_service["metadata"]["name"] in parsed["RATE_LIMIT_STORAGE_URI"]
    keys_mount = next(m for m in one("Deployment", "sklearn-serve")["spec"]["template"]["spec"]["containers"][0]
                      ["volumeMounts"] if m["name"] == "keys")
    assert parsed["API_KEYS_FILE"] == f"{keys_mount['mountPath']}/api-keys"
    assert "api-keys" in one("Secret", "sklearn-serve-keys")["stringData"]


def test_the_placeholder_key_is_refused_so_it_cannot_be_deployed_by_mistake(tmp_path):
    placeholder = one("Secret", "sklearn-serve-keys")["stringData"]["api-keys"]
    with pytest.raises(config.ConfigError):
        config.check_keys("API_KEYS_FILE", tuple(line.strip() for line in placeholder.splitlines() if line.strip()))


def test_services_autoscaler_and_disruption_budget_select_the_deployments_pods():
    labels = one("Deployment", "sklearn-serve")["spec"]["template"]["metadata"]["labels"]
    for selector in (one("Service", "sklearn-serve")["spec"]["selector"],
                     one("PodDisruptionBudget", "sklearn-serve")["spec"]["selector"]["matchLabels"]):
        assert selector.items() <= labels.items()
    target = one("HorizontalPodAutoscaler", "sklearn-serve")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "sklearn-serve")
    assert one("HorizontalPodAutoscaler", "sklearn-serve")["spec"]["minReplicas"] >= 2  # the budget can be met
    redis = one("Deployment", "sklearn-serve-redis")["spec"]["template"]["metadata"]["labels"]
    assert one("Service", "sklearn-serve-redis")["spec"]["selector"].items() <= redis.items()


def storage_uris(node) -> list[str]:
    """Every RATE_LIMIT_STORAGE_URI a manifest sets: a mapping key (ConfigMap data, compose
    environment), a Kubernetes env entry ({name, value}) or a compose "KEY=value" item."""
    if isinstance(node, dict):
        found = [str(node["value"])] if node.get("name") == "RATE_LIMIT_STORAGE_URI" and "value" in node else []
        found += [str(v) for k, v in node.items() if k == "RATE_LIMIT_STORAGE_URI"]
        return found + [uri for v in node.values() for uri in storage_uris(v)]
    if isinstance(node, list):
        return [uri for item in node for uri in storage_uris(item)]
    if isinstance(node, str) and node.startswith("RATE_LIMIT_STORAGE_URI="):
        return [node.partition("=")[2]]
    return []


MANIFESTS = sorted([*FOLDER.glob("*.yaml"), *(ROOT / "deploy" / "compose").glob("*.yml")])
REQUIREMENTS = (ROOT / "requirements.txt").read_text()


def without_their_driver(requirements: str) -> list[str]:
    """The manifests that point the rate limits at redis://, if ``requirements`` pins no redis."""
    if re.search(r"(?m)^redis==\S", requirements):
        return []
    return sorted({path.relative_to(ROOT).as_posix() for path in MANIFESTS for document in documents(path)
                   if any(uri.startswith("redis://") for uri in storage_uris(document))})


@pytest.mark.parametrize("requirements, refused", [
    (REQUIREMENTS, []),
    # The check itself: with the pin taken out (as before 'redis in the runtime requirements') it names both.
    (re.sub(r"(?m)^redis==.*$", "", REQUIREMENTS), ["deploy/compose/replicas.yml", "deploy/kubernetes/configmap.yaml"]),
], ids=["requirements.txt", "without-the-redis-pin"])
def test_a_redis_storage_uri_in_a_manifest_comes_with_the_redis_client_in_the_image(requirements, refused):
    """The image installs requirements.txt alone: a manifest that sets RATE_LIMIT_STORAGE_URI=redis://
    needs redis pinned there, or the service refuses the URI at startup ("'redis' prerequisite not
    available") and exits."""
    assert without_their_driver(requirements) == refused, "these set a redis:// RATE_LIMIT_STORAGE_URI, " \
        "and requirements.txt has no redis== pin"

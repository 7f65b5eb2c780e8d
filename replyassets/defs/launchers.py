"""The training launcher: a Pipes-based step launcher for ``lora_adapter``.

Dagster 1.13 keeps ``StepLauncher`` only as a superseded API, so training is handed to the
program ``replyassets.training.train`` through Dagster Pipes. The asset stays in the
orchestrator; the program runs wherever the GPU is and reports back its metrics, the
``train_eval_gap`` check and the adapter's path and sha256.

``kind``:
- ``local``: ``PipesSubprocessClient`` runs ``<python> -m replyassets.training.train --config``
  on this machine (CPU here, a local GPU when present).
- ``kubernetes``: ``PipesK8sClient`` starts a GPU pod from the project's image.
- ``docker``: ``PipesDockerClient`` starts a container with a GPU device request.

Shared location (kubernetes / docker): the orchestrator stages the config, the train/eval
JSONL (and a local base-model folder) under ``shared_dir`` and the worker sees the same folder
at ``remote_shared_dir``: for Kubernetes a ReadWriteMany PVC (``pvc_claim_name``) mounted in
both the code-location pod (at ``shared_dir``) and the training pod; for Docker a host folder
bind-mounted into the container. An object store works the same way when mounted as a volume
(a CSI driver such as Mountpoint for S3 or GCS FUSE behind the PVC). The adapter is written by
the worker under the run folder and read back by the orchestrator from ``shared_dir``.

Pure builders (``build_pod_spec``, ``build_docker_run_kwargs``, ``stage_training_config``) hold
all the spec construction, so tests check them without a cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from replyassets.settings import PROJECT_ROOT, Settings

TRAIN_EVAL_GAP_CHECK = "train_eval_gap"
TRAIN_MODULE = "replyassets.training.train"
# Environment variables handed to the worker when set (values never logged).
DEFAULT_SECRET_ENV = ("HF_TOKEN", "WANDB_API_KEY", "MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_TOKEN")
# Paths in the training config that the worker must see at its side of the shared location.
PATH_KEYS = ("train_file", "eval_file", "output_dir", "adapter_dir")


class TrainingLaunchError(RuntimeError):
    """The training could not be launched (cluster or daemon unreachable, bad launcher config)."""


def train_eval_gap_check_spec(asset: Any, partitions_def: dg.PartitionsDefinition | None = None) -> dg.AssetCheckSpec:
    """The check the training program reports (WARN: an alarm, not a blocker); evaluated per
    partition of ``partitions_def`` (the asset's), when given."""
    return dg.AssetCheckSpec(
        TRAIN_EVAL_GAP_CHECK,
        asset=asset,
        partitions_def=partitions_def,
        description="eval loss minus train loss at the end of training stays within the gap alarm (0.3)",
    )


# --------------------------------------------------------------------------- pure builders


def worker_command(config_path: str | None = None, python: str = "python") -> list[str]:
    cmd = [python, "-m", TRAIN_MODULE]
    if config_path:
        cmd += ["--config", config_path]
    return cmd


def build_pod_spec(
    *,
    image: str,
    gpus: int = 1,
    cpu: str = "4",
    memory: str = "32Gi",
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Mapping[str, Any]] | None = None,
    secret_env: Mapping[str, str] | None = None,
    pvc_claim_name: str = "",
    remote_shared_dir: str = "/shared",
    service_account: str = "",
    image_pull_secrets: Sequence[str] = (),
    shm_size: str = "8Gi",
) -> dict[str, Any]:
    """The ``base_pod_spec`` for ``PipesK8sClient.run`` (Kubernetes API field names).

    ``secret_env`` maps an env var name to ``"<secret-name>:<key>"``: the value comes from
    the Kubernetes secret at pod start and never passes through Dagster.
    """
    if gpus < 0:
        raise TrainingLaunchError("gpus must be >= 0")
    resources: dict[str, Any] = {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"memory": memory},
    }
    if gpus:
        resources["limits"]["nvidia.com/gpu"] = str(gpus)
        resources["requests"]["nvidia.com/gpu"] = str(gpus)
    env = []
    for name, ref in sorted((secret_env or {}).items()):
        secret, sep, key = ref.partition(":")
        if not sep or not secret or not key:
            raise TrainingLaunchError(f"secret_env[{name!r}] must look like 'secret-name:key'")
        env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key, "optional": False}}})
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": shm_size}}]
    if pvc_claim_name:
        mounts.append({"name": "shared", "mountPath": remote_shared_dir})
        volumes.append({"name": "shared", "persistentVolumeClaim": {"claimName": pvc_claim_name}})
    container = {
        "name": "train",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "resources": resources,
        "env": env,
        "volumeMounts": mounts,
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": volumes,
    }
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    tol = [dict(t) for t in (tolerations or [])]
    if gpus and not any(t.get("key") == "nvidia.com/gpu" for t in tol):
        # GPU node pools are usually tainted nvidia.com/gpu=present:NoSchedule
        tol.append({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})
    if tol:
        spec["tolerations"] = tol
    if service_account:
        spec["serviceAccountName"] = service_account
    if image_pull_secrets:
        spec["imagePullSecrets"] = [{"name": s} for s in image_pull_secrets]
    return spec


def build_docker_run_kwargs(
    *,
    gpus: int = -1,
    shared_dir: str = "",
    remote_shared_dir: str = "/shared",
    shm_size: str = "8g",
    network: str = "",
) -> dict[str, Any]:
    """``container_kwargs`` for ``PipesDockerClient.run`` (``docker`` SDK ``containers.create``).

    ``gpus``: -1 = all GPUs, 0 = none (CPU), N = N GPUs (like ``docker run --gpus``).
    """
    from docker.types import DeviceRequest

    kwargs: dict[str, Any] = {"shm_size": shm_size, "auto_remove": False}
    if gpus:
        kwargs["device_requests"] = [DeviceRequest(count=gpus, capabilities=[["gpu"]])]
    if shared_dir:
        kwargs["volumes"] = {str(Path(shared_dir).resolve()): {"bind": remote_shared_dir, "mode": "rw"}}
    if network:
        kwargs["network"] = network
    return kwargs


def _under(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def stage_training_config(
    config: Mapping[str, Any], *, shared_dir: str | Path, remote_shared_dir: str, run_key: str
) -> tuple[dict[str, Any], Path]:
    """Copy inputs under ``shared_dir/runs/<run_key>`` and rewrite paths for the worker.

    Returns ``(worker_config, local_run_dir)``. A local base-model folder is copied too; a hub
    id is left as is (the worker downloads it with its own ``HF_TOKEN``).
    """
    if not shared_dir:
        raise TrainingLaunchError("kubernetes/docker launches need `shared_dir` (the shared volume on this side)")
    shared = Path(shared_dir)
    run_dir = shared / "runs" / run_key
    (run_dir / "inputs").mkdir(parents=True, exist_ok=True)
    remote_run = f"{remote_shared_dir.rstrip('/')}/runs/{run_key}"

    def to_remote(local: Path) -> str:
        return f"{remote_shared_dir.rstrip('/')}/{local.resolve().relative_to(shared.resolve()).as_posix()}"

    cfg = dict(config)
    data_keys = ("train_file", "eval_file", "preference_train_file", "preference_eval_file", "kto_train_file", "kto_eval_file")
    for key in (k for k in data_keys if cfg.get(k)):  # SFT files always; preference files for dpo/kto/sft+dpo
        src = Path(cfg[key])
        if not src.is_file():
            raise TrainingLaunchError(f"{key} not found: {src}")
        dst = src if _under(src, shared) else run_dir / "inputs" / src.name
        if dst != src:
            shutil.copyfile(src, dst)
        cfg[key] = to_remote(dst)
    base = Path(cfg["base_model"])
    if base.is_dir():
        dst = base if _under(base, shared) else run_dir / "inputs" / "base_model"
        if dst != base:
            shutil.copytree(base, dst, dirs_exist_ok=True)
        cfg["base_model"] = to_remote(dst)
    cfg["output_dir"] = f"{remote_run}/output"
    cfg["adapter_dir"] = f"{remote_run}/output/adapter"
    (run_dir / "train_config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True))
    return cfg, run_dir


def localize_metadata(metadata: Mapping[str, Any], remote_prefix: str, local_prefix: str) -> dict[str, Any]:
    """Rewrite worker-side paths in reported metadata to the orchestrator's side of the volume."""
    out = {}
    for k, v in metadata.items():
        raw = getattr(v, "value", v)
        if isinstance(v, dg.PathMetadataValue) or (isinstance(raw, str) and raw.startswith(remote_prefix + "/")):
            s = str(raw)
            if s.startswith(remote_prefix):
                local = local_prefix.rstrip("/") + s[len(remote_prefix) :]
                out[k] = dg.MetadataValue.path(local) if isinstance(v, dg.PathMetadataValue) else local
                continue
        out[k] = v
    return out


# --------------------------------------------------------------------------- reachability


def check_kubernetes_reachable(
    kubeconfig_file: str | None = None,
    kube_context: str | None = None,
    load_incluster_config: bool | None = None,
    timeout_s: float = 5.0,
) -> str:
    """Ask the API server for its version; a clear ``TrainingLaunchError`` when it cannot be reached."""
    import kubernetes

    try:
        if load_incluster_config:
            kubernetes.config.load_incluster_config()
            api_client = kubernetes.client.ApiClient()
        else:
            api_client = kubernetes.config.new_client_from_config(
                config_file=kubeconfig_file, context=kube_context, persist_config=False
            )
        api_client.configuration.retries = 0
        host = api_client.configuration.host
    except Exception as exc:
        raise TrainingLaunchError(f"cannot load the Kubernetes config ({kubeconfig_file or 'default'}): {exc}") from exc
    try:
        version = kubernetes.client.VersionApi(api_client).get_code(_request_timeout=timeout_s)
    except Exception as exc:
        reason = type(exc).__name__
        raise TrainingLaunchError(
            f"Kubernetes API server at {host} is unreachable ({reason}); check the cluster, the kubeconfig "
            f"({kubeconfig_file or 'default'}) and the network, or run the `local` launcher"
        ) from exc
    finally:
        api_client.close()
    return str(getattr(version, "git_version", version))


def check_docker_reachable(timeout_s: float = 5.0) -> str:
    """Ping the Docker daemon (``DOCKER_HOST`` or the default socket)."""
    import docker

    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        client = docker.from_env(timeout=int(timeout_s))
        client.ping()
        version = client.version().get("Version", "?")
        client.close()
    except Exception as exc:
        raise TrainingLaunchError(
            f"Docker daemon at {host} is unreachable ({type(exc).__name__}); start Docker, set DOCKER_HOST, "
            "or run the `local` launcher"
        ) from exc
    return str(version)


SPAN_KEYS = ("train_started_at", "train_ended_at")


def with_training_span(result: dg.MaterializeResult, started: float, ended: float) -> dg.MaterializeResult:
    """``result`` with when the training actually ran (epoch seconds) as ``train_started_at`` /
    ``train_ended_at``."""
    md = {**(result.metadata or {}), SPAN_KEYS[0]: dg.MetadataValue.timestamp(started),
          SPAN_KEYS[1]: dg.MetadataValue.timestamp(ended)}
    return dg.MaterializeResult(asset_key=result.asset_key, metadata=md, check_results=result.check_results,
                                data_version=result.data_version)


def training_span(metadata: Mapping[str, Any] | None, launched: float, returned: float) -> tuple[float, float]:
    """When the training ran: the span a launcher recorded (the local one, inside its slot), else
    the launch call's own span (a pod's or container's life, scheduling included)."""
    md = metadata or {}
    if all(k in md for k in SPAN_KEYS):
        return tuple(float(getattr(md[k], "value", md[k])) for k in SPAN_KEYS)  # type: ignore[return-value]
    return launched, returned


# --------------------------------------------------------------------------- the resource


def tail_whole_lines(path: str, should_stop, poll_s: float = 0.01):
    """Lines appended to ``path``, each yielded only once its newline is there.

    Dagster's own file tail (``dagster._core.pipes.utils.tail_file``) yields whatever
    ``readline`` returns, and a reader can see a long message half written (a training's
    metadata with its plots is tens of kilobytes; one ``write`` of that size is not atomic
    for a concurrent reader): the half line fails ``json.loads``, the reader thread stops,
    and the step loses the worker's results ("did not receive closed message"). Seen once
    under heavy load on 2 cores.
    """
    import time

    pending = ""
    with open(path, encoding="utf-8") as stream:
        while True:
            chunk = stream.readline()
            if chunk:
                pending += chunk
                if pending.endswith("\n"):
                    yield pending
                    pending = ""
                continue
            if should_stop():  # the worker has exited: what is left is all there is
                pending += stream.read()
                for line in pending.splitlines():
                    if line.strip():
                        yield line
                return
            time.sleep(poll_s)


class WholeLineFileMessageReader(dg.PipesFileMessageReader):
    """``PipesFileMessageReader`` that hands the handler whole lines only (``tail_whole_lines``)."""

    def _reader_thread(self, handler, is_resource_complete) -> None:
        try:
            for line in tail_whole_lines(self._path, is_resource_complete.is_set):
                handler.handle_message(json.loads(line))
        except BaseException:
            handler.report_pipes_framework_exception(f"{self.__class__.__name__} reader thread", sys.exc_info())
            raise


class WholeLineTempFileMessageReader(dg.PipesTempFileMessageReader):
    """``PipesTempFileMessageReader`` (the subprocess client's default) on whole lines."""

    def read_messages(self, handler):
        import contextlib
        import tempfile

        @contextlib.contextmanager
        def session():
            with tempfile.TemporaryDirectory() as tempdir:
                reader = WholeLineFileMessageReader(os.path.join(tempdir, "messages"),
                                                    include_stdio_in_messages=self._include_stdio_in_messages)
                with reader.read_messages(handler) as params:
                    yield params

        return session()


class TrainingLauncher(dg.ConfigurableResource):
    """Launch ``replyassets.training.train`` through Dagster Pipes: local, kubernetes or docker."""

    kind: Literal["local", "kubernetes", "docker"] = "local"
    # local
    python: str = ""  # interpreter for the local launcher; default: this one (sys.executable)
    # shared location (kubernetes / docker)
    shared_dir: str = ""  # this side's path of the shared volume
    remote_shared_dir: str = "/shared"  # the worker's path of the same volume
    # image (kubernetes / docker)
    image: str = "replyassets-train:cuda"
    gpus: int = 1  # kubernetes: nvidia.com/gpu limit; docker: -1 = all
    # kubernetes
    namespace: str = "default"
    cpu: str = "4"
    memory: str = "32Gi"
    node_selector: dict[str, str] = {}
    tolerations: list[dict[str, str]] = []
    secret_env: dict[str, str] = {}  # ENV_NAME -> "k8s-secret-name:key"
    pvc_claim_name: str = ""
    service_account: str = ""
    image_pull_secrets: list[str] = []
    kubeconfig_file: str | None = None
    kube_context: str | None = None
    load_incluster_config: bool | None = None
    poll_interval_s: float = 10.0
    # docker
    docker_network: str = ""
    # env vars forwarded from this process to local/docker workers when set (never logged)
    forward_env: list[str] = list(DEFAULT_SECRET_ENV)

    def _forwarded_env(self) -> dict[str, str]:
        return {k: os.environ[k] for k in self.forward_env if os.environ.get(k)}

    def launch(
        self,
        context: dg.AssetExecutionContext,
        config: Mapping[str, Any],
        extras: Mapping[str, Any] | None = None,
        kind: str | None = None,
    ) -> dg.MaterializeResult:
        """Run the training program with ``config`` (the training config JSON object, with
        this machine's paths) and return its ``MaterializeResult`` (metadata + the
        ``train_eval_gap`` check result). ``kind`` overrides the resource's kind for one call."""
        kind = kind or self.kind
        if kind == "local":
            return self._launch_local(context, config, extras)
        if kind == "kubernetes":
            return self._launch_k8s(context, config, extras)
        if kind == "docker":
            return self._launch_docker(context, config, extras)
        raise TrainingLaunchError(f"unknown launcher kind {kind!r}: use local, kubernetes or docker")

    def _launch_local(self, context, config, extras) -> dg.MaterializeResult:
        out = Path(config["output_dir"])
        out.mkdir(parents=True, exist_ok=True)
        config_path = out / "train_config.json"
        config_path.write_text(json.dumps(dict(config), indent=2, sort_keys=True))
        env = {
            **self._forwarded_env(),
            "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p),
            "TOKENIZERS_PARALLELISM": "false",
        }
        from replyassets.core.slots import run_in_slot
        from replyassets.settings import get_settings

        s = get_settings()
        limit = s.training.local_max_concurrent

        def train() -> dg.MaterializeResult:
            context.log.info(f"training locally: {TRAIN_MODULE} --config {config_path}")
            invocation = dg.PipesSubprocessClient(cwd=str(PROJECT_ROOT),
                                                  message_reader=WholeLineTempFileMessageReader()).run(
                command=worker_command(str(config_path), self.python or sys.executable),
                context=context,
                extras=dict(extras or {}),
                env=env,
            )
            return invocation.get_materialize_result()

        # The training's span is taken inside the slot: when the worker process ran, not when
        # the step began waiting for a slot.
        result, started, ended = run_in_slot(
            s.data_dir / ".training_slots", limit, train,
            on_wait=lambda: context.log.info(f"waiting for a local training slot (limit {limit})"))
        return with_training_span(result, started, ended)

    def _run_key(self, context) -> str:
        return f"{context.run.run_id}-{'-'.join(context.asset_key.path)}"

    def _launch_k8s(self, context, config, extras) -> dg.MaterializeResult:
        from dagster_k8s import PipesK8sClient

        check_kubernetes_reachable(self.kubeconfig_file, self.kube_context, self.load_incluster_config)
        worker_cfg, run_dir = stage_training_config(
            config, shared_dir=self.shared_dir, remote_shared_dir=self.remote_shared_dir, run_key=self._run_key(context)
        )
        spec = build_pod_spec(
            image=self.image,
            gpus=max(self.gpus, 0),
            cpu=self.cpu,
            memory=self.memory,
            node_selector=self.node_selector,
            tolerations=self.tolerations,
            secret_env=self.secret_env,
            pvc_claim_name=self.pvc_claim_name,
            remote_shared_dir=self.remote_shared_dir,
            service_account=self.service_account,
            image_pull_secrets=self.image_pull_secrets,
        )
        client = PipesK8sClient(
            load_incluster_config=self.load_incluster_config,
            kubeconfig_file=self.kubeconfig_file,
            kube_context=self.kube_context,
            poll_interval=self.poll_interval_s,
        )
        context.log.info(f"training in a Kubernetes pod: image {self.image}, namespace {self.namespace}, staged at {run_dir}")
        invocation = client.run(
            context=context,
            image=self.image,
            command=worker_command(),
            namespace=self.namespace,
            base_pod_spec=spec,
            extras={**dict(extras or {}), "training_config": worker_cfg},
        )
        return self._localized(invocation.get_materialize_result())

    def _launch_docker(self, context, config, extras) -> dg.MaterializeResult:
        from dagster_docker import PipesDockerClient

        check_docker_reachable()
        worker_cfg, run_dir = stage_training_config(
            config, shared_dir=self.shared_dir, remote_shared_dir=self.remote_shared_dir, run_key=self._run_key(context)
        )
        kwargs = build_docker_run_kwargs(
            gpus=self.gpus,
            shared_dir=self.shared_dir,
            remote_shared_dir=self.remote_shared_dir,
            network=self.docker_network,
        )
        context.log.info(f"training in a Docker container: image {self.image}, staged at {run_dir}")
        invocation = PipesDockerClient().run(
            context=context,
            image=self.image,
            command=worker_command(),
            env=self._forwarded_env(),
            container_kwargs=kwargs,
            extras={**dict(extras or {}), "training_config": worker_cfg},
        )
        return self._localized(invocation.get_materialize_result())

    def _localized(self, result: dg.MaterializeResult) -> dg.MaterializeResult:
        md = localize_metadata(result.metadata or {}, self.remote_shared_dir.rstrip("/"), str(Path(self.shared_dir).resolve()))
        return dg.MaterializeResult(
            asset_key=result.asset_key, metadata=md, check_results=result.check_results, data_version=result.data_version
        )


# A deployment's launcher settings (image, namespace, GPU node selector and tolerations, secrets,
# the shared volume): a YAML/JSON mapping of TrainingLauncher fields, inline or in a file.
LAUNCHER_ENV = "REPLYASSETS_TRAINING_LAUNCHER"


def launcher_settings_from_env(value: str | None = None) -> dict[str, Any]:
    """The TrainingLauncher fields in ``$REPLYASSETS_TRAINING_LAUNCHER`` (or ``value``): an inline
    mapping (YAML or JSON: ``{"image": ..., "node_selector": {...}}``) or the path of a YAML
    file holding one. Unset or empty: ``{}``. An unknown field is an error, not ignored."""
    import yaml

    raw = os.environ.get(LAUNCHER_ENV, "") if value is None else value
    if not raw.strip():
        return {}
    doc = yaml.safe_load(raw)
    if isinstance(doc, str):  # a path
        doc = yaml.safe_load(Path(doc).read_text())
    doc = doc or {}
    if not isinstance(doc, dict):
        raise TrainingLaunchError(f"{LAUNCHER_ENV} must hold a mapping of launcher settings, got {type(doc).__name__}")
    unknown = sorted(set(doc) - set(TrainingLauncher.model_fields))
    if unknown:
        raise TrainingLaunchError(
            f"{LAUNCHER_ENV}: unknown launcher setting(s) {unknown}; known: {sorted(TrainingLauncher.model_fields)}"
        )
    return doc


def training_launcher_for(settings: Settings) -> TrainingLauncher:
    """The launcher a profile uses: ``local`` for the local profile, else ``training.launcher``,
    with the deployment's settings from ``$REPLYASSETS_TRAINING_LAUNCHER`` on top (the local
    profile keeps ``kind: local``).

    Override per run in run config: ``resources: {launcher: {config: {kind: local}}}``, or per run ``ops: {lora_adapter: {config: {launcher: local}}}``.
    """
    kind = "local" if settings.profile == "local" else settings.training.launcher
    fields = launcher_settings_from_env()
    if settings.profile == "local":
        fields.pop("kind", None)
    kind = fields.pop("kind", kind)
    shared = fields.pop("shared_dir", str(settings.data_dir / "shared") if kind != "local" else "")
    return TrainingLauncher(kind=kind, shared_dir=shared, **fields)

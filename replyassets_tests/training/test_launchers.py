"""The Pipes launcher: a real local materialization; Kubernetes/Docker specs and unreachable errors."""


import json
import socket
from pathlib import Path

import dagster as dg
import pytest

from replyassets.defs.launchers import (
    TRAIN_EVAL_GAP_CHECK,
    TrainingLauncher,
    TrainingLaunchError,
    build_docker_run_kwargs,
    build_pod_spec,
    check_docker_reachable,
    check_kubernetes_reachable,
    localize_metadata,
    stage_training_config,
    train_eval_gap_check_spec,
    training_launcher_for,
    worker_command,
)
from replyassets.training.checkpoints import dir_sha256
from replyassets_tests.training.conftest import base_config


@pytest.mark.slow
def test_local_pipes_materialization_carries_metrics_and_adapter_hash(tiny_setup, tmp_path):
    out = tmp_path / "out"
    cfg = base_config(tiny_setup, out, max_steps=4, eval_steps=2)

    @dg.asset(check_specs=[train_eval_gap_check_spec("tiny_adapter")])
    def tiny_adapter(context: dg.AssetExecutionContext, training_launcher: TrainingLauncher) -> dg.MaterializeResult:
        return training_launcher.launch(context, cfg)

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([tiny_adapter], resources={"training_launcher": TrainingLauncher(kind="local")}, instance=instance)
    assert result.success
    mats = result.get_asset_materialization_events()
    assert len(mats) == 1
    md = mats[0].materialization.metadata
    adapter = Path(md["adapter_path"].value)
    assert md["adapter_sha256"].value == dir_sha256(adapter) == json.loads((out / "result.json").read_text())["adapter_sha256"]
    assert md["curated_set_hash"].value == "sha256:curated-test"
    for key in ("final_train_loss", "final_eval_loss", "train_perplexity", "eval_perplexity", "train_steps_per_s", "train_tokens_per_s", "peak_memory_mb"):
        assert md[key].value > 0, key
    assert md["global_step"].value == 4
    assert [r["step"] for r in md["loss_curve"].value if r["eval_loss"] is not None] == [2, 4]
    assert "| step | train loss | eval loss | gap |" in md["loss_curve_table"].value
    assert Path(md["loss_curve_plot"].value).is_file()
    assert [h["step"] for h in md["sample_generations"].value] == [2, 4]
    assert md["training_config"].value["learning_rate"] == 2e-4
    assert mats[0].materialization.tags.get("dagster/data_version") == md["adapter_sha256"].value
    checks = result.get_asset_check_evaluations()
    assert [c.check_name for c in checks] == [TRAIN_EVAL_GAP_CHECK]
    assert checks[0].passed is (not md["gap_alarm"].value)
    assert checks[0].metadata["threshold"].value == 0.3
    # the training logs streamed into the run
    messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any(m.startswith("sample @ step 2 tweet t1000") for m in messages)
    assert any(m.startswith("done: step 4") for m in messages)


@pytest.mark.slow
def test_local_training_failure_fails_the_step(tiny_setup, tmp_path):
    cfg = base_config(tiny_setup, tmp_path / "out", train_file=str(tmp_path / "missing.jsonl"))

    @dg.asset
    def broken(context: dg.AssetExecutionContext, training_launcher: TrainingLauncher) -> dg.MaterializeResult:
        return training_launcher.launch(context, cfg)

    result = dg.materialize([broken], resources={"training_launcher": TrainingLauncher()}, raise_on_error=False)
    assert not result.success


def test_pod_spec_is_a_valid_gpu_pod():
    from dagster_k8s.pipes import build_pod_body

    spec = build_pod_spec(
        image="registry.example/replyassets-train:cuda",
        gpus=1,
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
        tolerations=[{"key": "dedicated", "operator": "Equal", "value": "training", "effect": "NoSchedule"}],
        secret_env={"HF_TOKEN": "hf:token", "WANDB_API_KEY": "wandb:key"},
        pvc_claim_name="replyassets-shared",
        remote_shared_dir="/shared",
        service_account="trainer",
    )
    c = spec["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token", "optional": False}}} in c["env"]
    assert not any("value" in e for e in c["env"])  # secrets only by reference
    assert {"name": "shared", "mountPath": "/shared"} in c["volumeMounts"]
    assert {"name": "shared", "persistentVolumeClaim": {"claimName": "replyassets-shared"}} in spec["volumes"]
    assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert spec["restartPolicy"] == "Never"
    # dagster-k8s turns it into a real V1Pod with our image, command and the Pipes env
    pod = build_pod_body(
        pod_name="train-1",
        image="registry.example/replyassets-train:cuda",
        command=worker_command(),
        env_vars={"DAGSTER_PIPES_CONTEXT": "x", "DAGSTER_PIPES_MESSAGES": "y"},
        base_pod_meta=None,
        base_pod_spec=spec,
    )
    container = pod.spec.containers[0]
    assert container.command == ["python", "-m", "replyassets.training.train"]
    assert container.resources.limits["nvidia.com/gpu"] == "1"
    assert pod.spec.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
    assert pod.spec.service_account_name == "trainer"
    envs = {e.name: e for e in container.env}
    assert envs["HF_TOKEN"].value_from.secret_key_ref.name == "hf" and envs["DAGSTER_PIPES_CONTEXT"].value == "x"
    assert pod.spec.volumes[1].persistent_volume_claim.claim_name == "replyassets-shared"
    with pytest.raises(TrainingLaunchError, match="secret-name:key"):
        build_pod_spec(image="i", secret_env={"HF_TOKEN": "no-colon"})
    assert "nvidia.com/gpu" not in build_pod_spec(image="i", gpus=0)["containers"][0]["resources"]["limits"]


def test_docker_kwargs_request_gpus_and_mount_the_shared_dir(tmp_path):
    kw = build_docker_run_kwargs(gpus=-1, shared_dir=str(tmp_path), remote_shared_dir="/shared")
    req = kw["device_requests"][0]
    assert req["Count"] == -1 and req["Capabilities"] == [["gpu"]]
    assert kw["volumes"] == {str(tmp_path.resolve()): {"bind": "/shared", "mode": "rw"}}
    assert "device_requests" not in build_docker_run_kwargs(gpus=0)


def test_staging_rewrites_paths_for_the_worker(tiny_setup, tmp_path):
    cfg = base_config(tiny_setup, tmp_path / "out")
    worker, run_dir = stage_training_config(cfg, shared_dir=tmp_path / "shared", remote_shared_dir="/shared", run_key="run1-lora")
    assert worker["train_file"] == "/shared/runs/run1-lora/inputs/train.jsonl"
    assert (run_dir / "inputs" / "train.jsonl").read_bytes() == (tiny_setup / "train.jsonl").read_bytes()
    assert worker["base_model"] == "/shared/runs/run1-lora/inputs/base_model"
    assert (run_dir / "inputs" / "base_model" / "config.json").is_file()
    assert worker["output_dir"] == "/shared/runs/run1-lora/output" and worker["adapter_dir"].endswith("/output/adapter")
    # a DPO run's preference files travel too (each under its own name)
    pref = tmp_path / "pref" / "preference_train.jsonl"
    pref.parent.mkdir()
    pref.write_text('{"prompt": []}\n')
    dpo = stage_training_config({**cfg, "method": "dpo", "preference_train_file": str(pref)},
                                shared_dir=tmp_path / "shared", remote_shared_dir="/shared", run_key="run3")[0]
    assert dpo["preference_train_file"] == "/shared/runs/run3/inputs/preference_train.jsonl"
    assert dpo["train_file"] == "/shared/runs/run3/inputs/train.jsonl"
    hub = stage_training_config({**cfg, "base_model": "Qwen/Qwen3-8B"}, shared_dir=tmp_path / "shared", remote_shared_dir="/shared", run_key="r2")[0]
    assert hub["base_model"] == "Qwen/Qwen3-8B"
    md = localize_metadata(
        {"adapter_path": dg.MetadataValue.path("/shared/runs/r2/output/adapter"), "loss": dg.MetadataValue.float(1.0)},
        "/shared",
        str(tmp_path / "shared"),
    )
    assert md["adapter_path"].value == str(tmp_path / "shared") + "/runs/r2/output/adapter"
    with pytest.raises(TrainingLaunchError, match="shared_dir"):
        stage_training_config(cfg, shared_dir="", remote_shared_dir="/shared", run_key="x")


def _refusing_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens: connections are refused
    return port


def _kubeconfig(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True}}],
                "users": [{"name": "u", "user": {"token": "not-a-real-token"}}],
                "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "ctx",
            }
        )
    )
    return path


def test_unreachable_cluster_is_a_clear_error(tiny_setup, tmp_path):
    port = _refusing_port()
    kubeconfig = _kubeconfig(tmp_path, port)
    with pytest.raises(TrainingLaunchError, match=rf"Kubernetes API server at https://127.0.0.1:{port} is unreachable"):
        check_kubernetes_reachable(str(kubeconfig))
    cfg = base_config(tiny_setup, tmp_path / "out")

    @dg.asset
    def k8s_adapter(context: dg.AssetExecutionContext, training_launcher: TrainingLauncher) -> dg.MaterializeResult:
        return training_launcher.launch(context, cfg)

    launcher = TrainingLauncher(kind="kubernetes", kubeconfig_file=str(kubeconfig), shared_dir=str(tmp_path / "shared"))
    result = dg.materialize([k8s_adapter], resources={"training_launcher": launcher}, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "is unreachable" in (failure.cause.message if failure.cause else failure.message)
    assert "not-a-real-token" not in str(failure.to_string())


def test_unreachable_docker_daemon_is_a_clear_error(tiny_setup, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    with pytest.raises(TrainingLaunchError, match="Docker daemon at unix://.*no-docker.sock is unreachable"):
        check_docker_reachable()
    cfg = base_config(tiny_setup, tmp_path / "out")

    @dg.asset
    def docker_adapter(context: dg.AssetExecutionContext, training_launcher: TrainingLauncher) -> dg.MaterializeResult:
        return training_launcher.launch(context, cfg)

    launcher = TrainingLauncher(kind="docker", shared_dir=str(tmp_path / "shared"))
    result = dg.materialize([docker_adapter], resources={"training_launcher": launcher}, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "Docker daemon" in failure.to_string()


def test_kind_by_profile_and_run_config_override(tmp_path, monkeypatch):
    from replyassets.settings import load_settings

    monkeypatch.setenv("REPLYASSETS_DATA_DIR", str(tmp_path))
    assert training_launcher_for(load_settings("local")).kind == "local"
    prod = training_launcher_for(load_settings("production"))
    assert prod.kind == load_settings("production").training.launcher
    seen = {}

    @dg.asset
    def which(context: dg.AssetExecutionContext, training_launcher: TrainingLauncher) -> None:
        seen["kind"] = training_launcher.kind

    assert dg.materialize(
        [which],
        resources={"training_launcher": TrainingLauncher.configure_at_launch()},
        run_config={"resources": {"training_launcher": {"config": {"kind": "docker"}}}},
    ).success
    assert seen["kind"] == "docker"


def test_the_pipes_reader_waits_for_whole_lines(tmp_path):
    """A long message seen half written: Dagster's own tail hands the half line to json.loads
    (the reader thread dies and the step loses the worker's results); ours waits for the newline."""
    import json
    import threading
    import time

    from dagster._core.pipes.utils import tail_file

    from replyassets.defs.launchers import tail_whole_lines

    message = json.dumps({"method": "report_asset_materialization", "params": {"plot": "x" * 50_000}})

    def scenario(tail) -> list[str]:
        path = tmp_path / f"messages-{tail.__name__}"
        path.write_text("")
        done = threading.Event()

        def writer():
            with open(path, "a", encoding="utf-8") as f:
                f.write(message[:20_000])
                f.flush()
                time.sleep(0.3)  # the reader polls in between
                f.write(message[20_000:] + "\n")
                f.write('{"method": "closed"}\n')
            time.sleep(0.1)
            done.set()

        t = threading.Thread(target=writer)
        t.start()
        lines = list(tail(str(path), done.is_set))
        t.join()
        return lines

    ours = scenario(tail_whole_lines)
    assert [json.loads(x)["method"] for x in ours] == ["report_asset_materialization", "closed"]
    assert json.loads(ours[0]) == json.loads(message)
    theirs = scenario(tail_file)
    assert theirs[0] == message[:20_000]  # the half line Dagster's tail yields

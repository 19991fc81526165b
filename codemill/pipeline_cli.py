"""``codemill pipeline compile | run --local | submit --host URL``."""

from __future__ import annotations

import argparse
import builtins
import datetime as _dt
import json
import os
import sys

from codemill import io

COMPILED_DIR = os.path.join("pipelines", "compiled")
DEFAULT_COMPILED = os.path.join(COMPILED_DIR, "codemill.yaml")
# Every pipeline: name -> the module and function that define it (docs/pipelines.md).
PIPELINES = {
    "codemill": ("pipelines.codemill_pipeline", "codemill_pipeline"),
    "posttrain": ("pipelines.posttrain_pipeline", "posttrain_pipeline"),
    "r1": ("pipelines.r1_pipeline", "r1_pipeline"),
}


def pipeline_function(name: str = "codemill"):
    """The ``@dsl.pipeline`` function of pipeline ``name``."""
    import importlib

    from codemill.stage import InputError

    if name not in PIPELINES:
        raise InputError(f"unknown pipeline {name!r}; known: {', '.join(PIPELINES)}")
    module, attr = PIPELINES[name]
    return getattr(importlib.import_module(module), attr)


def compiled_path(name: str) -> str:
    return os.path.join(COMPILED_DIR, f"{name}.yaml")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipeline",
        help="compile, run locally, or submit the KFP pipeline",
        description="Compile the KFP v2 pipeline, run it locally through kfp.local, or submit it to a cluster.",
    )
    psub = p.add_subparsers(dest="pipeline_command", metavar="ACTION", required=True)

    c = psub.add_parser(
        "compile",
        help="compile the pipelines to IR YAML",
        description="Compile every pipeline (codemill, posttrain, r1) to KFP IR YAML in "
        f"{COMPILED_DIR}/, or one with --pipeline.",
    )
    c.add_argument("--pipeline", choices=list(PIPELINES), default=None, help="compile only this one")
    c.add_argument(
        "--output",
        default=None,
        help=f"where to write the YAML (only with --pipeline; default: {COMPILED_DIR}/<name>.yaml)",
    )
    c.set_defaults(func=cmd_compile)

    r = psub.add_parser(
        "run",
        help="run the pipeline (locally with --local)",
        description="Run the same pipeline function through kfp.local (SubprocessRunner) "
        "and write <workdir>/summary.json.",
    )
    r.add_argument("--local", action="store_true", required=True, help="run through kfp.local on this machine")
    r.add_argument(
        "--pipeline",
        choices=list(PIPELINES),
        default="codemill",
        help="which pipeline: codemill (pretraining then post-training, the default), posttrain, r1",
    )
    r.add_argument(
        "--workdir", default="runs/local", help="where runs, MLflow store, logs and summary go (default: runs/local)"
    )
    r.add_argument("--run-name", default="", help="the run's folder name (default: a timestamp)")
    r.add_argument("--no-tracking", action="store_true", help="run without MLflow")
    _add_param_args(r)
    r.set_defaults(func=cmd_run_local)

    s = psub.add_parser(
        "submit",
        help="upload a pipeline version and start a run on a KFP cluster",
        description="Upload the compiled pipeline as a new version (creating the pipeline if "
        "needed) and start a run through kfp.Client.",
    )
    s.add_argument("--host", required=True, help="KFP API endpoint, e.g. http://ml-pipeline-ui.kubeflow:80")
    s.add_argument("--namespace", default=None, help="Kubeflow profile namespace (multi-user installs)")
    s.add_argument("--experiment", default="codemill", help="KFP experiment to run in (default: codemill)")
    s.add_argument(
        "--pipeline",
        choices=list(PIPELINES),
        default="codemill",
        help="which pipeline to upload (its name in KFP; default: codemill)",
    )
    s.add_argument("--package", default=None, help=f"compiled pipeline YAML (default: {COMPILED_DIR}/<pipeline>.yaml)")
    s.add_argument("--version", default="", help="pipeline version name (default: a timestamp)")
    s.add_argument("--existing-token", default=os.environ.get("KFP_TOKEN"), help="bearer token (default: $KFP_TOKEN)")
    s.add_argument("--no-run", action="store_true", help="upload the version only, start no run")
    s.add_argument(
        "--service-account", default="", help="service account of the run's pods (e.g. codemill-pipeline-runner)"
    )
    _add_param_args(s)
    s.set_defaults(func=cmd_submit)


def _add_param_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="pipeline parameter override, read by the parameter's declared type: strings as "
        "written, numbers and booleans as such, dicts/lists as JSON "
        "(e.g. --param run_name=2024 --param num_shards=4 "
        "--param 'validate_options={\"max_repos\": 10}')",
    )


def _decode(name: str, kind: str, value: str):
    """``value`` as the pipeline parameter ``name`` of KFP type ``kind`` expects it."""
    from codemill.stage import InputError

    if kind == "String":
        return value  # `run_name=2024` stays the string "2024"
    try:
        if kind == "Integer":
            return int(value)
        if kind == "Float":
            return float(value)
        decoded = json.loads(value.lower() if kind == "Boolean" else value)
    except ValueError:
        decoded = None
    expected = {"Boolean": bool, "Dict": dict, "List": list}.get(kind)
    if expected is None or not isinstance(decoded, expected):
        raise InputError(
            f"--param {name}={value!r}: expected a value of the parameter's type, {kind}"
            + (" (write it as JSON)" if kind in ("Dict", "List") else "")
        )
    return decoded


def parse_params(pairs: list[str], pipeline: str = "codemill") -> dict:
    from codemill.stage import InputError

    inputs = pipeline_function(pipeline).component_spec.inputs or {}
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise InputError(f"--param {pair!r}: expected NAME=VALUE")
        if name not in inputs:
            raise InputError(f"--param {name}: not a pipeline parameter (known: {', '.join(sorted(inputs))})")
        out[name] = _decode(name, inputs[name].type, value)
    return out


def _canonical(value):
    if isinstance(value, dict):
        return {k: _canonical(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _sort_header_defaults(text: str) -> str:
    """kfp writes dict defaults in its header comment in hash order, which changes from
    one process to the next; sort their keys so the committed YAML is reproducible."""
    import ast
    import re

    def fix(m: re.Match) -> str:
        try:
            return f"{m.group(1)}{_canonical(ast.literal_eval(m.group(2)))!r}]"
        except (ValueError, SyntaxError):
            return m.group(0)

    return re.sub(r"^(#.*\[Default: )(.*)\]$", fix, text, flags=re.M)


def compile_pipeline(path: str, pipeline: str = "codemill") -> str:
    from kfp import compiler

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    compiler.Compiler().compile(pipeline_function(pipeline), package_path=path)
    with open(path, encoding="utf-8") as f:
        text = _sort_header_defaults(f.read())
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def cmd_compile(args) -> int:
    from codemill.stage import InputError

    if args.output and not args.pipeline:
        raise InputError("--output needs --pipeline (every pipeline goes to its own file)")
    for name in [args.pipeline] if args.pipeline else list(PIPELINES):
        print(f"compiled pipeline: {compile_pipeline(args.output or compiled_path(name), name)}")
    return 0


class PipelineFailed(RuntimeError):
    """A local run's task failed; the message names the task and its log file."""


def local_tracking_uri(workdir: str) -> str:
    return f"sqlite:///{os.path.abspath(os.path.join(workdir, 'mlflow.db'))}"


def init_local(pipeline_root: str) -> None:
    """Set up kfp.local the way codemill's pipelines need (also used by the tests).

    kfp 2.16 picks its loop-aware orchestrator only when the root DAG itself has a loop
    or condition; our fan-outs sit in sub-pipelines, which the plain orchestrator cannot
    run. The loop-aware one runs plain DAGs too, so use it everywhere.
    """
    from kfp import local
    from kfp.local.orchestrator import dag_orchestrator, enhanced_dag_orchestrator

    dag_orchestrator.run_dag = enhanced_dag_orchestrator.run_enhanced_dag
    _fill_final_status_locally()
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=pipeline_root, raise_on_error=True)


def _fill_final_status_locally() -> None:
    """Let kfp.local run the pipeline's exit handler (``components.run.finish_run``).

    kfp 2.16's local orchestrator raises NotImplementedError on a
    ``dsl.PipelineTaskFinalStatus`` input. We run with ``raise_on_error=True``, so a
    local run stops at its first failed task and an exit task that runs at all saw every
    task succeed: fill in SUCCEEDED. ``run_local`` closes the parent run as FAILED itself
    when the run raised.
    """
    from kfp.local.orchestrator.orchestrator_utils import OrchestratorUtils
    from kfp.pipeline_spec import pipeline_spec_pb2

    original = OrchestratorUtils.make_task_arguments
    if getattr(original, "_codemill_final_status", False):
        return

    def make_task_arguments(task_inputs_spec, io_store):
        final = [n for n, spec in task_inputs_spec.parameters.items() if spec.HasField("task_final_status")]
        if not final:
            return original(task_inputs_spec, io_store)
        rest = pipeline_spec_pb2.TaskInputsSpec()
        rest.CopyFrom(task_inputs_spec)
        for name in final:
            del rest.parameters[name]
        arguments = original(rest, io_store)
        for name in final:
            arguments[name] = {"state": "SUCCEEDED", "pipelineJobResourceName": "local", "pipelineTaskName": name}
        return arguments

    make_task_arguments._codemill_final_status = True
    OrchestratorUtils.make_task_arguments = staticmethod(make_task_arguments)


def run_local(
    workdir: str, params: dict, run_name: str = "", tracking: bool = True, terminal=None, pipeline: str = "codemill"
) -> dict:
    """Run ``pipeline`` through kfp.local and return (and write) the summary.

    ``terminal`` (default stdout) gets one line per task; every task's full output goes to
    ``<workdir>/logs/<run_name>/`` (``summary["logs"]``).
    """
    from codemill.pipeline_log import task_log
    from codemill.runs import PIPELINE_STAGES, collect_summary

    pipeline_fn = pipeline_function(pipeline)
    workdir = os.path.abspath(workdir)
    os.makedirs(workdir, exist_ok=True)
    run_name = run_name or _dt.datetime.now().strftime("local-%Y%m%d-%H%M%S")
    if not tracking:
        uri = "none"
    else:
        uri = params.pop("tracking_uri", "") or os.environ.get("MLFLOW_TRACKING_URI") or local_tracking_uri(workdir)
    params = {"work_root": os.path.join(workdir, "runs"), "run_name": run_name, "tracking_uri": uri, **params}
    init_local(os.path.join(workdir, "kfp"))
    run_dir = io.join(params["work_root"], run_name)
    log_dir = os.path.join(workdir, "logs", run_name)
    terminal = terminal or sys.stdout
    terminal.write(f"running {run_name}; every task's full log goes to {log_dir}/\n")
    original_print = builtins.print
    try:
        with task_log(log_dir, terminal) as tasks:
            try:
                pipeline_fn(**params)
            except RuntimeError as e:  # kfp.local: "Pipeline ... finished with status FAILURE ..."
                failed = [t for t in tasks if t["status"] != "SUCCESS"]
                where = f"{failed[0]['task']} failed, its log: {failed[0]['log']}" if failed else str(e)
                raise PipelineFailed(f"the local run stopped: {where}") from e
    finally:
        # kfp.local indents print() by patching builtins.print; its ParallelFor threads
        # restore it out of order and leave it patched, so put the original back.
        builtins.print = original_print
        _finish_parent_run(run_dir, uri, PIPELINE_STAGES[pipeline])
    summary = collect_summary(run_dir, PIPELINE_STAGES[pipeline])
    summary["pipeline"] = pipeline
    summary["tracking_uri"] = "" if uri == "none" else uri
    summary["parameters"] = params
    summary["tasks"] = tasks
    summary["logs"] = log_dir
    summary_path = os.path.join(workdir, "summary.json")
    io.write_json(summary_path, summary)
    summary["summary_path"] = summary_path
    return summary


def _finish_parent_run(run_dir: str, uri: str, stages: tuple) -> None:
    from codemill import tracking

    run_json = io.join(run_dir, "run.json")
    if uri != "none" and io.exists(run_json):
        record = io.read_json(run_json)
        if "mlflow_status" in record:  # the pipeline's exit handler (finish_run) closed it
            return
        parent = record.get("parent_run_id", "")
        done = all(io.exists(io.join(run_dir, s, "stats.json")) for s in stages)
        tracking.finish_pipeline_run(uri, parent, status="FINISHED" if done else "FAILED")


def cmd_run_local(args) -> int:
    try:
        summary = run_local(
            args.workdir,
            parse_params(args.param, args.pipeline),
            run_name=args.run_name,
            tracking=not args.no_tracking,
            pipeline=args.pipeline,
        )
    except PipelineFailed as e:
        print(f"codemill: {e}", file=sys.stderr)
        return 1
    print(f"\nsummary: {summary['summary_path']}")
    for stage, entry in summary["stages"].items():
        print(f"  {stage:18s} {entry.get('report', entry['output'])}")
    print(f"task logs: {summary['logs']}/")
    if summary.get("tracking_uri"):
        print(f"MLflow: {summary['tracking_uri']} (mlflow ui --backend-store-uri {summary['tracking_uri']})")
    for stage in ("serve", "posttrain_serve", "r1_serve"):
        served = summary["stages"].get(stage, {}).get("stats", {})
        if served.get("decision"):
            print(f"{stage}: {served['decision']}")
        if served.get("serve_command"):
            print(f"  serve the model: {served['serve_command']}")
    return 0


def cmd_submit(args) -> int:
    import kfp

    name = args.pipeline
    args.package = args.package or compiled_path(args.pipeline)
    client = kfp.Client(host=args.host, namespace=args.namespace, existing_token=args.existing_token)
    version = args.version or _dt.datetime.now().strftime("v%Y%m%d-%H%M%S")
    pipeline_id = client.get_pipeline_id(name)
    if pipeline_id is None:
        pipeline = client.upload_pipeline(args.package, pipeline_name=name, namespace=args.namespace)
        pipeline_id = pipeline.pipeline_id
    existing = {
        v.display_name: v.pipeline_version_id
        for v in client.list_pipeline_versions(pipeline_id, page_size=200).pipeline_versions or []
    }
    if version in existing:  # a re-synced release uploads the same version again: reuse it
        version_id = existing[version]
    else:
        pv = client.upload_pipeline_version(args.package, pipeline_version_name=version, pipeline_id=pipeline_id)
        version_id = pv.pipeline_version_id
    print(f"pipeline {name} ({pipeline_id}) version {version_id}")
    if args.no_run:
        return 0
    experiment = client.create_experiment(args.experiment, namespace=args.namespace)
    run = client.run_pipeline(
        experiment_id=experiment.experiment_id,
        job_name=f"{name}-{version}",
        params=parse_params(args.param, args.pipeline),
        pipeline_id=pipeline_id,
        version_id=version_id,
        service_account=args.service_account or None,
    )
    print(f"run {run.run_id} started: {args.host.rstrip('/')}/#/runs/details/{run.run_id}")
    return 0


if __name__ == "__main__":
    sys.exit(cmd_compile(argparse.Namespace(pipeline=None, output=None)))

"""The `train_model`, `evaluate_model` and `model_provenance` rules, and the
`model_pipeline` macro that wires them into one target."""

load(":hermetic.bzl", "run_python_action")
load(":providers.bzl", "ChampionInfo", "DatasetInfo", "EvaluationInfo", "ModelInfo", "PythonEnvInfo")

def _out_dir(ctx):
    return ctx.attr.out_dir or ctx.label.name

def _data_args(args, ds):
    args.add("--manifest", ds.manifest)
    args.add("--root", ds.root)
    args.add_all(ds.file_args, before_each = "--file")

_COMMON_ATTRS = {
    "out_dir": attr.string(
        default = "",
        doc = "Directory (under the package's output directory) for the outputs; defaults to the target name.",
    ),
    "_env": attr.label(default = Label("//rules:python_env"), providers = [PythonEnvInfo]),
    "_tool_srcs": attr.label(default = Label("//retrain:srcs")),
}

def _train_model_impl(ctx):
    env = ctx.attr._env[PythonEnvInfo]
    ds = ctx.attr.dataset[DatasetInfo]
    out = _out_dir(ctx)
    model = ctx.actions.declare_file(out + "/model.rtm")
    report = ctx.actions.declare_file(out + "/train_report.json")
    tool_srcs = ctx.files._tool_srcs
    args = ctx.actions.args()
    _data_args(args, ds)
    args.add("--recipe", ctx.file.recipe)
    args.add("--verified", ds.verified)
    args.add_all(tool_srcs, before_each = "--source")
    args.add("--env-json", env.env_json)
    args.add("--out-model", model)
    args.add("--out-report", report)
    run_python_action(
        ctx,
        env = env,
        tool_srcs = depset(tool_srcs),
        command = "train",
        args = args,
        inputs = depset(
            [ctx.file.recipe, ds.manifest, ds.verified, env.env_json],
            transitive = [ds.files],
        ),
        outputs = [model, report],
        mnemonic = "RetrainTrain",
        progress_message = "Training %s on dataset %s" % (ctx.label, ds.name),
    )
    return [
        DefaultInfo(files = depset([model, report])),
        ModelInfo(
            model = model,
            report = report,
            recipe = ctx.file.recipe,
            dataset = ds,
            sources = depset([ctx.file.recipe, ds.manifest] + tool_srcs),
        ),
    ]

train_model = rule(
    implementation = _train_model_impl,
    doc = """Trains a model from a recipe on a verified dataset.

Outputs `<out_dir>/model.rtm` (retrain model format v1, deterministic bytes,
no pickle) and `<out_dir>/train_report.json` (rows, iterations, the BLAS
libraries in use). The model embeds its lineage: the recipe's sha256, the
dataset digest, a digest over the training code and the lock's sha256.
""",
    attrs = dict(_COMMON_ATTRS, **{
        "dataset": attr.label(mandatory = True, providers = [DatasetInfo], doc = "The `dataset` to train on."),
        "recipe": attr.label(
            mandatory = True,
            allow_single_file = [".json"],
            doc = "The training recipe (docs/recipe.md): features, label, split, estimator, seed.",
        ),
    }),
    provides = [ModelInfo],
)

def _evaluate_model_impl(ctx):
    env = ctx.attr._env[PythonEnvInfo]
    mi = ctx.attr.model[ModelInfo]
    ds = ctx.attr.holdout[DatasetInfo] if ctx.attr.holdout else mi.dataset
    out = _out_dir(ctx)
    metrics = ctx.actions.declare_file(out + "/metrics.json")
    gates = ctx.actions.declare_file(out + "/gates.txt")
    report = ctx.actions.declare_file(out + "/report.html")
    statement = ctx.actions.declare_file(ctx.label.name + ".statement.json")
    tool_srcs = ctx.files._tool_srcs
    datasets = [mi.dataset] if ds.verified == mi.dataset.verified else [mi.dataset, ds]
    args = ctx.actions.args()
    _data_args(args, ds)
    args.add("--train-manifest", mi.dataset.manifest)
    args.add("--train-root", mi.dataset.root)
    args.add_all(mi.dataset.file_args, before_each = "--train-file")
    args.add("--recipe", mi.recipe)
    args.add("--gates", ctx.file.gates)
    args.add("--gates-uri", ctx.file.gates.short_path)
    args.add("--model", mi.model)
    args.add_all([d.statement for d in datasets], before_each = "--quality-statement")
    inputs = [mi.recipe, mi.model, ctx.file.gates] + [f for d in datasets for f in (d.manifest, d.verified, d.statement)]
    if ctx.attr.champion:
        champion = ctx.attr.champion[ChampionInfo]
        args.add("--champion-model", champion.model)
        args.add("--champion-record", champion.record)
        inputs += [champion.model, champion.record]
    args.add("--out", metrics)
    args.add("--out-gates", gates)
    args.add("--out-statement", statement)
    run_python_action(
        ctx,
        env = env,
        tool_srcs = depset(tool_srcs),
        command = "evaluate",
        args = args,
        inputs = depset(inputs, transitive = [d.files for d in datasets]),
        outputs = [metrics, gates, statement],
        mnemonic = "RetrainEvaluate",
        progress_message = "Validating %s on %s: contracts, metrics with intervals, gates" % (ctx.attr.model.label, ds.name),
    )
    report_args = ctx.actions.args()
    report_args.add("--metrics", metrics)
    report_args.add("--train-report", mi.report)
    report_args.add_all([d.statement for d in datasets], before_each = "--dataset-statement")
    report_args.add("--target", "//%s:%s" % (ctx.label.package, out))
    report_args.add("--out", report)
    run_python_action(
        ctx,
        env = env,
        tool_srcs = depset(tool_srcs),
        command = "report",
        args = report_args,
        inputs = [metrics, mi.report] + [d.statement for d in datasets],
        outputs = [report],
        mnemonic = "RetrainReport",
        progress_message = "Writing the validation report of %s" % ctx.attr.model.label,
    )
    return [
        DefaultInfo(files = depset([metrics, gates, report])),
        EvaluationInfo(
            metrics = metrics,
            gates = gates,
            report = report,
            model = mi,
            dataset = ds,
            statement = statement,
            sources = depset([ds.manifest, ctx.file.gates] + tool_srcs, transitive = [mi.sources]),
        ),
    ]

evaluate_model = rule(
    implementation = _evaluate_model_impl,
    doc = """Validates a trained model on a pinned holdout dataset, and writes the report.

Checks that the holdout shares no row (row-level hash) or key with the
training data (leakage fails the build) and that the model meets its
contracts on real rows; then computes every metric with a seeded bootstrap
interval, overall and per declared slice, compares with the `champion` (a
paired bootstrap of the difference) when there is one, and decides the gates
of the `gates` spec (docs/validation.md). Outputs `<out_dir>/metrics.json`
(everything measured, every verdict), `<out_dir>/gates.txt` (one line per
gate) and `<out_dir>/report.html` (self-contained). A failed gate does not
fail the build: it is recorded and attested; `model_gates_test` and
`retrain verify` act on it.
""",
    attrs = dict(_COMMON_ATTRS, **{
        "model": attr.label(mandatory = True, providers = [ModelInfo], doc = "The `train_model` target."),
        "holdout": attr.label(
            providers = [DatasetInfo],
            doc = "The pinned holdout `dataset`; without it, the training dataset's rows that the recipe's split holds out.",
        ),
        "gates": attr.label(mandatory = True, allow_single_file = [".toml"], doc = "The gate spec (docs/validation.md)."),
        "champion": attr.label(
            providers = [ChampionInfo],
            doc = "The current champion (a `champion_model` target), verified before use; none means only value gates apply.",
        ),
    }),
    provides = [EvaluationInfo],
)

def _champion_model_impl(ctx):
    env = ctx.attr._sign_env[PythonEnvInfo]
    models = [f for f in ctx.files.srcs if f.basename == "model.rtm"]
    if len(models) != 1:
        fail("champion_model %s: srcs must hold exactly one model.rtm, found %d" % (ctx.label, len(models)))
    model = models[0]
    record = ctx.actions.declare_file(ctx.label.name + ".verified.json")
    args = ctx.actions.args()
    args.add("--model", model)
    args.add("--policy", ctx.file.policy)
    args.add("--out", record)
    run_python_action(
        ctx,
        env = env,
        tool_srcs = depset(ctx.files._tool_srcs),
        command = "verify-champion",
        args = args,
        inputs = ctx.files.srcs + [ctx.file.policy],
        outputs = [record],
        mnemonic = "RetrainVerifyChampion",
        progress_message = "Verifying the attestation chain of champion %s" % ctx.label,
    )
    return [DefaultInfo(files = depset([record])), ChampionInfo(model = model, record = record)]

champion_model = rule(
    implementation = _champion_model_impl,
    doc = """The current champion: a previously attested model, verified before its numbers count.

`srcs` are the champion's files (model.rtm, its *.intoto.jsonl links,
model.sig, metrics.json, ...), all in one directory. The verification
action checks its chain against `policy` (signatures, subjects, chain,
gates); a champion whose attestation does not verify fails the build.
""",
    attrs = {
        "srcs": attr.label_list(mandatory = True, allow_files = True, doc = "The champion's model and attestations."),
        "policy": attr.label(
            default = Label("//attestations:policy.json"),
            allow_single_file = [".json"],
            doc = "The trust policy the champion's chain must verify against.",
        ),
        "_sign_env": attr.label(default = Label("//rules:sign_env"), providers = [PythonEnvInfo]),
        "_tool_srcs": attr.label(default = Label("//retrain:srcs")),
    },
    provides = [ChampionInfo],
)

def _registry_champion_impl(ctx):
    env = ctx.attr._sign_env[PythonEnvInfo]
    model = ctx.actions.declare_file(ctx.label.name + "/model.rtm")
    record = ctx.actions.declare_file(ctx.label.name + ".verified.json")
    args = ctx.actions.args()
    args.add("--registry", ctx.attr.root)
    args.add("--stage", ctx.attr.stage)
    args.add("--policy", ctx.file.policy)
    args.add("--out-model", model)
    args.add("--out", record)
    run_python_action(
        ctx,
        env = env,
        tool_srcs = depset(ctx.files._tool_srcs),
        command = "registry-champion",
        args = args,
        inputs = ctx.files.srcs + [ctx.file.policy],
        outputs = [model, record],
        mnemonic = "RetrainRegistryChampion",
        progress_message = "Verifying the %s model of the promotion registry %s" % (ctx.attr.stage, ctx.attr.root),
    )
    return [DefaultInfo(files = depset([record])), ChampionInfo(model = model, record = record)]

registry_champion = rule(
    implementation = _registry_champion_impl,
    doc = """The model serving a stage of the promotion registry, as the champion.

The action reads the registry's checkpoint (its signature and head entry
verified against `policy`), takes the model serving `stage`, and verifies
that model's stored chain. When nothing serves the stage yet, there is no
champion and the comparative gates are skipped. Because `srcs` are the
registry's files, a promotion or rollback changes the champion of the next
build, and nothing else does.
""",
    attrs = {
        "srcs": attr.label_list(allow_files = True, doc = "Every file of the registry (a glob)."),
        "root": attr.string(mandatory = True, doc = "The registry directory, relative to the workspace root."),
        "stage": attr.string(default = "production", values = ["shadow", "canary", "production"]),
        "policy": attr.label(
            default = Label("//attestations:policy.json"),
            allow_single_file = [".json"],
            doc = "The trust policy the checkpoint and the model's chain must verify against.",
        ),
        "_sign_env": attr.label(default = Label("//rules:sign_env"), providers = [PythonEnvInfo]),
        "_tool_srcs": attr.label(default = Label("//retrain:srcs")),
    },
    provides = [ChampionInfo],
)

def _model_gates_test_impl(ctx):
    ev = ctx.attr.evaluation[EvaluationInfo]
    script = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(
        script,
        """#!/usr/bin/env bash
# Generated by model_gates_test: fails when any gate of {model} failed.
set -u
gates="{gates}"
if [ ! -f "$gates" ]; then echo "gates file $gates is missing" >&2; exit 2; fi
cat "$gates"
failed=$(grep -c '^FAILED ' "$gates" || true)
if [ "$failed" -gt 0 ]; then
  echo "$failed gate(s) of {model} failed:" >&2
  grep '^FAILED ' "$gates" >&2
  exit 1
fi
""".format(gates = ev.gates.short_path, model = str(ev.model.model.short_path)),
        is_executable = True,
    )
    return [DefaultInfo(executable = script, runfiles = ctx.runfiles(files = [ev.gates]))]

model_gates_test = rule(
    implementation = _model_gates_test_impl,
    doc = "A test that fails when any validation gate of an `evaluate_model` target failed, naming each.",
    attrs = {
        "evaluation": attr.label(mandatory = True, providers = [EvaluationInfo], doc = "The `evaluate_model` target."),
    },
    test = True,
)

def _model_provenance_impl(ctx):
    env = ctx.attr._env[PythonEnvInfo]
    ev = ctx.attr.evaluation[EvaluationInfo]
    mi = ev.model
    statement = ctx.actions.declare_file(_out_dir(ctx) + "/provenance.json")
    sources = depset(
        ctx.files._build_definition + ctx.files.definition,
        transitive = [mi.sources, ev.sources],
    )
    subjects = [mi.model, mi.report, ev.metrics, ev.gates, ev.report]
    args = ctx.actions.args()
    args.add("--target", str(ctx.label).replace("@//", "//"))
    args.add_all(["%s=%s" % (f.basename, f.path) for f in subjects], before_each = "--subject")
    args.add("--recipe", mi.recipe)
    args.add("--train-report", mi.report)

    # Every dataset the build read: training data and, when different, the
    # evaluation data.
    verified = [mi.dataset.verified]
    if ev.dataset.verified != mi.dataset.verified:
        verified.append(ev.dataset.verified)
    args.add_all(verified, before_each = "--dataset-verified")
    args.add_all(sources, before_each = "--source")
    args.add("--lock-name", env.lock.short_path)
    args.add("--env-json", env.env_json)
    args.add("--toolchain-json", env.toolchain_json)
    args.add("--status", ctx.info_file)
    args.add("--out", statement)
    run_python_action(
        ctx,
        env = env,
        tool_srcs = depset(ctx.files._tool_srcs),
        command = "provenance",
        args = args,
        inputs = depset(
            subjects + verified + [mi.recipe, env.env_json, env.toolchain_json, ctx.info_file],
            transitive = [sources],
        ),
        outputs = [statement],
        mnemonic = "RetrainProvenance",
        progress_message = "Writing SLSA provenance for %s" % ctx.label,
    )
    outputs = subjects + [statement]
    if ctx.attr.sign:
        outputs += _sign(ctx, mi, ev, statement)
    return [DefaultInfo(files = depset(outputs))]

# The signing action reads a private key, so it is never cached, never sent
# to a remote executor and not sandboxed (it reads, and on first use
# creates, the key outside the execution root).
SIGNING_EXECUTION_REQUIREMENTS = {"no-cache": "1", "no-remote": "1", "no-sandbox": "1", "local": "1"}

def _sign(ctx, mi, ev, provenance):
    env = ctx.attr._sign_env[PythonEnvInfo]
    out = _out_dir(ctx)
    links = {"dataset": mi.dataset.statement}
    if ev.dataset.statement != mi.dataset.statement:
        links["holdout"] = ev.dataset.statement
    links["build"] = provenance
    links["evaluation"] = ev.statement
    files = {"dataset": "dataset", "holdout": "holdout", "build": "provenance", "evaluation": "evaluation"}
    outputs = [ctx.actions.declare_file("%s/%s.intoto.jsonl" % (out, files[link])) for link in links]
    outputs.append(ctx.actions.declare_file(out + "/model.sig"))
    args = ctx.actions.args()
    args.add_all(["%s=%s" % (link, f.path) for link, f in links.items()], before_each = "--statement")
    args.add("--model", mi.model)
    args.add("--out-dir", mi.model.dirname)
    args.add("--signing-config", ctx.file._signing_config)
    run_python_action(
        ctx,
        env = env,
        tool_srcs = depset(ctx.files._tool_srcs),
        command = "sign",
        args = args,
        inputs = links.values() + [mi.model, mi.report, ev.metrics, ev.gates, ev.report, ctx.file._signing_config],
        outputs = outputs,
        mnemonic = "RetrainSign",
        progress_message = "Signing the attestation chain of %s" % ctx.label,
        execution_requirements = SIGNING_EXECUTION_REQUIREMENTS,
    )
    return outputs

model_provenance = rule(
    implementation = _model_provenance_impl,
    doc = """Writes the SLSA provenance v1 statement (in-toto Statement v1, unsigned) of a model build.

Subjects: the model, its training report, its metrics, gate verdicts and
report, by sha256. resolvedDependencies: the source tree (digest, and git
commit when the workspace status knows it), every source file, the lock,
each dataset by dataset digest, and the toolchain (Python, Bazel, platform).
The target's default outputs are the subjects plus the statement, and, when
`sign` is set (the default), the signed chain: `dataset.intoto.jsonl`,
`holdout.intoto.jsonl` (with a pinned holdout), `provenance.intoto.jsonl`,
`evaluation.intoto.jsonl` (one DSSE envelope a line) and `model.sig` (a
Sigstore bundle from OpenSSF model-signing). Signing
is a local action that is never cached or run remotely; the key is not an
input of any action (see rules/private/signing.bzl).
""",
    attrs = dict(_COMMON_ATTRS, **{
        "evaluation": attr.label(mandatory = True, providers = [EvaluationInfo], doc = "The `evaluate_model` target."),
        "definition": attr.label_list(allow_files = True, doc = "Further files that define this build (the package's BUILD file)."),
        "sign": attr.bool(
            default = True,
            doc = "Sign the chain (dataset, holdout, build, evaluation) into DSSE envelopes and a model-signing bundle.",
        ),
        "_build_definition": attr.label(default = Label("//:build_definition")),
        "_sign_env": attr.label(default = Label("//rules:sign_env"), providers = [PythonEnvInfo]),
        "_signing_config": attr.label(default = Label("@retrain_signing//:config.json"), allow_single_file = True),
    }),
)

def model_pipeline(name, dataset, recipe, gates, holdout = None, champion = None, visibility = None, tags = None):
    """Trains, validates, attests and signs one model, under one target.

    `bazel build :NAME` leaves in `bazel-bin/<package>/NAME/`: `model.rtm`,
    `train_report.json`, `metrics.json`, `gates.txt`, `report.html`,
    `provenance.json`, and the signed chain (`*.intoto.jsonl`, `model.sig`).
    `:NAME_gates` is a test that fails when a gate failed.

    Args:
      name: the pipeline's target name and output directory.
      dataset: the training `dataset` target.
      recipe: the training recipe file.
      gates: the gate spec (docs/validation.md).
      holdout: the pinned holdout `dataset` target (else the recipe's split).
      champion: a `champion_model` target to compare against, if any.
      visibility: visibility of the final target.
      tags: tags for every target of the pipeline.
    """
    train_model(name = name + "_train", dataset = dataset, recipe = recipe, out_dir = name, tags = tags)
    evaluate_model(
        name = name + "_eval",
        model = ":" + name + "_train",
        holdout = holdout,
        gates = gates,
        champion = champion,
        out_dir = name,
        tags = tags,
    )
    model_provenance(
        name = name,
        evaluation = ":" + name + "_eval",
        definition = native.glob(["BUILD.bazel", "BUILD"]),
        out_dir = name,
        visibility = visibility,
        tags = tags,
    )
    model_gates_test(name = name + "_gates", evaluation = ":" + name + "_eval", size = "small", tags = tags)

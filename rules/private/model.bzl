"""The `train_model`, `evaluate_model` and `model_provenance` rules, and the
`model_pipeline` macro that wires them into one target."""

load(":hermetic.bzl", "run_python_action")
load(":providers.bzl", "DatasetInfo", "EvaluationInfo", "ModelInfo", "PythonEnvInfo")

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
    ds = ctx.attr.dataset[DatasetInfo] if ctx.attr.dataset else mi.dataset
    metrics = ctx.actions.declare_file(_out_dir(ctx) + "/metrics.json")
    statement = ctx.actions.declare_file(ctx.label.name + ".statement.json")
    tool_srcs = ctx.files._tool_srcs
    args = ctx.actions.args()
    _data_args(args, ds)
    args.add("--recipe", mi.recipe)
    args.add("--model", mi.model)
    args.add("--out", metrics)
    args.add("--out-statement", statement)
    run_python_action(
        ctx,
        env = env,
        tool_srcs = depset(tool_srcs),
        command = "evaluate",
        args = args,
        inputs = depset([mi.recipe, mi.model, ds.manifest, ds.verified], transitive = [ds.files]),
        outputs = [metrics, statement],
        mnemonic = "RetrainEvaluate",
        progress_message = "Evaluating %s on the holdout of %s" % (ctx.attr.model.label, ds.name),
    )
    return [
        DefaultInfo(files = depset([metrics])),
        EvaluationInfo(
            metrics = metrics,
            model = mi,
            dataset = ds,
            statement = statement,
            sources = depset([ds.manifest] + tool_srcs, transitive = [mi.sources]),
        ),
    ]

evaluate_model = rule(
    implementation = _evaluate_model_impl,
    doc = """Evaluates a trained model on the holdout rows its recipe's split selects.

Outputs `<out_dir>/metrics.json`: AUC, accuracy, log loss and Brier score,
the holdout's size, the evaluated model's sha256 and the dataset digest.
""",
    attrs = dict(_COMMON_ATTRS, **{
        "model": attr.label(mandatory = True, providers = [ModelInfo], doc = "The `train_model` target."),
        "dataset": attr.label(providers = [DatasetInfo], doc = "Dataset to take the holdout from; defaults to the training dataset."),
    }),
    provides = [EvaluationInfo],
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
    subjects = [mi.model, mi.report, ev.metrics]
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
    links = {
        "dataset": mi.dataset.statement,
        "build": provenance,
        "evaluation": ev.statement,
    }
    outputs = [
        ctx.actions.declare_file(out + "/dataset.intoto.jsonl"),
        ctx.actions.declare_file(out + "/provenance.intoto.jsonl"),
        ctx.actions.declare_file(out + "/evaluation.intoto.jsonl"),
        ctx.actions.declare_file(out + "/model.sig"),
    ]
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
        inputs = links.values() + [mi.model, mi.report, ev.metrics, ctx.file._signing_config],
        outputs = outputs,
        mnemonic = "RetrainSign",
        progress_message = "Signing the attestation chain of %s" % ctx.label,
        execution_requirements = SIGNING_EXECUTION_REQUIREMENTS,
    )
    return outputs

model_provenance = rule(
    implementation = _model_provenance_impl,
    doc = """Writes the SLSA provenance v1 statement (in-toto Statement v1, unsigned) of a model build.

Subjects: the model, its training report and its metrics, by sha256.
resolvedDependencies: the source tree (digest, and git commit when the
workspace status knows it), every source file, the lock, each dataset by
dataset digest, and the toolchain (Python, Bazel, platform). The target's
default outputs are the subjects plus the statement, and, when `sign` is
set (the default), the signed chain: `dataset.intoto.jsonl`,
`provenance.intoto.jsonl`, `evaluation.intoto.jsonl` (one DSSE envelope a
line) and `model.sig` (a Sigstore bundle from OpenSSF model-signing). Signing
is a local action that is never cached or run remotely; the key is not an
input of any action (see rules/private/signing.bzl).
""",
    attrs = dict(_COMMON_ATTRS, **{
        "evaluation": attr.label(mandatory = True, providers = [EvaluationInfo], doc = "The `evaluate_model` target."),
        "definition": attr.label_list(allow_files = True, doc = "Further files that define this build (the package's BUILD file)."),
        "sign": attr.bool(
            default = True,
            doc = "Sign the chain (dataset, build, evaluation) into DSSE envelopes and a model-signing bundle.",
        ),
        "_build_definition": attr.label(default = Label("//:build_definition")),
        "_sign_env": attr.label(default = Label("//rules:sign_env"), providers = [PythonEnvInfo]),
        "_signing_config": attr.label(default = Label("@retrain_signing//:config.json"), allow_single_file = True),
    }),
)

def model_pipeline(name, dataset, recipe, visibility = None, tags = None):
    """Trains, evaluates and writes provenance for one model, under one target.

    `bazel build :NAME` leaves in `bazel-bin/<package>/NAME/`: `model.rtm`,
    `train_report.json`, `metrics.json`, `provenance.json`, and the signed
    chain (`*.intoto.jsonl`, `model.sig`).

    Args:
      name: the pipeline's target name and output directory.
      dataset: a `dataset` target.
      recipe: the training recipe file.
      visibility: visibility of the final target.
      tags: tags for every target of the pipeline.
    """
    train_model(name = name + "_train", dataset = dataset, recipe = recipe, out_dir = name, tags = tags)
    evaluate_model(name = name + "_eval", model = ":" + name + "_train", out_dir = name, tags = tags)
    model_provenance(
        name = name,
        evaluation = ":" + name + "_eval",
        definition = native.glob(["BUILD.bazel", "BUILD"]),
        out_dir = name,
        visibility = visibility,
        tags = tags,
    )

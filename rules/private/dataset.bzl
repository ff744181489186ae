"""The `dataset` rule: files checked against their manifest before any use."""

load(":hermetic.bzl", "run_python_action")
load(":providers.bzl", "DatasetInfo", "PythonEnvInfo")

def _repo_relative(f):
    """A file's path inside its own repository (main or external)."""
    path = f.short_path
    if path.startswith("../"):
        path = path[3:]
        path = path[path.find("/") + 1:]
    return path

def _dataset_impl(ctx):
    env = ctx.attr._env[PythonEnvInfo]
    root = ctx.attr.root.strip("/")
    file_args = []
    for f in ctx.files.srcs:
        rel = _repo_relative(f)
        if root:
            if not rel.startswith(root + "/"):
                fail("dataset %s: file %s is not under root %r" % (ctx.label, f.short_path, root))
            rel = rel[len(root) + 1:]
        file_args.append("%s=%s" % (rel, f.path))
    verified = ctx.actions.declare_file(ctx.label.name + ".verified.json")
    statement = ctx.actions.declare_file(ctx.label.name + ".statement.json")
    in_repo = all([f.owner.workspace_root == "" for f in ctx.files.srcs])
    args = ctx.actions.args()
    args.add("--manifest", ctx.file.manifest)
    args.add("--manifest-uri", _repo_relative(ctx.file.manifest))
    args.add("--location", "repo" if in_repo else "store")
    args.add("--root", root)
    args.add_all(file_args, before_each = "--file")
    args.add("--out", verified)
    args.add("--out-statement", statement)
    inputs = [ctx.file.manifest] + ctx.files.srcs
    if ctx.file.quality:
        args.add("--quality", ctx.file.quality)
        args.add("--quality-uri", _repo_relative(ctx.file.quality))
        inputs.append(ctx.file.quality)
    if ctx.attr.reference:
        ref = ctx.attr.reference[DatasetInfo]
        args.add("--reference-manifest", ref.manifest)
        args.add("--reference-root", ref.root)
        args.add_all(ref.file_args, before_each = "--reference-file")
        inputs = inputs + [ref.manifest, ref.verified] + ref.files.to_list()
    run_python_action(
        ctx,
        env = env,
        tool_srcs = depset(ctx.files._tool_srcs),
        command = "verify-dataset",
        args = args,
        inputs = inputs,
        outputs = [verified, statement],
        mnemonic = "RetrainVerifyDataset",
        progress_message = "Verifying dataset %s against %s" % (ctx.label.name, ctx.file.manifest.short_path),
    )
    return [
        DefaultInfo(files = depset([verified, statement])),
        DatasetInfo(
            name = ctx.label.name,
            manifest = ctx.file.manifest,
            files = depset(ctx.files.srcs),
            root = root,
            file_args = file_args,
            verified = verified,
            statement = statement,
        ),
    ]

dataset = rule(
    implementation = _dataset_impl,
    doc = """A dataset snapshot, verified file by file against its manifest.

The verification action checks that the files are exactly those the manifest
lists (no missing or extra file, none resolving outside the dataset root),
then each file's size, sha256, Parquet row count and Arrow schema. It fails
the build with one line per problem naming the file, what the manifest
expected and what was found. With a `quality` spec it then measures every
declared check (and drift against `reference`); the verdicts, passed or
failed, go into the dataset's statement and fail the model's gates. Dependants receive a DatasetInfo whose
`verified` record carries the dataset digest; training and evaluation take it
as an input, so they never run on data that did not verify.
""",
    attrs = {
        "manifest": attr.label(
            mandatory = True,
            allow_single_file = [".json"],
            doc = "The data manifest (data_manifests/NAME.json).",
        ),
        "srcs": attr.label_list(
            mandatory = True,
            allow_files = True,
            doc = "The dataset's files: in-repo files, or the `files` target of a retrain_store_dataset repository.",
        ),
        "root": attr.string(
            default = "",
            doc = "Directory (inside the files' repository) that manifest paths are relative to.",
        ),
        "quality": attr.label(
            allow_single_file = [".toml"],
            doc = "The dataset's quality spec (docs/validation.md): schema, ranges, categories, duplicates, label balance, drift.",
        ),
        "reference": attr.label(
            providers = [DatasetInfo],
            doc = "The dataset the quality spec's drift checks compare against.",
        ),
        "_env": attr.label(default = Label("//rules:python_env"), providers = [PythonEnvInfo]),
        "_tool_srcs": attr.label(default = Label("//retrain:srcs")),
    },
    provides = [DatasetInfo],
)

def _store_dataset_impl(rctx):
    manifest = rctx.path(rctx.attr.manifest)
    env_json = rctx.path(rctx.attr._env_json)
    python = str(env_json.dirname) + "/bin/python3"
    site = str(env_json.dirname) + "/site-packages"
    workspace = str(rctx.path(rctx.attr._workspace).dirname)
    store = rctx.os.environ.get("RETRAIN_STORE", "")
    argv = [str(manifest), "files"] + (["--store", store] if store else [])

    # -I -S: nothing from the caller's PYTHON* variables or site-packages;
    # the locked environment and this workspace are put on sys.path by hand.
    bootstrap = "import sys; sys.path[:0] = %r; from retrain._internal.materialize import main; sys.exit(main(%r))" % (
        [site, workspace],
        argv,
    )
    res = rctx.execute([python, "-I", "-S", "-B", "-c", bootstrap], timeout = 3600)
    if res.return_code != 0:
        fail("retrain_store_dataset %s: %s" % (rctx.name, res.stderr.strip()))
    rctx.file("BUILD.bazel", """\
# Generated by retrain_store_dataset; do not edit.
filegroup(
    name = "files",
    srcs = glob(["files/**"]),
    visibility = ["//visibility:public"],
)
""")
    rctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % rctx.name)

retrain_store_dataset = repository_rule(
    implementation = _store_dataset_impl,
    doc = """Brings a dataset into the build from the content-addressed store, by digest.

Reads the manifest, and for each file links (local store) or copies (remote
store) the blob named by its sha256 to `files/<path>`, verifying each digest.
The store is `RETRAIN_STORE` or `$XDG_CACHE_HOME/retrain/store`. Use the
`:files` target as the `srcs` of a `dataset` with `root = "files"`; the
dataset rule verifies every file again inside the build.
""",
    attrs = {
        "manifest": attr.label(mandatory = True, allow_single_file = [".json"], doc = "The data manifest."),
        "_env_json": attr.label(default = Label("@retrain_py//:env.json"), allow_single_file = True),
        "_workspace": attr.label(default = Label("//:WORKSPACE"), allow_single_file = True),
    },
    environ = ["RETRAIN_STORE", "XDG_CACHE_HOME", "HOME"],
)

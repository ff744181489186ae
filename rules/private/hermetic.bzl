"""The environment contract every retrain action runs under.

Actions never inherit the caller's environment (`use_default_shell_env` is
off): they get exactly ACTION_ENV plus PYTHONPATH and the BLAS core type.
The Python side (`retrain.hermetic`) holds the same table and refuses to run
when anything differs, so the contract is enforced by the rules, not by
whoever calls Bazel. tests/unit/test_hermetic.py checks that the two tables
agree.
"""

load(":providers.bzl", "PythonEnvInfo")

ACTION_ENV = {
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "TZ": "UTC",
    "PYTHONHASHSEED": "0",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONNOUSERSITE": "1",
    "PYTHONSAFEPATH": "1",
    "PYTHONUTF8": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "BLIS_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "SOURCE_DATE_EPOCH": "315532800",
}

# Never sent to a remote executor; the outputs are still cached.
EXECUTION_REQUIREMENTS = {"no-remote-exec": "1"}

def _python_env_impl(ctx):
    site = ctx.files.site_packages
    marker = [f for f in site if f.path.endswith(".dist-info/RECORD")]
    if not marker:
        fail("python_env %s: no installed distributions in site_packages" % ctx.label)
    first = marker[0].path
    site_dir = first[:first.rfind("/", 0, first.rfind(".dist-info/RECORD"))]
    return [PythonEnvInfo(
        interpreter = ctx.file.interpreter,
        site_packages = depset(site),
        site_packages_dir = site_dir,
        toolchain_json = ctx.file.toolchain_json,
        env_json = ctx.file.env_json,
        lock = ctx.file.lock,
        blas_coretype = ctx.attr.blas_coretype,
    )]

python_env = rule(
    implementation = _python_env_impl,
    doc = "Wraps the files of a retrain_python_env repository as a PythonEnvInfo.",
    attrs = {
        "interpreter": attr.label(allow_single_file = True, mandatory = True),
        "site_packages": attr.label(mandatory = True),
        "toolchain_json": attr.label(allow_single_file = True, mandatory = True),
        "env_json": attr.label(allow_single_file = True, mandatory = True),
        "lock": attr.label(allow_single_file = True, mandatory = True),
        "blas_coretype": attr.string(default = "Prescott"),
    },
    provides = [PythonEnvInfo],
)

def run_python_action(
        ctx,
        *,
        env,
        tool_srcs,
        command,
        args,
        inputs,
        outputs,
        mnemonic,
        progress_message,
        execution_requirements = EXECUTION_REQUIREMENTS):
    """Runs `python -S -B -m retrain._internal.actions COMMAND @params` hermetically.

    Args:
      ctx: the rule context.
      env: PythonEnvInfo of the locked environment.
      tool_srcs: depset of the retrain package's source files.
      command: the action subcommand (verify-dataset, train, evaluate, provenance).
      args: an Args object with the subcommand's arguments; always passed in a
        params file so long file lists never hit argv limits.
      inputs: list or depset of further input files.
      outputs: list of output files.
      mnemonic: the action's mnemonic.
      progress_message: what Bazel shows while it runs.
      execution_requirements: Bazel execution requirements (tags).
    """
    args.use_param_file("@%s", use_always = True)
    args.set_param_file_format("multiline")
    action_env = dict(ACTION_ENV)
    action_env["OPENBLAS_CORETYPE"] = env.blas_coretype
    action_env["PYTHONPATH"] = env.site_packages_dir + ":."
    head = ctx.actions.args()
    head.add_all(["-S", "-B", "-m", "retrain._internal.actions", command])
    ctx.actions.run(
        executable = env.interpreter,
        arguments = [head, args],
        inputs = depset(
            direct = inputs if type(inputs) == type([]) else [],
            transitive = [env.site_packages, tool_srcs] + ([inputs] if type(inputs) != type([]) else []),
        ),
        outputs = outputs,
        env = action_env,
        use_default_shell_env = False,
        mnemonic = mnemonic,
        progress_message = progress_message,
        execution_requirements = execution_requirements,
    )

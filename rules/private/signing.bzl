"""Where the signing key is: a repository rule that records the key's *path*.

The key itself never enters the action graph: no action declares it as an
input, so it is in no action's cache key and no cache or remote executor
ever sees it. The signing action (tagged no-cache, no-remote, no-sandbox:
it runs only here, and its result is never stored) reads the key from the
path this rule recorded.

`RETRAIN_SIGNING_KEY` names a PEM ECDSA P-256 private key (see `retrain
keygen`). Without it, the signing action uses, and on first use creates, the
per-user development key `$XDG_CONFIG_HOME/retrain/dev-key.pem` (default
`~/.config`), outside any repository, and says so in the build output.
"""

def _signing_config_impl(rctx):
    env = rctx.os.environ
    key = env.get("RETRAIN_SIGNING_KEY", "")
    if key and not key.startswith("/"):
        fail("RETRAIN_SIGNING_KEY must be an absolute path, found %r" % key)
    if key and not rctx.path(key).exists:
        fail("RETRAIN_SIGNING_KEY=%s does not exist (create one with `retrain keygen`)" % key)
    config = env.get("XDG_CONFIG_HOME", "") or (env.get("HOME", "") + "/.config")
    rctx.file("config.json", json.encode({
        "key": key or None,
        "dev_key": config + "/retrain/dev-key.pem",
    }) + "\n")
    rctx.file("BUILD.bazel", "exports_files([\"config.json\"])\n")
    rctx.file("WORKSPACE", "workspace(name = \"%s\")\n" % rctx.name)

retrain_signing_config = repository_rule(
    implementation = _signing_config_impl,
    doc = "Records where the signing key is (never the key): RETRAIN_SIGNING_KEY or the per-user development key.",
    environ = ["RETRAIN_SIGNING_KEY", "XDG_CONFIG_HOME", "HOME"],
    local = True,
    configure = True,
)

"""Providers shared by retrain's rules. Documented in //rules:defs.bzl."""

PythonEnvInfo = provider(
    doc = "The locked Python environment actions run in.",
    fields = {
        "interpreter": "File: the host CPython 3.11 the environment was built for.",
        "site_packages": "depset of File: every installed file of the locked distributions.",
        "site_packages_dir": "string: execution-root path of site-packages, for PYTHONPATH.",
        "toolchain_json": "File: interpreter and platform identity (no machine paths).",
        "env_json": "File: lock digest, installed distributions and their digest.",
        "lock": "File: the hash-locked requirements file the environment came from.",
        "blas_coretype": "string: the OPENBLAS_CORETYPE every action pins.",
    },
)

DatasetInfo = provider(
    doc = "A dataset whose files were checked against its manifest.",
    fields = {
        "name": "string: the dataset's name (from the rule).",
        "manifest": "File: the data manifest (data_manifests/NAME.json).",
        "files": "depset of File: the dataset's files.",
        "root": "string: the files' directory, relative to their repository root.",
        "file_args": "list of string: 'PATH=EXECPATH' pairs mapping manifest paths to files.",
        "verified": "File: the verification record; holds the dataset digest. Depend on it, not on the files alone.",
        "statement": "File: the dataset link's in-toto statement (unsigned): digest, manifest, quality profile.",
    },
)

ModelInfo = provider(
    doc = "A trained model and what it was trained from.",
    fields = {
        "model": "File: the model in the retrain model format (RTM v1).",
        "report": "File: the training report (rows, iterations, BLAS in use).",
        "recipe": "File: the training recipe.",
        "dataset": "DatasetInfo: the dataset it was trained on.",
        "sources": "depset of File: every source file that went into training.",
    },
)

EvaluationInfo = provider(
    doc = "Metrics of a model on its holdout.",
    fields = {
        "metrics": "File: metrics JSON naming the model's sha256 and the dataset digest.",
        "model": "ModelInfo: the model evaluated.",
        "dataset": "DatasetInfo: the dataset the holdout came from.",
        "statement": "File: the evaluation link's in-toto statement (unsigned).",
        "gates": "File: one line per gate verdict (gates.txt).",
        "report": "File: the self-contained HTML validation report.",
        "sources": "depset of File: every source file that went into the evaluation.",
    },
)

ChampionInfo = provider(
    doc = "The current champion model, whose attestation chain verified against a policy.",
    fields = {
        "model": "File: the champion's model.rtm.",
        "record": "File: the verification record (model sha256, policy, signers).",
    },
)

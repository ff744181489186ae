"""retrain's public Starlark API: the only file users load.

Build rules:

* `dataset`: a dataset snapshot, verified against its manifest; provides
  `DatasetInfo` with the dataset digest.
* `train_model`: trains from a recipe on a dataset; provides `ModelInfo`.
* `evaluate_model`: validation on a pinned holdout (leakage, contracts,
  metrics with bootstrap intervals, slices, champion comparison, gates) and
  the HTML report; provides `EvaluationInfo`.
* `champion_model`: the current champion, its chain verified before use.
* `registry_champion`: the model serving production in the promotion
  registry, as the champion (checkpoint and chain verified before use).
* `model_gates_test`: a test that fails when any gate failed.
* `model_provenance`: the SLSA provenance v1 statement of a model build, and
  the signed chain (dataset, build, evaluation DSSE envelopes; a
  model-signing Sigstore bundle for the model).
* `model_pipeline`: the three above under one target, e.g. `//models:candidate`.

Repository rules (for WORKSPACE):

* `retrain_python_env`: the hash-locked Python environment of every action.
* `retrain_store_dataset`: a dataset brought in from the content-addressed
  store by digest.
* `retrain_signing_config`: where the signing key is (a path, never the key).

Every action runs under the environment contract in
`rules/private/hermetic.bzl` (fixed locale, time zone, hash seed, one BLAS
thread, pinned BLAS kernels, nothing inherited from the caller). Implementation
lives in `rules/private/`; nothing there is API.
"""

load("//rules/private:dataset.bzl", _dataset = "dataset", _retrain_store_dataset = "retrain_store_dataset")
load(
    "//rules/private:model.bzl",
    _champion_model = "champion_model",
    _evaluate_model = "evaluate_model",
    _model_gates_test = "model_gates_test",
    _model_pipeline = "model_pipeline",
    _model_provenance = "model_provenance",
    _registry_champion = "registry_champion",
    _train_model = "train_model",
)
load(
    "//rules/private:providers.bzl",
    _ChampionInfo = "ChampionInfo",
    _DatasetInfo = "DatasetInfo",
    _EvaluationInfo = "EvaluationInfo",
    _ModelInfo = "ModelInfo",
    _PythonEnvInfo = "PythonEnvInfo",
)
load("//rules/private:python_env.bzl", _retrain_python_env = "retrain_python_env")
load("//rules/private:signing.bzl", _retrain_signing_config = "retrain_signing_config")

ChampionInfo = _ChampionInfo
DatasetInfo = _DatasetInfo
EvaluationInfo = _EvaluationInfo
ModelInfo = _ModelInfo
PythonEnvInfo = _PythonEnvInfo

dataset = _dataset
train_model = _train_model
evaluate_model = _evaluate_model
model_provenance = _model_provenance
model_pipeline = _model_pipeline
champion_model = _champion_model
registry_champion = _registry_champion
model_gates_test = _model_gates_test

retrain_python_env = _retrain_python_env
retrain_store_dataset = _retrain_store_dataset
retrain_signing_config = _retrain_signing_config

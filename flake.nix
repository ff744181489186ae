# retrain for people who have Nix: the same pinned toolchain as the Debian
# path (scripts/setup.sh), with the Python packages taken from the hash-locked
# requirements/*.lock files through the generated nix/python-packages.nix.
# See docs/nix.md for what this gives, how it relates to the provenance, and
# what the tests in this repository do and do not prove about it.
{
  description = "retrain: reproducibility-first, Bazel-backed builds for continuously retrained ML models";

  # nixpkgs only; flake.lock pins it by revision and narHash.
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forEachSystem = f: lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});

      # Name, version, description and licence come from pyproject.toml, so
      # the Nix package cannot drift from what pip and setuptools see.
      project = (builtins.fromTOML (builtins.readFile ./pyproject.toml)).project;

      generated = import ./nix/python-packages.nix;
      locks = import ./nix/locks.nix {
        lockFiles = {
          "requirements/runtime.lock" = ./requirements/runtime.lock;
          "requirements/sign.lock" = ./requirements/sign.lock;
          "requirements/dev.lock" = ./requirements/dev.lock;
        };
        inherit generated;
      };
      # Every use of the locked packages goes through `agreeing`: a stale
      # generated file fails evaluation instead of building other versions.
      locked = locks.agreeing generated;

      # PEP 503 name of a requirement string: "securesystemslib[crypto]" ->
      # "securesystemslib"; the lock files use these names.
      requirementName =
        requirement:
        let
          m = builtins.match "([A-Za-z0-9][A-Za-z0-9._-]*).*" requirement;
        in
        if m == null then
          throw "pyproject.toml: cannot read the dependency \"${requirement}\""
        else
          lib.toLower (builtins.replaceStrings [ "_" "." ] [ "-" "-" ] (builtins.head m));

      # Only what the Python package needs: editing tests or docs does not
      # rebuild it.
      packageSource = sourceOf [
        "pyproject.toml"
        "README.md"
        "retrain"
      ];
      # What `retrain audit` reads: the promotion registry, its policy and
      # the data the promoted models' attestations name.
      auditSource = sourceOf [
        "attestations"
        "data"
        "data_manifests"
      ];
      sourceOf =
        tops:
        builtins.path {
          path = ./.;
          name = "retrain-source";
          filter =
            path: type:
            let
              root = toString ./.;
              relative = builtins.substring (builtins.stringLength root + 1) (builtins.stringLength (toString path)) (toString path);
              top = builtins.head (builtins.split "/" relative);
            in
            builtins.elem top tops && baseNameOf path != "__pycache__" && baseNameOf path != ".lock";
        };

      perSystem =
        system: pkgs:
        let
          python = pkgs.python311;
          pythonSet = import ./nix/python-set.nix {
            inherit (pkgs)
              lib
              fetchurl
              autoPatchelfHook
              stdenv
              zlib
              ;
            inherit python system locked;
          };
          lockedPackage =
            requirement:
            let
              name = requirementName requirement;
            in
            pythonSet.packages.${name}
              or (throw "pyproject.toml depends on ${name}, which no file in requirements/ locks");

          retrain = python.pkgs.buildPythonApplication {
            pname = project.name;
            inherit (project) version;
            pyproject = true;
            src = packageSource;
            # The locked setuptools, not nixpkgs': pyproject.toml asks for >=70.
            build-system = [ pythonSet.packages.setuptools ];
            dependencies = map lockedPackage project.dependencies;
            pythonImportsCheck = [
              "retrain"
              "retrain.cli"
            ];
            meta = {
              inherit (project) description;
              license = lib.getLicenseFromSpdxId project.license.text;
              mainProgram = "retrain";
              platforms = systems;
            };
          };

          # Python 3.11 with exactly the locked distributions (the dev lock
          # includes the runtime and signing pins), as `.venv` has them.
          pythonEnv = python.withPackages (_: builtins.attrValues pythonSet.packages);

          # The same wheel files under their own names: Bazel's repository
          # rule (rules/private/python_env.bzl) installs runtime.lock and
          # sign.lock from here with pip --require-hashes, offline.
          wheelhouse = pkgs.linkFarm "retrain-wheelhouse" (
            lib.mapAttrsToList (_: wheel: {
              inherit (wheel) name;
              path = wheel;
            }) pythonSet.wheels
          );

          # Debian ships Bazel 4.2.3; nixpkgs' bazel_4 is the same major.
          # Later nixpkgs drop it, so fall back to their default Bazel (the
          # Starlark avoids APIs removed in Bazel 6/7).
          bazel = pkgs.bazel_4 or pkgs.bazel;
        in
        {
          inherit
            retrain
            pythonEnv
            wheelhouse
            bazel
            pythonSet
            ;
        };

      bySystem = forEachSystem perSystem;
    in
    {
      packages = lib.mapAttrs (_: s: {
        inherit (s) retrain;
        default = s.retrain;
        python = s.pythonEnv;
        inherit (s) wheelhouse;
      }) bySystem;

      # The locked distributions one by one (legacyPackages: a nested set
      # that `nix flake show` does not walk).
      legacyPackages = lib.mapAttrs (_: s: { pythonPackages = s.pythonSet.packages; }) bySystem;

      apps = lib.mapAttrs (
        _: s:
        let
          retrain = {
            type = "app";
            program = "${s.retrain}/bin/retrain";
          };
        in
        {
          inherit retrain;
          default = retrain;
        }
      ) bySystem;

      devShells = forEachSystem (
        system: pkgs:
        let
          s = bySystem.${system};
        in
        {
          default = pkgs.mkShell {
            packages = [
              s.bazel
              s.pythonEnv
              pkgs.git
              pkgs.openssl
            ];
            # Read by rules/private/python_env.bzl: the interpreter and the
            # wheels Bazel's locked environments are installed from.
            RETRAIN_PYTHON = "${s.pythonEnv}/bin/python3.11";
            RETRAIN_WHEELHOUSE = "${s.wheelhouse}";
          };
        }
      );

      # What `nix flake check` builds: nothing from Bazel, no model.
      checks = forEachSystem (
        system: pkgs:
        let
          s = bySystem.${system};
        in
        {
          # Evaluating this already compared the generated file with the
          # locks (through `locked`); the output records what agreed.
          lock-agreement = pkgs.runCommand "retrain-lock-agreement" {
            agreed = lib.concatStringsSep "\n" (lib.mapAttrsToList (n: d: "${n}==${d.version}") locked);
            passAsFile = [ "agreed" ];
          } ''cp "$agreedPath" "$out"'';
          # The package builds from the locked wheels and imports.
          inherit (s) retrain;
          # The auditor's path: the committed promotion registry and every
          # model in it verify with the Nix-built CLI (no Bazel).
          registry-audit = pkgs.runCommand "retrain-registry-audit" { } ''
            cp -r ${auditSource} repo
            chmod -R u+w repo
            cd repo
            ${s.retrain}/bin/retrain audit
            touch "$out"
          '';
        }
      );
    };
}

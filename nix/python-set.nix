# The locked Python distributions as nixpkgs Python packages. Each is the
# exact wheel the lock names for this system (fetched by URL, checked against
# one of the lock's sha256s) installed as it is (format = "wheel"): nothing is
# rebuilt from source, so the files that run under Nix are the files the
# Debian path (scripts/setup.sh) installs from its wheelhouse.
{
  lib,
  fetchurl,
  python,
  autoPatchelfHook,
  stdenv,
  zlib,
  system,
  # The imported nix/python-packages.nix.
  locked,
}:
let
  wheelOf =
    name: dist:
    dist.wheels.${system} or dist.wheels.any
      or (throw "package ${name}: nix/python-packages.nix has no wheel for ${system}");

  # The wheel files themselves, under their PyPI file names (pip reads the
  # name to decide compatibility); the devShell offers them to Bazel as its
  # wheelhouse.
  wheels = lib.mapAttrs (
    name: dist:
    let
      wheel = wheelOf name dist;
    in
    fetchurl {
      inherit (wheel) url sha256;
      name = baseNameOf wheel.url;
    }
  ) locked;

  build =
    name: dist:
    let
      binary = !(dist.wheels ? any);
    in
    python.pkgs.buildPythonPackage {
      pname = name;
      inherit (dist) version;
      format = "wheel";
      src = wheels.${name};
      # The lock's own edges (its `# via` annotations), so each package
      # carries exactly the locked versions of what it imports.
      dependencies = map (dep: packages.${dep}) dist.dependencies;
      # manylinux wheels link to libstdc++, libgcc_s and zlib from the system
      # (auditwheel bundles everything else); on Nix they come from the store.
      nativeBuildInputs = lib.optionals binary [ autoPatchelfHook ];
      buildInputs = lib.optionals binary [
        stdenv.cc.cc.lib
        zlib
      ];
      # A wheel carries no tests; importing is checked by the packages that
      # use it (retrain's pythonImportsCheck).
      doCheck = false;
    };

  packages = lib.mapAttrs build locked;
in
{
  inherit packages wheels;
}

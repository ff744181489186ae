# The packages and builders retrain's flake uses. Every result is a
# derivation that is never meant to be built: its builder fails.
{ lib, system }:
let
  # A derivation from `args`: strings, numbers, booleans, paths, derivations
  # and lists of them become its environment; `meta` and `passthru` stay Nix
  # values on the result, as in nixpkgs' mkDerivation.
  stub =
    args:
    let
      drv = derivation (
        builtins.removeAttrs args [ "meta" "passthru" ]
        // {
          inherit system;
          builder = "/bin/sh";
          args = [ "-c" "echo 'nixpkgs-stub: evaluation only, nothing builds' >&2; exit 1" ];
        }
      );
    in
    drv // (args.passthru or { }) // { meta = args.meta or { }; };

  tool =
    pname: version:
    stub {
      name = "${pname}-${version}";
      inherit pname version;
    };

  isDerivation = x: builtins.isAttrs x && (x.type or null) == "derivation";
  requireDerivations =
    what: xs:
    if builtins.all isDerivation xs then xs else throw "nixpkgs-stub: ${what} must be a list of derivations";
  requireString =
    what: x: if builtins.isString x && x != "" then x else throw "nixpkgs-stub: ${what} must be a non-empty string";
  hasSuffix =
    suffix: s:
    let
      n = builtins.stringLength s;
      k = builtins.stringLength suffix;
    in
    n >= k && builtins.substring (n - k) k s == suffix;

  pythonVersion = "3.11";
  python311 = stub { name = "python3-3.11.9"; pname = "python3"; version = "3.11.9"; } // {
    inherit pythonVersion;
    pkgs = pythonPackages;
    # python.withPackages: an environment with the chosen packages; the list
    # stays inspectable as extraLibs.
    withPackages =
      f:
      let
        extraLibs = requireDerivations "withPackages' result" (f pythonPackages);
      in
      stub {
        name = "python3-3.11.9-env";
        paths = extraLibs;
        passthru = { inherit extraLibs; };
      };
  };

  formats = [ "setuptools" "pyproject" "flit" "wheel" "other" ];
  # mk-python-derivation's checks that matter here: one of `format` or
  # `pyproject`, a known format, a wheel file for format = "wheel", lists of
  # derivations for the dependency attributes.
  mkPythonDerivation =
    namePrefix: args:
    let
      pname = requireString "pname" args.pname;
      version = requireString "version" args.version;
      format =
        if args ? format && args ? pyproject then
          throw "nixpkgs-stub: ${pname}: give format or pyproject, not both"
        else if args ? format then
          (if builtins.elem args.format formats then args.format else throw "nixpkgs-stub: ${pname}: unknown format ${args.format}")
        else if args.pyproject or false then
          "pyproject"
        else
          throw "nixpkgs-stub: ${pname}: neither format nor pyproject = true";
      src =
        if !(args ? src) then
          throw "nixpkgs-stub: ${pname}: no src"
        else if format == "wheel" && !(hasSuffix ".whl" args.src.name) then
          throw "nixpkgs-stub: ${pname}: format = \"wheel\" needs a .whl src, got ${args.src.name}"
        else
          args.src;
      dependencies = requireDerivations "${pname}: dependencies" (args.dependencies or [ ]);
      build-system = requireDerivations "${pname}: build-system" (args.build-system or [ ]);
    in
    stub (
      builtins.removeAttrs args [ "format" "pyproject" ]
      // {
        name = "${namePrefix}${pname}-${version}";
        inherit pname version src format dependencies build-system;
        pythonModule = python311;
      }
    );

  pythonPackages = {
    buildPythonPackage = mkPythonDerivation "python${pythonVersion}-";
    buildPythonApplication = mkPythonDerivation "";
  };
in
{
  inherit lib python311;

  # Fixed-output, like nixpkgs' fetchurl: the hash is part of the derivation.
  fetchurl =
    {
      url,
      sha256,
      name ? baseNameOf url,
    }:
    derivation {
      inherit name url system;
      builder = "/bin/sh";
      args = [ "-c" "exit 1" ];
      outputHashMode = "flat";
      outputHashAlgo = "sha256";
      outputHash = sha256;
    };

  runCommand = name: env: script: stub (env // { inherit name script; });

  linkFarm =
    name: entries:
    stub {
      inherit name;
      entryNames = map (e: requireString "linkFarm entry name" e.name) entries;
      entryPaths = map (e: e.path) entries;
    };

  mkShell =
    args:
    stub (
      builtins.removeAttrs args [ "packages" ]
      // {
        name = args.name or "nix-shell";
        packages = requireDerivations "mkShell packages" (args.packages or [ ]);
      }
    );

  stdenv = stub { name = "stdenv-linux"; } // {
    cc = stub { name = "gcc-wrapper-13.2.0"; } // {
      cc = stub { name = "gcc-13.2.0"; } // {
        lib = stub { name = "gcc-13.2.0-lib"; };
      };
    };
  };
  autoPatchelfHook = tool "auto-patchelf-hook" "0";
  zlib = tool "zlib" "1.3.1";
  bazel_4 = tool "bazel" "4.2.2";
  bazel = tool "bazel" "6.5.0";
  git = tool "git" "2.44.1";
  openssl = tool "openssl" "3.0.13";
}

# A stand-in for nixpkgs, for tests only (tests/integration/test_flake.py
# passes it to retrain's flake with `--override-input nixpkgs path:...`).
# It offers just the names the flake uses, with the same argument shapes, and
# builds nothing: every package is a real derivation (so drvPath, name and
# every argument can be inspected) whose builder only fails. It checks the
# arguments it is given where nixpkgs would reject them, but it is not
# nixpkgs: that the real functions accept these arguments is not proven here.
{
  description = "nixpkgs stand-in for evaluating retrain's flake offline";

  outputs =
    { self }:
    let
      lib = import ./lib.nix;
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (
        system: import ./pkgs.nix { inherit lib system; }
      );
    };
}

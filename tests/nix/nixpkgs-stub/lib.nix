# The part of nixpkgs' lib that retrain's flake uses, same names and
# semantics.
let
  inherit (builtins)
    attrNames
    concatStringsSep
    listToAttrs
    map
    replaceStrings
    ;
  upper = [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ];
  lower = [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ];
  licenses = {
    asl20 = {
      spdxId = "Apache-2.0";
      shortName = "asl20";
      fullName = "Apache License 2.0";
      free = true;
    };
  };
in
{
  inherit licenses concatStringsSep;
  inherit (builtins) mapAttrs;
  genAttrs = names: f: listToAttrs (map (name: { inherit name; value = f name; }) names);
  mapAttrsToList = f: set: map (name: f name set.${name}) (attrNames set);
  optionals = cond: list: if cond then list else [ ];
  toLower = replaceStrings upper lower;
  # nixpkgs warns and returns a bare licence for an unknown id; the stand-in
  # refuses it, so a typo in pyproject.toml fails the tests.
  getLicenseFromSpdxId =
    id:
    let
      found = builtins.filter (l: l.spdxId == id) (builtins.attrValues licenses);
    in
    if found == [ ] then throw "nixpkgs-stub: no licence with SPDX id ${id}" else builtins.head found;
}

# The lock files in requirements/ are the one source of truth for Python
# versions; nix/python-packages.nix is generated from them. This compares the
# two at evaluation time, so a stale generated file stops `nix develop`,
# `nix build` and `nix flake check` before anything is fetched, naming each
# package and both versions. Builtins only: the verdict must not depend on
# which nixpkgs the flake is evaluated against.
{
  # { "requirements/runtime.lock" = ./requirements/runtime.lock; ... }
  lockFiles,
  # The imported nix/python-packages.nix.
  generated,
}:
let
  inherit (builtins)
    attrNames
    attrValues
    any
    concatLists
    concatStringsSep
    elemAt
    filter
    isString
    listToAttrs
    map
    mapAttrs
    match
    readFile
    split
    ;

  # A pin is a line `name==version \` (uv writes normalized names); hash,
  # comment and `# via` lines start with a space or `#` and never match.
  pinsOf =
    file:
    let
      lines = filter isString (split "\n" (readFile file));
      pins = filter (m: m != null) (map (match "([a-z0-9][a-z0-9._-]*)==([^ ]+)( .*)?") lines);
    in
    listToAttrs (
      map (m: {
        name = elemAt m 0;
        value = elemAt m 1;
      }) pins
    );

  locks = mapAttrs (_: pinsOf) lockFiles;

  versionIn = name: generated.${name}.version or "no such package";

  lockDisagreements = concatLists (
    attrValues (
      mapAttrs (
        lockName: pins:
        map (name: "package ${name}: flake has ${versionIn name}, ${lockName} has ${pins.${name}}") (
          filter (name: versionIn name != pins.${name}) (attrNames pins)
        )
      ) locks
    )
  );

  unlocked = map (name: "package ${name}: flake has ${versionIn name}, no lock file pins it") (
    filter (name: !(any (pins: pins ? ${name}) (attrValues locks))) (attrNames generated)
  );
in
rec {
  # One line per disagreement; empty when the flake and the locks agree.
  disagreements = lockDisagreements ++ unlocked;

  # `value` itself when they agree; otherwise evaluation stops here.
  agreeing =
    value:
    if disagreements == [ ] then
      value
    else
      throw (
        "nix/python-packages.nix disagrees with the lock files"
        + " (regenerate it: python nix/generate_python_packages.py):\n"
        + concatStringsSep "\n" disagreements
      );
}

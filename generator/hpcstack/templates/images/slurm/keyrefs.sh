#!/bin/bash
# Sourced by hpcstack-entrypoint and hpcstack-tunnel: the one reader of `@name` key references.
# A generated file (WireGuard config, authorized_keys) ends a line with ` @name` where a public
# key goes; the key is the first line of PUB_DIR/name.pub (never in the generated file itself).
# shellcheck source=/dev/null
. /usr/local/lib/hpcstack/contract.sh

# fill_key_refs IN OUT PUB_DIR: copy IN to OUT with every ` @name` line ending replaced by the
# key. Exits through the caller's die() when a key is missing.
fill_key_refs() {
  local in=$1 out=$2 pub=$3 line name ref="^(.*) @(${HPCSTACK_KEY_REF_NAME})\$"
  : >"$out"
  while IFS= read -r line; do
    if [[ $line =~ $ref ]]; then
      name=${BASH_REMATCH[2]}
      [ -s "$pub/$name.pub" ] || die "public key of '$name' missing ($pub/$name.pub)"
      line="${BASH_REMATCH[1]} $(head -n1 "$pub/$name.pub")"
    fi
    printf '%s\n' "$line" >>"$out"
  done <"$in"
}

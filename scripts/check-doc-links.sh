#!/usr/bin/env bash
# Fails when the crate's own rendered docs hold a link rustdoc could not
# turn into an address. rustdoc warns about a path it cannot resolve, but
# not about one it resolves to an item that has no page in this build (an
# item of a dependency under `cargo doc --no-deps`): that link renders as
# plain `[text]`, or as an `href` holding the Rust path. Run after
# `cargo doc --no-deps`; reads target/doc (or $CARGO_TARGET_DIR/doc).
set -euo pipefail
doc="${CARGO_TARGET_DIR:-target}/doc/sealed_session"
[ -d "$doc" ] || { echo "no $doc: run cargo doc first" >&2; exit 2; }
# Only our own doc blocks (class="docblock", which may span lines); the
# docs that dependencies' blanket impls bring are rendered with
# class='docblock' and are not ours. perl is in every Debian (perl-base).
bad=$(find "$doc" -name '*.html' -print0 \
  | xargs -0 perl -0777 -ne 'while (/<div class="docblock">(.*?)<\/div>/sg) { my $b = $1; print "$1\n" while $b =~ /(\[<code>[^<]*<\/code>\]|href="[A-Za-z_]+::[^"]*")/g }' \
  | sort -u || true)
if [ -n "$bad" ]; then
  echo "unresolved links in the crate's docs:" >&2
  echo "$bad" >&2
  exit 1
fi
echo "doc links: all resolved"

#!/usr/bin/env bash
# Builds the Linux installers of one brand:
#
#   scripts/build-brand.sh [NAME]        (default: default)
#
# Reads branding/NAME/brand.json (productName, identifier, icons, colortheme, parameters,
# urlSchemes, update.endpoint/pubkey), installs the Tauri CLI (npm @tauri-apps/cli@2) into
# target/tools/tauri-cli if missing, writes a Tauri config overlay to target/brands/NAME/ and
# runs `tauri build` for .deb (and .rpm when rpmbuild exists; AppImage needs downloads, so it is
# not built). The brand's parameters (and colortheme) are baked into the binary as
# WEBPHONE_BRAND_PARAMS (name=value;...; values cannot contain ';'). The updater plugin is
# compiled in (cargo feature `updater`) only when the brand sets both update.endpoint and
# update.pubkey; the installers then also carry signed update artifacts
# (TAURI_SIGNING_PRIVATE_KEY must be set for that).
# Installers are copied to target/brands/NAME/ and their sizes printed.
# BRAND_BUNDLES overrides the bundle list (CI on Windows: nsis,msi; on macOS: app,dmg).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=${1:-default}
BRAND_DIR="$ROOT/branding/$NAME"
BRAND_JSON="$BRAND_DIR/brand.json"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT="$ROOT/target/brands/$NAME"
TOOLS="$ROOT/target/tools/tauri-cli"
say() { printf '[build-brand] %s\n' "$*" >&2; }

[ -f "$BRAND_JSON" ] || { say "no $BRAND_JSON"; exit 2; }
command -v node >/dev/null 2>&1 || { say "node is required (scripts/setup-system.sh)"; exit 1; }
mkdir -p "$OUT"

if [ ! -x "$TOOLS/node_modules/.bin/tauri" ]; then
  say "installing @tauri-apps/cli@2 into $TOOLS"
  mkdir -p "$TOOLS"
  (cd "$TOOLS" && { [ -f package.json ] || echo '{"private":true}' >package.json; } \
    && npm install --no-audit --no-fund -D @tauri-apps/cli@2 >/dev/null)
fi

RPM=0
command -v rpmbuild >/dev/null 2>&1 && RPM=1
BUNDLES=deb
[ "$RPM" = 1 ] && BUNDLES=deb,rpm
BUNDLES=${BRAND_BUNDLES:-$BUNDLES}

# brand.json -> Tauri config overlay, baked parameters, updater switch (one line each).
node - "$BRAND_JSON" "$ROOT" "$OUT/tauri.brand.json" "$BUNDLES" >"$OUT/brand.env" <<'JS'
const fs = require('fs'); const path = require('path');
const [file, root, overlayFile, bundles] = process.argv.slice(2);
const b = JSON.parse(fs.readFileSync(file, 'utf8'));
const need = (k) => { if (!b[k]) { throw new Error(`${file}: ${k} is required`); } return b[k]; };
const iconsDir = path.resolve(path.dirname(file), b.icons || '../../icons');
const srcTauri = path.join(root, 'src-tauri');
const icons = ['32x32.png', '128x128.png', '128x128@2x.png', 'icon.png'].map((f) => {
  const p = path.join(iconsDir, f);
  if (!fs.existsSync(p)) { throw new Error(`${file}: icon ${p} is missing`); }
  return path.relative(srcTauri, p);
});
const params = Object.entries(b.parameters || {}).map(([k, v]) => [k, String(v)]);
if (b.colortheme) { params.push(['colortheme', String(b.colortheme)]); }
for (const [k, v] of params) {
  if (/[;=]/.test(k) || v.includes(';')) { throw new Error(`${file}: parameter ${k}: ';' cannot be baked in`); }
}
const up = b.update || {};
const updater = !!(up.endpoint && up.pubkey);
const overlay = {
  productName: need('productName'),
  identifier: need('identifier'),
  bundle: {
    targets: bundles.split(','),
    icon: icons,
    createUpdaterArtifacts: updater,
  },
  plugins: {
    'deep-link': { desktop: { schemes: b.urlSchemes || ['webphone', 'sip', 'sips', 'tel', 'callto'] } },
  },
};
if (updater) { overlay.plugins.updater = { endpoints: [up.endpoint], pubkey: up.pubkey }; }
fs.writeFileSync(overlayFile, JSON.stringify(overlay, null, 2));
console.log(`BRAND_PARAMS=${JSON.stringify(params.map(([k, v]) => `${k}=${v}`).join(';'))}`);
console.log(`BRAND_UPDATER=${updater ? 1 : 0}`);
console.log(`BRAND_PRODUCT=${JSON.stringify(b.productName)}`);
JS
# shellcheck source=/dev/null
. "$OUT/brand.env"

FEATURES=()
[ "$BRAND_UPDATER" = 1 ] && FEATURES=(--features updater)
say "brand $NAME ($BRAND_PRODUCT): bundles $BUNDLES, updater $([ "$BRAND_UPDATER" = 1 ] && echo on || echo off)"
[ "$RPM" = 1 ] || [ -n "${BRAND_BUNDLES:-}" ] || say "NOTE: rpmbuild not found (package rpm): no .rpm"

rm -rf "$TARGET_DIR/release/bundle"
start=$(date +%s)
(cd "$ROOT/src-tauri" && WEBPHONE_BRAND_PARAMS="$BRAND_PARAMS" \
  "$TOOLS/node_modules/.bin/tauri" build --ci --config "$OUT/tauri.brand.json" --bundles "$BUNDLES" \
  "${FEATURES[@]}")
say "tauri build took $(( $(date +%s) - start )) s"

shopt -s nullglob
for f in "$TARGET_DIR"/release/bundle/deb/*.deb "$TARGET_DIR"/release/bundle/rpm/*.rpm \
  "$TARGET_DIR"/release/bundle/nsis/*.exe "$TARGET_DIR"/release/bundle/msi/*.msi \
  "$TARGET_DIR"/release/bundle/dmg/*.dmg; do
  cp "$f" "$OUT/"
  say "$(basename "$f"): $(du -h "$f" | cut -f1) ($(stat -c %s "$f") bytes)"
done
if command -v dpkg-deb >/dev/null 2>&1; then
  for f in "$OUT"/*.deb; do
    say "$(basename "$f") installed size: $(dpkg-deb -f "$f" Installed-Size) KiB; depends: $(dpkg-deb -f "$f" Depends)"
  done
fi
if command -v rpm >/dev/null 2>&1; then
  for f in "$OUT"/*.rpm; do
    say "$(basename "$f") installed size: $(( $(rpm -qp --queryformat '%{SIZE}' "$f" 2>/dev/null) / 1024 )) KiB"
  done
fi

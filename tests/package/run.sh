#!/usr/bin/env bash
# Builds the Debian package and, as root, installs it with dpkg -i and checks what it installed:
# both binaries run (`--version`), the units are where systemd looks, the `fustor` system user
# and its homes exist, man pages and completions are in place. Then purges it again.
#
# Needs cargo-deb (installed with `cargo install cargo-deb --locked` when absent) and dpkg.
# Env: CARGO_TARGET_DIR (default ./target). Without root it only builds and lists the package.
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${CARGO_TARGET_DIR:-$PWD/target}
fail() { echo "package test: FAIL: $*" >&2; exit 1; }

if ! command -v cargo-deb >/dev/null 2>&1; then
  echo "installing cargo-deb"
  SECONDS=0
  cargo install cargo-deb --locked
  echo "cargo-deb installed in ${SECONDS}s"
fi

SECONDS=0
cargo build --profile dist --locked -p fustor-fusion -p fustor-agent
echo "dist build: ${SECONDS}s"

gen="$target/dist/gen"
rm -rf "$gen"
mkdir -p "$gen/man" "$gen/bash" "$gen/zsh" "$gen/fish"
for bin in fustor-fusion fustor-agent; do
  "$target/dist/$bin" man "$gen/man" >/dev/null
  "$target/dist/$bin" completions bash >"$gen/bash/$bin"
  "$target/dist/$bin" completions zsh >"$gen/zsh/_$bin"
  "$target/dist/$bin" completions fish >"$gen/fish/$bin.fish"
done

rm -rf "$target/debian"
cargo deb -p fustor-fusion --profile dist --no-build --output "$target/debian/"
deb=$(ls "$target"/debian/fustor_*.deb)
echo "built $deb ($(du -h "$deb" | cut -f1))"
contents=$(dpkg-deb --contents "$deb")
for f in ./usr/bin/fustor-fusion ./usr/bin/fustor-agent \
         ./lib/systemd/system/fustor-fusion.service ./lib/systemd/system/fustor-agent.service \
         ./usr/share/man/man1/fustor-fusion.1 ./usr/share/man/man1/fustor-agent-start.1 \
         ./usr/share/bash-completion/completions/fustor-agent \
         ./usr/share/doc/fustor/examples/fusion.yaml; do
  grep -q " $f" <<<"$contents" || grep -q " $f.gz" <<<"$contents" || fail "$f not in the package"
done

if [ "$(id -u)" != 0 ]; then
  echo "package test: not root, dpkg -i skipped"
  [ "${CI:-}" != true ] || fail "CI must run this as root"
  exit 0
fi

dpkg -i "$deb"
trap 'dpkg --purge fustor >/dev/null 2>&1 || true' EXIT
/usr/bin/fustor-fusion --version | grep -q "(git " || fail "fustor-fusion --version"
/usr/bin/fustor-agent --version | grep -q "(git " || fail "fustor-agent --version"
for u in fustor-fusion fustor-agent; do
  [ -f "/lib/systemd/system/$u.service" ] || fail "$u.service not installed"
done
# The installed units parse, and their ExecStart binaries exist (what `verify` checks offline).
systemd-analyze verify --man=no /lib/systemd/system/fustor-fusion.service \
  /lib/systemd/system/fustor-agent.service || fail "systemd-analyze verify"
getent passwd fustor >/dev/null || fail "no fustor user"
[ "$(stat -c %U /var/lib/fustor/fusion-config)" = fustor ] || fail "fusion home not owned by fustor"
[ "$(stat -c %U /var/lib/fustor-agent/agent-config)" = fustor ] || fail "agent home not owned by fustor"
# The shipped example configuration is valid as shipped, checked as the service user would.
cp /usr/share/doc/fustor/examples/fusion.yaml /var/lib/fustor/fusion-config/default.yaml
FUSTOR_HOME=/var/lib/fustor /usr/bin/fustor-fusion check-config >/dev/null || fail "example fusion.yaml"
rm /var/lib/fustor/fusion-config/default.yaml
echo "package test: ok ($deb installed, checked, purged)"

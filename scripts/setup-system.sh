#!/usr/bin/env bash
# setup-system.sh - install what building, running and testing the webphone
# needs on Debian 12 (bookworm): build tools and libraries, the desktop app's
# libraries, the headless audio and display stack, and the SIP peers the
# interop tests run on loopback (Kamailio, baresip, SIPp); plus the Rust
# components rustfmt and clippy.
#
#   scripts/setup-system.sh            # as root, or as a user with password-less sudo
#
# Idempotent: when every package is installed already it does not touch apt
# (SETUP_FORCE=1 updates and installs anyway). Services the packages would
# start on their own (kamailio on all interfaces) are kept from starting during
# the install and disabled afterwards: the tests start their own instances on
# 127.0.0.1 with their own configs. SETUP_SKIP=1 skips the packages entirely.
# Without root and sudo it prints what is missing and goes on (an error when CI=true).
set -euo pipefail

say() { printf '[setup] %s\n' "$*" >&2; }

PKGS=(
  # build
  build-essential pkg-config libssl-dev file cmake
  libsqlite3-dev  # profile database: rusqlite links the system SQLite
  # desktop app (Tauri 2 / WebKitGTK 4.1)
  libwebkit2gtk-4.1-dev libgtk-3-dev libayatana-appindicator3-dev librsvg2-dev libsoup-3.0-dev
  libjavascriptcoregtk-4.1-dev libxdo-dev
  libdbus-1-dev dbus gnome-keyring libsecret-tools rpm  # desktop: keyring (Secret Service) + single-instance tests, .rpm
  # audio (cpal -> ALSA -> PulseAudio null sink when headless), Opus
  libasound2-dev libopus-dev pulseaudio pulseaudio-utils libasound2-plugins
  # codecs through Debian's C libraries: GSM, Speex, G.729
  libgsm1-dev libspeex-dev libspeexdsp-dev libbcg729-dev
  # headless display, the desktop e2e driver, screenshots
  xvfb xauth webkit2gtk-driver imagemagick chromium  # chromium: tests/e2e-browser
  xdotool python3-dbus python3-gi dunst trayer x11-utils  # desktop e2e: key presses, tray watcher, dunst (notification server), trayer (tray host) + xwininfo
  haskell-gtk-sni-tray-utils  # desktop e2e: gtk-sni-tray-standalone, a StatusNotifier watcher + host drawing on the display
  # SIP peers for tests/interop
  kamailio kamailio-websocket-modules kamailio-tls-modules baresip-core sip-tester
  kamailio-presence-modules  # presence server + pua_dialoginfo for the presence/BLF tests
  linphone-cli coturn  # second reference UA (linphonec), STUN/TURN server
  sipvicious           # SIP scanners (svmap, svwar, svcrack) for the ghost-call tests
  tshark               # dumpcap: RTP capture in the load benchmark (tests/load)
  # test helpers
  sox openssl python3 iproute2 procps ca-certificates
  nftables             # the NAT between network namespaces (tests/interop/tests/nat.rs)
  python3-pyftpdlib    # a real FTP server for the recording upload (tests/interop/src/ftp.rs)
  python3-vobject      # another vCard producer and reader (tests/interop/tests/vcard_vobject.rs)
  miniupnpd-nftables   # a UPnP router in the NAT namespace (tests/interop/tests/upnp.rs)
  espeak-ng python3-venv python3-dev  # speech samples + a venv for the PESQ quality benchmark
)
# node + npm for the desktop e2e test (tests/e2e-desktop), only when no node is
# installed (a newer one from elsewhere is kept)
command -v node >/dev/null 2>&1 || PKGS+=(nodejs npm)

install_packages() {
  command -v apt-get >/dev/null 2>&1 || { say "apt-get not found: this script is for Debian 12"; exit 1; }
  export DEBIAN_FRONTEND=noninteractive
  # keep invoke-rc.d from starting services during the install (only if the
  # machine has no policy of its own); removed again on exit
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
  local apt_opts=(-o DPkg::Lock::Timeout=600 -o Dpkg::Use-Pty=0)
  say "apt-get update"
  apt-get "${apt_opts[@]}" -qq update
  say "apt-get install ${#PKGS[@]} packages (--no-install-recommends)"
  apt-get "${apt_opts[@]}" -qq install -y --no-install-recommends "${PKGS[@]}" >/dev/null
  if [ -d /run/systemd/system ]; then
    systemctl disable --now kamailio coturn miniupnpd >/dev/null 2>&1 || true
  fi
  say "installed: $(kamailio -v 2>/dev/null | head -1 | cut -d' ' -f2-3)," \
      "baresip $(dpkg-query -W -f='${Version}' baresip-core 2>/dev/null)," \
      "$(sipp -v 2>&1 | grep -o 'SIPp v[^ ]*' | head -1)"
}

if [ "${1:-}" = --packages-only ]; then   # the part run through sudo
  install_packages
  exit 0
fi

if [ "${SETUP_SKIP:-}" = 1 ]; then
  say "SETUP_SKIP=1: not installing system packages"
else
  missing=()
  for p in "${PKGS[@]}"; do
    st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$st" = installed ] || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ] && [ "${SETUP_FORCE:-}" != 1 ]; then
    say "system packages: all ${#PKGS[@]} installed"
  elif [ "$(id -u)" -eq 0 ]; then
    say "missing: ${missing[*]:-none}"
    install_packages
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    say "missing: ${missing[*]:-none}; installing with sudo"
    sudo -n "$(readlink -f "$0")" --packages-only
  else
    say "=================================================================="
    say "SKIPPED: not root and no password-less sudo; cannot install:"
    say "  ${missing[*]}"
    say "run:  sudo $0"
    say "=================================================================="
    [ "${CI:-}" = true ] && { say "CI=true: this is an error"; exit 1; }
  fi
fi

# Rust components used by scripts/test.sh (where rustup manages the toolchain)
if command -v rustup >/dev/null 2>&1; then
  need=()
  cargo fmt --version >/dev/null 2>&1 || need+=(rustfmt)
  cargo clippy --version >/dev/null 2>&1 || need+=(clippy)
  if [ ${#need[@]} -gt 0 ]; then
    say "rustup component add ${need[*]}"
    rustup component add "${need[@]}"
  fi
elif ! command -v cargo >/dev/null 2>&1; then
  say "WARNING: no cargo found; install Rust (rustup, stable toolchain) to build"
fi
exit 0

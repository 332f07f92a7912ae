#!/bin/sh
# Installs (or upgrades) Porta's bridge on this server and enrols it with the Porta that
# served this script. "Add server" in Porta shows the line to run:
#
#   curl -fsSL https://porta.example.com/install.sh | sudo sh -s -- --token pet_...
#
# Run it again to upgrade; run it with --uninstall to remove the bridge. --help lists options.
set -eu

PORTA_URL='@PORTA_URL@'
PORTA_VERSION='@PORTA_VERSION@'

say() { printf 'porta: %s\n' "$*"; }
die() {
    printf 'porta: error: %s\n' "$*" >&2
    exit 1
}

usage() {
    cat <<EOF
Installs or upgrades Porta's bridge ($PORTA_VERSION) and enrols this server with
$PORTA_URL.

usage: install.sh --token TOKEN [options]

  --token TOKEN  the one-time token "Add server" shows (not needed once enrolled;
                 also read from PORTA_ENROLL_TOKEN)
  --prefix DIR   install into DIR/bin (default /usr/local); the credential goes to
                 /etc/porta/bridge.json, or to DIR/etc/porta/bridge.json for another DIR
  --user NAME    run the bridge, and so its terminals, as NAME instead of root
  --root DIR     let the bridge serve files only beneath DIR
  --no-service   install no systemd service; print how to start the bridge instead
  --server URL   reach Porta at URL instead of $PORTA_URL
  --ca-file FILE trust the CA in FILE (PEM) for Porta's certificate, besides the
                 public web's: for a Porta behind a private CA (fetch this script
                 with curl --cacert FILE too); the credential keeps it
  --force        enrol again even if this server is already enrolled
  --uninstall    stop the bridge and remove it and its credential
  -h, --help     show this text
EOF
}

# A path the systemd unit can name as it is: absolute, no spaces, quotes or specifiers.
check_path() {
    case $2 in
    /*) ;;
    *) die "$1 must be an absolute path, not '$2'" ;;
    esac
    case $2 in
    *[!A-Za-z0-9._/+@-]*) die "$1 may hold letters, digits and . _ / + @ - only: '$2'" ;;
    esac
}

token=${PORTA_ENROLL_TOKEN:-}
prefix=/usr/local
run_as=
root_dir=
ca_file=
service=yes
force=
uninstall=
while [ $# -gt 0 ]; do
    case $1 in
    --token | --prefix | --user | --root | --server | --ca-file)
        case ${2:--} in -*) die "$1 needs a value (see --help)" ;; esac
        case $1 in
        --token) token=$2 ;;
        --prefix) prefix=$2 ;;
        --user) run_as=$2 ;;
        --root) root_dir=$2 ;;
        --server) PORTA_URL=$2 ;;
        --ca-file) ca_file=$2 ;;
        esac
        shift 2
        ;;
    --no-service) service= && shift ;;
    --force) force=yes && shift ;;
    --uninstall) uninstall=yes && shift ;;
    -h | --help) usage && exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
    esac
done

PORTA_URL=${PORTA_URL%/}
[ "$prefix" = / ] || prefix=${prefix%/}
check_path --prefix "$prefix"
if [ -n "$ca_file" ]; then
    if [ ! -f "$ca_file" ] || [ ! -r "$ca_file" ]; then
        die "cannot read the CA file '$ca_file': give the PEM file of the CA that signed Porta's certificate"
    fi
    case $ca_file in /*) ;; *) ca_file=$(pwd)/$ca_file ;; esac
fi
[ -z "$root_dir" ] || check_path --root "$root_dir"
bin_dir=$prefix/bin
binary=$bin_dir/porta-bridge
if [ "$prefix" = /usr/local ]; then conf_dir=/etc/porta; else conf_dir=$prefix/etc/porta; fi
config=$conf_dir/bridge.json
unit=/etc/systemd/system/porta-bridge.service
is_root() { [ "$(id -u)" = 0 ]; }
has_systemd() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; }

if [ -n "$uninstall" ]; then
    if [ -n "$service" ] && [ -f "$unit" ]; then
        is_root || die "removing the service needs root: run this with sudo"
        systemctl disable --now porta-bridge || true
        rm -f "$unit"
        systemctl daemon-reload || true
        say "stopped and removed the porta-bridge service"
    fi
    rm -f "$binary" "$config" "$conf_dir/bridge.status.json"
    rmdir "$conf_dir" 2>/dev/null || true
    say "removed $binary and $config"
    say "revoke the server in Porta (Servers, then Revoke) so its credential is refused"
    exit 0
fi

[ "$(uname -s)" = Linux ] || die "Porta's bridge runs on Linux; this is $(uname -s)"
machine=$(uname -m)
case $machine in
x86_64 | amd64) arch=x86_64 ;;
aarch64 | arm64 | armv8*) arch=aarch64 ;;
*) die "unsupported architecture '$machine': Porta's bridge is built for x86_64 and aarch64" ;;
esac

if [ -n "$service" ]; then
    is_root || die "installing a service needs root: pipe this into 'sudo sh -s --', or pass --no-service (and a --prefix you can write) to install without one"
fi
if [ -n "$run_as" ]; then
    id "$run_as" >/dev/null 2>&1 || die "there is no user '$run_as': create it first (useradd --system --create-home $run_as)"
    [ "$(id -un)" = "$run_as" ] || is_root || die "--user $run_as needs root (to give $run_as the credential)"
fi
if [ -f "$config" ] && [ -z "$force" ]; then
    enrolled=yes
else
    enrolled=
    [ -n "$token" ] || die "--token is needed to enrol this server: copy the line \"Add server\" shows in Porta"
fi

if command -v curl >/dev/null 2>&1; then
    if [ -n "$ca_file" ]; then
        fetch() { curl -fsSL --retry 2 --connect-timeout 10 --cacert "$ca_file" -o "$2" "$1"; }
    else
        fetch() { curl -fsSL --retry 2 --connect-timeout 10 -o "$2" "$1"; }
    fi
elif command -v wget >/dev/null 2>&1; then
    if [ -n "$ca_file" ]; then
        fetch() { wget -q -T 10 --ca-certificate="$ca_file" -O "$2" "$1"; }
    else
        fetch() { wget -q -T 10 -O "$2" "$1"; }
    fi
else
    die "neither curl nor wget is here: install one (apt-get install curl, dnf install curl, apk add curl) and run this again"
fi
if command -v sha256sum >/dev/null 2>&1; then
    sha256() { sha256sum "$1" | cut -d ' ' -f 1; }
elif command -v shasum >/dev/null 2>&1; then
    sha256() { shasum -a 256 "$1" | cut -d ' ' -f 1; }
elif command -v openssl >/dev/null 2>&1; then
    sha256() { openssl dgst -sha256 -r "$1" | cut -d ' ' -f 1; }
else
    die "no sha256sum, shasum or openssl to verify the download: install coreutils and run this again"
fi

# A run that fails leaves nothing behind: its temporary files, and the folders it made.
download=
sums=
made=
done_ok=
make_dir() {
    [ -d "$1" ] && return 0
    make_dir "$(dirname "$1")" && mkdir "$1" && made="$1 $made"
}
cleanup() {
    rm -f "$download" "$sums"
    [ -n "$done_ok" ] && return 0
    for dir in $made; do rmdir "$dir" 2>/dev/null || true; done
}
trap cleanup EXIT
make_dir "$bin_dir" 2>/dev/null || die "cannot create $bin_dir: run this as root, or pass --prefix with a folder you can write"
[ -w "$bin_dir" ] || die "cannot write to $bin_dir: run this as root, or pass --prefix with a folder you can write"
download=$(mktemp "$bin_dir/.porta-bridge.XXXXXX")
sums=$(mktemp "$bin_dir/.porta-bridge-sha256.XXXXXX")
name=porta-bridge-linux-$arch
if ! fetch "$PORTA_URL/download/$name.sha256" "$sums"; then
    if fetch "$PORTA_URL/healthz" /dev/null; then
        die "Porta at $PORTA_URL carries no bridge for $arch: ask its operator to build it (cargo xtask bridges --release)"
    fi
    die "cannot reach Porta at $PORTA_URL: check that this server can reach it (DNS, firewall, proxy), or pass --server with an address it can reach"
fi
say "downloading $name from $PORTA_URL"
fetch "$PORTA_URL/download/$name" "$download" || die "the download of $name from $PORTA_URL failed: run this again"
expected=$(cut -d ' ' -f 1 "$sums")
actual=$(sha256 "$download")
[ "$expected" = "$actual" ] || die "the download of $name is damaged (sha256 $actual, expected $expected): run this again"
chmod 0755 "$download"
version=$("$download" --version 2>/dev/null) || die "the downloaded bridge does not run here ($machine): is $bin_dir mounted noexec?"

# Enrol with the new binary before installing it, so a refused token leaves nothing behind.
if [ -n "$enrolled" ]; then
    say "already enrolled ($config): kept; pass --force to enrol again"
else
    make_dir "$conf_dir" || die "cannot create $conf_dir"
    set -- --config "$config" enroll --server "$PORTA_URL"
    [ -z "$force" ] || set -- "$@" --force
    [ -z "$ca_file" ] || set -- "$@" --ca-file "$ca_file"
    status=0
    PORTA_ENROLL_TOKEN=$token "$download" "$@" || status=$?
    if [ "$status" != 0 ]; then
        [ "$status" != 3 ] || die "Porta refused the token: each works once and expires; get a new line from \"Add server\""
        die "enrolment with $PORTA_URL failed (the reason is above)"
    fi
fi
mv -f "$download" "$binary"
done_ok=yes
say "installed $version as $binary"
if [ -n "$run_as" ] && is_root; then
    chown "$run_as" "$conf_dir" "$config"
fi

set -- "$binary" --config "$config" run
[ -z "$root_dir" ] || set -- "$@" --root "$root_dir"
if [ -z "$service" ] || ! has_systemd; then
    if [ -n "$service" ]; then say "this server does not run systemd, so no service was installed"; fi
    start="$*"
    [ -z "$run_as" ] || [ "$(id -un)" = "$run_as" ] || start="su -s /bin/sh $run_as -c '$start'"
    [ -z "$enrolled" ] || say "a bridge already running switches to the new version, keeping its terminals, on SIGHUP (kill -HUP <its pid>)"
    say "start the bridge with:"
    printf '  %s\n' "$start"
    say "(from your init system, or under nohup, to keep it running)"
    exit 0
fi

{
    echo '[Unit]'
    echo 'Description=Porta bridge (dials out to the Porta backend)'
    echo 'Wants=network-online.target'
    echo 'After=network-online.target'
    echo
    echo '[Service]'
    echo 'Type=simple'
    echo "ExecStart=$*"
    echo '# Reload: the running bridge becomes the binary on disk and keeps its terminals.'
    # shellcheck disable=SC2016 # systemd expands $MAINPID, not this shell
    echo 'ExecReload=/bin/kill -HUP $MAINPID'
    [ -z "$run_as" ] || echo "User=$run_as"
    echo 'Restart=always'
    echo 'RestartSec=5'
    echo '# Exit status 3: Porta refused the credential (revoked); restarting cannot help.'
    echo 'RestartPreventExitStatus=3'
    echo 'KillMode=mixed'
    echo 'TimeoutStopSec=15'
    echo
    echo '[Install]'
    echo 'WantedBy=multi-user.target'
} >"$unit"
systemctl daemon-reload
systemctl enable porta-bridge >/dev/null 2>&1
if systemctl is-active --quiet porta-bridge; then
    # An upgrade: the running bridge becomes the new binary and keeps its terminals.
    systemctl reload porta-bridge
    say "the running bridge switched to $version, keeping its terminals"
else
    systemctl restart porta-bridge
    say "the bridge runs as the porta-bridge service (systemctl status porta-bridge); it appears in Porta in a few seconds"
fi

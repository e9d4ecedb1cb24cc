# Sourced by the install steps of `make test` (scripts/install-deps.sh and
# scripts/test.d/*.sh).

# apt_install PACKAGE... installs Debian packages with apt-get when running
# as root on a machine that has it, refreshing the package lists only when
# the install needs it (a fresh machine may have none). Otherwise it prints
# the command to run and returns 1.
apt_install() {
	local install=(apt-get install -y -qq --no-install-recommends "$@")
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
		printf 'missing %s; install with:\n  sudo apt-get update && sudo %s\n' "$*" "${install[*]}" >&2
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	printf '%s\n' "${install[*]}"
	if ! "${install[@]}" >/dev/null 2>&1; then
		apt-get update -qq
		"${install[@]}" >/dev/null
	fi
}

#!/usr/bin/env bash
# `make test`: every check of the repository, on a fresh machine or a warm
# one, against real PostgreSQL and Redis servers started for the run.
#
#   1. scripts/install-deps.sh        server packages (apt-get as root)
#   2. scripts/test.d/*.sh            preparation steps, in name order
#   3. gofmt -l, go vet, staticcheck  every module of go.work
#   4. tools/cmd/testenv -- go test   every module of go.work (shared with
#                                     -race), with TEST_DATABASE_URL and
#                                     TEST_REDIS_URL naming private servers
#
# A failing step does not stop the later ones; the summary at the end lists
# every step and the exit status is non-zero if any failed. The full
# go test output is kept in artifacts/go-test.log. A test skipped because a
# tool is missing prints "DID NOT RUN: ..."; the summary counts and lists
# those apart from other skips (and CI=true makes them failures).
#
# Environment:
#   TEST_RACE=shared|all|none  modules go test runs with -race (default
#                              shared: the module with the concurrent code)
#   TEST_RUN=REGEX             pass -run REGEX to go test
#   TEST_PKGS="PKG..."         test these packages instead of every module
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
mkdir -p artifacts
work=$(mktemp -d "${TMPDIR:-/tmp}/make-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
# This run's go test output; copied to artifacts/go-test.log at the end (a
# private file first, so concurrent runs in one checkout do not mix).
log=$work/go-test.log
: >"$log"

summary=()
failed=0
started=$SECONDS

# step NAME CMD... runs one step, records its outcome and duration.
step() {
	local name=$1 t0=$SECONDS rc=0
	shift
	printf '\n=== %s\n' "$name"
	"$@" || rc=$?
	local took=$((SECONDS - t0))
	if ((rc == 0)); then
		summary+=("ok    ${name} (${took}s)")
	else
		summary+=("FAIL  ${name} (exit ${rc}, ${took}s)")
		failed=1
	fi
	return 0
}

step "install-deps" bash scripts/install-deps.sh

# Every preparation script runs, executable bit or not, so a file committed
# without +x is not silently skipped.
shopt -s nullglob
for f in scripts/test.d/*.sh; do
	step "${f}" bash "$f"
done
shopt -u nullglob

# The workspace's modules, as "DIR PATH" lines.
mapfile -t modules < <(go list -m -f '{{.Dir}} {{.Path}}')
if ((${#modules[@]} == 0)); then
	echo "no modules in go.work" >&2
	exit 1
fi

gofmt_check() {
	local dirs=() m out
	for m in "${modules[@]}"; do dirs+=("${m%% *}"); done
	out=$(gofmt -l "${dirs[@]}")
	if [[ -n $out ]]; then
		echo "gofmt -l lists unformatted files (run gofmt -w on them):"
		echo "$out"
		return 1
	fi
}
step "gofmt" gofmt_check

# vet_module PATH vets a module's packages; a module with none yet passes.
vet_module() {
	if [[ -z $(go list "$1/..." 2>/dev/null) ]] && go list -e "$1/..." 2>&1 | grep -q 'matched no packages'; then
		echo "no packages in $1 yet"
		return 0
	fi
	go vet "$1/..."
}

patterns=()
for m in "${modules[@]}"; do
	dir=${m%% *} path=${m#* }
	rel=${dir#"$root"/}
	step "go vet ${rel}" vet_module "$path"
	patterns+=("${path}/...")
done

# staticcheck over every module at once (the workspace resolves them all),
# at a pinned version fetched through the Go module proxy.
step "staticcheck" go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 "${patterns[@]}"

step "build testenv" go build -o "$work/testenv" ./tools/cmd/testenv

# The go test commands, run by testenv as one script so both share the
# servers. Race detection (-race) costs ~4 min of cold compilation on 2
# cores and little when the build cache is warm; by default it covers the
# shared module, where the concurrent code lives (limiter, usage batcher,
# caches).
gotest_script() {
	local base=(go test -count=1 -timeout 15m -v)
	[[ -n ${TEST_RUN:-} ]] && base+=(-run "$TEST_RUN")
	local race=() plain=() p m shared_path=
	for m in "${modules[@]}"; do
		[[ ${m%% *} == "$root/shared" ]] && shared_path=${m#* }
	done
	if [[ -n ${TEST_PKGS:-} ]]; then
		# shellcheck disable=SC2206 # a list of package patterns
		if [[ ${TEST_RACE:-} == all ]]; then race=($TEST_PKGS); else plain=($TEST_PKGS); fi
	else
		for p in "${patterns[@]}"; do
			case ${TEST_RACE:-shared} in
			all) race+=("$p") ;;
			shared) if [[ $p == "$shared_path/..." ]]; then race+=("$p"); else plain+=("$p"); fi ;;
			*) plain+=("$p") ;;
			esac
		done
	fi
	echo 'set -u; rc=0'
	if ((${#race[@]} > 0)); then
		printf 'echo "+ %s"; ' "${base[*]} -race ${race[*]}"
		printf '%q ' "${base[@]}" -race "${race[@]}"
		echo '|| rc=1'
	fi
	if ((${#plain[@]} > 0)); then
		printf 'echo "+ %s"; ' "${base[*]} ${plain[*]}"
		printf '%q ' "${base[@]}" "${plain[@]}"
		echo '|| rc=1'
	fi
	echo 'exit $rc'
}
gotest() {
	gotest_script >"$work/gotest.sh"
	"$work/testenv" -- bash "$work/gotest.sh" 2>&1 | tee "$log"
	return "${PIPESTATUS[0]}"
}
if [[ -x $work/testenv ]]; then
	step "go test" gotest
fi

# Counts over every test and subtest, from go test -v's result lines.
count() {
	local n
	n=$(grep -cE "^ *--- $1: " "$log") || true
	echo "${n:-0}"
}
passed=$(count PASS)
failed_tests=$(count FAIL)
skipped=$(count SKIP)
# Tests skipped because a tool they need is missing say "DID NOT RUN: ..."
# (verify/cloud and verify/local, shared/redistls); they are counted apart
# from ordinary skips, listed, and fail the run under CI.
did_not_run=$(grep -cE '^ +[^ ]+\.go:[0-9]+: DID NOT RUN: ' "$log") || true
did_not_run=${did_not_run:-0}
skipped=$((skipped - did_not_run))
if ((did_not_run > 0)) && [[ -n ${CI:-} ]]; then
	summary+=("FAIL  ${did_not_run} checks did not run (CI is set: every check must run)")
	failed=1
fi

printf '\n=== summary (%ds)\n' $((SECONDS - started))
printf '%s\n' "${summary[@]}"
cp "$log" artifacts/go-test.log
fails=$(grep -E '^(FAIL\s|\s*--- FAIL: )' "$log" || true)
if [[ -n $fails ]]; then
	printf '\nfailures:\n%s\n' "$fails"
fi
if ((skipped + did_not_run > 0)); then
	printf '\nskipped:\n'
	grep -E '^ *--- SKIP: ' "$log" || true
fi
if ((did_not_run > 0)); then
	printf '\nDID NOT RUN (a tool is missing; install it or run under CI to make this a failure):\n'
	grep -E '^ +[^ ]+\.go:[0-9]+: DID NOT RUN: ' "$log" | sed -E 's/^ +//' || true
fi
echo
echo "tests: ${passed} passed, ${failed_tests} failed, ${skipped} skipped, ${did_not_run} did not run"
exit "$failed"

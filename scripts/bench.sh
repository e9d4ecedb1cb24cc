#!/usr/bin/env bash
# `make bench`: the performance baseline, written into BENCHMARKS.md.
#
#   1. Go benchmarks of the hot path's pieces (go test -bench, -count
#      ROUNDS) against real Postgres and Redis started by tools/cmd/testenv.
#   2. End to end: the load tool (tools/cmd/loadtest) against the platform
#      as `make run` serves it (all functions in one process) and, paired
#      in the same rounds with the same client, against a bare net/http
#      JSON handler (tools/cmd/bareserver) and a peer that only
#      rate-limits (tools/cmd/peerserver: an in-memory key check and one
#      go-redis/redis_rate GCRA decision per request on its own Redis,
#      nothing recorded); closed loop at concurrency 50
#      and open loop at fixed rates; then the same with request logs at
#      info level, and the separate-process topology (`make run-separate`).
#
# Every figure is the median of ROUNDS runs; ratios are taken per round
# (metered and bare run back to back) and their median reported. The
# platform runs with LOG_LEVEL=warn unless said otherwise (request logs
# are JSON lines to stdout at info level: a cost of their own, measured
# separately), with limits high enough that no request is denied (the
# figures are those of admitted, metered requests), on private Postgres
# and Redis under a temporary folder (Postgres with fsync on, as `make
# run` has it).
#
# Environment:
#   BENCH_ROUNDS=3            runs per figure
#   BENCH_REQUESTS=20000      requests per closed-loop run
#   BENCH_CONCURRENCY=50      closed-loop workers
#   BENCH_OPEN_RATES="10000 2000"  open-loop offered rates (req/s)
#   BENCH_OPEN_SECONDS=5      length of an open-loop schedule
#   BENCH_SKIP_GO=1           skip the Go benchmarks
#   BENCH_SKIP_SEPARATE=1     skip the separate-process topology
#   BENCH_OUT=BENCHMARKS.md   file whose generated section is replaced
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
rounds=${BENCH_ROUNDS:-3}
requests=${BENCH_REQUESTS:-20000}
conc=${BENCH_CONCURRENCY:-50}
open_rates=${BENCH_OPEN_RATES:-"10000 2000"}
open_seconds=${BENCH_OPEN_SECONDS:-5}
out=${BENCH_OUT:-BENCHMARKS.md}
users=100
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

work=$(mktemp -d "${TMPDIR:-/tmp}/bench.XXXXXX")
pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT
# The platform must start its own servers: ignore any from the environment.
unset DATABASE_URL REDIS_URL

log() { printf 'bench: %s\n' "$*" >&2; }

free_port() {
	local p
	for p in $(shuf -i 20000-40000 -n 50); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "bench: no free port" >&2
	return 1
}

wait_http() { # URL
	local i
	for i in $(seq 1 600); do
		if curl -fsS -o /dev/null "$1" 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	log "no answer from $1"
	return 1
}

log "building the platform, the load tool and the bare server"
mkdir -p "$work/bin"
go build -o "$work/bin/platform" ./tools/cmd/platform
go build -o "$work/bin/loadtest" ./tools/cmd/loadtest
go build -o "$work/bin/bareserver" ./tools/cmd/bareserver
go build -o "$work/bin/peerserver" ./tools/cmd/peerserver

# median FILE COLUMN: the median of a column of numbers (1-based).
median() {
	awk -v c="$2" '{print $c}' "$1" | sort -g | awk '{v[NR]=$1} END {if (NR==0) {print "-"; exit} if (NR%2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2}'
}

# ---------------------------------------------------------------- Go benchmarks
gobench=$work/gobench.txt
: >"$gobench"
if [[ -z ${BENCH_SKIP_GO:-} ]]; then
	log "Go benchmarks (count $rounds)"
	go run ./tools/cmd/testenv -- bash -c "
		set -e
		cd '$root/shared'
		go test -run '^\$' -bench 'BenchmarkValidateHash|BenchmarkAuthenticate|BenchmarkDecision|BenchmarkRecord' -benchtime 2s -count $rounds ./apikey ./auth ./ratelimit ./meter
		go test -run '^\$' -bench 'BenchmarkUnknownKeyFlood' -benchtime 5000x -count $rounds ./gate
		cd '$root/functions/usage'
		go test -run '^\$' -bench 'BenchmarkMeteredHandler' -benchtime 3s -count $rounds .
	" | tee "$gobench" >&2
fi

# ------------------------------------------------------------------ end to end
bare_port=$(free_port)
"$work/bin/bareserver" -addr "127.0.0.1:$bare_port" >"$work/bare.log" 2>&1 &
bare_pid=$!
pids+=("$bare_pid")
wait_http "http://127.0.0.1:$bare_port/"
bare=http://127.0.0.1:$bare_port

# The peer: its own Redis (no persistence, as a cache would run), then the
# peer server on it.
peer_redis_port=$(free_port)
redis_bin=$(command -v redis-server || echo /usr/bin/redis-server)
"$redis_bin" --port "$peer_redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$work/peer-redis.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do
	if (exec 3<>"/dev/tcp/127.0.0.1/$peer_redis_port") 2>/dev/null; then break; fi
	sleep 0.1
done
peer_port=$(free_port)
"$work/bin/peerserver" -addr "127.0.0.1:$peer_port" -redis "redis://127.0.0.1:$peer_redis_port/0" >"$work/peer.log" 2>&1 &
peer_pid=$!
pids+=("$peer_pid")
wait_http "http://127.0.0.1:$peer_port/health"
peer=http://127.0.0.1:$peer_port

platform_pid=
platform_base=
start_platform() { # LOG_LEVEL [platform flags...]
	local level=$1 port
	shift
	port=$(free_port)
	PORT=$port LOG_LEVEL=$level API_RATE_LIMIT=1000000000000 SIGNUP_RATE_LIMIT=1000000000 \
		"$work/bin/platform" -data "$work/data" "$@" >>"$work/platform.log" 2>&1 &
	platform_pid=$!
	pids+=("$platform_pid")
	platform_base=http://127.0.0.1:$port
	wait_http "$platform_base/health"
}
stop_platform() {
	kill -TERM "$platform_pid"
	wait "$platform_pid" || true
}

# lt FILE BASE PID [loadtest flags...]: one run, one TSV line appended.
lt() {
	local file=$1 base=$2 pid=$3
	shift 3
	local line
	line=$("$work/bin/loadtest" -q -tsv -warmup -base "$base" -users "$users" -server-pid "$pid" -max-duration 120s "$@") || true
	if [[ -z $line ]]; then
		log "the load tool could not run against $base"
		line=$(printf '0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t1\tfalse')
	fi
	echo "$line" >>"$file"
}

# paired NAME [flags...]: ROUNDS rounds of bare, peer, then platform, same
# flags. (The peer's /verify and /usage are the same decision.)
paired() {
	local name=$1
	shift
	local r
	for r in $(seq 1 "$rounds"); do
		lt "$work/$name.bare.tsv" "$bare" "$bare_pid" -no-checks "$@"
		lt "$work/$name.peer.tsv" "$peer" "$peer_pid" -no-checks "$@"
		lt "$work/$name.platform.tsv" "$platform_base" "$platform_pid" "$@"
		log "$name round $r: bare $(tail -1 "$work/$name.bare.tsv" | cut -f1) req/s, peer $(tail -1 "$work/$name.peer.tsv" | cut -f1) req/s, platform $(tail -1 "$work/$name.platform.tsv" | cut -f1) req/s"
	done
}

scenarios=()
closed_args=(-c "$conc" -n "$requests")
run_scenarios() { # PREFIX: closed loop, then each open-loop rate
	local prefix=$1 rate
	paired "$prefix-closed" "${closed_args[@]}"
	scenarios+=("$prefix-closed")
	for rate in $open_rates; do
		paired "$prefix-open$rate" -rate "$rate" -n $((rate * open_seconds)) -c 400
		scenarios+=("$prefix-open$rate")
	done
}

# breakdown NAME: one more closed-loop run, keeping the load tool's line
# of CPU per request split by process (the platform's Go process,
# postgres, redis-server, ...).
breakdown() {
	"$work/bin/loadtest" -q -warmup -base "$platform_base" -users "$users" -server-pid "$platform_pid" \
		"${closed_args[@]}" | grep '^cpu' | sed 's/^cpu *//' >"$work/breakdown-$1.txt" || true
}

log "end to end: make run topology (in-process functions), LOG_LEVEL=warn"
start_platform warn
run_scenarios inproc
# The verify path, the product's hot path for protected APIs: POST /verify
# with each user's key in the body, on the same gate.
paired "inproc-verify-closed" "${closed_args[@]}" -endpoint /verify
scenarios+=("inproc-verify-closed")
breakdown inproc
stop_platform

log "end to end: make run topology, LOG_LEVEL=info (request logs)"
start_platform info
paired "inproc-info-closed" "${closed_args[@]}"
scenarios+=("inproc-info-closed")
stop_platform

if [[ -z ${BENCH_SKIP_SEPARATE:-} ]]; then
	log "end to end: make run-separate topology (a process per function, usage x2)"
	start_platform warn -separate
	run_scenarios separate
	breakdown separate
	stop_platform
fi

# --------------------------------------------------------------------- report
describe() {
	case $1 in
	inproc-closed) echo "make run (in-process), closed loop c=$conc" ;;
	inproc-info-closed) echo "make run, LOG_LEVEL=info, closed loop c=$conc" ;;
	inproc-verify-closed) echo "make run, POST /verify, closed loop c=$conc" ;;
	inproc-open*) echo "make run, open loop ${1#inproc-open} req/s" ;;
	separate-closed) echo "make run-separate, closed loop c=$conc" ;;
	separate-open*) echo "make run-separate, open loop ${1#separate-open} req/s" ;;
	*) echo "$1" ;;
	esac
}

gen=$work/generated.md
{
	echo "<!-- bench:begin (generated by scripts/bench.sh; edits inside are overwritten) -->"
	echo
	echo "Measured $(date -u '+%Y-%m-%d %H:%M UTC') on $(nproc) × $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -sr), $(go version | cut -d' ' -f3), load average (1, 5, 15 min) at the start: $load_start, at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
	echo "Command: \`make bench\` (BENCH_ROUNDS=$rounds BENCH_REQUESTS=$requests BENCH_CONCURRENCY=$conc BENCH_OPEN_RATES=\"$open_rates\" BENCH_OPEN_SECONDS=$open_seconds); medians of $rounds runs."
	echo
	if [[ -s $gobench ]]; then
		echo "### Go benchmarks"
		echo
		echo "\`go test -bench\` against real Postgres (fsync off, as in tests) and Redis started by \`tools/cmd/testenv\`; GOMAXPROCS=$(nproc)."
		echo
		echo "| benchmark | median ns/op | ≈ ops/s | B/op | allocs/op | extra |"
		echo "| --- | ---: | ---: | ---: | ---: | --- |"
		awk '/^Benchmark/ {
			name=$1; sub(/-[0-9]+$/, "", name)
			ns=""; b=""; a=""; extra=""
			for (i=3; i<NF; i+=2) {
				if ($(i+1)=="ns/op") ns=$i
				else if ($(i+1)=="B/op") b=$i
				else if ($(i+1)=="allocs/op") a=$i
				else extra=extra $i " " $(i+1) " "
			}
			if (!(name in seen)) { order[++n]=name; seen[name]=1 }
			cnt[name]++; v[name, cnt[name]]=ns; bb[name]=b; aa[name]=a; ex[name]=extra
		}
		END {
			for (k=1; k<=n; k++) {
				name=order[k]; m=cnt[name]
				for (i=1; i<=m; i++) s[i]=v[name, i]+0
				for (i=1; i<=m; i++) for (j=i+1; j<=m; j++) if (s[j]<s[i]) { t=s[i]; s[i]=s[j]; s[j]=t }
				med = (m%2) ? s[(m+1)/2] : (s[m/2]+s[m/2+1])/2
				printf "| %s | %.0f | %.0f | %s | %s | %s |\n", name, med, 1e9/med, bb[name], aa[name], ex[name]
			}
		}' "$gobench"
		per=$(awk '/^BenchmarkRecord\/per-request/ {print $3}' "$gobench" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
		grp=$(awk '/^BenchmarkRecord\/grouped/ {print $3}' "$gobench" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}')
		if [[ -n $per && -n $grp ]]; then
			echo
			echo "Grouped usage write vs one write per request, same run: **$(awk -v p="$per" -v g="$grp" 'BEGIN {printf "%.1f×", p/g}')** the throughput (target ≥ 2×)."
		fi
		# The cost of telemetry on the metered hot path: this process's CPU
		# per request (cpu-µs/op), telemetry on vs off, same run.
		cpu_of() { awk -v n="$1" '$1 ~ "^BenchmarkMeteredHandler/telemetry=" n "(-[0-9]+)?$" {for (i=3; i<NF; i++) if ($(i+1)=="cpu-µs/op") print $i}' "$gobench" | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
		toff=$(cpu_of off)
		ton=$(cpu_of on)
		ttr=$(cpu_of traced)
		if [[ -n $toff && -n $ton ]]; then
			echo
			echo "Telemetry on the metered request as deployed (every request measured, 10 % of unsampled requests traced) vs off, same run: **$(awk -v a="$ton" -v b="$toff" 'BEGIN {printf "%+.1f %%", (a/b-1)*100}')** CPU per request ($ton vs $toff µs, medians; target under +10 %); every request traced: $(awk -v a="$ttr" -v b="$toff" 'BEGIN {printf "%+.1f %%", (a/b-1)*100}') ($ttr µs)."
		fi
		# A flood of unknown keys vs a customer's requests on the same
		# instance: the customer's ns/op with and without it, and the
		# flood's Postgres lookups (bounded by AUTH_FAIL_LIMIT per window).
		med() { awk -v n="$1" -v u="$2" '$1 ~ "^BenchmarkUnknownKeyFlood/flood=" n "(-[0-9]+)?$" {for (i=2; i<NF; i++) if ($(i+1)==u) print $i}' "$gobench" | sort -g | awk '{v[NR]=$1} END {if (NR) print v[int((NR+1)/2)]}'; }
		foff=$(med off ns/op)
		fon=$(med on ns/op)
		if [[ -n $foff && -n $fon ]]; then
			echo
			echo "A flood of unknown keys (one address, as fast as the gate answers: $(med on flood-req/s) req/s) vs none, same run: a customer's authenticated request takes **$(awk -v a="$fon" -v b="$foff" 'BEGIN {printf "%.2f×", a/b}')** the time ($fon vs $foff ns, medians); the flood's Postgres lookups: $(med on flood-lookups) for $(med on flood-reqs) unknown keys (AUTH_FAIL_LIMIT 100 per minute)."
		fi
		echo
	fi
	echo "### End to end"
	echo
	echo "Load tool: \`go run ./tools/cmd/loadtest -users $users -server-pid PID ...\` (same client, same machine, runs paired bare/platform in each round). Latency in ms; CPU in µs per request (client: the load tool; server: the server process and its children, Postgres and Redis included). Open loop: latency from each request's scheduled send time (no coordinated omission), at most 400 in flight."
	echo
	echo "| scenario | bare req/s | peer req/s | platform req/s | platform/bare | platform/peer | p50 | p90 | p99 | max | bare p99 | peer p99 | CPU µs/req: client + server, platform (bare) | CPU ratio | non-2xx/429 + errors | checks |"
	echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
	for s in "${scenarios[@]}"; do
		b=$work/$s.bare.tsv
		p=$work/$s.platform.tsv
		q=$work/$s.peer.tsv
		paste "$p" "$b" | awk '{print $1/$14}' >"$work/$s.ratio"
		paste "$p" "$q" | awk '{print ($14 > 0) ? $1/$14 : 0}' >"$work/$s.peerratio"
		bad=$(awk '{n+=$11+$12} END {print n+0}' "$p")
		oks=$(awk '$13=="true" {n++} END {print n+0}' "$p")
		paste "$p" "$b" | awk '{print ($7+$8 > 0) ? ($20+$21)/($7+$8) : 0}' >"$work/$s.cpuratio"
		printf '| %s | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.0f + %.0f (%.0f + %.0f) | %.2f | %d | %d/%d ok |\n' \
			"$(describe "$s")" "$(median "$b" 1)" "$(median "$q" 1)" "$(median "$p" 1)" "$(median "$work/$s.ratio" 1)" "$(median "$work/$s.peerratio" 1)" \
			"$(median "$p" 2)" "$(median "$p" 3)" "$(median "$p" 4)" "$(median "$p" 6)" "$(median "$b" 4)" "$(median "$q" 4)" \
			"$(median "$p" 7)" "$(median "$p" 8)" "$(median "$b" 7)" "$(median "$b" 8)" \
			"$(median "$work/$s.cpuratio" 1)" "$bad" "$oks" "$(wc -l <"$p")"
	done
	echo
	for t in inproc separate; do
		if [[ -s $work/breakdown-$t.txt ]]; then
			echo "CPU per request by process, one more closed-loop run (c=$conc), $(describe "$t-closed" | cut -d, -f1): $(cat "$work/breakdown-$t.txt")."
			echo
		fi
	done
	echo "CPU ratio: (client + server CPU per request against bare) / (the same against the platform), per round: the throughput ratio the two would have if this workload alone saturated the cores. Unlike req/s it hardly moves when other work shares the machine."
	echo
	echo "Checks: the load tool's own (no 5xx, no transport error, no user over its limit, GET /billing = admitted for every user: no lost usage row)."
	echo
	echo "### Targets"
	echo
	ratio=$(median "$work/inproc-closed.ratio" 1)
	p99=$(median "$work/inproc-closed.platform.tsv" 4)
	verdict() { if awk "BEGIN {exit !($1)}"; then echo "met"; else echo "**missed**"; fi; }
	echo "| target | measured | |"
	echo "| --- | --- | --- |"
	cpur=$(median "$work/inproc-closed.cpuratio" 1)
	echo "| metered /usage ≥ 0.45 × bare (make run, c=$conc) | $(printf '%.2f' "$ratio") (CPU ratio $(printf '%.2f' "$cpur")) | $(verdict "$ratio >= 0.45") |"
	pr=$(median "$work/inproc-closed.peerratio" 1)
	echo "| metered /usage ≥ the redis_rate peer (make run, c=$conc) | $(printf '%.2f' "$pr") of the peer | $(verdict "$pr >= 1") |"
	if [[ -f $work/inproc-verify-closed.peerratio ]]; then
		vr=$(median "$work/inproc-verify-closed.ratio" 1)
		vpr=$(median "$work/inproc-verify-closed.peerratio" 1)
		echo "| POST /verify ≥ 0.45 × bare and ≥ the peer | $(printf '%.2f' "$vr") of bare, $(printf '%.2f' "$vpr") of the peer | $(verdict "$vr >= 0.45 && $vpr >= 1") |"
	fi
	echo "| p99 ≤ 10 ms (same runs) | $(printf '%.1f' "$p99") ms | $(verdict "$p99 <= 10") |"
	if [[ -f $work/inproc-open10000.platform.tsv ]]; then
		op99=$(median "$work/inproc-open10000.platform.tsv" 4)
		oerr=$(awk '{n+=$11+$12} END {print n+0}' "$work/inproc-open10000.platform.tsv")
		echo "| open loop 10k req/s: p99 < 5 ms, no errors | p99 $(printf '%.1f' "$op99") ms, $oerr errors | $(verdict "$op99 < 5 && $oerr == 0") |"
	fi
	if [[ -n ${per:-} && -n ${grp:-} ]]; then
		echo "| grouped write ≥ 2 × per-request | $(awk -v p="$per" -v g="$grp" 'BEGIN {printf "%.1f×", p/g}') | $(verdict "$per / $grp >= 2") |"
	fi
	allok=$(cat "$work"/*.platform.tsv | awk '$13!="true" || $11+$12>0 {n++} END {print n+0}')
	echo "| no 5xx, no lost usage row (every run's checks) | $allok failing runs | $(verdict "$allok == 0") |"
	echo
	echo "<!-- bench:end -->"
} >"$gen"

if [[ -f $out ]] && grep -q '<!-- bench:begin' "$out"; then
	awk -v gen="$gen" '
		/<!-- bench:begin/ {while ((getline line < gen) > 0) print line; skip=1; next}
		/<!-- bench:end -->/ {skip=0; next}
		!skip {print}' "$out" >"$work/out.md"
	cp "$work/out.md" "$out"
else
	{
		echo "# Benchmarks"
		echo
		cat "$gen"
	} >"$out"
fi
log "wrote $out"
cat "$gen"

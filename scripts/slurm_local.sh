#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for tests and CI (needs root and apt):
#
#   scripts/slurm_local.sh start     # install Debian's slurm + munge if missing, start the daemons
#   scripts/slurm_local.sh status    # the daemons' PIDs and `sinfo`
#   scripts/slurm_local.sh stop      # stop the daemons by their PIDs, remove the state
#
# Works in a sandbox without systemd or cgroups: ProctrackType=proctrack/linuxproc,
# TaskPlugin=task/none, no accounting; munged, slurmctld and slurmd are started directly
# (foreground daemons in the background, PIDs recorded) with all state, logs, sockets and
# the config under $NRTJAX_SLURM_DIR (default ${TMPDIR:-/tmp}/nrtjax-slurm). The node's CPUs
# and memory are what `slurmd -C` reports for this machine; one partition `debug` (default).
# Clients find the config through /etc/slurm/slurm.conf, which `start` links to ours when
# no slurm.conf exists there (and `stop` removes that link again); otherwise export the
# SLURM_CONF printed by `start`. Ports: $NRTJAX_SLURM_PORT (slurmctld, default 6817) and
# the next one (slurmd).
set -euo pipefail

D=${NRTJAX_SLURM_DIR:-${TMPDIR:-/tmp}/nrtjax-slurm}
PORT=${NRTJAX_SLURM_PORT:-6817}
CONF=$D/slurm.conf
ETC_CONF=/etc/slurm/slurm.conf

die() { echo "slurm_local.sh: $*" >&2; exit 1; }

alive() { [[ -f $D/$1.pid ]] && kill -0 "$(cat "$D/$1.pid")" 2>/dev/null; }

install_packages() {
    local missing=()
    command -v munged >/dev/null || missing+=(munge)
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    ((${#missing[@]} == 0)) && return 0
    [[ $(id -u) == 0 ]] || die "needs root to install ${missing[*]} (apt-get) and run slurmd"
    echo "installing ${missing[*]} (apt-get)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends \
        munge slurmctld slurmd slurm-client >/dev/null
}

write_config() {
    local host node_line cpus mem
    host=$(hostname -s)
    # e.g. "NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105"
    node_line=$(slurmd -C | head -n 1)
    cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")
    mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
    [[ -n $cpus && -n $mem ]] || die "could not read this machine's CPUs/memory from 'slurmd -C': $node_line"
    cat >"$CONF" <<EOF
# Written by scripts/slurm_local.sh: a single-node sandbox cluster.
ClusterName=nrtjax-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# cred_expire: a requeued job may start again this many seconds later (default 120)
AuthInfo=socket=$D/munge.socket,cred_expire=10
StateSaveLocation=$D/ctld
SlurmdSpoolDir=$D/spool
SlurmctldPidFile=$D/slurmctld.daemon.pid
SlurmdPidFile=$D/slurmd.daemon.pid
SlurmctldLogFile=$D/slurmctld.log
SlurmdLogFile=$D/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2   # react within seconds (tests)
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=1024
ReturnToService=2
SlurmdTimeout=60
MinJobAge=120
KillWait=5
$node_line State=UNKNOWN NodeAddr=127.0.0.1
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    echo "$host" >"$D/node"
}

wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
    local limit=$1 what=$2; shift 2
    for ((i = 0; i < limit * 4; i++)); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    die "$what did not come up in ${limit} s; logs in $D"
}

node_idle() { [[ $(SLURM_CONF=$CONF sinfo -h -o %T 2>/dev/null) == idle* ]]; }

start() {
    if alive slurmctld && alive slurmd; then
        echo "already running (state in $D)"; status; return 0
    fi
    install_packages
    stop_daemons
    rm -rf "$D"
    mkdir -p "$D/ctld" "$D/spool"
    chmod 700 "$D"
    write_config
    # A key of our own, so that nothing depends on the system's munge setup.
    dd if=/dev/urandom of="$D/munge.key" bs=1024 count=1 status=none
    chmod 600 "$D/munge.key"
    munged --force --foreground --socket="$D/munge.socket" --key-file="$D/munge.key" \
        --pid-file="$D/munged.daemon.pid" --log-file="$D/munged.log" \
        --seed-file="$D/munged.seed" >"$D/munged.out" 2>&1 &
    echo $! >"$D/munged.pid"
    wait_for 10 munged test -S "$D/munge.socket"
    slurmctld -D -f "$CONF" >"$D/slurmctld.out" 2>&1 &
    echo $! >"$D/slurmctld.pid"
    slurmd -D -f "$CONF" -N "$(cat "$D/node")" >"$D/slurmd.out" 2>&1 &
    echo $! >"$D/slurmd.pid"
    wait_for 30 "the node" node_idle
    if [[ ! -e $ETC_CONF ]]; then
        mkdir -p "$(dirname "$ETC_CONF")"
        ln -s "$CONF" "$ETC_CONF"
        echo "$ETC_CONF" >"$D/etc-link"
    fi
    echo "SLURM running: $(SLURM_CONF=$CONF sinfo -h -o '%P %D node(s) %c CPUs %m MB %T')"
    echo "export SLURM_CONF=$CONF    # only needed if $ETC_CONF is not ours"
}

stop_daemons() {
    local name pid
    for name in slurmd slurmctld munged; do
        alive "$name" || continue
        pid=$(cat "$D/$name.pid")
        kill "$pid" 2>/dev/null || true
        for ((i = 0; i < 40; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
        kill -9 "$pid" 2>/dev/null || true
        echo "stopped $name (pid $pid)"
    done
}

stop() {
    [[ -d $D ]] || { echo "not running (no $D)"; return 0; }
    stop_daemons
    if [[ -f $D/etc-link && -L $ETC_CONF && $(readlink "$ETC_CONF") == "$CONF" ]]; then
        rm -f "$ETC_CONF"
    fi
    rm -rf "$D"
}

status() {
    local name up=0
    for name in munged slurmctld slurmd; do
        if alive "$name"; then echo "$name: running (pid $(cat "$D/$name.pid"))"; else echo "$name: not running"; up=1; fi
    done
    ((up == 0)) && SLURM_CONF=$CONF sinfo
    return $up
}

case ${1:-} in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) die "usage: scripts/slurm_local.sh start|stop|status" ;;
esac

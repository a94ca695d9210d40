#!/usr/bin/env bash
# Start (or stop) a real one-node SLURM cluster on this machine for the workflow tests
# (Debian slurmctld + slurmd + munge, no accounting; docs/sources.md#local-slurm).
# Needs root. Usage: tools/local_slurm.sh install|start|stop [STATE_DIR]
# (install: only the Debian packages, e.g. in the background while pip installs; start installs them too.)
# After `start`, export SLURM_CONF=STATE_DIR/slurm.conf to use sbatch/squeue against it.
set -euo pipefail
action=${1:?usage: $0 install|start|stop [STATE_DIR]}
state=${2:-/tmp/mednext-slurm}
conf="$state/slurm.conf"

stop() {
    for pidfile in "$state"/slurmd.pid "$state"/slurmctld.pid; do
        if [ -f "$pidfile" ]; then
            pid=$(cat "$pidfile")
            kill "$pid" 2>/dev/null || true
            # slurmd waits for job steps it still tracks; do not leave it holding the ports
            for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    done
}

install_packages() {
    if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
        [ "$(id -u)" = 0 ] || { echo "SLURM is not installed and installing it needs root" >&2; exit 1; }
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
    fi
}

if [ "$action" = install ]; then
    install_packages
    exit 0
fi
if [ "$action" = stop ]; then
    stop
    grep -qs '^ClusterName=mednext-test$' /etc/slurm/slurm.conf && rm -f /etc/slurm/slurm.conf
    exit 0
fi
[ "$action" = start ] || { echo "unknown action $action" >&2; exit 2; }
install_packages

mkdir -p "$state"/{spool,ctld,log} /run/munge /var/log/munge /var/lib/munge /etc/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /run/munge /var/log/munge /var/lib/munge 2>/dev/null || true
chmod 0400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- /usr/sbin/munged 2>/dev/null || /usr/sbin/munged --force
fi

host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
cat > "$conf" <<CONF
ClusterName=mednext-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
ReturnToService=2
# At the time limit SLURM sends SIGTERM, then SIGKILL KillWait seconds later (SLURM's defaults, written
# out because the time-out test in tests/workflow/test_demo_workflow.py relies on them): the trainer saves in between.
KillWait=30
OverTimeLimit=0
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem_mb State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

# Jobs must find the cluster without $SLURM_CONF: the slurm-jobstep plugin strips SLURM_* variables
# before its inner srun, so srun reads the default /etc/slurm/slurm.conf as on a real cluster.
# Only a file this script wrote (ClusterName=mednext-test) is ever replaced.
default_conf=/etc/slurm/slurm.conf
if [ -e "$default_conf" ] && ! grep -q '^ClusterName=mednext-test$' "$default_conf"; then
    echo "$default_conf belongs to another cluster; not starting the test cluster over it" >&2
    exit 1
fi
mkdir -p "$(dirname "$default_conf")"
cp "$conf" "$default_conf.tmp" && mv "$default_conf.tmp" "$default_conf"

stop
export SLURM_CONF="$conf"
/usr/sbin/slurmctld -f "$conf"
/usr/sbin/slurmd -f "$conf"
for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -q -E '^(idle|mixed|allocated)'; then
        echo "SLURM up: SLURM_CONF=$conf"
        exit 0
    fi
    sleep 1
done
echo "SLURM did not come up; see $state/log" >&2
exit 1

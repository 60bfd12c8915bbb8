#!/bin/bash
# A single-node SLURM cluster on this machine, for trying dpt-sweep's SLURM executor and for the tests
# (.ci/run starts it). Needs root and Debian's packages: apt-get install -y slurm-wlm munge.
#   bash scripts/slurm/local_cluster.sh start    munge key + munged, slurm.conf (this machine's CPUs and
#                                                memory), slurmctld, slurmd; waits until sbatch answers
#   bash scripts/slurm/local_cluster.sh stop     stops the daemons and removes the state folder
#   bash scripts/slurm/local_cluster.sh status   sinfo's view of the cluster (exit 1 when it is not up)
# State (slurm.conf, spool, logs, pid files) lives in DPT_SLURM_STATE (default /tmp/dpt-local-slurm);
# /etc/slurm/slurm.conf becomes a link to its slurm.conf, so that sbatch, squeue, ... find the cluster.
# No accounting (sacct does not answer; submitit warns and reads job states from squeue).
# One partition, "debug" (the default), with every CPU of the machine; a job without --mem gets its CPUs'
# share of the memory.
set -euo pipefail
STATE="${DPT_SLURM_STATE:-/tmp/dpt-local-slurm}"
CONF_LINK=/etc/slurm/slurm.conf
USAGE="Usage: bash scripts/slurm/local_cluster.sh start|stop|status"

fail() {
    echo "$*" >&2
    exit 1
}

cluster_answers() {
    timeout 10 sinfo -h >/dev/null 2>&1
}

write_conf() {
    local host cpus memory
    host="$(hostname -s)"
    cpus="$(nproc)"
    memory="$(free -m | awk '/^Mem:/ {print int($2 * 0.9)}')"
    cat > "${STATE}/slurm.conf" <<CONF
ClusterName=dptlocal
SlurmctldHost=${host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=${STATE}/slurmctld
SlurmdSpoolDir=${STATE}/slurmd
SlurmctldPidFile=${STATE}/slurmctld.pid
SlurmdPidFile=${STATE}/slurmd.pid
SlurmctldLogFile=${STATE}/slurmctld.log
SlurmdLogFile=${STATE}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((memory / cpus))
MpiDefault=none
ReturnToService=2
JobRequeue=1
KillWait=5
MinJobAge=60
NodeName=${host} CPUs=${cpus} RealMemory=${memory} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
    [ "$(id -u)" = 0 ] || fail "Starting the local cluster needs root (it runs munged, slurmctld and slurmd)."
    for command in munged slurmctld slurmd sbatch; do
        command -v "${command}" >/dev/null || fail "${command} is not installed: apt-get install -y slurm-wlm munge"
    done
    if cluster_answers; then
        echo "A SLURM cluster already answers (sinfo): nothing to start."
        return 0
    fi
    if [ -e "${CONF_LINK}" ] && [ "$(readlink "${CONF_LINK}")" != "${STATE}/slurm.conf" ]; then
        fail "${CONF_LINK} exists and is not this script's: this machine has its own SLURM configuration."
    fi
    mkdir -p "${STATE}/slurmctld" "${STATE}/slurmd" /run/munge
    write_conf
    ln -sfn "${STATE}/slurm.conf" "${CONF_LINK}"
    if [ ! -s /etc/munge/munge.key ]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key /run/munge 2>/dev/null || true
    chmod 400 /etc/munge/munge.key
    if ! munge -n </dev/null >/dev/null 2>&1; then
        munged --force --pid-file="${STATE}/munged.pid"
    fi
    slurmctld -c  # -c: a clean start, no jobs from an earlier state
    slurmd
    for _ in $(seq 60); do
        if cluster_answers && sinfo -h -o %t | grep -qv -e down -e unk; then
            scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
            echo "Local SLURM cluster up: $(sinfo -h -o '%P %D nodes, %c CPUs, %m MB')"
            return 0
        fi
        sleep 0.5
    done
    fail "The local SLURM cluster did not come up in 30 s; see ${STATE}/slurmctld.log and ${STATE}/slurmd.log."
}

stop() {
    local pid_file pids=()
    for pid_file in "${STATE}/slurmd.pid" "${STATE}/slurmctld.pid" "${STATE}/munged.pid"; do
        if [ -f "${pid_file}" ]; then
            pids+=("$(cat "${pid_file}")")
            kill "${pids[-1]}" 2>/dev/null || true
        fi
    done
    local pid
    for pid in "${pids[@]}"; do  # the daemons write their state as they stop: wait for them before removing it
        for _ in $(seq 50); do
            kill -0 "${pid}" 2>/dev/null || break
            sleep 0.2
        done
    done
    if [ "$(readlink "${CONF_LINK}" 2>/dev/null)" = "${STATE}/slurm.conf" ]; then
        rm -f "${CONF_LINK}"
    fi
    rm -rf "${STATE}"
    echo "Local SLURM cluster stopped."
}

status() {
    cluster_answers || fail "No SLURM cluster answers (start one: bash scripts/slurm/local_cluster.sh start)."
    sinfo
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "${USAGE}" >&2; exit 2 ;;
esac

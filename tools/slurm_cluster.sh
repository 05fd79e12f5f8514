#!/usr/bin/env bash
# A Slurm cluster on this machine (loopback), for the project's Slurm tests and for trying
# `python run.py -m hardware=slurm_cpu ...` on a laptop or CI machine. Needs root (it runs the daemons as root).
#
#   tools/slurm_cluster.sh install        Debian's slurmctld, slurmd, slurm-client and munge (apt-get)
#   tools/slurm_cluster.sh start [DIR]    munged + slurmctld + the slurmds with state, logs and slurm.conf in DIR;
#                                         waits until every node is idle; prints `export SLURM_CONF=DIR/slurm.conf`
#   tools/slurm_cluster.sh stop [DIR]     stops the daemons started in DIR, by the pids in their pid files
#
# DIR defaults to /tmp/toponets-slurm. Partition `debug` (the default) is one node: this machine's short hostname
# with its real CPU count and most of its memory. Partition `twonode` is two more nodes of one CPU each, named by
# their loopback addresses 127.0.0.2 and 127.0.0.3: each its own slurmd (`slurmd -N NAME`, its own port, spool and
# log), so a job of `--nodes=2` gets two Slurm nodes (SLURM_NNODES=2, SLURM_NODEID 0 and 1) on one machine and its
# ranks meet over TCP at the first node's address. They share this machine's cores with `debug`: use one partition
# at a time.
set -euo pipefail

dir="${2:-/tmp/toponets-slurm}"
host="$(hostname -s)"
two_nodes=(127.0.0.2 127.0.0.3)
# munged runs as the munge user, which may not reach DIR: its pid file lives in munge's own /run/munge
munge_pid="/run/munge/toponets-$(printf '%s' "$dir" | md5sum | cut -c1-12).pid"

install() {
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/log/munge /var/lib/munge
  chown munge:munge /run/munge /var/log/munge /var/lib/munge
  if munge -n >/dev/null 2>&1; then
    return  # a munged is already answering
  fi
  runuser -u munge -- /usr/sbin/munged --pid-file="$munge_pid"
  for _ in $(seq 50); do munge -n >/dev/null 2>&1 && return; sleep 0.1; done
  echo "munged did not start" >&2
  exit 1
}

write_conf() {
  local cpus mem
  cpus="$(nproc)"
  mem=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))
  mkdir -p "$dir/state" "$dir/spool"
  cat >"$dir/slurm.conf" <<CONF
ClusterName=toponets
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobRequeue=1
KillWait=30
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool-%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd-%n.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
NodeName=${two_nodes[0]} NodeHostname=${two_nodes[0]} Port=6819 CPUs=1 RealMemory=$(( mem / 4 )) State=UNKNOWN
NodeName=${two_nodes[1]} NodeHostname=${two_nodes[1]} Port=6820 CPUs=1 RealMemory=$(( mem / 4 )) State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
PartitionName=twonode Nodes=${two_nodes[0]},${two_nodes[1]} MaxTime=INFINITE State=UP
CONF
}

start() {
  mkdir -p "$dir"
  export SLURM_CONF="$dir/slurm.conf"
  if [ -f "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    echo "a cluster already runs from $dir" >&2
  else
    start_munge
    write_conf
    /usr/sbin/slurmctld -f "$SLURM_CONF" -i   # -i: ignore state left by an earlier cluster in DIR
    /usr/sbin/slurmd -f "$SLURM_CONF"
    for node in "${two_nodes[@]}"; do
      /usr/sbin/slurmd -f "$SLURM_CONF" -N "$node"
    done
  fi
  for _ in $(seq 120); do
    states="$(sinfo -h -N -o '%T' 2>/dev/null | sort -u | tr '\n' ' ' || true)"
    if [ "$states" = "idle " ]; then
      echo "export SLURM_CONF=$SLURM_CONF"
      return
    fi
    sleep 0.5
  done
  echo "the nodes did not become idle (states: ${states:-none}); logs in $dir" >&2
  exit 1
}

stop() {
  for pidfile in "$dir"/slurmd*.pid "$dir/slurmctld.pid" "$munge_pid"; do
    if [ -f "$pidfile" ]; then
      pid="$(cat "$pidfile")"
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      rm -f "$pidfile"
    fi
  done
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *) sed -n '2,12p' "$0" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# Starts a real one-node Slurm cluster on this machine, as root and without systemd, for
# tests/slurm.rs: installs Debian's slurm-wlm and munge when missing, writes a slurm.conf for
# localhost (the node line from `slurmd -C`), starts munged, slurmctld and slurmd, and waits
# until the node is idle. Running it again restarts the daemons with the same configuration.
#
#   sudo bash scripts/slurm_one_node.sh && cargo test --test slurm -- --ignored
set -euo pipefail

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# munge: a key, its folders, the daemon (as root, hence --force).
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown root:root /etc/munge/munge.key /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 400 /etc/munge/munge.key
chmod 700 /etc/munge /var/lib/munge /var/log/munge
chmod 755 /run/munge
pkill -x munged 2>/dev/null || true
sleep 0.5
munged --force

# Slurm: one node, this machine, every CPU schedulable on its own.
host=$(hostname -s)
node=$(slurmd -C | head -n 1)
conf_dir=/etc/slurm
mkdir -p "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat >"$conf_dir/slurm.conf" <<EOF
ClusterName=neureg-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=30
MinJobAge=600
$node
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
# No cgroup.conf: slurmd 22.05 autodetects the cgroup version (and refuses "disabled").

pkill -x slurmd 2>/dev/null || true
pkill -x slurmctld 2>/dev/null || true
sleep 1
slurmctld
slurmd

for _ in $(seq 1 60); do
    state=$(sinfo -h -n "$host" -o %T 2>/dev/null || true)
    if [ "$state" = "idle" ]; then
        echo "slurm: node $host idle"
        exit 0
    fi
    sleep 1
done
echo "slurm: node $host did not become idle (state: ${state:-none}); logs in /var/log/slurm" >&2
tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
exit 1

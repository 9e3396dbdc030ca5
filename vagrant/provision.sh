#!/bin/sh
# Prepares a Debian 12 machine as a Faultline node (run as root; idempotent).
#   provision.sh NAME PUBKEY CLOCK_FAULTS HOSTS
# NAME          this node's name (n1)
# PUBKEY        controller public key to authorise for root ("" to skip)
# CLOCK_FAULTS  1: stop NTP synchronisation so the clock nemesis can set the real clock
# HOSTS         "ADDR=NAME,ADDR=NAME,..." for every node, added to /etc/hosts
# Also usable on cloud VMs: scp it over and run `sudo sh provision.sh n1 "$(cat key.pub)" 0 "$HOSTS"`.
set -eu
name=${1:?usage: provision.sh NAME PUBKEY CLOCK_FAULTS HOSTS}
pubkey=${2:-}
clock_faults=${3:-0}
hosts=${4:-}

export DEBIAN_FRONTEND=noninteractive
# What the faults and the servers need: iptables/nft (partitions, loss), iproute2 (tc: bandwidth,
# netem latency), libfaketime (per-process clock skew), psmisc/procps (pause, kill).
apt-get update -q
apt-get install -y -q --no-install-recommends \
  iptables nftables iproute2 libfaketime faketime procps psmisc netcat-openbsd ca-certificates

# netem ships as a module in Debian's kernel; load it now and at boot.
if modprobe sch_netem 2>/dev/null; then
  echo sch_netem > /etc/modules-load.d/faultline-netem.conf
else
  echo "faultline: sch_netem not available on this kernel; latency faults will be skipped" >&2
fi

# Every node by name.
if [ -n "$hosts" ]; then
  sed -i '/# faultline$/d' /etc/hosts
  for entry in $(printf '%s' "$hosts" | tr ',' ' '); do
    printf '%s\t%s # faultline\n' "${entry%%=*}" "${entry#*=}" >> /etc/hosts
  done
fi
hostnamectl set-hostname "$name" 2>/dev/null || echo "$name" > /etc/hostname

# Root logs in with the controller's key only; many channels per connection.
install -d -m 700 /root/.ssh
touch /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
if [ -n "$pubkey" ] && ! grep -qxF "$pubkey" /root/.ssh/authorized_keys; then
  printf '%s\n' "$pubkey" >> /root/.ssh/authorized_keys
fi
cat > /etc/ssh/sshd_config.d/faultline.conf <<'CONF'
PermitRootLogin prohibit-password
PasswordAuthentication no
MaxSessions 64
MaxStartups 64:30:128
UseDNS no
CONF
systemctl reload ssh 2>/dev/null || systemctl reload sshd 2>/dev/null || true

# Clock faults set the real clock; NTP would undo them. Only when asked for.
if [ "$clock_faults" = 1 ]; then
  timedatectl set-ntp false 2>/dev/null || true
  for unit in systemd-timesyncd chrony chronyd ntp ntpsec; do
    systemctl disable --now "$unit" 2>/dev/null || true
  done
  echo "faultline: NTP synchronisation is off on $name"
else
  timedatectl set-ntp true 2>/dev/null || true
fi

install -d -m 755 /opt/faultline
echo "faultline: $name ready"

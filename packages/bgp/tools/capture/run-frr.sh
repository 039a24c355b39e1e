#!/bin/sh
# Capture FRR bgpd test vectors. Two bgpd processes without zebra (-Z), each
# with its own config, pid file and vty socket directory; BGP only on
# 127.0.0.4/.5 and ::1, ports 17910/17912; no vty TCP port (-P 0).
set -eu
. "$(dirname "$0")/lib.sh"
BGPD=/usr/lib/frr/bgpd
V=$(dpkg-query -W -f '${Version}' frr)
UV=${V%%-*}
SOURCE="FRRouting $($BGPD --version | awk 'NR==1{print $NF}') bgpd (Debian package frr $V)"
MSG='bgp-ts capture: séance terminée'
mkdir -p "$RUN/frr-main" "$RUN/frr-feeder"

daemon() { # NAME LISTEN-ARGS...
  n=$1; shift
  $BGPD -C -Z -S -f "$HERE/frr/frr-$n.conf" >/dev/null
  start "frr-$n" $BGPD -Z -S -P 0 "$@" -f "$HERE/frr/frr-$n.conf" \
    --vty_socket "$RUN/frr-$n" -i "$RUN/frr-$n/bgpd.pid"
}
daemon main -l 127.0.0.4 -l ::1 -p 17910
daemon feeder -l 127.0.0.5 -p 17912
wait_listen 127.0.0.4:17910
VTY="vtysh --vty_socket $RUN/frr-main -d bgpd"
# wait until the feeder's routes are in the main bgpd's table
until $VTY -c 'show bgp ipv4 unicast 10.3.0.0/24' 2>/dev/null | grep -q 'best'; do sleep 1; done
sleep 2

off() { echo "$VTY -c 'configure terminal' -c 'router bgp 65000' -c 'neighbor $1 shutdown message $MSG'"; }
H="--connect 127.0.0.4:17910 --as 65001"

cap "frr-$UV" as4 $H --local 127.0.0.21 --id 10.255.0.21 \
  --caps mp4,mp6,rr,err,as4,gr,extmsg --refresh ipv4,ipv6 --shutdown "$(off 127.0.0.21)"
cap "frr-$UV" as2 $H --local 127.0.0.22 --id 10.255.0.22 \
  --caps mp4,mp6,rr,err,gr,extmsg --shutdown "$(off 127.0.0.22)"
cap "frr-$UV" addpath $H --local 127.0.0.23 --id 10.255.0.23 \
  --caps mp4,mp6,rr,err,as4,gr,addpath4,addpath6 --shutdown "$(off 127.0.0.23)"
cap "frr-$UV" ibgp-rr --connect 127.0.0.4:17910 --as 65000 --local 127.0.0.24 --id 10.255.0.24 \
  --caps mp4,mp6,rr,err,as4,gr,extmsg --refresh ipv4 --shutdown "$(off 127.0.0.24)"
cap "frr-$UV" extnh --connect '[::1]:17910' --as 65001 --local ::1 --id 10.255.0.25 \
  --caps mp4,mp6,rr,err,as4,gr,extnh4 --shutdown "$(off ::1)"

#!/bin/sh
# Capture BIRD 2 test vectors. Needs root only if the bird binary requires it;
# everything stays on loopback (127.0.0.2/.3, ::1) ports 17900/17902.
set -eu
. "$(dirname "$0")/lib.sh"
V=$(bird --version 2>&1 | awk '{print $NF}')
SOURCE="BIRD $V (Debian package bird2 $(dpkg-query -W -f '${Version}' bird2))"
CTL="$RUN/bird-main.ctl"
MSG='bgp-ts capture: séance terminée'

bird -p -c "$HERE/bird/bird-main.conf"
bird -p -c "$HERE/bird/bird-feeder.conf"
start bird-main bird -f -c "$HERE/bird/bird-main.conf" -s "$CTL" -P "$RUN/bird-main.pid"
start bird-feeder bird -f -c "$HERE/bird/bird-feeder.conf" -s "$RUN/bird-feeder.ctl" -P "$RUN/bird-feeder.pid"
wait_listen 127.0.0.2:17900
# let the feeder session come up and deliver its routes (they are reflected in the rr scenario)
until birdc -s "$CTL" show protocols feeder | grep -q Established; do sleep 1; done
sleep 2

off() { echo "birdc -s $CTL 'disable $1 \"$MSG\"'"; }
H="--connect 127.0.0.2:17900 --as 65001"

cap "bird-$V" as4 $H --local 127.0.0.11 --id 10.255.0.11 \
  --caps mp4,mp6,rr,err,as4,gr,extmsg --refresh ipv4,ipv6 --shutdown "$(off h_as4)"
cap "bird-$V" as2 $H --local 127.0.0.12 --id 10.255.0.12 \
  --caps mp4,mp6,rr,err,gr,extmsg --shutdown "$(off h_as2)"
cap "bird-$V" addpath $H --local 127.0.0.13 --id 10.255.0.13 \
  --caps mp4,mp6,rr,err,as4,gr,addpath4,addpath6 --shutdown "$(off h_ap)"
cap "bird-$V" ibgp-rr --connect 127.0.0.2:17900 --as 65000 --local 127.0.0.14 --id 10.255.0.14 \
  --caps mp4,mp6,rr,err,as4,gr,extmsg --refresh ipv4 --shutdown "$(off h_rr)"
cap "bird-$V" extnh --connect '[::1]:17900' --as 65001 --local ::1 --id 10.255.0.15 \
  --caps mp4,mp6,rr,err,as4,gr,extnh4 --shutdown "$(off h_enh)"

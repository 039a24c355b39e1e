#!/bin/sh
# Capture GoBGP test vectors. Two gobgpd processes (daemon under test + iBGP
# feeder), BGP only on 127.0.0.6/.7 and ::1, ports 17920/17922; gRPC API on
# 127.0.0.1:50061/50062. Routes are injected with the gobgp CLI.
set -eu
. "$(dirname "$0")/lib.sh"
V=$(gobgpd --version | awk '{print $NF}')
SOURCE="GoBGP $V (Debian package gobgpd $(dpkg-query -W -f '${Version}' gobgpd))"
MSG='bgp-ts capture: séance terminée'

gobgpd -d -f "$HERE/gobgp/gobgp-main.toml" >/dev/null
gobgpd -d -f "$HERE/gobgp/gobgp-feeder.toml" >/dev/null
start gobgp-main gobgpd -p -f "$HERE/gobgp/gobgp-main.toml" --api-hosts 127.0.0.1:50061 --pprof-disable
start gobgp-feeder gobgpd -p -f "$HERE/gobgp/gobgp-feeder.toml" --api-hosts 127.0.0.1:50062 --pprof-disable
wait_listen 127.0.0.6:17920
wait_listen 127.0.0.1:50062
G="gobgp -u 127.0.0.1 -p 50061"
F="gobgp -u 127.0.0.1 -p 50062"

# routes originated by the gobgpd under test (identifier = local path id, so
# that ADD-PATH has two paths for 10.1.0.0/24 and 2001:db8:1::/48)
$G global rib add -a ipv4 10.1.0.0/24 identifier 1 origin igp aspath 4200000001,65010 med 50 \
  community 65000:100,65000:200 large-community 65000:1:2 rt 65000:100 nexthop 127.0.0.6
$G global rib add -a ipv4 10.1.0.0/24 identifier 2 origin igp aspath 4200000001,65010 med 60 \
  community 65000:100,65000:200 large-community 65000:1:2 rt 65000:100 nexthop 127.0.0.6
$G global rib add -a ipv4 10.1.1.0/24 origin egp community 65000:300 nexthop 127.0.0.6
$G global rib add -a ipv4 10.1.2.0/26 origin igp aspath 65000,65000 med 0 \
  large-community 4200000001:100:200 aggregator 4200000001:10.0.0.6 rt 10.0.0.6:7 nexthop 127.0.0.6
$G global rib add -a ipv4 10.2.0.1/32 origin igp community 65000:32 nexthop 127.0.0.6
$G global rib add -a ipv4 10.2.0.2/32 origin igp community 65000:32 nexthop 127.0.0.6
$G global rib add -a ipv6 2001:db8:1::/48 identifier 1 origin igp aspath 4200000001 med 100 \
  community 65000:600 large-community 65000:6:6 nexthop 2001:db8:ffff::6
$G global rib add -a ipv6 2001:db8:1::/48 identifier 2 origin igp aspath 4200000001 med 110 \
  community 65000:600 large-community 65000:6:6 nexthop 2001:db8:ffff::6
$G global rib add -a ipv6 2001:db8:2:1::/64 origin igp nexthop 2001:db8:ffff::6
$G global rib add -a ipv6 2001:db8:2:2::/64 origin igp nexthop 2001:db8:ffff::6
# routes of the iBGP feeder (reflected to the route-reflector client)
$F global rib add -a ipv4 10.3.0.0/24 origin igp aspath 4200000001 med 30 local-pref 200 \
  community 65000:3 large-community 65000:3:3 nexthop 198.51.100.7
$F global rib add -a ipv4 10.3.1.0/24 origin igp local-pref 200 community 65000:3 nexthop 198.51.100.7
$F global rib add -a ipv6 2001:db8:3::/48 origin igp local-pref 200 community 65000:3 nexthop 2001:db8:ffff::7
until $G global rib -a ipv4 10.3.0.0/24 2>/dev/null | grep -q 10.3.0.0; do sleep 1; done
sleep 2

off() { echo "$G neighbor $1 shutdown --reason '$MSG'"; }
H="--connect 127.0.0.6:17920 --as 65001"

cap "gobgp-$V" as4 $H --local 127.0.0.31 --id 10.255.0.31 \
  --caps mp4,mp6,rr,err,as4,gr,extmsg --refresh ipv4,ipv6 --shutdown "$(off 127.0.0.31)"
cap "gobgp-$V" as2 $H --local 127.0.0.32 --id 10.255.0.32 \
  --caps mp4,mp6,rr,err,gr,extmsg --shutdown "$(off 127.0.0.32)"
cap "gobgp-$V" addpath $H --local 127.0.0.33 --id 10.255.0.33 \
  --caps mp4,mp6,rr,err,as4,gr,addpath4,addpath6 --shutdown "$(off 127.0.0.33)"
cap "gobgp-$V" ibgp-rr --connect 127.0.0.6:17920 --as 65000 --local 127.0.0.34 --id 10.255.0.34 \
  --caps mp4,mp6,rr,err,as4,gr,extmsg --refresh ipv4 --shutdown "$(off 127.0.0.34)"
cap "gobgp-$V" extnh --connect '[::1]:17920' --as 65001 --local ::1 --id 10.255.0.35 \
  --caps mp4,mp6,rr,err,as4,gr,extnh4 --shutdown "$(off ::1)"
